# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: stabilization
short_description: Record a release's stabilization period and its end, or a breach with its incident
version_added: 0.1.0
description:
  - A stabilization period is the time after a deployment when the service is watched closely and
    further changes to it are restricted. This module keeps the period in the release ledger.
  - V(started) opens a period of O(period) seconds for O(service) in O(environment) at O(version);
    starting it again for the same version while it runs changes nothing.
  - V(completed) records that the period ended without a breach. The change gate reads the running
    periods (C(active_stabilizations) in the ledger), so this is what lifts its restriction.
  - V(breached) ends the running period as breached and opens an incident in the ledger, in one
    transaction. Without a running period it opens the incident alone and warns.
  - With the V(servicenow) ITSM backend (O(backend), or O(instance.host) / E(SN_HOST) set), a breach
    also opens an incident in the instance's C(incident) table first, with the correlation id
    C(relops-stabilization-<period id>), so a retried breach finds it instead of opening a second one.
    Its number is kept in the ledger incident's C(details.itsm_incident). When the instance cannot be
    reached the breach is still recorded in the ledger (with C(details.itsm_error)) and the task warns,
    so the rollback that follows a breach never waits on ServiceNow.
  - V(status) only reports the running period.
  - The C(relops.release.smoke_test) role's C(stabilize) entry point drives this module around the
    health gate; use it directly when the watching is done elsewhere.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The service being stabilized.
    type: str
    required: true
  environment:
    description: The environment it was deployed to.
    type: str
    required: true
  version:
    description: The version deployed; required with O(state=started).
    type: str
  state:
    description: What to record; see the description.
    type: str
    choices: [started, completed, breached, status]
    default: started
  period:
    description:
      - With O(state=started), the length of the period in seconds. A period whose end has passed no
        longer restricts changes even if its run died before recording the end.
    type: int
    default: 3600
  incident:
    description: With O(state=breached), the incident to open.
    type: dict
    default: {}
    suboptions:
      title:
        description: What breached, for example the health gate's message; required with O(state=breached).
        type: str
      severity:
        description: The incident's severity.
        type: str
        choices: [critical, high, moderate, low]
        default: high
      details:
        description: Anything worth keeping with the incident, such as the gate's measurements.
        type: dict
        default: {}
      description:
        description: A longer description; on ServiceNow the service, environment, version and details are appended.
        type: str
      caused_by:
        description:
          - The number of the change request that deployed the release (C(CHG...)), kept as the
            incident's C(caused_by) on both backends, which ties the incident to the change for
            change-failure reporting. On ServiceNow the change must exist.
        type: str
      cmdb_ci:
        description: On ServiceNow, the name of the affected CI; it must exist. On local, kept with the incident.
        type: str
      assignment_group:
        description: On ServiceNow, the name of the group to assign the incident to; it must exist.
        type: str
  details:
    description: With O(state=started), settings worth keeping with the period (interval, gate).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.itsm
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports the period (and incident) the write would produce without writing.
  diff_mode:
    support: full
    details: Shows the running period before and after.
notes:
  - The module is in the C(relops.release.itsm) action group, so C(module_defaults) for
    C(group/relops.release.itsm) gives it the same O(backend) and O(instance) as the change modules.
  - Severity maps to ServiceNow's impact and urgency (critical 1/1, high 1/2, moderate 2/2, low 2/3),
    which the instance's default priority lookup turns into priority 1 to 4.
seealso:
  - module: relops.release.health_gate
  - module: relops.release.change_request
"""

EXAMPLES = r"""
- name: Start a one-hour stabilization period
  relops.release.stabilization:
    service: payments-api
    environment: production
    version: "{{ release_version }}"
    period: 3600
  run_once: true

- name: Record a breach and open an incident
  relops.release.stabilization:
    service: payments-api
    environment: production
    state: breached
    incident:
      title: "payments-api {{ release_version }}: error ratio above 1% during stabilization"
      severity: critical
  run_once: true

- name: Record a breach and open the incident in ServiceNow too, tied to the release's change
  relops.release.stabilization:
    service: payments-api
    environment: production
    state: breached
    backend: servicenow
    instance:
      host: https://example.service-now.com
      username: deploy-bot
      password: "{{ sn_password }}"
    incident:
      title: "{{ health.msg }}"
      severity: critical
      caused_by: "{{ change.change.number }}"
      assignment_group: Payments On-Call
  run_once: true
"""

RETURN = r"""
outcome:
  description: V(started), V(already_active), V(completed), V(not_active), V(breached), V(active) or V(none).
  returned: always
  type: str
period:
  description: The period as the ledger holds it after the task (C(id), C(service), C(environment),
    C(version), C(status), C(started_at), C(ends_at), C(ended_at), C(run_id), C(details)), or null.
  returned: always
  type: dict
incident:
  description: The incident opened by a breach (C(id), C(title), C(severity), C(status), C(stabilization_id), C(opened_at), ...).
  returned: when O(state=breached)
  type: dict
itsm_incident:
  description:
    - The ServiceNow incident a breach opened (or found by its correlation id), as
      C(relops.release) ITSM backends return incidents (C(number), C(sys_id), C(state), C(priority),
      C(severity), C(business_service), C(caused_by), C(correlation_id), C(opened_at), ...).
    - Null on the local backend (the ledger incident is the one), in check mode, and when the
      instance could not be reached (see the warning and C(incident.details.itsm_error)).
  returned: when O(state=breached)
  type: dict
"""
