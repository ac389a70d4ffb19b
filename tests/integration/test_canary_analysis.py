"""relops.release.canary_analysis through real ansible-playbook runs: metrics from a real
Prometheus scraping demo apps driven into error states, probe statistics from the apps
themselves, and a canary with no traffic judged by each configured no-data verdict."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import yaml
from fixtures.audit import audit_environment, read_events
from fixtures.canary import ScrapingPrometheus
from fixtures.playbooks import Ansible
from fixtures.prometheus import PrometheusStack

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

ANALYSES_PLAY = """
- name: Analyse
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run each analysis
      ansible.builtin.include_tasks: analysis.yml
      loop: "{{ analyses }}"
      loop_control:
        loop_var: analysis
        index_var: analysis_index
"""

ANALYSIS_FILE = """
- name: Analysis {{ analysis_index }}
  relops.release.canary_analysis:
    prometheus_url: "{{ analysis.prometheus_url | default(omit) }}"
    probe: "{{ analysis.probe | default(omit) }}"
    metrics: "{{ analysis.metrics }}"
    interval: "{{ analysis.interval | default(1) }}"
    count: "{{ analysis.count | default(1) }}"
    failure_limit: "{{ analysis.failure_limit | default(0) }}"
    inconclusive_limit: "{{ analysis.inconclusive_limit | default(0) }}"
    no_data: "{{ analysis.no_data | default('inconclusive') }}"
    label: "{{ analysis.label | default(omit) }}"
    subject: "{{ analysis.subject | default(omit) }}"
    fail_on: "{{ analysis.fail_on | default(['failed', 'inconclusive']) }}"
  register: outcome
  ignore_errors: true
- name: Keep the result for the test
  ansible.builtin.copy:
    content: "{{ outcome | to_nice_json }}"
    dest: "{{ result_dir }}/analysis-{{ analysis_index }}.json"
    mode: "0600"
