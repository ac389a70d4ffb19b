"""relops.release.db_migrate and db_migrate_info through real ansible-playbook runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time

from fixtures.migrations import ScriptFolder
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.module_utils import migrations as m

MIGRATE_PLAY = """
- name: Migrate
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/relops.release.migrations:
      db_url: "{{ db_url }}"
      migrations_dir: "{{ migrations_dir }}"
      placeholders: {suffix: "{{ suffix | default('x') }}"}
  tasks:
    - name: Run db_migrate
      relops.release.db_migrate:
        state: "{{ db_state | default('migrated') }}"
        target: "{{ target | default(omit) }}"
        phase: "{{ phase | default('all') }}"
      register: outcome
      ignore_errors: true
    - name: Report the schema
      relops.release.db_migrate_info:
      register: report
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'outcome': outcome, 'report': report} | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def run(ansible: Ansible, db_url: str, folder: ScriptFolder, *extra: str) -> tuple[dict, dict, str]:
    playbook = ansible.write_playbook(MIGRATE_PLAY, "migrate.yml")
    result_file = os.path.join(ansible.workdir, "result-%d.json" % time.monotonic_ns())
    done = ansible.playbook(
        playbook,
        "-e",
        json.dumps({"db_url": db_url, "migrations_dir": folder.path, "result_file": result_file}),
        *extra,
    )
    assert os.path.exists(result_file), done.report
    with open(result_file, encoding="utf-8") as handle:
        results = json.load(handle)
    return results["outcome"], results["report"], done.output


def write_three(folder: ScriptFolder) -> None:
    folder.write("V1__customers.sql", "CREATE TABLE customers (id INT PRIMARY KEY);\n")
    folder.write("U1__customers.sql", "DROP TABLE customers;\n")
    folder.write("V2__orders_${suffix}.sql", "CREATE TABLE orders_${suffix} (id INT);\n")
    folder.write("U2__orders.sql", "DROP TABLE orders_${suffix};\n")
    folder.write(
        "R__customer_view.sql",
        "DROP VIEW IF EXISTS v_customers;\nCREATE VIEW v_customers AS SELECT id FROM customers;\n",
    )


def test_check_mode_lists_sql_then_migrate_is_idempotent(ansible: Ansible, db_url: str, scripts: ScriptFolder) -> None:
    write_three(scripts)
    outcome, report, output = run(ansible, db_url, scripts, "--check", "--diff", "-e", "suffix=eu")
    assert outcome["changed"] is True, output
    assert [p["script"] for p in outcome["pending"]] == [
        "V1__customers.sql",
        "V2__orders_${suffix}.sql",
        "R__customer_view.sql",
    ]
    assert outcome["pending"][1]["sql"] == "CREATE TABLE orders_eu (id INT);\n"
    assert outcome["version_before"] is None and outcome["version_after"] == "2"
    assert "schema_version" in output  # the diff, shown by --diff
    assert report["current_version"] is None and len(report["pending"]) == 3
    if db_url.startswith("sqlite:///"):
        # Check mode and info only read: a database that does not exist yet is not created.
        assert not os.path.exists("/" + db_url[len("sqlite:///") :])

    outcome, report, output = run(ansible, db_url, scripts, "--diff", "-e", "suffix=eu")
    assert outcome["changed"] is True and not outcome.get("failed"), output
    assert [a["version"] for a in outcome["applied"]] == ["1", "2", None]
    assert outcome["diff"] == {"before": {"schema_version": None}, "after": {"schema_version": "2"}}
    assert report["current_version"] == "2" and report["pending"] == [] and report["drift"] == []
    assert [row["type"] for row in report["applied"]] == ["SQL", "SQL", "SQL"]

    outcome, _report, output = run(ansible, db_url, scripts, "-e", "suffix=eu")
    assert outcome["changed"] is False and outcome["applied"] == [], output


