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
  - V(resolved) marks an incident (by O(id), O(correlation_id), or O(source) and O(external_id)) resolved at
    O(resolved_at) (default now), with an optional O(root_cause) and O(component).
  - With O(itsm=true), V(present) opens the incident in the ITSM backend the task uses and V(resolved)
    resolves it there. On ServiceNow that is the C(incident) table - C(cmdb_ci) from O(ci), C(caused_by)
    from O(caused_by), C(correlation_id) from O(correlation_id), and on resolution state 6 (Resolved) with
    C(close_code) and C(close_notes) - and the ledger keeps a copy (source V(servicenow), external id the
    number) that the delivery metrics count, opened at O(opened_at) and resolved at O(resolved_at). On the
    local backend the ledger row is the ITSM incident (number C(INC) and the row id). A rerun with the same
    O(correlation_id) finds the incident instead of opening another.
  - With O(itsm=true), a ServiceNow that cannot be reached is a warning, not a failure - the incident is
    recorded in the ledger only (its C(details.itsm_error) says why) - so a release's recovery goes on.
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
  itsm:
    description:
      - With O(state=present) or V(resolved), open or resolve the incident in the ITSM backend the task uses
        (O(backend), O(instance)) as well as in the ledger; see the description.
      - Needs O(correlation_id) to open, and O(close_code) and O(close_notes) to resolve.
    type: bool
    default: false
  correlation_id:
    description:
      - What the incident is found again by on a rerun, in the ledger and in ServiceNow's C(correlation_id)
        (for example C(relops-release-) and the release record's id).
      - With O(state=resolved), finds the incident to resolve.
    type: str
  caused_by:
    description:
      - The number of the change that caused the incident (ServiceNow's C(caused_by), "Caused by Change").
      - The change must exist on the backend; the metrics also count the incident against the release made
        under that change.
    type: str
  version:
    description: The version of the service the incident happened in.
    type: str
  close_code:
    description:
      - With O(state=resolved) and O(itsm=true), the resolution code (ServiceNow's C(close_code), one of the
        instance's choices, for example V(Workaround provided) for a rollback).
    type: str
  close_notes:
    description: With O(state=resolved) and O(itsm=true), how service was restored (ServiceNow's C(close_notes)).
    type: str
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

- name: Open a failed release's incident in the ITSM the release uses (ServiceNow here)
  relops.release.incident:
    itsm: true
    service: payments-api
    ci: payments-api
    title: Release 2.4.0 failed at smoke
    severity: high
    version: 2.4.0
    opened_at: "2026-03-02T12:00:00Z"
    correlation_id: relops-release-payments-api@2.4.0/production/0123456789ab
    caused_by: CHG0030002
    source: relops
  register: release_incident

- name: Resolve it once the rollback restored service
  relops.release.incident:
    state: resolved
    itsm: true
    id: "{{ release_incident.incident.id }}"
    resolved_at: "2026-03-02T12:04:10Z"
    close_code: Workaround provided
    close_notes: Rolled back to 2.3.1; schema already at 7.

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
itsm_incident:
  description:
    - With O(itsm=true), the incident as the ITSM holds it (ServiceNow's fields - C(number), C(sys_id),
      C(state), C(cmdb_ci), C(caused_by), C(correlation_id), C(close_code), C(close_notes), C(opened_at),
      C(resolved_at) - on both backends), or null when it could not be reached (see C(warnings)) or in
      check mode.
  returned: when O(itsm=true)
  type: dict
  sample:
    number: INC0010002
    sys_id: 9d385017c611228701d22104cc95c371
    state: resolved
    cmdb_ci: payments-api
    caused_by: CHG0030002
    correlation_id: relops-release-payments-api@2.4.0/production/0123456789ab
    close_code: Workaround provided
itsm_backend:
  description: With O(itsm=true), the ITSM backend the task used, V(local) or V(servicenow).
  returned: when O(itsm=true), except in check mode
  type: str
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