"""


def error_ratio(track: str) -> str:
    return (
        'sum(rate(demo_requests_total{track="%s",code="500"}[5s])) / sum(rate(demo_requests_total{track="%s"}[5s]))'
        % (track, track)
    )


def p95(track: str) -> str:
    return 'histogram_quantile(0.95, sum by (le) (rate(demo_request_duration_seconds_bucket{track="%s"}[5s])))' % track


def canary_metrics(track: str) -> list[dict]:
    return [
        {
            "name": "error ratio",
            "query": error_ratio(track),
            "success_condition": "result < 0.01",
            "failure_condition": "result >= 0.05",
        },
        {"name": "p95 latency", "query": p95(track), "success_condition": "result < 0.3"},
    ]


@pytest.fixture
def stack(prometheus_stack: PrometheusStack) -> Iterator[PrometheusStack]:
    prometheus_stack.reset_faults()
    prometheus_stack.wait_until(error_ratio("canary"), lambda values: values == [0.0])
    yield prometheus_stack
    prometheus_stack.reset_faults()


def run_analyses(
    ansible: Ansible, analyses: list[dict], env: dict[str, str] | None = None
) -> tuple[int, list[dict], str]:
    playbook = ansible.write_playbook(ANALYSES_PLAY, "analyse.yml")
    ansible.write_playbook(ANALYSIS_FILE, "analysis.yml")
    vars_file = os.path.join(ansible.workdir, "analyses.yml")
    with open(vars_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"analyses": analyses, "result_dir": ansible.workdir}, handle)
    run = ansible.playbook(playbook, "-e", "@" + vars_file, env=env)
    results = []
    for index in range(len(analyses)):
        with open(os.path.join(ansible.workdir, "analysis-%d.json" % index), encoding="utf-8") as handle:
            results.append(json.load(handle))
    return run.returncode, results, run.output


def test_healthy_canary_is_successful_recorded_and_audited(ansible: Ansible, stack: PrometheusStack) -> None:
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    analysis = {
        "prometheus_url": stack.url,
        "metrics": canary_metrics("canary"),
        "count": 3,
        "label": "step 1 at 5%",
        "subject": "demo-app 1.0.0 canary",
    }
    code, (result,), output = run_analyses(
        ansible, [analysis], env=dict(audit_environment(trail), RELOPS_LEDGER_URL=ledger)
    )
    assert code == 0, output
    assert result["verdict"] == "successful" and result["decision"] == "allow" and not result.get("failed")
    assert result["rounds"] == 3 and result["recorded"] is True
    errors, latency = result["metrics"]
    assert [entry["value"] for entry in errors["measurements"]] == [0.0, 0.0, 0.0]
    assert all(0 < entry["value"] < 0.3 and entry["phase"] == "successful" for entry in latency["measurements"])
    with open_ledger(parse_ledger_url(ledger)) as opened:
        stored = opened.list_decisions(subject="demo-app 1.0.0 canary")
    assert [(row["gate"], row["decision"]) for row in stored] == [("canary_analysis", "allow")]
    assert stored[0]["inputs_digest"] == result["inputs_digest"]
    events = [event for event in read_events(trail) if event.get("kind") == "canary_analysis"]
    assert len(events) == 1
    audited = events[0]["data"]
    assert audited["verdict"] == "successful" and audited["label"] == "step 1 at 5%"
    assert [len(metric["measurements"]) for metric in audited["metrics"]] == [3, 3]


def test_canary_returning_errors_fails_at_the_first_measurement(ansible: Ansible, stack: PrometheusStack) -> None:
    stack.canary.set_faults(error_ratio=0.5)
    stack.wait_until(error_ratio("canary"), lambda values: bool(values) and values[0] > 0.3)
    analyses = [
        {"prometheus_url": stack.url, "metrics": canary_metrics("canary"), "count": 5, "interval": 2},
        # The stable track is untouched: the same analysis on it stays successful.
        {"prometheus_url": stack.url, "metrics": canary_metrics("stable"), "count": 2},
    ]
    code, (canary, stable), output = run_analyses(ansible, analyses)
    assert code == 0, output
    assert canary["verdict"] == "failed" and canary["failed"] is True and canary["rounds"] == 1
    errors = canary["metrics"][0]
    assert errors["phase"] == "failed" and errors["measurements"][0]["value"] > 0.3
    assert "failure_condition 'result >= 0.05' holds" in errors["measurements"][0]["detail"]
    assert canary["reasons"][0].startswith("error ratio failed: 1 failed measurement(s), over failure_limit 0")
    assert "canary analysis failed" in canary["msg"]
    assert stable["verdict"] == "successful"


def test_probe_statistics_judge_the_canary_without_prometheus(ansible: Ansible, stack: PrometheusStack) -> None:
    stack.canary.set_faults(error_ratio=0.5)
    metrics = [
        {"name": "errors", "statistic": "error_rate", "success_condition": "result <= 0.05"},
        {"name": "p99", "statistic": "latency_p99", "success_condition": "result < 30"},
    ]
    analyses = [
        {"probe": {"url": stack.canary.url + "/", "requests": 20}, "metrics": metrics, "count": 2, "fail_on": []},
        {"probe": {"url": stack.stable.url + "/", "requests": 20}, "metrics": metrics, "count": 2, "fail_on": []},
    ]
    code, (canary, stable), output = run_analyses(ansible, analyses)
    assert code == 0, output
    assert canary["verdict"] == "failed" and not canary.get("failed") and canary["rounds"] == 1
    probe = canary["metrics"][0]["measurements"][0]
    assert probe["probe"]["requests"] == 20 and probe["probe"]["statuses"]["500"] >= 5 and probe["value"] >= 0.25
    assert stable["verdict"] == "successful" and stable["rounds"] == 2
    assert all(entry["value"] == 0.0 for entry in stable["metrics"][0]["measurements"])
    assert all(0 < entry["value"] < 30 for entry in stable["metrics"][1]["measurements"])


def test_canary_without_traffic_follows_the_no_data_verdict(
    ansible: Ansible, scraping_prometheus: ScrapingPrometheus
) -> None:
    idle = scraping_prometheus.start_app("idle")
    scraping_prometheus.scrape({"idle": idle.port})
    # Scraped (the counters exist, at 0) yet never requested: the ratio is 0/0, which Prometheus leaves out.
    scraping_prometheus.wait_until('sum(rate(demo_requests_total{track="idle"}[5s]))', lambda values: values == [0.0])
    metric = {"name": "error ratio", "query": error_ratio("idle"), "success_condition": "result < 0.01"}
    base = {"prometheus_url": scraping_prometheus.url, "metrics": [metric], "fail_on": []}
    analyses = [
        dict(base, no_data="pass", count=2),
        dict(base, no_data="fail", count=3),
        dict(base, no_data="inconclusive", count=3, inconclusive_limit=1),
        # The metric's own no_data wins over the run's.
        dict(base, metrics=[dict(metric, no_data="fail")], no_data="pass"),
    ]
    code, (passing, failing, inconclusive, overridden), output = run_analyses(ansible, analyses)
    assert code == 0, output
    assert passing["verdict"] == "successful" and passing["rounds"] == 2
    assert [entry["value"] for entry in passing["metrics"][0]["measurements"]] == [None, None]
    assert failing["verdict"] == "failed" and failing["rounds"] == 1 and failing["decision"] == "deny"
    assert "no data; no_data: fail makes it failed" in failing["metrics"][0]["measurements"][0]["detail"]
    assert inconclusive["verdict"] == "inconclusive" and inconclusive["rounds"] == 2
    assert inconclusive["decision"] == "wait" and inconclusive["metrics"][0]["inconclusive"] == 2
    assert overridden["verdict"] == "failed"


def test_mistakes_fail_the_task_with_the_metric_named(ansible: Ansible) -> None:
    analyses = [
        {"metrics": [{"name": "errors", "statistic": "error_rate", "success_condition": "value < 1"}], "probe": {}},
        {"metrics": [{"name": "errors", "query": "up", "success_condition": "result < 1"}]},
    ]
    code, (unknown_name, no_prometheus), output = run_analyses(ansible, analyses)
    assert code == 0, output
    assert unknown_name["failed"] is True
    assert "metric 'errors': success_condition 'value < 1' uses value" in unknown_name["msg"]
    assert no_prometheus["failed"] is True and "prometheus_url is not set" in no_prometheus["msg"]


def test_documentation_renders(ansible: Ansible) -> None:
    page = ansible.doc("relops.release.canary_analysis")
    assert page.returncode == 0, page.report
    assert "EXAMPLES:" in page.stdout and "RETURN VALUES:" in page.stdout and "ledger_url" in page.stdout
    data = json.loads(ansible.doc("--json", "relops.release.canary_analysis").stdout)["relops.release.canary_analysis"]
    assert data["doc"]["options"]["no_data"]["choices"] == ["pass", "fail", "inconclusive"]
    assert data["doc"]["attributes"]["check_mode"]["support"] == "full"
    for name in ("canary_layout", "canary_servers", "canary_steps"):
        filter_page = ansible.doc("-t", "filter", "relops.release.%s" % name)
        assert filter_page.returncode == 0 and "EXAMPLES:" in filter_page.stdout, filter_page.report
    role = json.loads(ansible.doc("-t", "role", "--json", "relops.release.canary").stdout)["relops.release.canary"]
    assert set(role["entry_points"]) == {"main", "abort", "promote"}
    assert role["entry_points"]["main"]["options"]["canary_steps"]["default"] == [5, 25, 50, 100]
