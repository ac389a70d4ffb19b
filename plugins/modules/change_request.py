# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: change_request
short_description: Create, update, move, approve and close change requests on the local ledger or ServiceNow
version_added: 0.1.0
description:
  - Ensures a change request exists, found by O(correlation_id) (for example the release id) so a retried
    run never creates a second change, or by O(number).
  - Creates normal, emergency and standard changes. Standard changes are created complete from their
    template's version (a C(std_change_producer_version)) through the Change Management API, or from the template's
    values through the Table API where that API is not installed.
  - Moves the change through its states by name, one allowed step at a time, using the instance's
    allowed next states (C(/api/sn_chg_rest/change/{sys_id}/nextstates)) or, on the local backend, the same
    state model. A change in authorize moves on once approved.
  - Can approve or reject as the connecting user, wait for a state or approval with backoff, close with a
    close code, add affected CIs and work notes, and run conflict detection.
  - Runs on the controller.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  number:
    description: Number of an existing change, for example C(CHG0010001). It must exist.
    type: str
  correlation_id:
    description:
      - Identifies the change across runs; the first run creates it, later runs find it.
      - One of O(number) and O(correlation_id) is required.
    type: str
  type:
    description: Change type used when creating.
    type: str
    choices: [normal, emergency, standard]
    default: normal
  template:
    description:
      - The standard change template, for O(type=standard).
      - On ServiceNow the name or sys_id of the template (a C(std_change_record_producer), whose C(current_version)
        is used) or of one version of it (a C(std_change_producer_version)).
      - On the local backend the template's name, kept in the change's C(std_change_producer_version).
    type: str
  state:
    description:
      - The state to move the change to, passing through the allowed states in between.
      - V(closed) needs O(close_code). Moving past V(authorize) needs an approval; with O(wait_for) the
        task waits for it.
    type: str
    choices: [new, assess, authorize, scheduled, implement, review, closed, canceled]
  short_description:
    description: Short description.
    type: str
  description:
    description: Description.
    type: str
  assignment_group:
    description: Assignment group (sys_id on ServiceNow).
    type: str
  risk:
    description: Risk value, as the instance stores it.
    type: str
  impact:
    description: Impact value, as the instance stores it.
    type: str
  priority:
    description: Priority value, as the instance stores it.
    type: str
  category:
    description: Category.
    type: str
  start_date:
    description:
      - Planned start, C(YYYY-MM-DD HH:MM:SS) in UTC, or RFC 3339 with an offset (stored in the first form).
      - A value that is neither, such as C(next tuesday), fails the task.
    type: str
  end_date:
    description:
      - Planned end, C(YYYY-MM-DD HH:MM:SS) in UTC, or RFC 3339 with an offset (stored in the first form).
      - A value that is neither, such as C(next tuesday), fails the task.
    type: str
  implementation_plan:
    description: Implementation plan.
    type: str
  backout_plan:
    description: Backout plan.
    type: str
  test_plan:
    description: Test plan.
    type: str
  justification:
    description: Justification.
    type: str
  correlation_display:
    description: Correlation display text.
    type: str
  other:
    description: Any other C(change_request) fields, by column name.
    type: dict
    default: {}
  configuration_items:
    description:
      - CIs the change affects (names or sys_ids); added when missing, never removed.
      - With O(environment), a service's name reads its CI in that environment (V(<service> (<environment>\))), as
        M(relops.release.cmdb_deployment) names it, and the CI of that exact name when there is none.
    type: list
    elements: str
    default: []
  environment:
    description: The environment whose CIs O(configuration_items) names (see there).
    type: str
    version_added: 1.1.0
  work_notes:
    description: A work note; added once (the same note is not added again on a rerun).
    type: str
  close_code:
    description: Close code, with O(state=closed).
    type: str
    choices: [successful, successful_issues, unsuccessful]
  close_notes:
    description: Close notes, with O(state=closed).
    type: str
  approval:
    description: Approve or reject the change's requested approval as the connecting user (a CAB member).
    type: str
    choices: [approved, rejected]
  approval_comments:
    description: Comments recorded with O(approval).
    type: str
    default: ""
  wait_for:
    description:
      - Wait until the change reaches O(wait_for.state) and/or O(wait_for.approval), polling with
        exponential backoff. Fails when an approver rejects the change, quoting the approver's comment,
        or when O(wait_for.timeout) passes.
      - Also makes a move past V(authorize) wait for the approval.
    type: dict
    suboptions:
      state:
        description: The state to wait for.
        type: str
        choices: [new, assess, authorize, scheduled, implement, review, closed, canceled]
      approval:
        description: The approval to wait for.
        type: str
        choices: [approved, rejected]
      timeout:
        description: Seconds to wait at most.
        type: float
        default: 600.0
      interval:
        description: First polling interval in seconds; it grows by half each time.
        type: float
        default: 2.0
      max_interval:
        description: Longest polling interval in seconds.
        type: float
        default: 30.0
  check_conflicts:
    description: Run conflict detection (blackout schedules, other changes on the same CIs) and return the conflicts.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Reports what would change, including the first state move, without writing.
  diff_mode:
    support: full
notes:
  - Use C(run_once) so a play with many hosts handles the change once.
seealso:
  - module: relops.release.change_request_info
  - module: relops.release.cmdb_deployment
"""

EXAMPLES = r"""
- name: Open the change for this release (idempotent by the release id)
  relops.release.change_request:
    correlation_id: "payments-api-{{ release_version }}"
    short_description: "Deploy payments-api {{ release_version }}"
    configuration_items: [payments-api]
    state: authorize
  register: change
  run_once: true

- name: On the local backend, the CAB approves with the module (run as a CAB member; on ServiceNow, in the instance)
  relops.release.change_request:
    number: "{{ change.change.number }}"
    approval: approved
    approval_comments: CAB 2026-48
  run_once: true

- name: Wait for the CAB, then start implementing
  relops.release.change_request:
    number: "{{ change.change.number }}"
    state: implement
    wait_for:
      approval: approved
      timeout: 3600
  run_once: true

- name: Close it
  relops.release.change_request:
    number: "{{ change.change.number }}"
    state: closed
    close_code: successful
    close_notes: Deployed and verified
  run_once: true

- name: A standard change from its template, on ServiceNow with OAuth
  relops.release.change_request:
    backend: servicenow
    instance:
      host: https://example.service-now.com
      client_id: "{{ sn_client_id }}"
      client_secret: "{{ sn_client_secret }}"
      username: deploy-bot
      password: "{{ sn_password }}"
    type: standard
    template: Restart web tier
    correlation_id: "restart-{{ ansible_date_time.date }}"
  run_once: true
"""

RETURN = r"""
change:
  description: The change after the task, fields as the backend stores them; state is a name.
  returned: always
  type: dict
  sample:
    number: CHG0010001
    sys_id: 9d385017c611228701d22104cc95c371
    state: implement
    approval: approved
    type: normal
    correlation_id: payments-api-1.4.0
    configuration_items: [b4fd7c8437201000deeabfc8bcbe5dc1]
created:
  description: Whether this task created the change.
  returned: always
  type: bool
states_passed:
  description: The states the change moved through, in order.
  returned: always
  type: list
  elements: str
  sample: [assess, authorize]
conflicts:
  description: Conflicts found, with O(check_conflicts).
  returned: when O(check_conflicts=true)
  type: list
  elements: dict
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
