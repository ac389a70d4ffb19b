"""relops.release.ledger_info and ledger_run through real ansible-playbook runs, and the
ledger's bad-input errors as a user sees them."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess

from fixtures.playbooks import BIN, Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.ledger.schema import latest_version
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

INFO_PLAY = """
- name: Info
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the ledger
      relops.release.ledger_info:
        limit: 3
      register: info
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ info | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

RUN_PLAY = """
- name: Record a run
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Started
      relops.release.ledger_run:
      register: started
    - name: Started again changes nothing
      relops.release.ledger_run:
      register: again
    - name: Finished
      relops.release.ledger_run:
        state: finished
        status: failed
        summary: {service: demo, reason: smoke tests}
      register: finished
    - name: Finished again changes nothing
      relops.release.ledger_run:
        state: finished
        status: failed
        summary: {service: demo, reason: smoke tests}
      register: finished_again
    - name: Check
      ansible.builtin.assert:
        that:
          - started is changed
          - again is not changed
          - finished is changed
          - finished.run.status == 'failed'
          - finished.run.summary.reason == 'smoke tests'
          - finished_again is not changed
"""


def _info(ansible: Ansible, url: str, *args: str) -> tuple[int, dict, str]:
    result_file = os.path.join(ansible.workdir, "info.json")
    if os.path.exists(result_file):
        os.unlink(result_file)
    run = ansible.playbook(
        ansible.write_playbook(INFO_PLAY, "info.yml"),
        "-e",
        "result_file=%s" % result_file,
        *args,
        env={"RELOPS_LEDGER_URL": url},
    )
    data = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            data = json.load(handle)
    return run.returncode, data, run.output


def test_info_on_a_missing_ledger_creates_nothing(ansible: Ansible) -> None:
    path = os.path.join(ansible.workdir, "absent", "ledger.db")
    code, info, output = _info(ansible, "sqlite:///" + path.lstrip("/"))
    assert code == 0, output
    assert info["ledger"]["exists"] is False and info["ledger"]["latest_schema_version"] == latest_version("sqlite")
    assert info["runs"] == [] and not os.path.exists(os.path.dirname(path))


def test_runs_are_visible_through_info(ansible: Ansible, ledger_url: str) -> None:
    run = ansible.playbook(ansible.write_playbook(RUN_PLAY, "run.yml"), env={"RELOPS_LEDGER_URL": ledger_url})
    assert run.returncode == 0, run.report
    code, info, output = _info(ansible, ledger_url, "--check")
    assert code == 0, output
    assert info["changed"] is False
    assert info["ledger"]["exists"] is True and info["ledger"]["schema_version"] == latest_version("sqlite")
    assert [entry["status"] for entry in info["runs"]] == ["failed"]
    assert info["runs"][0]["summary"] == {"service": "demo", "reason": "smoke tests"}
    assert info["runs"][0]["play"] == "Record a run"


def test_info_lists_only_live_locks_and_recent_deployments(ansible: Ansible, ledger_url: str) -> None:
    someone = Actor(run_id="other-run", user="alice", host="ctl2")
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.try_lock("payments", someone, 600)
        for number in range(5):
            ledger.record_deployment(someone, "payments", "1.%d.0" % number, "production", "successful")
    code, info, output = _info(ansible, ledger_url)
    assert code == 0, output
    assert [lock["name"] for lock in info["locks"]] == ["payments"]
    assert info["locks"][0]["owner"]["user"] == "alice"
    assert [deployment["version"] for deployment in info["deployments"]] == ["1.4.0", "1.3.0", "1.2.0"]


def test_bad_ledger_urls_fail_with_the_value_and_the_fix(ansible: Ansible) -> None:
    code, _result, output = _info(ansible, "mysql://db/relops")
    assert code != 0
    assert "ledger_url 'mysql://db/relops' has unsupported scheme 'mysql'; use sqlite:///path/to/ledger.db" in output


def test_a_database_that_is_not_a_ledger_is_left_alone(ansible: Ansible) -> None:
    path = os.path.join(ansible.workdir, "app.db")
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE orders (id INTEGER)")
    lock_play = ansible.write_playbook(
        """
        - name: Lock
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Lock
              relops.release.release_lock: {name: demo}
        """,
        "lock.yml",
    )
    run = ansible.playbook(lock_play, env={"RELOPS_LEDGER_URL": "sqlite:///" + path.lstrip("/")})
    assert run.returncode != 0
    assert "SQLite ledger %s is not a relops ledger: it holds tables (orders)" % path in run.output
    with sqlite3.connect(path) as raw:
        tables = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["orders"]


def test_unreachable_postgres_ledger_fails_clearly(ansible: Ansible) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _result, output = _info(ansible, "postgresql://relops:topsecret@127.0.0.1:%d/relops" % port)
    assert code != 0
    assert "cannot connect to the PostgreSQL ledger postgresql://relops:***@127.0.0.1:%d/relops" % port in output
    assert "topsecret" not in output


