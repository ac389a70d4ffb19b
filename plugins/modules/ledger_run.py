# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger_run
short_description: Record the current run in the release ledger, and how it ended
version_added: 0.1.0
description:
  - Every relops.release task that writes to the ledger notes the run it belongs to (the
    C(ansible-playbook) process or AWX job), its actor, playbook and play. This module makes that
    explicit and, with O(state=finished), records how the run ended and a summary of what it did,
    which C(relops.release.ledger_info) and the reports read back.
  - Runs on the controller. Use it with C(run_once=true).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  state:
    description:
      - V(started) records the run as running (idempotent).
      - V(finished) records its end with O(status) and O(summary).
    type: str
    choices: [started, finished]
    default: started
  status:
    description: How the run ended. Required with O(state=finished).
    type: str
    choices: [successful, failed, aborted]
  summary:
    description: A short, JSON-serialisable account of what the run did, stored with the run.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports whether the run record would change, without writing.
  diff_mode:
    support: full
    details: Shows the run's status before and after.
seealso:
  - module: relops.release.ledger_info
  - module: relops.release.release_lock
"""

EXAMPLES = r"""
- name: Note the start of the release run
  relops.release.ledger_run:
  run_once: true

- name: Record how it went
  relops.release.ledger_run:
    state: finished
    status: "{{ 'successful' if release_ok | default(false) else 'failed' }}"
    summary:
      service: payments-api
      version: 1.4.2
      environment: production
  run_once: true
"""

RETURN = r"""
run:
  description: The run as recorded in the ledger.
  returned: always
  type: dict
  contains:
    run_id:
      description: The run's id (E(RELOPS_RUN_ID), C(awx-job-<id>) under AWX, or derived from the controller process).
      type: str
    status:
      description: V(running), V(successful), V(failed) or V(aborted).
      type: str
    started_at:
      description: When the run first touched the ledger (RFC 3339, UTC).
      type: str
    finished_at:
      description: When it was recorded as finished, or null.
      type: str
    actor:
      description: Controller user and host, C(SUDO_USER), and AWX job context when present.
      type: dict
    summary:
      description: The summary given with O(state=finished).
      type: dict
"""
