"""relops.release.deployment_record through real ansible-playbook runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

PLAY = """
- name: Record
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Record the deployment
      relops.release.deployment_record:
        service: demo-app
        version: "{{ version | default('1.1.0') }}"
        environment: staging
        status: "{{ status }}"
        strategy: canary
        details: {steps: [5, 25]}
      register: outcome
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def record(ansible: Ansible, ledger_url: str, status: str, *extra: str) -> dict:
    result_file = os.path.join(ansible.workdir, "result.json")
    run = ansible.playbook(
        ansible.write_playbook(PLAY),
        "-e",
        "status=%s" % status,
        "-e",
        "result_file=%s" % result_file,
        *extra,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    assert run.returncode == 0, run.output
    with open(result_file, encoding="utf-8") as handle:
        return dict(json.load(handle))


def test_open_finish_and_rerun(ansible: Ansible, ledger_url: str) -> None:
    preview = record(ansible, ledger_url, "in_progress", "--check", "--diff")
    assert preview["changed"] is True and preview["deployment_id"] is None
    assert preview["diff"]["before"] == "status: (not recorded)\n"
    opened = record(ansible, ledger_url, "in_progress")
    assert opened["changed"] is True and opened["deployment"]["status"] == "in_progress"
    assert opened["deployment"]["strategy"] == "canary" and opened["deployment"]["details"] == {"steps": [5, 25]}
    again = record(ansible, ledger_url, "in_progress")
    assert again["changed"] is False and again["deployment_id"] == opened["deployment_id"]
    preview = record(ansible, ledger_url, "rolled_back", "--check")
    assert preview["changed"] is True and preview["deployment"]["status"] == "rolled_back"
    finished = record(ansible, ledger_url, "rolled_back")
    assert finished["changed"] is True and finished["deployment_id"] == opened["deployment_id"]
    assert finished["deployment"]["finished_at"]
    assert record(ansible, ledger_url, "rolled_back")["changed"] is False
    # The next attempt at the same version is a new deployment.
    retry = record(ansible, ledger_url, "in_progress")
    assert retry["changed"] is True and retry["deployment_id"] != opened["deployment_id"]
    record(ansible, ledger_url, "successful")
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        rows = ledger.list_deployments("demo-app", "staging")
    assert [(row["version"], row["status"]) for row in rows] == [("1.1.0", "successful"), ("1.1.0", "rolled_back")]
