#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_migrate_info
short_description: Report a database's schema version, pending, applied and failed migrations, and drift
version_added: 0.1.0
description:
  - Reads the Flyway-layout history table and the scripts of O(migrations_dir) and reports where the database
    stands, without locking or changing anything. A database without a history table reports no version and
    every script pending.
  - Drift is an applied versioned script whose file no longer has the checksum the history recorded.
author:
  - relops.release maintainers (@relops)
options: {}
extends_documentation_fragment:
  - relops.release.migrations
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - psycopg (version 3) for PostgreSQL databases, on the host the task runs on
seealso:
  - module: relops.release.db_migrate
"""

EXAMPLES = r"""
- name: Where does the orders database stand?
  relops.release.db_migrate_info:
    db_url: postgresql://app@db.example.com:5432/orders
    migrations_dir: /opt/orders/current/migrations
  register: schema
  run_once: true

- name: Stop when somebody edited an applied script
  ansible.builtin.assert:
    that: schema.drift | length == 0
    fail_msg: "{{ schema.drift }}"
"""

RETURN = r"""
current_version:
  description: The highest applied version (a baseline counts), or null on an empty history.
  returned: always
  type: str
  sample: "4"
pending:
  description: Scripts a migrate would apply, in order (versioned, then changed repeatables).
  returned: always
  type: list
  elements: dict
applied:
  description: Successful history rows, in C(installed_rank) order, with Flyway's columns.
  returned: always
  type: list
  elements: dict
failed_migrations:
  description: Versions whose latest attempt failed, as history rows (not named C(failed), which Ansible reads as the task failing).
  returned: always
  type: list
  elements: dict
drift:
  description: Applied scripts whose file changed, with the recorded and current checksums.
  returned: always
  type: list
  elements: dict
  sample: [{"script": "V2__orders.sql", "version": "2", "applied_checksum": 1795463128, "current_checksum": -5127411}]
problem:
  description: Why no pending list could be computed (drift, a missing script, an out-of-order script), or null.
  returned: always
  type: str
"""

from typing import Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.relops.release.plugins.module_utils.migrations import (
    MigrationError,
    Migrator,
    connection_argument_spec,
    info,
    needs_psycopg,
    open_migrator,
)
from ansible_collections.relops.release.plugins.module_utils.url_secrets import url_secrets


def run_module() -> None:
    module = AnsibleModule(argument_spec=connection_argument_spec(), supports_check_mode=True)
    module.no_log_values.update(url_secrets(module.params["db_url"]))
    if needs_psycopg(module.params["db_url"]):
        module.fail_json(msg=missing_required_lib("psycopg (version 3)"))
    migrator: Optional[Migrator] = None
    try:
        migrator = open_migrator(module.params, read_only=True)
        report = info(migrator)
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if migrator is not None:
            migrator.db.close()
    module.exit_json(changed=False, **report)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
