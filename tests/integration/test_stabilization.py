"""The smoke_test role and the stabilization period through real ansible-playbook runs:
the manifest's health checks against the running demo app, and a period watched by the
health gate against a real Prometheus, breached into an incident and a rollback."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Optional

import yaml
from fixtures.audit import audit_environment, read_events
from fixtures.playbooks import REPO, Ansible
from fixtures.prometheus import PrometheusStack, free_port
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

ERROR_RATIO = (
    'sum(rate(demo_requests_total{track="stable",code="500"}[5s])) / sum(rate(demo_requests_total{track="stable"}[5s]))'
)

SMOKE_ROLE_PLAY = """
- name: Smoke-test the deployed release
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the manifest's checks
      ansible.builtin.include_role:
        name: relops.release.smoke_test
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ smoke_test_result | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

ROLLBACK_TASKS = """
- name: Roll back (stand-in for the deploy role's rollback)
  ansible.builtin.copy:
    content: >-
      rolled back {{ smoke_test_service }} from {{ smoke_test_version }},
      incident {{ smoke_test_incident.incident.id }}
    dest: "{{ rollback_marker }}"
    mode: "0600"
"""

PERIOD_PLAY = """
- name: Period
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Record the period
      relops.release.stabilization:
        service: demo-app
        environment: local
        version: "1.0.0"
        state: "{{ period_state }}"
        period: 600
      register: period
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ period | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


BREACH_PLAY = """
- name: Breach
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Record a breach
      relops.release.stabilization:
        service: demo-app
        environment: local
        state: breached
        instance:
          max_retries: 1
          max_retry_time: 2
        incident:
          title: error ratio above 1%
      register: breach
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ breach | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def _release_dir(ansible: Ansible, version: str = "1.0.0") -> str:
    release = os.path.join(ansible.workdir, "releases", version)
    os.makedirs(release)
    shutil.copy(
        os.path.join(REPO, "tests", "fixtures", "data", "smoke_release_manifest.json"),
        os.path.join(release, "manifest.json"),
    )
    if version != "1.0.0":
        with open(os.path.join(release, "manifest.json"), encoding="utf-8") as handle:
            text = handle.read().replace("1.0.0", version).replace("1\\\\.0\\\\.0", version.replace(".", "\\\\."))
        with open(os.path.join(release, "manifest.json"), "w", encoding="utf-8") as handle:
            handle.write(text)
    return release


def _smoke(ansible: Ansible, stack: PrometheusStack, release: str) -> tuple[int, dict, str]:
    playbook = ansible.write_playbook(SMOKE_ROLE_PLAY, "smoke.yml")
    result_file = os.path.join(ansible.workdir, "smoke.json")
    run = ansible.playbook(
        playbook,
        "-e",
        "smoke_test_release_dir=%s" % release,
        "-e",
        "smoke_test_base_url=%s" % stack.stable.url,
        "-e",
        "result_file=%s" % result_file,
    )
    result = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    return run.returncode, result, run.output


def test_role_runs_the_checks_the_manifest_declares(ansible: Ansible, prometheus_stack: PrometheusStack) -> None:
    code, result, output = _smoke(ansible, prometheus_stack, _release_dir(ansible))
    assert code == 0, output
    assert [entry["name"] for entry in result["results"]] == ["health endpoint", "serves requests", "exposes metrics"]
    assert result["passed"] is True
    assert result["results"][0]["target"] == "GET %s/healthz" % prometheus_stack.stable.url


def test_role_reports_a_release_that_is_not_the_one_running(
    ansible: Ansible, prometheus_stack: PrometheusStack
) -> None:
    code, result, output = _smoke(ansible, prometheus_stack, _release_dir(ansible, "2.0.0"))
    assert code != 0
    assert "2 of 3 smoke checks failed (health endpoint, serves requests)" in output
    assert 'json version is "1.0.0", expected "2.0.0"' in output
    assert result == {}


