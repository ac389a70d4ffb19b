# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_review_info
short_description: Read release reviews - one release's feedback and actions, or the open and overdue actions
version_added: 1.1.0
description:
  - Reads what M(relops.release.release_review) recorded (docs/metrics.md). With O(release_id), returns
    that release's feedback and follow-up actions. Without it, lists follow-up actions across releases,
    by due date, optionally of one environment, service or owner; O(overdue=true) keeps the open actions
    past their due date.
  - An action is overdue when it is open and its due date is before today (UTC).
  - Never writes. Runs on the controller, where the ledger is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  release_id:
    description: The release whose review to read.
    type: str
  state:
    description: Without O(release_id), which actions to list.
    type: str
    choices: [open, done, all]
    default: open
  overdue:
    description: Without O(release_id), only open actions past their due date (O(state) is then ignored).
    type: bool
    default: false
  environment:
    description: Without O(release_id), only actions of releases to this environment.
    type: str
  service:
    description: Without O(release_id), only actions of releases of this service.
    type: str
  owner:
    description: Without O(release_id), only actions this person owns.
    type: str
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
  - module: relops.release.release_review
  - module: relops.release.release_report
"""

EXAMPLES = r"""
- name: One release's review
  relops.release.release_review_info:
    release_id: payments-api@2.4.0/production/9f2c0d6c4b4e
  register: review
  run_once: true

- name: The overdue follow-up actions in production
  relops.release.release_review_info:
    environment: production
    overdue: true
  register: late
  run_once: true

- name: Fail the weekly check when an action is overdue
  ansible.builtin.assert:
    that: late.actions | length == 0
    fail_msg: "{{ late.actions | map(attribute='title') | join('; ') }} overdue"
  run_once: true
"""

RETURN = r"""
release_id:
  description: The release read.
  returned: when O(release_id) is given
  type: str
feedback:
  description: The release's feedback, oldest first, each with C(author), C(text) and C(recorded_at).
  returned: when O(release_id) is given
  type: list
  elements: dict
actions:
  description:
    - The actions found, by due date, each with C(release_id), C(action_id), C(title), C(owner),
      C(due_date), C(state), C(done_at), C(overdue), and the release's C(service), C(environment) and C(version).
  returned: always
  type: list
  elements: dict
overdue:
  description: Those of RV(actions) that are open and past their due date.
  returned: always
  type: list
  elements: dict
"""
