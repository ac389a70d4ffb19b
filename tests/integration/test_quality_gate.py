"""relops.release.quality_gate through real ansible-playbook runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

import yaml
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

GATE_PLAY = """
- name: Quality
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Judge the test results
      relops.release.quality_gate:
        subject: payments-api 1.4.2
        release_class: "{{ release_class }}"
        junit: "{{ junit }}"
        coverage: "{{ coverage | default([]) }}"
        thresholds: "{{ thresholds | default({}) }}"
        peer_reviewed_by: "{{ reviewer | default(omit) }}"
      register: gate
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ gate | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _suite(name: str, cases: list[tuple[str, str]]) -> str:
    body = []
    for case, outcome in cases:
        inner = {
            "pass": "",
            "fail": "<failure message='boom'>trace</failure>",
            "error": "<error message='x'/>",
            "skip": "<skipped/>",
        }[outcome]
        body.append("<testcase classname='tests.%s' name='%s' time='0.1'>%s</testcase>" % (name, case, inner))
    return "<testsuite name='%s' tests='%d'>%s</testsuite>" % (name, len(cases), "".join(body))


def _cobertura(filename: str, hits: dict[int, int]) -> str:
    lines = "".join("<line number='%d' hits='%d'/>" % (number, count) for number, count in hits.items())
    return (
        "<?xml version='1.0'?><coverage line-rate='0' version='7'><packages><package name='app'><classes>"
        "<class name='app' filename='%s'><lines>%s</lines></class></classes></package></packages></coverage>"
        % (filename, lines)
    )


def _write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _reports(directory: str) -> dict[str, str]:
    return {
        "unit": _write(
            directory,
            "unit.xml",
            "<testsuites>%s</testsuites>"
            % _suite("unit", [("test_a", "pass"), ("test_b", "pass"), ("test_c", "skip")]),
        ),
        "shard1": _write(
            directory,
            "integration-shard-1.xml",
            _suite("integration", [("test_deploy", "pass"), ("test_rollback", "pass")]),
        ),
        "shard2": _write(
            directory,
            "integration-shard-2.xml",
            _suite("integration", [("test_switch", "pass"), ("test_rollback", "pass")]),
        ),
        "failing_shard": _write(
            directory,
            "integration-shard-3.xml",
            _suite("integration", [("test_canary", "fail"), ("test_drain", "error")]),
        ),
        "long": _write(directory, "long.xml", _suite("long", [("test_soak", "pass")])),
        # Two coverage shards over the same 10 lines: 6 and 3 covered alone, 8 together.
        "cov1": _write(directory, "coverage-1.xml", _cobertura("app.py", {n: int(n <= 6) for n in range(1, 11)})),
        "cov2": _write(
            directory, "coverage-2.xml", _cobertura("app.py", {n: int(n in (1, 7, 8)) for n in range(1, 11)})
        ),
        "broken": _write(directory, "integration-shard-4.xml", "<testsuite name='integration'><testcase></testsuite>"),
    }


