"""relops.release.smoke_check through real ansible-playbook runs against real HTTP(S) services on loopback."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import yaml
from fixtures.http_services import HttpServices
from fixtures.playbooks import Ansible

SMOKE_PLAY = """
- name: Smoke
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the smoke checks
      relops.release.smoke_check:
        checks: "{{ checks }}"
        run_from: "{{ run_from | default('controller') }}"
        junit_path: "{{ junit_path | default(omit) }}"
      register: smoke
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ smoke | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _checks(services: HttpServices) -> list[dict]:
    return [
        {
            "name": "healthy",
            "url": services.http_url + "/healthz",
            "json": [{"path": "status", "equals": "ok"}, {"path": "components", "contains": "db"}],
            "header_regex": {"Content-Type": "^application/json"},
            "body_regex": '"version": "1\\.4\\.2"',
        },
        {"name": "server error", "url": services.http_url + "/broken"},
        {"name": "too slow", "url": services.http_url + "/slow", "max_latency_ms": 300, "timeout": 5},
        {
            "name": "wrong json",
            "url": services.http_url + "/degraded",
            "json": [
                {"path": "status", "equals": "ok"},
                {"path": "components", "contains": "db"},
                {"path": "components[0]", "equals": "cache"},
            ],
        },
        {
            "name": "tls healthy",
            "url": services.https_url + "/healthz",
            "ca_path": services.ca_path,
            "cert_min_days": 30,
        },
        {
            "name": "tls expiring",
            "url": services.expiring_url + "/healthz",
            "ca_path": services.ca_path,
            "cert_min_days": 30,
        },
        {"name": "port open", "port": int(services.http_url.rsplit(":", 1)[1])},
        {"name": "port closed", "port": services.closed_port, "timeout": 2},
        {"name": "command ok", "command": ["sh", "-c", "echo ready"], "stdout_regex": "^ready"},
        {"name": "command fails", "command": "sh -c 'exit 3'", "retries": 1, "delay": 0.1},
    ]


def _run(ansible: Ansible, checks: list[dict], *extra: str) -> tuple[int, dict, str]:
    playbook = ansible.write_playbook(SMOKE_PLAY, "smoke.yml")
    variables = os.path.join(ansible.workdir, "checks.yml")
    with open(variables, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"checks": checks}, handle)
    result_file = os.path.join(ansible.workdir, "result.json")
    run = ansible.playbook(playbook, "-e", "@" + variables, "-e", "result_file=%s" % result_file, *extra)
    with open(result_file, encoding="utf-8") as handle:
        return run.returncode, json.load(handle), run.output


def _by_name(result: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in result["results"]}


def _assert_every_failure_reported(result: dict) -> None:
    assert result["failed"] is True and result["passed"] is False
    assert result["failed_checks"] == [
        "server error",
        "too slow",
        "wrong json",
        "tls expiring",
        "port closed",
        "command fails",
    ]
    results = _by_name(result)
    assert results["healthy"]["passed"] and results["healthy"]["observed"]["status"] == 200
    assert results["server error"]["failures"] == ["status 500, expected 200"]
    assert results["too slow"]["observed"]["status"] == 200
    assert results["too slow"]["failures"][0].startswith("latency ")
    assert "over the ceiling of 300 ms" in results["too slow"]["failures"][0]
    assert results["wrong json"]["failures"] == [
        'json status is "degraded", expected "ok"',
        'json components (["cache"]) does not contain "db"',
    ]
    assert results["tls healthy"]["passed"] and results["tls healthy"]["observed"]["cert_days_left"] >= 199
    assert results["tls expiring"]["observed"]["cert_days_left"] == 5
    assert results["tls expiring"]["failures"] == ["certificate expires in 5 days, fewer than 30"]
    assert results["port open"]["passed"]
    assert results["port closed"]["failures"][0].startswith("connect to 127.0.0.1:")
    assert "refused" in results["port closed"]["failures"][0]
    assert results["command ok"]["passed"] and results["command ok"]["observed"]["rc"] == 0
    assert results["command fails"]["attempts"] == 2
    assert results["command fails"]["failures"] == ["exit code 3, expected 0"]
    assert "6 of 10 smoke checks failed" in result["msg"]
    # The table in the message names each failed check with its reason.
    assert any(line.startswith("FAIL") and "wrong json" in line for line in result["summary"])
    assert sum(1 for line in result["summary"] if line.startswith("PASS")) == 4


def test_all_failures_reported_in_one_run_with_junit(ansible: Ansible, http_services: HttpServices) -> None:
    junit_path = os.path.join(ansible.workdir, "reports", "smoke.xml")
    code, result, output = _run(ansible, _checks(http_services), "-e", "junit_path=%s" % junit_path)
    assert code == 0, output
    _assert_every_failure_reported(result)
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "10" and suite.get("failures") == "6"
    failed_cases = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    assert failed_cases["healthy"] is None
    expiring = failed_cases["tls expiring"]
    assert expiring is not None and expiring.get("message") == "certificate expires in 5 days, fewer than 30"


def test_run_from_targets_gives_the_same_report(ansible: Ansible, http_services: HttpServices) -> None:
    code, result, output = _run(ansible, _checks(http_services), "-e", "run_from=targets")
    assert code == 0, output
    _assert_every_failure_reported(result)
    assert all(entry["host"] == "localhost" for entry in result["results"])


def test_healthy_service_passes(ansible: Ansible, http_services: HttpServices) -> None:
    checks = [check for check in _checks(http_services) if check["name"] in ("healthy", "tls healthy", "port open")]
    code, result, output = _run(ansible, checks)
    assert code == 0, output
    assert result["passed"] is True and result.get("failed", False) is False
    assert result["failed_checks"] == [] and result["msg"] == "all 3 smoke checks passed"


def test_check_mode_skips_commands(ansible: Ansible, http_services: HttpServices, tmp_path: os.PathLike) -> None:
    marker = os.path.join(str(tmp_path), "touched")
    checks = [
        {"name": "healthy", "url": http_services.http_url + "/healthz"},
        {"name": "writes", "command": ["touch", marker]},
    ]
    code, result, output = _run(ansible, checks, "--check")
    assert code == 0, output
    assert result["passed"] is True
    assert _by_name(result)["writes"]["skipped"] is True
    assert not os.path.exists(marker)


def test_bad_definition_is_named(ansible: Ansible, http_services: HttpServices) -> None:
    checks = [
        {"name": "healthy", "url": http_services.http_url + "/healthz"},
        {"name": "typo", "url": http_services.http_url + "/healthz", "staus": 200},
    ]
    code, result, output = _run(ansible, checks)
    assert code == 0, output
    assert result["failed"] is True
    assert "check 'typo' (http): unknown field(s) staus" in result["msg"]
    assert "results" not in result
