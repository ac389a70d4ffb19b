# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: dora_metrics
short_description: Compute DORA delivery metrics and rework rate from the release ledger
version_added: 0.1.0
description:
  - Reads the release ledger and reports, for one environment and optionally one service or team,
    deployment frequency, lead time for changes, change failure rate, failed deployment recovery
    time and deployment rework rate, with the 2023 DORA benchmark tier of each, over a window and
    as a daily, weekly or monthly series.
  - With release records (O(source=releases), or O(source=auto) when the environment has any), one
    finished release record is one unit (M(relops.release.release_record_info)); deployment
    frequency counts successful releases, lead time runs from the manifest's C(commit_time) to the
    release's finish, change failure rate counts rolled back, failed (fixed forward) and
    incident-causing releases over deployed releases (an aborted release changed nothing), and a
    rollback is recovery, timed from the failure's detection to the rollback finished.
  - Incidents count against the release that recorded them (its C(incident) stage or its change
    number), else against the newest deployment on the same configuration item (CI) and
    environment that finished at most O(link_window_hours) before the incident was opened, unless
    the incident is linked to deployments explicitly (M(relops.release.incident)).
  - The aggregation runs in the ledger database (SQLite or PostgreSQL). Never writes; a missing
    ledger is an error. The exact definitions and how they differ from fourkeys and Apache DevLake
    are in the collection's C(docs/metrics.md).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  environment:
    description: The environment whose deployments count (production, as DORA measures it).
    type: str
    default: production
  service:
    description: Only this service's deployments.
    type: str
  team:
    description: Only this team's deployments (the team comes from the release manifest).
    type: str
  window:
    description:
      - The last 7, 30 or 90 days, ending with today in O(timezone). The default when neither
        O(start) nor O(end) is given is V(30d).
    type: str
    choices: [7d, 30d, 90d]
  start:
    description: The first day (YYYY-MM-DD, in O(timezone)) of the window; needs O(end).
    type: str
  end:
    description: The last day (YYYY-MM-DD, included) of the window; needs O(start).
    type: str
  timezone:
    description:
      - The IANA time zone whose midnights bound days, weeks and months, for example
        V(Europe/Berlin). Days across a DST change are 23 or 25 hours long.
    type: str
    default: UTC
  granularity:
    description: The length of each period of RV(metrics.series); weeks are ISO weeks (Monday first).
    type: str
    choices: [day, week, month]
    default: week
  group_by:
    description: Also report the window's metrics per service or per team in RV(metrics.groups).
    type: str
    choices: [service, team]
  link_window_hours:
    description: How long after a deployment an incident on its CI still counts against it.
    type: int
    default: 24
  repository:
    description:
      - A git checkout of the deployed source. When given, lead time is measured for every commit
        between the previous release's source revision and this one (C(git log) on the controller)
        instead of from the one commit time recorded with the deployment.
      - Used with the C(deployments) source only; release records give the manifest's C(commit_time).
    type: path
  source:
    description:
      - Where the figures come from. C(releases) reads release records (one release, one unit);
        C(deployments) reads the deployments table (history imported in bulk, older ledgers);
        C(auto) takes release records when the environment has any, else the deployments table.
      - The answer's C(window.source) in RV(metrics) says which one was used.
    type: str
    default: auto
    choices: [auto, releases, deployments]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: relops.release.incident
  - module: relops.release.release_report
"""

EXAMPLES = r"""
- name: Production delivery metrics of the last 90 days, weekly, per team
  relops.release.dora_metrics:
    window: 90d
    granularity: week
    group_by: team
  register: dora
  run_once: true

- name: One service's daily series for March, in local time, lead time from git
  relops.release.dora_metrics:
    service: payments-api
    start: "2026-03-01"
    end: "2026-03-31"
    timezone: Europe/Berlin
    granularity: day
    repository: /srv/src/payments-api
  register: payments
  run_once: true

- name: Fail when the change failure rate is worse than the high tier
  ansible.builtin.assert:
    that: dora.metrics.summary.change_failure_rate.tier in ['elite', 'high', None]
    fail_msg: "change failure rate {{ dora.metrics.summary.change_failure_rate.rate }}"
"""

RETURN = r"""
metrics:
  description: The metrics.
  returned: success
  type: dict
  contains:
    window:
      description: The window as computed (UTC bounds, days, time zone, filters, link window in seconds).
      type: dict
      sample:
        start: "2026-03-01T00:00:00.000000Z"
        end: "2026-03-08T00:00:00.000000Z"
        days: 7
        timezone: UTC
        granularity: day
        environment: production
        link_window_seconds: 86400
        source: releases
    summary:
      description:
        - The whole window. C(deployment_frequency) (successful deployments, C(per_day), C(per_week),
          C(deployment_days), C(fourkeys) and C(devlake) buckets, C(tier)); C(lead_time)
          (C(median_seconds), C(median_hours), C(samples), C(source) commit_time (release records), commit_at or git, C(tier));
          C(change_failure_rate) (C(deployments), C(failures), C(rollbacks), C(with_incident),
          C(rate), C(tier)); C(recovery_time) (C(median_seconds), C(median_hours), C(recovered),
          C(unrecovered), C(tier)); C(rework_rate) (C(deployments), C(rework), C(rate)).
        - Rates and medians are null without data, and so are their tiers.
      type: dict
    series:
      description: The same metrics per period (C(period) label, C(start), C(end)), without the buckets.
      type: list
      elements: dict
    groups:
      description: With O(group_by), the window's metrics per service or team.
      type: dict
      returned: when O(group_by) is set
"""