def _run(ansible: Ansible, ledger_url: str, variables: dict, *extra: str) -> tuple[int, dict, str]:
    playbook = ansible.write_playbook(GATE_PLAY, "quality.yml")
    vars_file = os.path.join(ansible.workdir, "vars.yml")
    with open(vars_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump(variables, handle)
    result_file = os.path.join(ansible.workdir, "result.json")
    run = ansible.playbook(
        playbook,
        "-e",
        "@" + vars_file,
        "-e",
        "result_file=%s" % result_file,
        *extra,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    with open(result_file, encoding="utf-8") as handle:
        return run.returncode, json.load(handle), run.output


def test_merged_shards_allow_a_strategic_release(ansible: Ansible, ledger_url: str) -> None:
    reports = _reports(ansible.workdir)
    junit = [reports["unit"], os.path.join(ansible.workdir, "integration-shard-[12].xml"), reports["long"]]
    code, gate, output = _run(
        ansible,
        ledger_url,
        {"release_class": "strategic", "junit": junit, "coverage": [reports["cov1"], reports["cov2"]]},
    )
    assert code == 0, output
    assert gate["decision"] == "allow" and gate.get("failed", False) is False and gate["recorded"] is True
    # test_rollback ran in both shards and counts once.
    assert gate["tests"]["suites"]["integration"] == {"tests": 3, "failures": 0, "errors": 0, "skipped": 0, "shards": 2}
    assert gate["tests"]["total"]["tests"] == 7 and gate["tests"]["total"]["skipped"] == 1
    assert gate["coverage"]["lines_covered"] == 8 and gate["coverage"]["line_percent"] == 80.0
    assert gate["reasons"] == ["7 test(s) passed the strategic thresholds, line coverage 80.00%"]
    assert gate["inputs_digest"].startswith("sha256:")
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        stored = ledger.list_decisions(subject="payments-api 1.4.2")
    assert len(stored) == 1 and stored[0]["gate"] == "quality_gate" and stored[0]["decision"] == "allow"
    assert stored[0]["inputs_digest"] == gate["inputs_digest"] and stored[0]["reasons"] == gate["reasons"]


def test_thresholds_depend_on_the_class(ansible: Ansible, ledger_url: str) -> None:
    reports = _reports(ansible.workdir)
    unit_only = {"junit": [reports["unit"]], "coverage": [reports["cov1"]]}
    code, strategic, output = _run(ansible, ledger_url, {"release_class": "strategic", **unit_only})
    assert code == 0, output
    assert strategic["decision"] == "deny" and strategic["failed"] is True
    assert strategic["reasons"] == [
        "suite 'integration' is required for a strategic release but no report has it (suites: unit)",
        "suite 'long' is required for a strategic release but no report has it (suites: unit)",
        "line coverage 60.00% is below the 80.0% a strategic release needs",
    ]
    code, emergency, output = _run(ansible, ledger_url, {"release_class": "emergency", **unit_only})
    assert emergency["decision"] == "deny"
    assert emergency["reasons"] == ["an emergency release needs a peer review; set peer_reviewed_by to the reviewer"]
    code, reviewed, output = _run(
        ansible, ledger_url, {"release_class": "emergency", "reviewer": "alice-reviewer", **unit_only}
    )
    assert reviewed["decision"] == "allow", output
    code, lowered, output = _run(
        ansible,
        ledger_url,
        {
            "release_class": "operational",
            "junit": [reports["unit"], reports["shard1"]],
            "coverage": [reports["cov1"]],
            "thresholds": {"operational": {"min_line_coverage": 55}},
        },
    )
    assert lowered["decision"] == "allow" and lowered["thresholds"]["min_line_coverage"] == 55, output
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert [row["decision"] for row in ledger.list_decisions(subject="payments-api 1.4.2")] == [
            "allow",
            "allow",
            "deny",
            "deny",
        ]


def test_failures_and_malformed_xml_are_named(ansible: Ansible, ledger_url: str) -> None:
    reports = _reports(ansible.workdir)
    junit = [
        reports["unit"],
        reports["shard1"],
        reports["failing_shard"],
        reports["broken"],
        os.path.join(ansible.workdir, "missing-*.xml"),
    ]
    variables = {"release_class": "operational", "junit": junit, "coverage": [reports["cov1"], reports["cov2"]]}
    code, gate, output = _run(ansible, ledger_url, variables)
    assert code == 0, output
    assert gate["decision"] == "deny" and gate["failed"] is True
    reasons = gate["reasons"]
    assert reasons[0].startswith("junit report %s/missing-*.xml: no such file" % ansible.workdir)
    assert reasons[1].startswith("junit report %s is not well-formed XML (mismatched tag: line 1" % reports["broken"])
    assert reasons[2] == (
        "1 test failure(s), more than the 0 allowed: integration: tests.integration.test_canary "
        "(failure), integration: tests.integration.test_drain (error)"
    )
    assert reasons[3] == "1 test error(s), more than the 0 allowed"
    assert "integration-shard-4.xml is not well-formed XML" in gate["msg"]


def test_check_mode_decides_without_recording(ansible: Ansible, ledger_url: str) -> None:
    reports = _reports(ansible.workdir)
    variables = {"release_class": "emergency", "junit": [reports["unit"]], "reviewer": "alice-reviewer"}
    code, gate, output = _run(ansible, ledger_url, variables, "--check")
    assert code == 0, output
    assert gate["decision"] == "allow" and gate["recorded"] is False
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert ledger.list_decisions(subject="payments-api 1.4.2") == []
