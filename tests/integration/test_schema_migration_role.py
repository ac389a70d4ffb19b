"""The relops.release.schema_migration role through real ansible-playbook runs: once per release under
`serial`, expand before the switch and contract after, the ledger record, and schema-aware rollback."""

from __future__ import annotations

import json
import os

from fixtures.migrations import ScriptFolder
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.module_utils import migrations as m
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

INVENTORY = """
[app]
app1
app2
app3

[app:vars]
ansible_connection=local
ansible_python_interpreter={{ ansible_playbook_python }}
"""

RELEASE_PLAY = """
- name: Release in batches of one
  hosts: app
  gather_facts: false
  serial: 1
  vars:
    common: &common
      schema_migration_db_url: "{{ db_url }}"
      schema_migration_dir: "{{ migrations_dir }}"
      schema_migration_service: orders
      schema_migration_environment: production
      schema_migration_release: "2.0.0"
      schema_migration_encoding: ISO-8859-1
  tasks:
    - name: Expand before the switch
      ansible.builtin.include_role:
        name: relops.release.schema_migration
      vars:
        <<: *common
        schema_migration_phase: expand
    - name: Count expand runs that changed something
      ansible.builtin.lineinfile:
        path: "{{ log_file }}"
        line: "{{ inventory_hostname }} expand changed={{ schema_migration_result.changed }}"
        create: true
        mode: "0600"
      delegate_to: localhost
    - name: Switch traffic
      ansible.builtin.lineinfile:
        path: "{{ log_file }}"
        line: "{{ inventory_hostname }} switched, tables: {{ schema_migration_result.version_after }}"
        mode: "0600"
      delegate_to: localhost
    - name: Contract after the switch
      ansible.builtin.include_role:
        name: relops.release.schema_migration
      vars:
        <<: *common
        schema_migration_phase: contract
"""

ROLLBACK_PLAY = """
- name: Roll the application back
  hosts: app1
  gather_facts: false
  tasks:
    - name: Fit the schema first
      ansible.builtin.include_role:
        name: relops.release.schema_migration
        tasks_from: rollback
      vars:
        schema_migration_db_url: "{{ db_url }}"
        schema_migration_dir: "{{ migrations_dir }}"
        schema_migration_service: orders
        schema_migration_environment: production
        schema_migration_release: "1.0.0"
        schema_migration_manifest: "{{ manifest }}"
    - name: Switch traffic to the old version
      ansible.builtin.copy:
        content: "1.0.0\\n"
        dest: "{{ traffic_file }}"
        mode: "0600"
"""


def write_release(folder: ScriptFolder) -> None:
    folder.write("V1__customers.sql", "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40));\n")
    folder.write("V2__full_name.sql", "ALTER TABLE customers ADD COLUMN full_name VARCHAR(80);\n")
    folder.write("U2__full_name.sql", "CREATE TABLE undo_marker_2 (id INT);\n")
    folder.write("V3__drop_name.sql", "-- relops:phase=contract\nCREATE TABLE contract_marker (id INT);\n")
    folder.write("U3__drop_name.sql", "DROP TABLE contract_marker;\n")


def playbook(ansible: Ansible, text: str, name: str, variables: dict, ledger: str) -> tuple[int, str]:
    inventory = os.path.join(ansible.workdir, "hosts.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    run = ansible.playbook(
        ansible.write_playbook(text, name),
        "-i",
        inventory,
        "-e",
        json.dumps(variables),
        env={"RELOPS_LEDGER_URL": ledger},
    )
    return run.returncode, run.output


def history(db_url: str) -> list[tuple]:
    db = m.open_database(db_url)
    try:
        return db.query('SELECT "version", "type", "success" FROM flyway_schema_history ORDER BY "installed_rank"')
    finally:
        db.close()


def customer_names(db_url: str) -> list[str]:
    db = m.open_database(db_url)
    try:
        return [str(row[0]) for row in db.query("SELECT name FROM customers ORDER BY id")]
    finally:
        db.close()