def test_module_defaults_group_sets_the_ledger_for_every_task(ansible: Ansible, tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "grouped.db")
    playbook = ansible.write_playbook(
        """
        - name: Grouped
          hosts: localhost
          gather_facts: false
          module_defaults:
            group/relops.release.ledger:
              ledger_url: "sqlite:///{{ grouped_path }}"
          tasks:
            - name: Lock through the group default
              relops.release.release_lock: {name: grouped}
            - name: Info through the group default
              relops.release.ledger_info:
              register: info
            - name: Check
              ansible.builtin.assert:
                that:
                  - info.ledger.url == 'sqlite:///' + grouped_path
                  - info.locks | map(attribute='name') | list == ['grouped']
        """,
        "grouped.yml",
    )
    run = ansible.playbook(playbook, "-e", "grouped_path=%s" % path.lstrip("/"))
    assert run.returncode == 0, run.report
    assert os.path.exists(path)
    assert not os.path.exists(os.path.join(ansible.workdir, "state", "relops", "ledger.db"))


def test_variables_the_collection_reads_are_templated(ansible: Ansible) -> None:
    """relops_ledger_url and the awx_* job context may be templates, as any play variable may (issue 21)."""
    playbook = ansible.write_playbook(
        """
        - name: Templated variables
          hosts: localhost
          gather_facts: false
          vars:
            ledger_dir: "{{ playbook_dir }}/ledgers"
            relops_ledger_url: "sqlite:///{{ ledger_dir }}/ledger.db"
            awx_job_id: "{{ 40 + 2 }}"
            awx_user_name: "{{ 'ops-' ~ 'alice' }}"
            awx_user_id: "{{ 3 * 3 }}"
            awx_job_template_name: "{{ 'Release ' ~ 'payments' }}"
            awx_schedule_name: "{{ 'night' | upper }}"
            awx_workflow_job_id: "{{ 500 + 5 }}"
            awx_workflow_job_name: "{{ 'payments ' ~ 'workflow' }}"
          tasks:
            - name: Record the run and take a lock
              relops.release.release_lock: {name: templated}
            - name: Info
              relops.release.ledger_info:
              register: info
            - name: Check
              ansible.builtin.assert:
                that:
                  - info.ledger.url == relops_ledger_url
        """,
        "templated.yml",
    )
    run = ansible.playbook(playbook)
    assert run.returncode == 0, run.report
    path = os.path.join(ansible.workdir, "ledgers", "ledger.db")
    assert os.path.exists(path), run.report
    assert not os.path.exists(os.path.join(ansible.workdir, "state", "relops", "ledger.db"))
    with sqlite3.connect(path) as db:
        ((run_id, actor),) = db.execute("SELECT run_id, actor FROM runs").fetchall()
        ((owner,),) = db.execute("SELECT owner FROM locks WHERE name = 'templated'").fetchall()
    assert run_id == "awx-job-42"
    context = json.loads(actor)
    assert (context["awx_user_name"], context["awx_user_id"]) == ("ops-alice", "9")
    assert (context["awx_job_template_name"], context["awx_schedule_name"]) == ("Release payments", "NIGHT")
    assert (context["awx_workflow_job_id"], context["awx_workflow_job_name"]) == ("505", "payments workflow")
    assert "ops-alice" in owner


def test_an_ad_hoc_command_finishes_its_run(ansible: Ansible) -> None:
    """`ansible -m` has no later task to finish its run: the task itself records how it ended."""
    path = os.path.join(ansible.workdir, "adhoc.db")
    env = ansible.environment({"RELOPS_LEDGER_URL": "sqlite:///" + path.lstrip("/")})

    def adhoc(module_args: str, run_id: str) -> int:
        command = [os.path.join(BIN, "ansible"), "localhost", "-m", "relops.release.release_lock", "-a", module_args]
        done = subprocess.run(
            command,
            cwd=ansible.workdir,
            env=dict(env, RELOPS_RUN_ID=run_id),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode

    assert adhoc("name=adhoc", "adhoc-ok") == 0
    assert adhoc("name=adhoc", "adhoc-bad") != 0  # held by adhoc-ok until its TTL
    with sqlite3.connect(path) as db:
        rows = {
            run_id: (status, finished is not None)
            for run_id, status, finished in db.execute("SELECT run_id, status, finished_at FROM runs")
        }
    assert rows == {"adhoc-ok": ("successful", True), "adhoc-bad": ("failed", True)}


def test_info_reports_an_older_ledger_instead_of_failing(ansible: Ansible, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "old.db")
    url = "sqlite:///" + path.lstrip("/")
    with open_ledger(parse_ledger_url(url)) as ledger:
        ledger.touch_run(Actor(run_id="old-run", user="carol", host="ctl3"))
    with sqlite3.connect(path) as raw:
        # Make the ledger look as if it predates the newest schema version.
        raw.execute(
            "DELETE FROM relops_schema_history"
            " WHERE installed_rank = (SELECT max(installed_rank) FROM relops_schema_history)"
        )
    code, info, output = _info(ansible, url)
    assert code == 0, output
    assert info["ledger"]["upgrade_needed"] is True
    assert info["ledger"]["schema_version"] < info["ledger"]["latest_schema_version"]
    assert [run["run_id"] for run in info["runs"]] == ["old-run"]
