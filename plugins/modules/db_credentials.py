# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: db_credentials
short_description: Issue or revoke a short-lived PostgreSQL login from OpenBao's database secrets engine
version_added: 0.1.0
description:
  - With O(state=present), asks OpenBao (or HashiCorp Vault) for a new login from the database secrets engine
    role O(role); the engine creates the PostgreSQL role with a lease whose TTL the engine's role sets.
  - With O(state=absent), revokes the lease O(lease_id) now; the engine runs the role's revocation statements,
    which drop the login. A lease already revoked or expired changes nothing.
  - The C(relops.release.schema_migration) role issues one login per run and revokes it when the run ends,
    also when a migration fails (C(docs/secrets.md)).
  - The result carries the password; its display is always censored, only the registered variable holds it.
  - An OpenBao that is sealed or unreachable fails the task with a message naming the secret path.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, and an OpenBao or HashiCorp Vault server with the database secrets engine
options:
  state:
    description: Issue a login (V(present)) or revoke one (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  role:
    description: The database secrets engine role that issues the login. Required with O(state=present).
    type: str
  mount:
    description: Where the database secrets engine is mounted.
    type: str
    default: database
  db_url:
    description:
      - A C(postgresql://host:port/database) URL; the result's RV(db_url) is this URL with the issued user
        (and no password, which is returned apart as RV(password)).
    type: str
  lease_id:
    description: The lease to revoke, as O(state=present) returned it. Required with O(state=absent).
    type: str
extends_documentation_fragment:
  - relops.release.openbao
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details:
      - V(present) checks that the role can be read and issues nothing; V(absent) reports whether the lease
        is live. A check run that must log in (a migration check) sets C(check_mode=false) on both tasks.
  diff_mode:
    support: full
    details: Shows the login issued, or the lease before and after its revocation.
seealso:
  - module: relops.release.db_migrate
"""

EXAMPLES = r"""
- name: A login of its own for this run's migrations
  relops.release.db_credentials:
    role: payments-migrator
    db_url: postgresql://payments.db.example.com:5432/payments
  register: login

- name: Migrate with it, and revoke it whatever happens
  block:
    - name: Apply the migrations
      relops.release.db_migrate:
        db_url: "{{ login.db_url }}"
        db_password: "{{ login.password }}"
        migrations_dir: /srv/payments/current/migrations
  always:
    - name: Revoke the login
      relops.release.db_credentials:
        state: absent
        lease_id: "{{ login.lease_id }}"
"""

RETURN = r"""
username:
  description: The PostgreSQL role the engine created.
  returned: state=present, not in check mode
  type: str
  sample: v-token-payments-migrator-Xh3kq9a1b2c3d4e5-1796670429
password:
  description: Its password. Never displayed.
  returned: state=present, not in check mode
  type: str
db_url:
  description: O(db_url) with the issued user.
  returned: state=present with db_url, not in check mode
  type: str
  sample: postgresql://v-token-payments-migrator-Xh3kq9a1@payments.db.example.com:5432/payments
lease_id:
  description: The lease; revoke it with O(state=absent).
  returned: state=absent, or state=present not in check mode
  type: str
  sample: database/creds/payments-migrator/ZbI3ygJ9mTTuG7pz4d6O6S1v
lease_duration:
  description: Seconds the lease lives unless revoked earlier.
  returned: state=present, not in check mode
  type: int
  sample: 900
renewable:
  description: Whether the lease can be renewed.
  returned: state=present, not in check mode
  type: bool
"""
