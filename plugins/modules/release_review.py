# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_review
short_description: Record a release's review - the team's feedback and follow-up actions tracked to done
version_added: 1.1.0
description:
  - Records the post-implementation review of one release beside its release record in the ledger
    (schema V25) - feedback, who said what, and follow-up actions with an owner, a due date and a state
    (V(open) or V(done)). The V(pir) report of M(relops.release.release_report) lists them under the
    release's review and flags open actions past their due date; M(relops.release.release_review_info)
    reads them back (docs/metrics.md).
  - Idempotent. A feedback entry is added once per release, author and text. An action is identified
    by O(actions[].id), by default its title; giving it again updates the fields given and leaves the
    others as recorded, so closing an action needs only its id (or title) and O(actions[].state=done).
  - The release must have a record (opened by M(relops.release.artifact_verify) with C(record=true));
    its id is RV(relops.release.artifact_verify#module:release_id), also shown by
    M(relops.release.release_record_info).
  - Runs on the controller, where the ledger is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  release_id:
    description: The release reviewed.
    type: str
    required: true
  feedback:
    description: Feedback to add; entries already recorded for the release are left as they are.
    type: list
    elements: dict
    default: []
    suboptions:
      author:
        description: Who said it.
        type: str
        required: true
      text:
        description: What they said.
        type: str
        required: true
  actions:
    description: Follow-up actions to add or update.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: What identifies the action within the release; defaults to O(actions[].title). Give one to be able to retitle it.
        type: str
      title:
        description: What is to be done.
        type: str
        required: true
      owner:
        description: Who does it. Needed for a new action; an existing one keeps its owner when not given.
        type: str
      due:
        description:
          - The due date, C(YYYY-MM-DD). Needed for a new action. An open action is overdue from the day
            after its due date (UTC).
        type: str
      state:
        description: V(open) or V(done). A new action is V(open) unless given; an existing one keeps its state when not given.
        type: str
        choices: [open, done]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports what would be added or changed, and its diff, without writing.
  diff_mode:
    support: full
    details: The release's feedback and actions before and after.
seealso:
  - module: relops.release.release_review_info
  - module: relops.release.release_report
  - module: relops.release.release_record_info
"""

EXAMPLES = r"""
- name: Find the release that was rolled back
  relops.release.release_record_info:
    service: payments-api
    environment: production
    limit: 1
  register: latest
  run_once: true

- name: Record the review's feedback and follow-up actions
  relops.release.release_review:
    release_id: "{{ latest.releases[0].release_id }}"
    feedback:
      - author: alice
        text: The smoke tests caught the broken endpoint within a minute.
      - author: bob
        text: The migration's rollback was not rehearsed in staging.
    actions:
      - id: rehearse-rollback
        title: Rehearse the schema rollback in staging before each release
        owner: bob
        due: "2026-12-15"
  run_once: true

- name: Close the action once done
  relops.release.release_review:
    release_id: payments-api@2.4.0/production/9f2c0d6c4b4e
    actions:
      - id: rehearse-rollback
        title: Rehearse the schema rollback in staging before each release
        state: done
  run_once: true
"""

RETURN = r"""
release_id:
  description: The release reviewed.
  returned: always
  type: str
  sample: payments-api@2.4.0/production/9f2c0d6c4b4e
feedback:
  description: The release's feedback after the write (in check mode, as it would be), oldest first, each with C(author), C(text) and C(recorded_at).
  returned: always
  type: list
  elements: dict
actions:
  description:
    - The release's actions after the write (in check mode, as they would be), by due date, each with
      C(action_id), C(title), C(owner), C(due_date), C(state), C(done_at) and C(overdue).
  returned: always
  type: list
  elements: dict
overdue:
  description: The ids of the release's open actions past their due date.
  returned: always
  type: list
  elements: str
feedback_added:
  description: How many feedback entries were (or would be) added.
  returned: always
  type: int
  sample: 2
actions_changed:
  description: The ids of the actions added or updated (or that would be).
  returned: always
  type: list
  elements: str
  sample: [rehearse-rollback]
"""