def test_release_under_serial_migrates_once_expand_then_contract(
    ansible: Ansible, db_url: str, scripts: ScriptFolder
) -> None:
    write_release(scripts)
    # Written in ISO-8859-1: read as UTF-8 (the default) the run would fail on the 0xfc byte.
    with open(os.path.join(scripts.path, "V1__customers.sql"), "wb") as handle:
        handle.write(
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40));\n"
            "INSERT INTO customers (id, name) VALUES (1, 'Müller');\n".encode("ISO-8859-1")
        )
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    log_file = os.path.join(ansible.workdir, "release.log")
    variables = {"db_url": db_url, "migrations_dir": scripts.path, "log_file": log_file}
    code, output = playbook(ansible, RELEASE_PLAY, "release.yml", variables, ledger)
    assert code == 0, output
    with open(log_file, encoding="utf-8") as handle:
        log = handle.read().splitlines()
    assert log == [
        "app1 expand changed=True",
        "app1 switched, tables: 2",
        "app2 expand changed=False",
        "app2 switched, tables: 3",
        "app3 expand changed=False",
        "app3 switched, tables: 3",
    ]
    assert history(db_url) == [("1", "SQL", True), ("2", "SQL", True), ("3", "SQL", True)]
    assert customer_names(db_url) == ["Müller"]
    with open_ledger(parse_ledger_url(ledger)) as opened:
        records = sorted(opened.list_schema_migrations(service="orders"), key=lambda row: row["id"])
    assert [(r["phase"], r["version_before"], r["version_after"], r["applied"]) for r in records] == [
        ("expand", None, "2", ["V1__customers.sql", "V2__full_name.sql"]),
        ("contract", "2", "3", ["V3__drop_name.sql"]),
    ]
    assert all(r["release"] == "2.0.0" and r["environment"] == "production" for r in records)

    code, output = playbook(ansible, RELEASE_PLAY, "release.yml", variables, ledger)
    assert code == 0, output
    assert len(history(db_url)) == 3
    with open_ledger(parse_ledger_url(ledger)) as opened:
        assert len(opened.list_schema_migrations(service="orders")) == 2


def test_rollback_undoes_to_a_supported_schema_or_refuses_before_traffic(
    ansible: Ansible, db_url: str, scripts: ScriptFolder
) -> None:
    write_release(scripts)
    engine = m.Migrator(m.open_database(db_url), m.load_scripts(scripts.path))
    engine.migrate()
    engine.db.close()
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    manifest = os.path.join(ansible.workdir, "manifest.json")
    traffic = os.path.join(ansible.workdir, "traffic")
    variables = {"db_url": db_url, "migrations_dir": scripts.path, "manifest": manifest, "traffic_file": traffic}

    # 1.0.0 only knows schema 1: versions 3 and 2 must go, and U2 exists, so the undo happens.
    with open(manifest, "w", encoding="utf-8") as handle:
        json.dump(
            {"name": "orders", "version": "1.0.0", "migrations": {"schema_versions": {"min": "1", "max": "1"}}}, handle
        )
    scripts.remove("U2__full_name.sql")
    code, output = playbook(ansible, ROLLBACK_PLAY, "rollback.yml", variables, ledger)
    assert code != 0 and "no undo script for version 2" in output, output
    assert "application version 1.0.0 supports schema versions up to 1" in output
    assert not os.path.exists(traffic)
    assert history(db_url)[-1] == ("3", "SQL", True)

    write_release(scripts)
    code, output = playbook(ansible, ROLLBACK_PLAY, "rollback.yml", variables, ledger)
    assert code == 0, output
    assert history(db_url)[-2:] == [("3", "UNDO_SQL", True), ("2", "UNDO_SQL", True)]
    with open(traffic, encoding="utf-8") as handle:
        assert handle.read() == "1.0.0\n"
    with open_ledger(parse_ledger_url(ledger)) as opened:
        records = opened.list_schema_migrations(service="orders")
    assert [(r["phase"], r["version_before"], r["version_after"]) for r in records] == [("undo", "3", "1")]

    # Rolling back again finds the schema compatible and changes nothing.
    code, output = playbook(ansible, ROLLBACK_PLAY, "rollback.yml", variables, ledger)
    assert code == 0 and len(history(db_url)) == 5, output
