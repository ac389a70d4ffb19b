"""relops.release.audit through real ansible-playbook runs: every event kind and its fields,
redaction (no_log and patterns), the run id shared with tasks, rotation, and 20 processes on one trail."""

from __future__ import annotations

import json
import os
import re
import subprocess

from fixtures.audit import AuditKeys, audit_environment, read_events
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import GENESIS, line_hash
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import load_public_keys
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import trail_files
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail

INVENTORY = """
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
    ghost:
      ansible_connection: ssh
      ansible_host: 127.0.0.1
      ansible_port: 1
      ansible_user: nobody
"""

EVERY_KIND = """
- name: Every kind of result
  hosts: all
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.ping:
    - name: Change something
      ansible.builtin.command: echo changed
      changed_when: true
      notify: Handle the change
      when: inventory_hostname == 'localhost'
    - name: Never runs
      ansible.builtin.debug:
        msg: skipped
      when: false
    - name: Fail but carry on
      ansible.builtin.command: /bin/false
      ignore_errors: true
    - name: Walk a list
      ansible.builtin.debug:
        msg: "item {{ item }}"
      loop: [alpha, beta]
    - name: Read the run id the callback set
      ansible.builtin.command: printenv RELOPS_RUN_ID
      register: seen_run_id
      changed_when: false
    - name: Keep the run id for the test
      ansible.builtin.copy:
        content: "{{ seen_run_id.stdout }}"
        dest: "{{ run_id_file }}"
        mode: "0600"
    - name: A block with a rescue
      block:
        - name: Fail inside the block
          ansible.builtin.command: /bin/false
      rescue:
        - name: Recover
          ansible.builtin.debug:
            msg: recovered
    - name: Run the handlers now
      ansible.builtin.meta: flush_handlers
    - name: Fail in the background
      ansible.builtin.command: /bin/false
      async: 30
      poll: 1
      ignore_errors: true
    - name: Verify the trail so far (a structured event from a relops.release module)
      relops.release.audit_verify:
        fail_on_problem: false
    - name: Fail for real
      ansible.builtin.fail:
        msg: the end
  handlers:
    - name: Handle the change
      ansible.builtin.debug:
        msg: handled
"""

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _by_kind(events: list[dict]) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for event in events:
        kinds.setdefault(event["event"], []).append(event)
    return kinds


