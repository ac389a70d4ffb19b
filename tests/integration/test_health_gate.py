"""relops.release.health_gate through real ansible-playbook runs against a real Prometheus
scraping the demo app, driven into error and latency states."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import yaml
from fixtures.playbooks import Ansible
from fixtures.prometheus import PrometheusStack

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

GATES_PLAY = """
- name: Health
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run each gate
      ansible.builtin.include_tasks: gate.yml
      loop: "{{ gates }}"
      loop_control:
        loop_var: gate
        index_var: gate_index
"""

GATE_FILE = """
- name: Gate {{ gate_index }}
  relops.release.health_gate:
    prometheus_url: "{{ prometheus_url }}"
    conditions: "{{ gate.conditions | default([]) }}"
    baseline: "{{ gate.baseline | default([]) }}"
    interval: "{{ gate.interval | default(1) }}"
    count: "{{ gate.count | default(1) }}"
    failure_limit: "{{ gate.failure_limit | default(0) }}"
    inconclusive_limit: "{{ gate.inconclusive_limit | default(0) }}"
    no_data: "{{ gate.no_data | default('inconclusive') }}"
    subject: "{{ gate.subject | default(omit) }}"
  register: outcome
  ignore_errors: true
- name: Keep the result for the test
  ansible.builtin.copy:
    content: "{{ outcome | to_nice_json }}"
    dest: "{{ result_dir }}/gate-{{ gate_index }}.json"
    mode: "0600"
