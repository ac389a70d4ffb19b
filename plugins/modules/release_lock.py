# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_lock
short_description: Take, renew, release or inspect a named release lock in the ledger
version_added: 0.1.0
description:
  - Serialises releases. Two runs that ask for the same lock name (usually the service name)
    never hold it at once; the second waits up to O(wait_timeout) and then fails naming the
    holder and when its hold expires.
  - A lock belongs to the run that took it (the C(ansible-playbook) process, or the AWX job) and
    expires O(ttl) seconds after it was taken or last renewed, so a run that died does not block
    releases for ever. An expired lock is taken over by the next run and the takeover is recorded
    in the ledger's lock history.
  - Taking a lock this run already holds renews it (a heartbeat) and reports no change, which makes
    the task safe to repeat.
  - Runs on the controller; the lock lives in the release ledger (SQLite or PostgreSQL), so runs on
    different controllers exclude each other when they share a PostgreSQL ledger.
  - Use it with C(run_once=true), because a lock is per release, not per host.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  name:
    description:
      - The lock's name, for example the service being released (C(payments-api)) or
        C(payments-api/production) for one lock per environment.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock (waiting up to O(wait_timeout)), or renews it when this run holds it.
      - V(released) gives it back. Releasing a lock nobody holds changes nothing; releasing a lock
        another run holds fails unless O(force=true).
      - V(heartbeat) pushes the expiry of a lock this run holds forward by its TTL, for long releases.
      - V(status) only reports who holds the lock.
    type: str
    choices: [acquired, released, heartbeat, status]
    default: acquired
  ttl:
    description:
      - Seconds the lock stays valid after it was taken or last renewed. Choose more than the longest
        gap between heartbeats in your release.
    type: int
    default: 1800
  wait_timeout:
    description:
      - With O(state=acquired), how many seconds to wait for another run's lock to be released or to
        expire before failing. V(0) tries once.
    type: int
    default: 0
  force:
    description:
      - With O(state=released), release the lock even when another run holds it. Use only when that
        run is known to be dead; the ledger records who forced it.
    type: bool
    default: false
  process_bound:
    description:
      - With O(state=acquired), bind the lock to this C(ansible-playbook) process as well as to the run. The
        lock records the process (pid and start time), and a later run on the same host takes the lock over as
        soon as that process is gone (C(kill -9), a crash) instead of waiting for O(ttl) to run out; the dead
        run is marked aborted and its unfinished deployments failed.
      - For a lock taken and released within one playbook run, like the C(relops.release.release) role's. Leave
        it off for a lock meant to outlive the process that took it (a wrapper script's run spanning several
        playbooks with one E(RELOPS_RUN_ID)).
      - A holder on another host (another controller, an AWX job in another container) cannot be checked and
        keeps the lock until it expires.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports whether the lock would be taken or released without writing to the ledger.
  diff_mode:
    support: full
    details: Shows the lock holder before and after.
notes:
  - The run id is E(RELOPS_RUN_ID) when set; otherwise it is derived from the controller host and the
    C(ansible-playbook) process, so every task of one run shares it. Under AWX it is C(awx-job-<id>).
seealso:
  - module: relops.release.ledger_info
  - module: relops.release.ledger_run
"""

EXAMPLES = r"""
- name: Take the release lock for the service, waiting up to ten minutes for another release
  relops.release.release_lock:
    name: payments-api
    ttl: 3600
    wait_timeout: 600
  run_once: true

- name: Renew it during a long migration
  relops.release.release_lock:
    name: payments-api
    state: heartbeat
  run_once: true

- name: Release it at the end, also when the release failed
  block:
    - name: Deploy
      ansible.builtin.include_tasks: deploy.yml
  always:
    - name: Release the lock
      relops.release.release_lock:
        name: payments-api
        state: released
      run_once: true

- name: See who holds it
  relops.release.release_lock:
    name: payments-api
    state: status
  register: lock_status
  run_once: true

- name: Point every ledger task of the play at a shared PostgreSQL ledger
  module_defaults:
    group/relops.release.ledger:
      ledger_url: postgresql://relops@ledger.example.com:5432/relops
  relops.release.release_lock:
    name: payments-api
  run_once: true
"""

RETURN = r"""
lock:
  description: The lock after the task, or null when nobody holds it.
  returned: always
  type: dict
  contains:
    name:
      description: The lock's name.
      type: str
      sample: payments-api
    owner_run_id:
      description: The run holding it.
      type: str
      sample: 3b1f0c1e-5d7a-5c55-9d64-0d6f35a3d2a1
    owner:
      description: Who holds it (controller user and host, and AWX job context when present).
      type: dict
      sample: {"run_id": "3b1f0c1e-5d7a-5c55-9d64-0d6f35a3d2a1", "user": "deploy", "host": "ctl01"}
    acquired_at:
      description: When the holder took it (RFC 3339, UTC).
      type: str
      sample: "2026-11-26T09:30:00.000000Z"
    heartbeat_at:
      description: When the holder last renewed it.
      type: str
    expires_at:
      description: When the hold runs out unless renewed.
      type: str
    ttl_seconds:
      description: The TTL used for renewals.
      type: int
outcome:
  description:
    - What happened. V(acquired), V(taken_over) (an expired holder was replaced), V(renewed),
      V(released), V(not_held) (release of a lock nobody held), V(held) (status or check mode,
      another run holds it), V(free) (status, nobody holds it).
  returned: always
  type: str
  sample: acquired
previous_holder:
  description: With V(taken_over) or a forced release, the holder that was replaced.
  returned: when a holder was replaced
  type: dict
waited:
  description: Seconds spent waiting for the lock.
  returned: when O(state=acquired)
  type: float
  sample: 12.5
attempts:
  description: How many times the lock was tried.
  returned: when O(state=acquired)
  type: int
run_id:
  description: The id of this run, the owner the lock is taken for.
  returned: always
  type: str
"""