def test_every_event_kind_with_its_fields(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    inventory = ansible.write_playbook(INVENTORY, "inventory.yml")
    playbook = ansible.write_playbook(EVERY_KIND, "every_kind.yml")
    run_id_file = os.path.join(ansible.workdir, "run_id")
    run = ansible.playbook(
        playbook, "-i", inventory, "-e", "run_id_file=%s" % run_id_file, env=audit_environment(trail, audit_keys)
    )
    assert run.returncode == 4, run.output  # 4: a host was unreachable (and one task failed)
    events = read_events(trail)
    kinds = _by_kind(events)

    for kind in (
        "playbook_start",
        "play_start",
        "task_start",
        "handler_start",
        "stats",
        "playbook_end",
        "checkpoint",
        "module_event",
        "item_ok",
        "runner_ok",
        "runner_changed",
        "runner_failed",
        "runner_ignored",
        "runner_rescued",
        "runner_skipped",
        "runner_unreachable",
        "runner_async_failed",
    ):
        assert kind in kinds, (kind, sorted(kinds))

    with open(run_id_file, encoding="utf-8") as handle:
        run_id = handle.read().strip()
    assert {event["run_id"] for event in events} == {run_id}
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[0]["prev"] == GENESIS
    for event in events:
        assert RFC3339.match(event["ts"]), event
        assert event["actor"]["user"] and event["actor"]["host"]
        assert event["playbook"]["path"] == playbook

    ok = next(event for event in kinds["runner_ok"] if event["task"] == "Say hello")
    assert ok["host"] == "localhost" and ok["action"] == "ansible.builtin.ping" and ok["outcome"] == "ok"
    assert ok["changed"] is False and ok["duration"] >= 0 and ok["result"]["ping"] == "pong"
    assert ok["play"] == "Every kind of result" and ok["task_uuid"]
    changed = kinds["runner_changed"][0]
    assert changed["task"] == "Change something" and changed["changed"] is True
    assert changed["args"]["_raw_params"] == "echo changed" and changed["result"]["stdout"] == "changed"
    unreachable = kinds["runner_unreachable"][0]
    assert unreachable["host"] == "ghost" and unreachable["outcome"] == "unreachable"
    assert {event["task"] for event in kinds["runner_skipped"]} >= {"Never runs"}
    assert {(event["task"], event["host"]) for event in kinds["runner_ignored"]} >= {("Fail but carry on", "localhost")}
    assert [event["task"] for event in kinds["runner_rescued"]] == ["Fail inside the block"]
    assert [event["task"] for event in kinds["runner_failed"]] == ["Fail for real"]
    assert [event["task"] for event in kinds["runner_async_failed"]] == ["Fail in the background"]
    assert "Fail in the background" in {event["task"] for event in kinds["runner_ignored"]}
    assert [event["item"] for event in kinds["item_ok"]] == ["alpha", "beta"]
    assert [event["task"] for event in kinds["handler_start"]] == ["Handle the change"]
    assert any(event["task"] == "Handle the change" and event["handler"] for event in kinds["runner_ok"])
    module_event = kinds["module_event"][0]
    assert module_event["kind"] == "trail_verified" and module_event["data"]["files"] == [trail]
    stats = kinds["stats"][0]
    assert stats["hosts"]["ghost"]["unreachable"] == 1 and stats["hosts"]["localhost"]["rescued"] == 1
    assert kinds["playbook_end"][0]["outcome"] == "failed"
    assert events[-1]["event"] == "checkpoint" and events[-1]["checkpoint"]["last_seq"] == len(events) - 1

    report = verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key]))
    assert report.ok, report.as_dict()
    assert report.runs[run_id].ended and report.runs[run_id].outcome == "failed"


CANARY = "CANARY-7f3e9d2a"

SECRETS = """
- name: Secrets everywhere
  hosts: localhost
  gather_facts: false
  vars:
    canary: "%(canary)s"
  tasks:
    - name: Secret in the arguments
      ansible.builtin.command: "echo {{ canary }}"
      no_log: true
      register: secret_result
    - name: Secret in loop items
      ansible.builtin.debug:
        msg: "{{ item }}"
      loop: ["{{ canary }}", "plain"]
      no_log: true
    - name: Secret through a registered variable
      ansible.builtin.set_fact:
        copied: "{{ secret_result.stdout }}"
      no_log: true
    - name: Secret in the environment
      ansible.builtin.shell: echo "$API_TOKEN" > /dev/null
      environment:
        API_TOKEN: "{{ canary }}"
      changed_when: false
    - name: Secret that a module prints back
      ansible.builtin.command: printenv API_TOKEN
      environment:
        API_TOKEN: "{{ canary }}"
      no_log: true
      changed_when: false
    - name: Secrets recognised by their shape
      ansible.builtin.debug:
        msg:
          header: "Authorization: Bearer abc.def-%(canary)s"
          key: "-----BEGIN PRIVATE KEY-----\\n%(canary)s\\n-----END PRIVATE KEY-----"
          url: "https://deploy:%(canary)s@git.example.com/repo.git"
          cloud: AKIAABCDEFGHIJKLMNOP
    - name: Secret under a secret-looking key
      ansible.builtin.set_fact:
        db_password: "{{ canary }}"
""" % {"canary": CANARY}