def test_failure_names_script_line_and_database_message(ansible: Ansible, db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__a.sql", "CREATE TABLE a (id INT);\n")
    scripts.write("V2__b.sql", "CREATE TABLE b (id INT);\n\nINSERT INTO missing_table VALUES (1);\n")
    outcome, report, output = run(ansible, db_url, scripts)
    assert outcome["failed"] is True, output
    assert outcome["failure"]["script"] == "V2__b.sql" and outcome["failure"]["line"] == 3
    assert "missing_table" in outcome["failure"]["database_message"]
    assert "V2__b.sql failed at line 3" in outcome["msg"]
    assert report["current_version"] == "1"
    assert [(row["version"], row["success"]) for row in report["failed_migrations"]] == [("2", False)]

    scripts.write("V2__b.sql", "CREATE TABLE b (id INT);\n")
    outcome, report, output = run(ansible, db_url, scripts)
    assert outcome["changed"] is True and outcome["repaired"] == ["V2__b.sql"], output
    assert report["current_version"] == "2" and report["failed_migrations"] == []


def test_undo_and_drift_through_playbooks(ansible: Ansible, db_url: str, scripts: ScriptFolder) -> None:
    write_three(scripts)
    run(ansible, db_url, scripts)
    outcome, report, output = run(ansible, db_url, scripts, "-e", "db_state=undone", "-e", "target=1", "--check")
    assert outcome["changed"] is True and [p["script"] for p in outcome["pending"]] == ["U2__orders.sql"], output
    assert report["current_version"] == "2"
    outcome, report, output = run(ansible, db_url, scripts, "-e", "db_state=undone", "-e", "target=1")
    assert outcome["changed"] is True and (outcome["version_before"], outcome["version_after"]) == ("2", "1"), output
    assert report["current_version"] == "1"
    outcome, _report, _output = run(ansible, db_url, scripts, "-e", "db_state=undone", "-e", "target=1")
    assert outcome["changed"] is False

    scripts.remove("U1__customers.sql")
    outcome, _report, output = run(ansible, db_url, scripts, "-e", "db_state=undone", "-e", "target=0")
    assert outcome["failed"] is True and "no undo script for version 1" in outcome["msg"], output

    scripts.write("V1__customers.sql", "CREATE TABLE customers (id BIGINT PRIMARY KEY);\n")
    outcome, report, output = run(ansible, db_url, scripts, "-e", "db_state=validated")
    assert outcome["failed"] is True and "V1__customers.sql changed after it was applied" in outcome["msg"], output
    assert report["drift"][0]["script"] == "V1__customers.sql"
    assert report["drift"][0]["current_checksum"] == m.flyway_checksum(
        "CREATE TABLE customers (id BIGINT PRIMARY KEY);\n"
    )


def test_doc_pages_render(ansible: Ansible) -> None:
    for module in ("relops.release.db_migrate", "relops.release.db_migrate_info", "relops.release.db_migrate_record"):
        page = ansible.doc(module)
        assert page.returncode == 0 and "EXAMPLES" in page.stdout and "db_url" in page.stdout, page.report


def test_two_concurrent_playbooks_apply_each_migration_once(
    ansible: Ansible, db_url: str, scripts: ScriptFolder
) -> None:
    slow = (
        "SELECT pg_sleep(2);\n"
        if db_url.startswith("postgresql")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000)\n"
        "SELECT count(*) FROM c;\n"
    )
    scripts.write("V1__slow.sql", "CREATE TABLE slow (id INT);\n" + slow)
    scripts.write("V2__more.sql", "CREATE TABLE more (id INT);\n")
    playbook = ansible.write_playbook(MIGRATE_PLAY, "migrate.yml")
    processes, files = [], []
    for number in range(2):
        result_file = os.path.join(ansible.workdir, "concurrent-%d.json" % number)
        files.append(result_file)
        variables = {"db_url": db_url, "migrations_dir": scripts.path, "result_file": result_file}
        processes.append(ansible.start_playbook(playbook, "-e", json.dumps(variables)))
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    outcomes = []
    for result_file in files:
        with open(result_file, encoding="utf-8") as handle:
            outcomes.append(json.load(handle)["outcome"])
    applied = sorted([a["script"] for a in outcome["applied"]] for outcome in outcomes)
    assert applied == [[], ["V1__slow.sql", "V2__more.sql"]]
    assert sorted(outcome["changed"] for outcome in outcomes) == [False, True]
    db = m.open_database(db_url)
    try:
        assert db.query("SELECT count(*) FROM flyway_schema_history")[0][0] == 2
    finally:
        db.close()
