"""Gate decisions and smoke-check findings reach the audit trail as module events."""

from __future__ import annotations

import os
import socket

from fixtures.audit import audit_environment, read_events
from fixtures.playbooks import Ansible

PLAY = """
- name: Decide and check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Judge the test results
      relops.release.quality_gate:
        subject: payments-api 1.4.2
        release_class: operational
        junit: ["{{ junit }}"]
      ignore_errors: true
    - name: Check a port nobody listens on
      relops.release.smoke_check:
        checks:
          - {name: closed port, type: tcp, host: 127.0.0.1, port: "{{ closed_port | int }}", timeout: 1}
      ignore_errors: true
"""

JUNIT = (
    "<testsuite name='unit' tests='2'>"
    "<testcase classname='tests.unit' name='a' time='0.1'/>"
    "<testcase classname='tests.unit' name='b' time='0.1'/>"
    "</testsuite>"
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_decisions_and_smoke_findings_are_module_events(ansible: Ansible, ledger_url: str) -> None:
    junit = os.path.join(ansible.workdir, "unit.xml")
    with open(junit, "w", encoding="utf-8") as handle:
        handle.write(JUNIT)
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    env = dict(audit_environment(trail), RELOPS_LEDGER_URL=ledger_url)
    run = ansible.playbook(
        ansible.write_playbook(PLAY), "-e", "junit=%s" % junit, "-e", "closed_port=%d" % _closed_port(), env=env
    )
    assert run.returncode == 0, run.report
    module_events = [event for event in read_events(trail) if event.get("event") == "module_event"]
    kinds = {event["kind"]: event for event in module_events}
    decision = kinds["decision"]["data"]
    assert (decision["gate"], decision["subject"], decision["decision"]) == (
        "quality_gate",
        "payments-api 1.4.2",
        "deny",
    )
    assert decision["inputs_digest"] and decision["decided_at"]
    assert any("suite 'integration' is required" in reason for reason in decision["reasons"])
    smoke = kinds["smoke_checks"]["data"]
    assert smoke["passed"] is False
    assert [(check["name"], check["passed"]) for check in smoke["checks"]] == [("closed port", False)]
    assert kinds["smoke_checks"]["task"] == "Check a port nobody listens on"