def test_secret_canary_never_reaches_trail_or_spool(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    spool = os.path.join(ansible.workdir, "spool")
    playbook = ansible.write_playbook(SECRETS, "secrets.yml")
    env = audit_environment(
        trail, audit_keys, spool_dir=spool, syslog_url="tcp://127.0.0.1:1", sink_timeout="1", sink_retry_interval="0"
    )
    run = ansible.playbook(playbook, env=env)
    assert run.returncode == 0, run.report
    spooled = [os.path.join(root, name) for root, _dirs, names in os.walk(spool) for name in names]
    assert any(name.endswith("queue.jsonl") for name in spooled)
    for path in [*trail_files(trail), *spooled]:
        with open(path, "rb") as handle:
            assert CANARY.encode() not in handle.read(), path
    events = read_events(trail)
    hidden = [
        event
        for event in events
        if event.get("event", "").startswith(("runner_", "item_")) and event.get("result") == "[REDACTED no_log]"
    ]
    assert {event["task"] for event in hidden} >= {
        "Secret in the arguments",
        "Secret in loop items",
        "Secret through a registered variable",
        "Secret that a module prints back",
    }
    assert all(event["args"] == "[REDACTED no_log]" for event in hidden)
    shaped = next(
        event for event in events if event["event"] == "runner_ok" and event["task"].startswith("Secrets recog")
    )
    message = shaped["args"]["msg"]
    assert message["header"] == "Authorization: [REDACTED bearer]"
    assert message["key"] == "[REDACTED pem]"
    assert message["url"] == "https://[REDACTED url_password]@git.example.com/repo.git"
    assert message["cloud"] == "[REDACTED aws_access_key]"
    keyed = next(
        event for event in events if event["event"] == "runner_ok" and event["task"].startswith("Secret under")
    )
    assert keyed["args"]["db_password"] == "[REDACTED key db_password]"
    outage = [event for event in events if event["event"] == "sink_outage"]
    assert len(outage) == 1 and outage[0]["sink"] == "syslog tcp://127.0.0.1:1"
    assert "wait in" in run.output


TINY = """
- name: Tiny
  hosts: localhost
  gather_facts: false
  tasks:
    - name: One task
      ansible.builtin.debug:
        msg: "{{ which }}"
"""


def test_twenty_concurrent_playbooks_keep_one_chain(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    env = audit_environment(trail, audit_keys, rotate_size="6000", fsync="event")
    processes = [ansible.start_playbook(playbook, "-e", "which=%d" % number, env=env) for number in range(20)]
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, out + err
    files = trail_files(trail)
    assert len(files) > 1
    report = verify_trail(files, audit_keys.hmac_key, load_public_keys([audit_keys.public_key]))
    assert report.ok, report.as_dict()
    events = [event for path in files for event in read_events(path)]
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert len(report.runs) == 20
    per_run = {run_id: [event["event"] for event in events if event["run_id"] == run_id] for run_id in report.runs}
    for kinds in per_run.values():
        assert kinds == [
            "playbook_start",
            "play_start",
            "task_start",
            "runner_ok",
            "stats",
            "playbook_end",
            "checkpoint",
        ]
    messages = sorted(int(event["result"]["msg"]) for event in events if event["event"] == "runner_ok")
    assert messages == list(range(20))
    with open(files[1], "rb") as handle:
        first_of_second = json.loads(handle.readline())
    with open(files[0], "rb") as handle:
        last_of_first = handle.read().splitlines()[-1]
    assert first_of_second["prev"] == line_hash(last_of_first)


def test_actor_carries_sudo_and_awx_context_and_the_git_revision(ansible: Ansible) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    repository = os.path.join(ansible.workdir, "repo")
    os.makedirs(repository)
    playbook = os.path.join(repository, "tiny.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(TINY)
    git = ["git", "-C", repository, "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q"], ["add", "tiny.yml"], ["commit", "-q", "-m", "playbook"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    revision = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    awx = {"awx_user_name": "ann", "awx_user_id": 7, "awx_job_id": 4242, "awx_job_template_name": "release payments"}
    run = ansible.playbook(
        playbook,
        "-e",
        json.dumps({"which": 0, **awx}),
        env={**audit_environment(trail), "SUDO_USER": "bob"},
    )
    assert run.returncode == 0, run.report
    events = read_events(trail)
    assert {event["run_id"] for event in events} == {"awx-job-4242"}
    actor = events[0]["actor"]
    assert actor["sudo_user"] == "bob" and actor["awx_user_name"] == "ann" and actor["awx_user_id"] == "7"
    assert actor["awx_job_id"] == "4242" and actor["awx_job_template_name"] == "release payments"
    assert events[0]["playbook"] == {"path": playbook, "revision": revision}
