# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: incident
short_description: Record, resolve, list and import the incidents that delivery metrics count
version_added: 0.1.0
description:
  - Keeps incidents in the release ledger, where M(relops.release.dora_metrics) and
    M(relops.release.release_report) link them to deployments by configuration item (CI) and time.
  - V(present) adds an incident. It is found again by O(source) and O(external_id) (or, without an
    external id, by service, environment, O(opened_at) and title), so a rerun changes nothing.
    O(deployment_ids) links it to deployments explicitly, which replaces the time-window rule.
  - V(resolved) marks an incident (by O(id), or O(source) and O(external_id)) resolved at
    O(resolved_at) (default now), with an optional O(root_cause) and O(component).
  - V(list) returns incidents, newest first, each with its explicit deployment links.
  - V(imported) reads ServiceNow's incident table through the ITSM backend (O(instance)) and adds
    the incidents the ledger does not hold yet (source V(servicenow), external id = the number), or
    marks them resolved once ServiceNow has; C(cmdb_ci) becomes the CI and component, C(close_code)
    the root cause, and C(caused_by) (a change number) links the deployments made under that change.
    With the local ITSM backend the incidents are the ledger's own already, and nothing is imported.
  - V(imported) is all or nothing - every incident is read and converted before the ledger is written,
    and the writes go in one transaction, so an incident that cannot be imported (one naming neither
    C(business_service) nor C(cmdb_ci) without O(unassigned_service), say) leaves the ledger as it was.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  state:
    description: What to do; see the description.
    type: str
    choices: [present, resolved, list, imported]
    default: present
  id:
    description: The ledger id of the incident to resolve.
    type: int
  external_id:
    description: The incident's id in the system it came from, for example its ServiceNow number.
    type: str
  source:
    description: Where the incident was raised (V(manual), V(pagerduty), ...); with O(external_id) it identifies the incident.
    type: str
    default: manual
  service:
    description: The affected service. Required with O(state=present); a filter for V(list) and V(imported).
    type: str
  environment:
    description: The environment the incident happened in.
    type: str
    default: production
  ci:
    description: The configuration item the incident was raised against; defaults to O(service). Several services may share one CI.
    type: str
  title:
    description: What happened. Required with O(state=present).
    type: str
  severity:
    description: The incident's severity.
    type: str
    choices: [critical, high, moderate, low]
    default: moderate
  opened_at:
    description: When the incident began (RFC 3339); required with O(state=present) unless O(external_id) is given.
    type: str
  resolved_at:
    description: When service was restored (RFC 3339). With O(state=present) the incident is recorded resolved.
    type: str
  component:
    description: The component at fault, for root-cause statistics.
    type: str
  root_cause:
    description: The root cause, for root-cause statistics.
    type: str
  deployment_ids:
    description: Ledger ids of the deployments that caused the incident.
    type: list
    elements: int
    default: []
  details:
    description: Anything else to keep with the incident.
    type: dict
    default: {}
  since:
    description: With O(state=list), only incidents opened at or after this time (RFC 3339).
    type: str
  status:
    description: With O(state=list), only open or only resolved incidents.
    type: str
    choices: [open, resolved]
  query:
    description: With O(state=imported), a ServiceNow encoded query that selects the incidents.
    type: str
  unassigned_service:
    description:
      - With O(state=imported), the service to record for a ServiceNow incident that names neither
        C(business_service) nor C(cmdb_ci) (and O(service) is not set).
      - Without it such an incident fails the import, and nothing is written.
    type: str
  limit:
    description: How many incidents to list or import at most.
    type: int
    default: 100
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.itsm
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports what would be added or resolved without writing.
  diff_mode:
    support: full
seealso:
  - module: relops.release.dora_metrics
  - module: relops.release.stabilization
"""

EXAMPLES = r"""
- name: Record an outage found by monitoring
  relops.release.incident:
    service: payments-api
    ci: payments-cluster
    title: 5xx spike after 2.4.0
    severity: high
    opened_at: "2026-03-02T12:00:00Z"
    external_id: PD-4711
    source: pagerduty

- name: Resolve it with its root cause
  relops.release.incident:
    state: resolved
    source: pagerduty
    external_id: PD-4711
    root_cause: connection pool exhausted
    component: database

- name: Import ServiceNow's production incidents of the service
  relops.release.incident:
    state: imported
    service: payments-api
    backend: servicenow
    instance:
      host: https://example.service-now.com
      username: relops
      password: "{{ vault_snow_password }}"
"""

RETURN = r"""
incident:
  description: The incident as the ledger holds it (with O(state=present) or V(resolved)).
  returned: when O(state) is present or resolved
  type: dict
  sample:
    id: 7
    service: payments-api
    environment: production
    ci: payments-cluster
    title: 5xx spike after 2.4.0
    severity: high
    status: open
    source: pagerduty
    external_id: PD-4711
    opened_at: "2026-03-02T12:00:00.000000Z"
incidents:
  description: With O(state=list), the incidents, newest first, each with C(deployment_ids).
  returned: when O(state=list)
  type: list
  elements: dict
statistics:
  description:
    - With O(state=list), root-cause statistics of the environment (since O(since)) per C(service),
      C(component) and C(root_cause) (unknown when none was recorded), with C(incidents), C(resolved)
      and C(resolution_seconds) (their total time to resolve), most incidents first.
  returned: when O(state=list)
  type: list
  elements: dict
imported:
  description: With O(state=imported), each ServiceNow incident's C(number) and C(outcome) (added, resolved, unchanged).
  returned: when O(state=imported)
  type: list
  elements: dict
"""
