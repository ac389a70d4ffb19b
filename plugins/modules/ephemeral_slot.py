# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: ephemeral_slot
short_description: Provision, tear down and reap ephemeral test environments recorded in the release ledger
version_added: 0.1.0
description:
  - An ephemeral environment is an app port, a slot directory and, when O(db_admin_url) is given, a PostgreSQL
    database, created for one test run and kept in the ledger with the time it expires.
  - V(present) records the environment on the lowest port of O(port_range) that no active environment holds, then
    creates its database. When the database cannot be created the environment is ended again, so nothing is left
    half-made. Asking again for an active environment changes nothing and returns it.
  - V(absent) drops the database (disconnecting leftover sessions) and records the environment as torn down.
  - V(reaped) ends every environment whose TTL has passed, dropping its database, and returns them so that the
    caller can remove their slot directories (the C(relops.release.ephemeral_env) role does).
  - The role C(relops.release.ephemeral_env) wraps this module and creates or removes the slot directory on the
    target; use the module alone when the slot lives elsewhere.
author:
  - relops.release maintainers (@relops)
options:
  name:
    description:
      - The environment's name, for example the CI pipeline id; a lowercase letter then up to 47 lowercase letters,
        digits or C(-). Required unless O(state=reaped).
    type: str
  state:
    description: What to do; see the description.
    type: str
    choices: [present, absent, reaped]
    default: present
  ttl:
    description: Seconds the environment lives before V(reaped) ends it.
    type: int
    default: 3600
  port_range:
    description: The lowest and highest app port environments are given.
    type: list
    elements: int
    default: [20000, 20999]
  slot_root:
    description: The environment's slot directory is this folder plus its name.
    type: str
    default: /var/lib/relops/ephemeral
  db_admin_url:
    description:
      - C(postgresql://) URL of a user allowed to create databases. Without it no database is made. Needed to tear
        down or reap environments that have one.
    type: str
  db_prefix:
    description: The database name is this prefix plus the environment name, with C(-) turned into C(_).
    type: str
    default: eph_
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports what would be provisioned, torn down or reaped without touching the ledger or the database.
  diff_mode:
    support: full
    details: Shows the environment before and after.
requirements:
  - psycopg (version 3) on the controller when O(db_admin_url) is given
"""

EXAMPLES = r"""
- name: An environment for this pipeline, for two hours
  relops.release.ephemeral_slot:
    name: "ci-{{ lookup('env', 'CI_PIPELINE_ID') }}"
    ttl: 7200
    db_admin_url: postgresql://postgres@db.test.example.com/postgres
  register: env

- name: Reap what expired
  relops.release.ephemeral_slot:
    state: reaped
    db_admin_url: postgresql://postgres@db.test.example.com/postgres
"""

RETURN = r"""
outcome:
  description: V(provisioned), V(exists), V(torn_down) or V(absent).
  returned: unless O(state=reaped)
  type: str
env:
  description: The environment (name, status, port, db_name, db_url, slot_dir, created_at, expires_at).
  returned: unless O(state=reaped)
  type: dict
reaped:
  description: The environments reaped (or that would be, in check mode).
  returned: when O(state=reaped)
  type: list
  elements: dict
"""
