# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger_info
short_description: Read the release ledger's schema version, recent runs, deployments and active locks
version_added: 0.1.0
description:
  - Reads the release ledger and reports what it holds. Never writes, never creates a ledger and
    never upgrades one; a ledger that does not exist yet is reported with RV(ledger.exists=false),
    and one older than this collection with RV(ledger.upgrade_needed=true) (any task that writes
    to the ledger upgrades it).
  - Runs on the controller, where the ledger is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  limit:
    description: How many of the most recent runs and deployments to return.
    type: int
    default: 10
  service:
    description: Only return deployments of this service.
    type: str
  environment:
    description: Only return deployments to this environment.
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
  - module: relops.release.release_lock
  - module: relops.release.ledger_run
"""

EXAMPLES = r"""
- name: Show what the embedded ledger holds
  relops.release.ledger_info:
  register: ledger
  run_once: true

- name: Fail early when a release of this service is in flight
  ansible.builtin.assert:
    that: ledger.locks | selectattr('name', 'equalto', 'payments-api') | list | length == 0
    fail_msg: >-
      payments-api is being released by
      {{ ledger.locks | selectattr('name', 'equalto', 'payments-api') | map(attribute='owner_run_id') | join(', ') }}

- name: Last five production deployments of one service, from the shared ledger
  relops.release.ledger_info:
    ledger_url: postgresql://relops@ledger.example.com:5432/relops
    service: payments-api
    environment: production
    limit: 5
  register: recent
  run_once: true
"""

RETURN = r"""
ledger:
  description: The ledger itself.
  returned: always
  type: dict
  contains:
    url:
      description: The ledger URL, password hidden.
      type: str
      sample: sqlite:///root/.local/state/relops/ledger.db
    dialect:
      description: V(sqlite) or V(postgresql).
      type: str
    exists:
      description: Whether the ledger exists yet.
      type: bool
    schema_version:
      description: The applied schema version, or null when the ledger does not exist.
      type: int
      sample: 1
    latest_schema_version:
      description: The newest schema version this collection knows.
      type: int
      sample: 1
    upgrade_needed:
      description: Whether the ledger is older than this collection; the next writing task upgrades it.
      type: bool
runs:
  description: The most recent runs, newest first.
  returned: always
  type: list
  elements: dict
  sample:
    - run_id: 3b1f0c1e-5d7a-5c55-9d64-0d6f35a3d2a1
      status: successful
      started_at: "2026-11-26T09:30:00.000000Z"
      finished_at: "2026-11-26T09:31:12.402113Z"
      playbook: /srv/relops/playbooks/release.yml
      play: Release payments-api
      actor: {user: deploy, host: ctl01, run_id: 3b1f0c1e-5d7a-5c55-9d64-0d6f35a3d2a1}
      summary: {service: payments-api}
deployments:
  description: The most recent deployments, newest first, filtered by O(service) and O(environment).
  returned: always
  type: list
  elements: dict
locks:
  description: Locks whose holders' time has not run out.
  returned: always
  type: list
  elements: dict
"""