def _stabilize(
    ansible: Ansible,
    stack: PrometheusStack,
    ledger: str,
    rollback: bool,
    extra: Optional[dict[str, Any]] = None,
    env: Optional[dict[str, str]] = None,
) -> tuple[int, str]:
    variables: dict[str, Any] = {
        "smoke_test_service": "demo-app",
        "smoke_test_environment": "local",
        "smoke_test_version": "1.0.0",
        "smoke_test_prometheus_url": stack.url,
        "smoke_test_conditions": [{"name": "error ratio", "query": ERROR_RATIO, "below": 0.01}],
        "smoke_test_stabilization_period": 3,
        "smoke_test_stabilization_interval": 1,
        "smoke_test_failure_limit": 0,
    }
    if rollback:
        variables["smoke_test_rollback_tasks"] = ansible.write_playbook(ROLLBACK_TASKS, "rollback.yml")
    variables["rollback_marker"] = os.path.join(ansible.workdir, "rolled-back")
    variables.update(extra or {})
    vars_file = os.path.join(ansible.workdir, "stabilize-vars.yml")
    with open(vars_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump(variables, handle)
    run = ansible.playbook(
        os.path.join(REPO, "playbooks", "stabilize.yml"),
        "-e",
        "@" + vars_file,
        env=dict({"RELOPS_LEDGER_URL": ledger}, **(env or {})),
    )
    return run.returncode, run.output


def test_a_healthy_period_ends_and_lifts_the_restriction(ansible: Ansible, prometheus_stack: PrometheusStack) -> None:
    prometheus_stack.reset_faults()
    prometheus_stack.wait_until(ERROR_RATIO, lambda values: values == [0.0])
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    code, output = _stabilize(ansible, prometheus_stack, ledger, rollback=True)
    assert code == 0, output
    with open_ledger(parse_ledger_url(ledger)) as opened:
        (period,) = opened.list_stabilizations("demo-app", "local")
        assert period["status"] == "completed" and period["ended_at"] is not None
        assert opened.active_stabilizations("demo-app", "local") == []
        assert opened.list_incidents("demo-app") == []
        (decision,) = opened.list_decisions(subject="demo-app 1.0.0 local stabilization")
        assert decision["decision"] == "allow"
        assert decision["reasons"] == ["3 of 3 measurements taken: 0 failed (limit 0), 0 inconclusive (limit 2)"]
    assert not os.path.exists(os.path.join(ansible.workdir, "rolled-back"))


def test_a_breach_opens_an_incident_and_rolls_back(ansible: Ansible, prometheus_stack: PrometheusStack) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    prometheus_stack.stable.set_faults(error_ratio=0.3)
    try:
        prometheus_stack.wait_until(ERROR_RATIO, lambda values: bool(values) and values[0] > 0.1)
        ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
        code, output = _stabilize(ansible, prometheus_stack, ledger, rollback=True, env=audit_environment(trail))
    finally:
        prometheus_stack.reset_faults()
    assert code != 0
    assert "stabilization of demo-app 1.0.0 in local breached; incident 1 opened, rolled back with" in output
    with open_ledger(parse_ledger_url(ledger)) as opened:
        (period,) = opened.list_stabilizations("demo-app", "local")
        assert period["status"] == "breached"
        (incident,) = opened.list_incidents("demo-app", "local")
        assert incident["status"] == "open" and incident["stabilization_id"] == period["id"]
        assert incident["severity"] == "high" and incident["version"] == "1.0.0"
        assert "breached its stabilization period: health gate fail (deny)" in incident["title"]
        assert incident["details"]["verdict"] == "fail"
        assert incident["details"]["measurements"][0]["conditions"][0]["value"] > 0.1
        assert opened.active_stabilizations("demo-app") == []
        (decision,) = opened.list_decisions(subject="demo-app 1.0.0 local stabilization")
        assert decision["decision"] == "deny"
    with open(os.path.join(ansible.workdir, "rolled-back"), encoding="utf-8") as handle:
        assert handle.read() == "rolled back demo-app from 1.0.0, incident 1"
    events = read_events(trail)
    recorded = [e["data"] for e in events if e.get("event") == "module_event" and e["kind"] == "stabilization"]
    assert [(r["outcome"], r["period_id"]) for r in recorded] == [("started", period["id"]), ("breached", period["id"])]
    assert recorded[1]["incident_id"] == incident["id"] and recorded[1]["severity"] == "high"
    assert "breached its stabilization period" in recorded[1]["incident_title"]
    decisions = [e["data"] for e in events if e.get("event") == "module_event" and e["kind"] == "decision"]
    assert [(d["gate"], d["decision"]) for d in decisions] == [("health_gate", "deny")]
    rolled = [e for e in events if str(e.get("task")).endswith("Roll back (stand-in for the deploy role's rollback)")]
    assert [e["event"] for e in rolled] == ["task_start", "runner_changed"], rolled


def _deploy_role(ansible: Ansible) -> str:
    """A stand-in for a deploy role (blue_green, canary) with the rollback entry point they ship."""
    roles = os.path.join(ansible.workdir, "roles")
    os.makedirs(os.path.join(roles, "fake_deploy", "tasks"))
    with open(os.path.join(roles, "fake_deploy", "tasks", "rollback.yml"), "w", encoding="utf-8") as handle:
        handle.write(
            ROLLBACK_TASKS.replace(
                "incident {{ smoke_test_incident.incident.id }}",
                "{{ fake_deploy_slot }}, {{ smoke_test_incident.itsm_incident.number }}",
            )
        )
    return roles


def test_a_breach_opens_the_incident_in_servicenow_and_runs_the_deploy_roles_rollback(
    ansible: Ansible, prometheus_stack: PrometheusStack, servicenow: ServiceNowStandIn
) -> None:
    change = servicenow.insert("change_request", {"short_description": "Deploy demo-app 1.0.0", "type": "normal"})
    roles = _deploy_role(ansible)
    prometheus_stack.stable.set_faults(error_ratio=0.3)
    try:
        prometheus_stack.wait_until(ERROR_RATIO, lambda values: bool(values) and values[0] > 0.1)
        ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
        code, output = _stabilize(
            ansible,
            prometheus_stack,
            ledger,
            rollback=False,
            extra={
                "smoke_test_rollback_role": "fake_deploy",
                "fake_deploy_slot": "blue",
                "smoke_test_change_number": change["number"],
                "smoke_test_incident_assignment_group": "CAB Approval",
                "smoke_test_incident_severity": "critical",
            },
            env={
                "SN_HOST": servicenow.url,
                "SN_USERNAME": "admin",
                "SN_PASSWORD": "admin-secret",
                "ANSIBLE_ROLES_PATH": roles,
            },
        )
    finally:
        prometheus_stack.reset_faults()
    assert code != 0
    (record,) = servicenow.records("incident")
    assert (
        "stabilization of demo-app 1.0.0 in local breached; incident 1 opened (ServiceNow %s), "
        "rolled back with fake_deploy rollback" % record["number"]
    ) in output, output
    assert record["caused_by"] == change["sys_id"] and record["priority"] == "1" and record["state"] == "1"
    assert "breached its stabilization period: health gate fail (deny)" in record["short_description"]
    assert "Service demo-app in local, version 1.0.0." in record["description"]
    with open_ledger(parse_ledger_url(ledger)) as opened:
        (period,) = opened.list_stabilizations("demo-app", "local")
        assert record["correlation_id"] == "relops-stabilization-%d" % period["id"]
        (incident,) = opened.list_incidents("demo-app", "local")
        assert incident["details"]["itsm_incident"] == {"number": record["number"], "sys_id": record["sys_id"]}
        assert incident["caused_by"] == change["number"] and incident["severity"] == "critical"
    with open(os.path.join(ansible.workdir, "rolled-back"), encoding="utf-8") as handle:
        assert handle.read() == "rolled back demo-app from 1.0.0, blue, %s" % record["number"]


def test_a_breach_is_recorded_and_rolled_back_when_servicenow_is_down(ansible: Ansible, ledger_url: str) -> None:
    started = _period(ansible, ledger_url, "started")
    breach = ansible.write_playbook(BREACH_PLAY, "breach.yml")
    result_file = os.path.join(ansible.workdir, "breach.json")
    run = ansible.playbook(
        breach,
        "-e",
        "result_file=%s" % result_file,
        env={
            "RELOPS_LEDGER_URL": ledger_url,
            # Nothing listens there: the instance is unreachable.
            "SN_HOST": "http://127.0.0.1:%d" % free_port(),
            "SN_USERNAME": "admin",
            "SN_PASSWORD": "admin-secret",
        },
    )
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        result = json.load(handle)
    assert result["changed"] is True and result["itsm_incident"] is None
    assert "the ServiceNow incident could not be opened" in run.output and "unreachable" in run.output
    assert result["incident"]["stabilization_id"] == started["period"]["id"]
    assert "is unreachable after" in result["incident"]["details"]["itsm_error"]
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        (incident,) = opened.list_incidents("demo-app", "local")
        assert (
            incident["status"] == "open"
            and incident["correlation_id"] == "relops-stabilization-%d" % (started["period"]["id"])
        )


def _period(ansible: Ansible, ledger_url: str, state: str, *extra: str) -> dict:
    playbook = ansible.write_playbook(PERIOD_PLAY, "period.yml")
    result_file = os.path.join(ansible.workdir, "period.json")
    run = ansible.playbook(
        playbook,
        "-e",
        "period_state=%s" % state,
        "-e",
        "result_file=%s" % result_file,
        *extra,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        return json.load(handle)


def test_period_records_are_idempotent_and_check_mode_writes_nothing(ansible: Ansible, ledger_url: str) -> None:
    predicted = _period(ansible, ledger_url, "started", "--check", "--diff")
    assert predicted["changed"] is True and predicted["period"]["status"] == "active"
    assert predicted["diff"]["before"] == "no period running\n"
    started = _period(ansible, ledger_url, "started")
    assert started["changed"] is True and started["outcome"] == "started"
    again = _period(ansible, ledger_url, "started")
    assert again["changed"] is False and again["outcome"] == "already_active"
    assert again["period"]["id"] == started["period"]["id"]
    checked = _period(ansible, ledger_url, "completed", "--check")
    assert checked["changed"] is True and checked["period"]["status"] == "completed"
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        assert [row["id"] for row in opened.active_stabilizations("demo-app", "local")] == [started["period"]["id"]]
    completed = _period(ansible, ledger_url, "completed")
    assert completed["changed"] is True and completed["period"]["status"] == "completed"
    done = _period(ansible, ledger_url, "completed")
    assert done["changed"] is False and done["outcome"] == "not_active"


def test_two_rollbacks_at_once_are_refused_before_the_period_starts(ansible: Ansible, ledger_url: str) -> None:
    variables = {
        "smoke_test_service": "demo-app",
        "smoke_test_environment": "local",
        "smoke_test_version": "1.0.0",
        "smoke_test_prometheus_url": "http://127.0.0.1:%d" % free_port(),
        "smoke_test_conditions": [{"name": "error ratio", "query": ERROR_RATIO, "below": 0.01}],
        "smoke_test_rollback_tasks": ansible.write_playbook(ROLLBACK_TASKS, "rollback.yml"),
        "smoke_test_rollback_role": "relops.release.blue_green",
    }
    vars_file = os.path.join(ansible.workdir, "stabilize-vars.yml")
    with open(vars_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump(variables, handle)
    run = ansible.playbook(
        os.path.join(REPO, "playbooks", "stabilize.yml"), "-e", "@" + vars_file, env={"RELOPS_LEDGER_URL": ledger_url}
    )
    assert run.returncode != 0
    assert "give smoke_test_rollback_tasks" in run.output and "not both" in run.output, run.report
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        assert opened.list_stabilizations("demo-app", "local") == []
