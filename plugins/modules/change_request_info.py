# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: change_request_info
short_description: List change requests with their allowed next states, CIs and approvals
version_added: 0.1.0
description:
  - Reads change requests from the local ledger or ServiceNow by number, correlation id, state or an
    encoded query (ServiceNow only), newest first, following pagination.
  - Runs on the controller and never writes.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  number:
    description: A change number.
    type: str
  correlation_id:
    description: The correlation id the change was created with.
    type: str
  state:
    description: Only changes in this state.
    type: str
    choices: [new, assess, authorize, scheduled, implement, review, closed, canceled]
  query:
    description: A ServiceNow encoded query, for example C(active=true^ORDERBYDESCsys_created_on). ServiceNow only.
    type: str
  limit:
    description: At most this many changes.
    type: int
    default: 100
  with_approvals:
    description: Also return each change's approvals (approver, state, comments).
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
    details: Only reads.
  diff_mode:
    support: none
seealso:
  - module: relops.release.change_request
"""

EXAMPLES = r"""
- name: Find the change of this release
  relops.release.change_request_info:
    correlation_id: "payments-api-{{ release_version }}"
    with_approvals: true
  register: found
  run_once: true

- name: Open emergency changes on ServiceNow
  relops.release.change_request_info:
    backend: servicenow
    query: type=emergency^active=true
"""

RETURN = r"""
records:
  description: The changes, each with configuration_items and next_states (and approvals when asked).
  returned: always
  type: list
  elements: dict
  sample:
    - number: CHG0010001
      state: authorize
      approval: requested
      next_states: [new, canceled]
      configuration_items: []
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
