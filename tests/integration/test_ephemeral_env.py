"""relops.release.ephemeral_env (role) and ephemeral_slot (action) through real ansible-playbook runs,
with the ledger on SQLite and PostgreSQL and databases on the tests' PostgreSQL cluster."""

from __future__ import annotations

import json
import os
import time
import uuid

import psycopg
import pytest
from fixtures.playbooks import Ansible
from fixtures.postgres import PostgresServer

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

PLAY = """
- name: Ephemeral environment
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the entry point
      ansible.builtin.include_role:
        name: relops.release.ephemeral_env
        tasks_from: "{{ entry }}"
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'record': ephemeral_env_record | default({}), 'reaped': ephemeral_env_reaped | default({}),
                      'env': ephemeral_env_info | default({})} | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


class Envs:
    def __init__(self, ansible: Ansible, ledger_url: str, server: PostgresServer) -> None:
        self.ansible = ansible
        self.ledger_url = ledger_url
        self.server = server
        self.slot_root = os.path.join(ansible.workdir, "slots")
        self.prefix = "eph_%s_" % uuid.uuid4().hex[:8]
        self.playbook = ansible.write_playbook(PLAY, "ephemeral.yml")
        self.runs = 0

    def run(self, entry: str, *args: str, **extra: object) -> tuple[int, dict, str]:
        self.runs += 1
        result_file = os.path.join(self.ansible.workdir, "result-%d.json" % self.runs)
        variables = {
            "entry": entry,
            "result_file": result_file,
            "ephemeral_env_slot_root": self.slot_root,
            "ephemeral_env_db_admin_url": self.server.url("postgres"),
            "ephemeral_env_db_prefix": self.prefix,
            "ephemeral_env_port_range": [31000, 31009],
            **extra,
        }
        run = self.ansible.playbook(
            self.playbook, "-e", json.dumps(variables), *args, env={"RELOPS_LEDGER_URL": self.ledger_url}
        )
        result = {}
        if os.path.exists(result_file):
            with open(result_file, encoding="utf-8") as handle:
                result = json.load(handle)
        return run.returncode, result, run.output

    def database_exists(self, name: str) -> bool:
        with self.server.admin() as admin:
            return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def statuses(self) -> dict[str, str]:
        with open_ledger(parse_ledger_url(self.ledger_url)) as ledger:
            return {row["name"]: row["status"] for row in reversed(ledger.list_envs())}


@pytest.fixture
def envs(ansible: Ansible, ledger_url: str, postgres_server: PostgresServer) -> Envs:
    return Envs(ansible, ledger_url, postgres_server)


def test_provision_is_idempotent_and_each_env_gets_its_own_port_and_database(envs: Envs) -> None:
    code, result, output = envs.run("main", "--check", ephemeral_env_name="ci-0")
    assert code == 0, output
    assert result["record"]["changed"] is True and not envs.database_exists(envs.prefix + "ci_0")

    code, result, output = envs.run("main", ephemeral_env_name="ci-1", ephemeral_env_ttl=600)
    assert code == 0, output
    first = result["env"]
    assert first["port"] == 31000 and first["db_name"] == envs.prefix + "ci_1"
    assert first["slot_dir"] == os.path.join(envs.slot_root, "ci-1") and os.path.isdir(first["slot_dir"])
    with psycopg.connect(first["db_url"], autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int)")

    code, result, output = envs.run("main", ephemeral_env_name="ci-1")
    assert code == 0, output
    assert result["record"]["changed"] is False and result["env"]["port"] == 31000

    code, result, output = envs.run("main", ephemeral_env_name="ci-2")
    assert code == 0, output
    assert result["env"]["port"] == 31001 and envs.database_exists(envs.prefix + "ci_2")
    assert envs.statuses() == {"ci-1": "active", "ci-2": "active"}

    code, result, output = envs.run("teardown", "--diff", ephemeral_env_name="ci-1")
    assert code == 0, output
    assert result["record"]["changed"] is True and "-status: active" in output
    assert not envs.database_exists(envs.prefix + "ci_1") and not os.path.exists(first["slot_dir"])
    code, result, output = envs.run("teardown", ephemeral_env_name="ci-1")
    assert code == 0, output
    assert result["record"]["changed"] is False

    code, result, output = envs.run("main", ephemeral_env_name="ci-3")
    assert code == 0, output
    assert result["env"]["port"] == 31000  # freed by ci-1's teardown
    assert envs.statuses() == {"ci-1": "torn_down", "ci-2": "active", "ci-3": "active"}
    assert envs.run("teardown", ephemeral_env_name="ci-2")[0] == 0
    assert envs.run("teardown", ephemeral_env_name="ci-3")[0] == 0


def test_reap_ends_only_expired_environments(envs: Envs) -> None:
    assert envs.run("main", ephemeral_env_name="short", ephemeral_env_ttl=1)[0] == 0
    assert envs.run("main", ephemeral_env_name="long", ephemeral_env_ttl=3600)[0] == 0
    deadline = time.monotonic() + 60
    while True:
        with open_ledger(parse_ledger_url(envs.ledger_url)) as ledger:
            if [row["name"] for row in ledger.expired_envs()] == ["short"]:
                break
        assert time.monotonic() < deadline, "the one-second environment never expired"
        time.sleep(0.5)

    code, result, output = envs.run("reap", "--check")
    assert code == 0, output
    assert [env["name"] for env in result["reaped"]["reaped"]] == ["short"]
    assert envs.statuses()["short"] == "active"

    code, result, output = envs.run("reap")
    assert code == 0, output
    assert [env["name"] for env in result["reaped"]["reaped"]] == ["short"]
    assert envs.statuses() == {"short": "reaped", "long": "active"}
    assert not envs.database_exists(envs.prefix + "short") and envs.database_exists(envs.prefix + "long")
    assert not os.path.exists(os.path.join(envs.slot_root, "short"))
    assert os.path.isdir(os.path.join(envs.slot_root, "long"))

    code, result, output = envs.run("reap")
    assert code == 0, output
    assert result["reaped"]["changed"] is False
    assert envs.run("teardown", ephemeral_env_name="long")[0] == 0


def test_bad_input_is_refused_naming_the_value(envs: Envs) -> None:
    code, _result, output = envs.run("main", ephemeral_env_name="CI_1")
    assert code != 0 and "name 'CI_1' is not valid" in output
    code, _result, output = envs.run("main", ephemeral_env_name="ci-a", ephemeral_env_ttl=0)
    assert code != 0 and "ttl 0 is not valid" in output
    assert envs.run("main", ephemeral_env_name="only", ephemeral_env_port_range=[31500, 31500])[0] == 0
    code, _result, output = envs.run("main", ephemeral_env_name="second", ephemeral_env_port_range=[31500, 31500])
    assert code != 0 and "every port from 31500 to 31500" in output
    assert "second" not in envs.statuses()
    assert envs.run("teardown", ephemeral_env_name="only")[0] == 0
