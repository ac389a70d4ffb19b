# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: blackout_check
short_description: Check blackout and maintenance calendars for now and a planned change window
version_added: 0.1.0
description:
  - Reads blackout and maintenance windows from iCalendar files or URLs (RFC 5545 with RRULE, RDATE, EXDATE,
    DURATION, TZID, all-day and floating events), YAML windows (GitLab-style cron start and end pairs and
    one-off date ranges, each with its own time zone) and ServiceNow blackout or maintenance schedules.
  - Answers whether now is inside a blackout, which blackouts the planned window overlaps, whether the
    planned window (or now) is outside every maintenance window, and the next allowed start.
  - Returns V(allow) or V(deny) with reasons. A calendar that cannot be fetched (URL unreachable,
    ServiceNow down) makes the answer C(deny) with the reason (fail closed); a calendar that is malformed fails the task.
  - A recurring event defined by DTSTART and DTEND keeps the exact duration of its first instance across
    daylight-saving changes (RFC 5545 section 3.8.5.3); DURATION days are nominal. See docs/calendars.md.
  - Runs on the controller and never writes.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(icalendar), C(recurring-ical-events) and C(croniter) on the controller, for the calendars
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  calendars:
    description:
      - The calendar sources, each a mapping with C(type) (V(ics), V(yaml), V(windows) or V(servicenow)).
      - V(ics) takes C(path) or C(url), C(kind) (V(blackout) or V(maintenance)), C(scope), C(timezone) for floating
        and all-day events, C(dtend) (V(exact) or V(wall_clock)), C(timeout) and C(validate_certs) for URLs.
      - V(yaml) takes C(path) of a file with C(windows) and optional C(timezone), C(kind) and C(scope) defaults.
      - V(windows) takes the same C(windows) inline.
      - V(servicenow) takes C(schedule), the name of a blackout or maintenance schedule read through the ITSM backend.
      - Relative paths are read from the playbook directory.
    type: list
    elements: dict
    required: true
  timezone:
    description:
      - The service's time zone (IANA name), used for floating and all-day events and for O(now),
        O(planned_start) and O(planned_end) given without an offset.
    type: str
    default: UTC
  now:
    description: The moment to evaluate, RFC 3339; defaults to the current time. Useful to replay a decision.
    type: str
  planned_start:
    description: Start of the planned change window (RFC 3339, or local time in O(timezone)).
    type: str
  planned_end:
    description: End of the planned change window; required with O(planned_start).
    type: str
  service:
    description: The service the change is for; windows scoped to other services are ignored.
    type: str
  ci:
    description: The CIs the change touches; a window scoped to CIs applies when one of them is listed.
    type: list
    elements: str
  environment:
    description: The target environment, for example C(prod).
    type: str
  business_unit:
    description: The business unit owning the service.
    type: str
  horizon_days:
    description: How far ahead to search for the next allowed start.
    type: int
    default: 366
  fail_on_deny:
    description: Fail the task when the answer is C(deny), instead of only returning it.
    type: bool
    default: false
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Only reads; the answer is the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: relops.release.change_request
"""

EXAMPLES = r"""
- name: May the payments release run tonight
  relops.release.blackout_check:
    timezone: Europe/Berlin
    service: payments
    environment: prod
    planned_start: "2026-12-18T22:00"
    planned_end: "2026-12-19T02:00"
    calendars:
      - type: ics
        path: calendars/freezes.ics
      - type: yaml
        path: calendars/freezes.yml
      - type: windows
        kind: maintenance
        windows:
          - name: Nightly maintenance
            cron_start: "0 22 * * *"
            cron_end: "0 4 * * *"
            timezone: Europe/Berlin
  register: calendar
  run_once: true

- name: Stop when the window meets a freeze
  ansible.builtin.assert:
    that: calendar.decision == 'allow'
    fail_msg: "{{ calendar.reasons | join('; ') }}; next allowed start {{ calendar.next_allowed_start }}"

- name: The freezes the change board publishes as an iCalendar feed
  relops.release.blackout_check:
    timezone: Europe/Berlin
    environment: prod
    planned_start: "2026-12-18T22:00"
    planned_end: "2026-12-19T02:00"
    calendars:
      - type: ics
        url: https://calendars.example.com/release-freezes.ics
        timeout: 10
  run_once: true

- name: Read the ServiceNow year-end blackout schedule
  relops.release.blackout_check:
    backend: servicenow
    calendars:
      - type: servicenow
        schedule: Year end freeze
        scope:
          environment: prod
    environment: prod
    fail_on_deny: true
"""

RETURN = r"""
decision:
  description: V(allow), or V(deny) when the window meets a blackout, misses every maintenance window or a calendar is unavailable.
  returned: success
  type: str
  sample: deny
reasons:
  description: Why the answer is deny, one line per blackout, missing maintenance window or unavailable calendar.
  returned: success
  type: list
  elements: str
in_blackout:
  description: Whether now is inside a blackout that applies to the scope.
  returned: success
  type: bool
planned_overlaps_blackout:
  description: Whether the planned window overlaps a blackout.
  returned: success
  type: bool
current:
  description: The windows (blackout and maintenance) in force now, each with name, kind, source, start, end, scope.
  returned: success
  type: list
  elements: dict
overlapping:
  description: The windows the planned window overlaps, in the same form as RV(current).
  returned: success
  type: list
  elements: dict
outside_maintenance:
  description: Whether the planned window (or now) is outside every maintenance window; null when no maintenance window applies.
  returned: success
  type: bool
next_allowed_start:
  description: The earliest start at or after the planned start (or now) from which a change of the planned length meets
    no blackout and fits a maintenance window when there are some; null when none within O(horizon_days).
  returned: success
  type: str
  sample: "2026-12-19T05:00:00.000000Z"
unavailable:
  description: The calendars that could not be fetched, with the reason.
  returned: success
  type: list
  elements: str
windows_considered:
  description: The windows that apply to the scope.
  returned: success
  type: list
  elements: str
now:
  description: The moment evaluated, UTC.
  returned: success
  type: str
planned:
  description: The planned window in UTC (start, end), or null.
  returned: success
  type: dict
"""
