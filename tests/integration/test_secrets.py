"""OpenBao in real ansible-playbook runs: the schema_migration role's short-lived database login."""

from __future__ import annotations

import json
import os
import re

import psycopg
import pytest
from fixtures.migrations import ScriptFolder
from fixtures.openbao import OWNER_ROLE, DatabaseRole, OpenBao
from fixtures.playbooks import Ansible
from fixtures.postgres import PostgresServer

MIGRATE_PLAY = """
- name: Migrate with a login of the run's own
  hosts: app1
  gather_facts: false
  tasks:
    - name: Apply the migrations
      ansible.builtin.include_role:
        name: relops.release.schema_migration
      vars:
        schema_migration_db_url: "{{ db_url }}"
        schema_migration_dir: "{{ migrations_dir }}"
        schema_migration_service: orders
        schema_migration_environment: production
        schema_migration_release: "{{ release }}"
        schema_migration_credentials: {role: migrator, mount: "{{ mount }}"}
"""

INVENTORY = """
[app]
app1

[app:vars]
ansible_connection=local
ansible_python_interpreter={{ ansible_playbook_python }}
"""


def _logins(server: PostgresServer) -> list[str]:
    with server.admin() as admin:
        rows = admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%%migrator%%'").fetchall()
    return [row[0] for row in rows]


def _installed_by(server: PostgresServer, db_url: str) -> list[str]:
    database = db_url.rsplit("/", 1)[1]
    with psycopg.connect(server.url(database)) as conn:
        return [
            row[0] for row in conn.execute('SELECT installed_by FROM flyway_schema_history ORDER BY "installed_rank"')
        ]


def _revoke_status(output: str) -> str:
    found = re.search(
        r"TASK \[relops.release.schema_migration : Revoke the run's database login[^\n]*\n(?:[^\n]*\n)*?"
        r"(changed|ok|skipping|fatal): \[app1\]",
        output,
    )
    return found.group(1) if found else "(the revoke task did not run)"


@pytest.mark.postgres
def test_migrations_run_under_a_login_of_their_own_that_is_gone_after_success_and_after_failure(
    ansible: Ansible, openbao: OpenBao, openbao_database_role: DatabaseRole, postgres_server: PostgresServer
) -> None:
    scripts = ScriptFolder(os.path.join(ansible.workdir, "migrations"))
    scripts.write("V1__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\n")
    inventory = os.path.join(ansible.workdir, "hosts.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    playbook = ansible.write_playbook(MIGRATE_PLAY, "migrate.yml")
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    env = {"BAO_ADDR": openbao.url, "BAO_TOKEN": openbao.token, "RELOPS_LEDGER_URL": ledger}
    variables = {
        "db_url": openbao_database_role.db_url,
        "migrations_dir": scripts.path,
        "mount": openbao_database_role.mount,
    }

    run = ansible.playbook(
        playbook, "-vvv", "-i", inventory, "-e", json.dumps({**variables, "release": "1.0.0"}), env=env
    )
    assert run.returncode == 0, run.report
    # The login's password is in no output, even at -vvv: the issue result is censored, db_password is no_log.
    assert "the output has been hidden" in run.output
    assert not re.search(r"['\"](db_)?password['\"]: ['\"][A-Za-z0-9-]{8,}", run.output), run.output
    assert _installed_by(postgres_server, openbao_database_role.db_url) == [OWNER_ROLE]
    assert _logins(postgres_server) == []
    assert _revoke_status(run.output) == "changed", run.output

    scripts.write("V2__broken.sql", "CREATE TABLE broken (id INT PRIMARY KEY;\n")
    run = ansible.playbook(playbook, "-i", inventory, "-e", json.dumps({**variables, "release": "1.1.0"}), env=env)
    assert run.returncode != 0, run.report
    assert "V2__broken.sql" in run.output, run.output
    assert _revoke_status(run.output) == "changed", run.output
    assert _logins(postgres_server) == []
