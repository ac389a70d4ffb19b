"""Credentials written into URLs (issue 22, item 3): a canary password in db_url and in instance.host must
not show up anywhere in an ``ansible-playbook -vvv`` run, on success or on failure, while the tasks still
authenticate with it (the PostgreSQL role and the stand-in's user only accept the canary)."""

from __future__ import annotations

import json
import os
import secrets
import socket

from fixtures.migrations import ScriptFolder
from fixtures.playbooks import Ansible
from fixtures.postgres import PostgresServer, password_database
from servicenow.server import ServiceNowStandIn

PLAY = """
- name: Credentials in URLs
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Migrate with the password in db_url
      relops.release.db_migrate:
        db_url: "{{ db_url }}"
        migrations_dir: "{{ good_dir }}"
      register: migrated
    - name: Read the schema with the password in db_url
      relops.release.db_migrate_info:
        db_url: "{{ db_url }}"
        migrations_dir: "{{ good_dir }}"
      register: schema
    - name: A failing migration with the password in db_url
      relops.release.db_migrate:
        db_url: "{{ db_url }}"
        migrations_dir: "{{ bad_dir }}"
      register: failed_migration
      ignore_errors: true
    - name: Read a CI with the credentials in instance.host
      relops.release.cmdb_ci_info:
        backend: servicenow
        instance: {host: "{{ sn_url }}"}
        ci_class: cmdb_ci_appl
        name: payments
      register: ci
    - name: An unreachable instance with the credentials in instance.host
      relops.release.cmdb_ci_info:
        backend: servicenow
        instance: {host: "{{ sn_down_url }}", max_retries: 0, max_retry_time: 2}
        ci_class: cmdb_ci_appl
        name: payments
      register: unreachable
      ignore_errors: true
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'migrated': migrated, 'schema': schema, 'failed_migration': failed_migration, 'ci': ci,
                      'unreachable': unreachable} | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_canary_password_in_db_url_and_instance_host_never_shows_at_vvv(
    ansible: Ansible, postgres_server: PostgresServer, servicenow: ServiceNowStandIn, tmp_path: "os.PathLike[str]"
) -> None:
    db_canary, sn_canary = "canary-db-%s" % secrets.token_hex(8), "canary-sn-%s" % secrets.token_hex(8)
    servicenow.instance.users["admin"] = sn_canary
    good, bad = ScriptFolder(os.path.join(str(tmp_path), "good")), ScriptFolder(os.path.join(str(tmp_path), "bad"))
    good.write("V1__customers.sql", "CREATE TABLE customers (id INT PRIMARY KEY);\n")
    bad.write("V1__customers.sql", "CREATE TABLE customers (id INT PRIMARY KEY);\n")
    bad.write("V2__broken.sql", "INSERT INTO missing_table VALUES (1);\n")
    result_file = os.path.join(ansible.workdir, "masking.json")
    down = "http://admin:%s@127.0.0.1:%d" % (sn_canary, closed_port())
    with password_database(postgres_server, db_canary) as database:
        run = ansible.playbook(
            ansible.write_playbook(PLAY, "masking.yml"),
            "-vvv",
            "-e",
            json.dumps(
                {
                    "db_url": database.url,
                    "good_dir": good.path,
                    "bad_dir": bad.path,
                    "sn_url": servicenow.url.replace("://", "://admin:%s@" % sn_canary),
                    "sn_down_url": down,
                    "result_file": result_file,
                }
            ),
        )
    with open(result_file, encoding="utf-8") as handle:
        results = json.load(handle)
    # The canaries really were the credentials: the role and the stand-in's user accept nothing else.
    assert results["migrated"]["changed"] is True and results["schema"]["current_version"] == "1", run.report
    assert "missing_table" in results["failed_migration"]["msg"], results["failed_migration"]
    assert results["ci"]["failed"] is False and results["ci"]["records"] == [], results["ci"]
    assert "unreachable" in results["unreachable"]["msg"] and "127.0.0.1" in results["unreachable"]["msg"]
    # The database stays named in the invocation's module_args that -vvv prints, with its password masked.
    assert "postgresql://%s:********@" % database.role in run.output, run.output
    output = run.output + json.dumps(results)
    assert output.count(db_canary) == 0, "the db_url password shows at -vvv"
    assert output.count(sn_canary) == 0, "the instance.host password shows at -vvv"