"""


def error_ratio(track: str) -> str:
    return (
        'sum(rate(demo_requests_total{track="%s",code="500"}[5s])) / sum(rate(demo_requests_total{track="%s"}[5s]))'
        % (track, track)
    )


def p95(track: str) -> str:
    return 'histogram_quantile(0.95, sum by (le) (rate(demo_request_duration_seconds_bucket{track="%s"}[5s])))' % track


def mean_latency(track: str) -> str:
    return (
        'sum(rate(demo_request_duration_seconds_sum{track="%s"}[5s]))'
        ' / sum(rate(demo_request_duration_seconds_count{track="%s"}[5s]))' % (track, track)
    )


HEALTHY_CONDITIONS = [
    {"name": "error ratio", "query": error_ratio("stable"), "below": 0.01},
    {"name": "p95 latency", "query": p95("stable"), "below": 0.3},
]


@pytest.fixture
def stack(prometheus_stack: PrometheusStack) -> Iterator[PrometheusStack]:
    """The shared Prometheus, with both apps back to healthy and the metrics showing it."""
    prometheus_stack.reset_faults()
    prometheus_stack.wait_until(error_ratio("stable"), lambda values: values == [0.0])
    # Range conditions look back 10 s: wait until that whole window is clean of an earlier test's faults.
    prometheus_stack.wait_until(
        "max_over_time((%s)[12s:1s])" % error_ratio("stable"), lambda values: values == [0.0], timeout=60
    )
    prometheus_stack.wait_until(p95("stable"), lambda values: bool(values) and values[0] < 0.1)
    yield prometheus_stack
    prometheus_stack.reset_faults()


def run_gates(ansible: Ansible, stack: PrometheusStack, gates: list[dict], ledger: str = "") -> tuple[int, list, str]:
    playbook = ansible.write_playbook(GATES_PLAY, "health.yml")
    ansible.write_playbook(GATE_FILE, "gate.yml")
    vars_file = os.path.join(ansible.workdir, "gates.yml")
    with open(vars_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"gates": gates, "prometheus_url": stack.url, "result_dir": ansible.workdir}, handle)
    env = {"RELOPS_LEDGER_URL": ledger} if ledger else None
    run = ansible.playbook(playbook, "-e", "@" + vars_file, env=env)
    results = []
    for index in range(len(gates)):
        with open(os.path.join(ansible.workdir, "gate-%d.json" % index), encoding="utf-8") as handle:
            results.append(json.load(handle))
    return run.returncode, results, run.output


def test_healthy_metrics_pass_and_are_recorded(ansible: Ansible, stack: PrometheusStack) -> None:
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    code, (gate,), output = run_gates(
        ansible, stack, [{"conditions": HEALTHY_CONDITIONS, "count": 3, "subject": "demo-app 1.0.0 local"}], ledger
    )
    assert code == 0, output
    assert gate["verdict"] == "pass" and gate["decision"] == "allow" and gate.get("failed", False) is False
    assert [measurement["verdict"] for measurement in gate["measurements"]] == ["pass", "pass", "pass"]
    first = gate["measurements"][0]["conditions"]
    assert [entry["name"] for entry in first] == ["error ratio", "p95 latency"]
    assert first[0]["value"] == 0.0 and 0 < first[1]["value"] < 0.3
    with open_ledger(parse_ledger_url(ledger)) as opened:
        stored = opened.list_decisions(subject="demo-app 1.0.0 local")
    assert [row["decision"] for row in stored] == ["allow"] and stored[0]["gate"] == "health_gate"
    assert stored[0]["inputs_digest"] == gate["inputs_digest"]


def test_rising_error_ratio_fails_within_failure_limit(ansible: Ansible, stack: PrometheusStack) -> None:
    stack.stable.set_faults(error_ratio=0.2)
    stack.wait_until(error_ratio("stable"), lambda values: bool(values) and values[0] > 0.1)
    code, (gate,), output = run_gates(
        ansible, stack, [{"conditions": HEALTHY_CONDITIONS, "count": 10, "failure_limit": 2}]
    )
    assert code == 0, output
    assert gate["verdict"] == "fail" and gate["decision"] == "deny" and gate["failed"] is True
    # The gate stops at the first measurement over the limit instead of sitting out all ten.
    assert len(gate["measurements"]) == 3 and gate["failures"] == 3
    ratios = [measurement["conditions"][0] for measurement in gate["measurements"]]
    assert all(entry["verdict"] == "fail" and entry["value"] > 0.1 for entry in ratios)
    assert all(measurement["conditions"][1]["verdict"] == "pass" for measurement in gate["measurements"])
    assert gate["reasons"][0] == "3 failed measurement(s) in 3, over the limit of 2"
    assert gate["reasons"][1].startswith("error ratio: value ")


def test_latency_state_fails_the_p95_condition(ansible: Ansible, stack: PrometheusStack) -> None:
    stack.stable.set_faults(latency=0.4)
    stack.wait_until(p95("stable"), lambda values: bool(values) and values[0] > 0.3)
    code, (gate,), output = run_gates(
        ansible, stack, [{"conditions": HEALTHY_CONDITIONS, "count": 2, "failure_limit": 1}]
    )
    assert code == 0, output
    assert gate["verdict"] == "fail"
    latencies = [measurement["conditions"][1] for measurement in gate["measurements"]]
    assert [entry["verdict"] for entry in latencies] == ["fail", "fail"]
    assert all(entry["value"] > 0.3 for entry in latencies)


def test_no_data_verdicts_behave_as_configured(ansible: Ansible, stack: PrometheusStack) -> None:
    missing = [{"name": "absent", "query": 'sum(rate(demo_requests_total{track="nowhere"}[5s]))', "below": 1}]
    gates = [
        {"conditions": missing, "no_data": "pass", "count": 2},
        {"conditions": missing, "no_data": "fail", "count": 3},
        {"conditions": missing, "no_data": "inconclusive", "count": 4, "inconclusive_limit": 1},
        # A condition's own no_data wins over the gate's.
        {"conditions": [dict(missing[0], no_data="pass"), HEALTHY_CONDITIONS[0]], "no_data": "fail"},
        # A range query over a window: the worst sample in it counts.
        {
            "conditions": [
                {
                    "name": "ratio over 10s",
                    "query": error_ratio("stable"),
                    "below": 0.01,
                    "range": {"duration": 10, "step": 2},
                }
            ]
        },
    ]
    code, results, output = run_gates(ansible, stack, gates)
    assert code == 0, output
    passing, failing, inconclusive, overridden, ranged = results
    assert passing["verdict"] == "pass" and len(passing["measurements"]) == 2
    assert passing["measurements"][0]["conditions"][0]["value"] is None
    assert "no data" in passing["measurements"][0]["conditions"][0]["detail"]
    assert failing["verdict"] == "fail" and failing["decision"] == "deny" and len(failing["measurements"]) == 1
    assert inconclusive["verdict"] == "inconclusive" and inconclusive["decision"] == "wait"
    assert inconclusive["failed"] is True and len(inconclusive["measurements"]) == 2
    assert inconclusive["reasons"][0] == "2 inconclusive measurement(s) in 2, over the limit of 1"
    assert overridden["verdict"] == "pass"
    assert ranged["verdict"] == "pass" and ranged["measurements"][0]["conditions"][0]["value"] == 0.0


def test_baseline_comparison_catches_a_canary_twice_as_slow(ansible: Ansible, stack: PrometheusStack) -> None:
    comparison = [
        {
            "name": "mean latency vs stable",
            "canary_query": mean_latency("canary"),
            "baseline_query": mean_latency("stable"),
            "max_ratio": 1.5,
        }
    ]
    stack.stable.set_faults(latency=0.05)
    stack.canary.set_faults(latency=0.05)
    stack.wait_until(mean_latency("canary"), lambda values: bool(values) and values[0] > 0.045)
    stack.wait_until(mean_latency("stable"), lambda values: bool(values) and values[0] > 0.045)
    code, (same,), output = run_gates(ansible, stack, [{"baseline": comparison, "count": 2}])
    assert code == 0, output
    assert same["verdict"] == "pass"
    assert all(0.7 < measurement["conditions"][0]["value"] < 1.3 for measurement in same["measurements"])

    stack.canary.set_faults(latency=0.1)
    stack.wait_until(mean_latency("canary"), lambda values: bool(values) and values[0] > 0.095)
    code, (slow,), output = run_gates(ansible, stack, [{"baseline": comparison, "count": 3}])
    assert code == 0, output
    assert slow["verdict"] == "fail" and slow["failed"] is True and len(slow["measurements"]) == 1
    entry = slow["measurements"][0]["conditions"][0]
    assert entry["verdict"] == "fail" and 1.6 < entry["value"] < 2.4
    assert entry["detail"].startswith("canary ")


def test_bad_promql_fails_with_prometheus_reason(ansible: Ansible, stack: PrometheusStack) -> None:
    code, (gate,), output = run_gates(
        ansible, stack, [{"conditions": [{"name": "typo", "query": "sum(rate(demo_requests_total[5s]", "below": 1}]}]
    )
    assert code == 0, output
    assert gate["failed"] is True and "measurements" not in gate
    assert gate["msg"].startswith("query 'sum(rate(demo_requests_total[5s]' was refused by Prometheus (bad_data")
