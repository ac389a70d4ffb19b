"""The canary analysis run: Argo's condition rules, limits, no-data verdicts and probe statistics."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.plugin_utils.canary_analysis import (
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    AnalysisError,
    Metric,
    judge,
    parse_metrics,
    parse_probe,
    percentile,
    probe_statistics,
    run_analysis,
)


def metric(**settings: Any) -> Metric:
    entry = {"name": "m", "statistic": "error_rate", **settings}
    return parse_metrics([entry], "inconclusive", 0, 0, has_prometheus=False)[0]


@pytest.mark.parametrize(
    ("success", "failure", "value", "phase"),
    [
        ("result < 0.01", None, 0.0, SUCCESSFUL),
        ("result < 0.01", None, 0.5, FAILED),
        (None, "result >= 0.05", 0.5, FAILED),
        (None, "result >= 0.05", 0.01, SUCCESSFUL),
        ("result < 0.01", "result >= 0.05", 0.001, SUCCESSFUL),
        ("result < 0.01", "result >= 0.05", 0.2, FAILED),
        ("result < 0.01", "result >= 0.05", 0.03, INCONCLUSIVE),
        # Argo checks the failure condition first: a value meeting both fails.
        ("result < 1", "result > 0.5", 0.7, FAILED),
        ("result >= 0 and result <= 0.3", None, 0.25, SUCCESSFUL),
    ],
)
def test_conditions_decide_as_argo_does(
    success: Optional[str], failure: Optional[str], value: float, phase: str
) -> None:
    settings = {key: text for key, text in (("success_condition", success), ("failure_condition", failure)) if text}
    assert judge(metric(**settings), value)["phase"] == phase


@pytest.mark.parametrize(("no_data", "phase"), [("pass", SUCCESSFUL), ("fail", FAILED), ("inconclusive", INCONCLUSIVE)])
def test_no_data_takes_the_configured_verdict(no_data: str, phase: str) -> None:
    judged = judge(metric(success_condition="result < 1", no_data=no_data), None)
    assert judged["phase"] == phase and judged["value"] is None and "no data" in judged["detail"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "a", "statistic": "error_rate"}, "'a' needs success_condition, failure_condition or both"),
        ({"name": "a", "statistic": "p99", "success_condition": "result < 1"}, "statistic 'p99' is not one of"),
        ({"name": "a", "query": "up", "success_condition": "result < 1"}, "prometheus_url is not set"),
        ({"name": "a", "statistic": "error_rate", "success_condition": "result <"}, "is not a valid expression"),
        ({"name": "a", "statistic": "error_rate", "success_condition": "value < 1"}, "uses value; the only value"),
        ({"name": "a", "statistic": "error_rate", "success_condition": "result", "no_data": "ok"}, "no_data 'ok'"),
        (
            {"name": "a", "statistic": "error_rate", "success_condition": "result", "failure_limit": -1},
            "failure_limit -1",
        ),
        ({"name": "a", "statistic": "error_rate", "succes_condition": "x"}, "unknown field\\(s\\) succes_condition"),
        ({"name": "a", "provider": "datadog", "success_condition": "result"}, "provider 'datadog' is not one of"),
        ({"name": "a", "statistic": "error_rate", "query": "up", "success_condition": "result"}, "query belongs"),
    ],
)
def test_mistakes_are_named(entry: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        parse_metrics([entry], "inconclusive", 0, 0, has_prometheus=False)


def test_prometheus_metric_needs_query_and_reads_range() -> None:
    with pytest.raises(AnalysisError, match="'a' has no query"):
        parse_metrics([{"name": "a", "provider": "prometheus", "success_condition": "result"}], "pass", 0, 0, True)
    parsed = parse_metrics(
        [{"name": "a", "query": "up", "range": {"duration": 60, "step": 5}, "failure_condition": "result > 1"}],
        "pass",
        2,
        1,
        True,
    )[0]
    assert (parsed.provider, parsed.range_seconds, parsed.step_seconds) == ("prometheus", 60, 5)
    assert (parsed.failure_limit, parsed.inconclusive_limit, parsed.no_data) == (2, 1, "pass")


def test_repeated_names_are_refused() -> None:
    entry = {"name": "a", "statistic": "error_rate", "success_condition": "result < 1"}
    with pytest.raises(AnalysisError, match="repeated: a"):
        parse_metrics([entry, entry], "pass", 0, 0, False)


def test_a_condition_that_is_not_a_comparison_is_an_error() -> None:
    with pytest.raises(AnalysisError, match=r"gave 2\.0, not true or false"):
        judge(metric(success_condition="result * 2"), 1.0)


def scripted(values: dict[str, list[Optional[float]]]) -> Any:
    """A measurer answering from per-metric lists, one value per round."""
    rounds = {"n": 0}

    def measure(metrics: list[Metric]) -> list[dict[str, Any]]:
        index = rounds["n"]
        rounds["n"] += 1
        return [judge(item, values[item.name][index]) for item in metrics]

    return measure


def test_failure_limit_tolerates_then_fails_and_stops_early() -> None:
    metrics = parse_metrics(
        [{"name": "errors", "statistic": "error_rate", "success_condition": "result < 0.1", "failure_limit": 1}],
        "fail",
        0,
        0,
        False,
    )
    sleeps: list[float] = []
    outcome = run_analysis(metrics, scripted({"errors": [0.0, 0.5, 0.0, 0.5, 0.0]}), 7, 5, sleeps.append)
    assert outcome.verdict == FAILED and outcome.rounds == 4 and sleeps == [7, 7, 7]
    tally = outcome.metrics[0]
    assert (tally["successful"], tally["failed"], tally["phase"]) == (2, 2, FAILED)
    assert [entry["value"] for entry in tally["measurements"]] == [0.0, 0.5, 0.0, 0.5]
    assert "errors failed: 2 failed measurement(s), over failure_limit 1" in outcome.reasons[0]


def test_within_limits_the_run_succeeds_after_count_rounds() -> None:
    metrics = parse_metrics(
        [
            {"name": "errors", "statistic": "error_rate", "success_condition": "result < 0.1", "failure_limit": 1},
            {"name": "latency", "statistic": "latency_p95", "success_condition": "result < 0.3"},
        ],
        "inconclusive",
        0,
        1,
        False,
    )
    values = {"errors": [0.0, 0.2, 0.0], "latency": [0.1, None, 0.2]}
    outcome = run_analysis(metrics, scripted(values), 0, 3, lambda seconds: None)
    assert outcome.verdict == SUCCESSFUL and outcome.rounds == 3
    assert [item["phase"] for item in outcome.metrics] == [SUCCESSFUL, SUCCESSFUL]
    assert outcome.metrics[1]["inconclusive"] == 1


def test_inconclusive_over_the_limit_makes_the_run_inconclusive_but_failure_wins() -> None:
    entries = [
        {"name": "a", "statistic": "error_rate", "success_condition": "result < 0.1"},
        {"name": "b", "statistic": "latency_p95", "success_condition": "result < 0.1"},
    ]
    metrics = parse_metrics(entries, "inconclusive", 0, 0, False)
    only_missing = run_analysis(metrics, scripted({"a": [0.0], "b": [None]}), 0, 3, lambda seconds: None)
    assert only_missing.verdict == INCONCLUSIVE and only_missing.rounds == 1
    both = run_analysis(metrics, scripted({"a": [0.9], "b": [None]}), 0, 3, lambda seconds: None)
    assert both.verdict == FAILED and both.reasons == [
        "a failed: 1 failed measurement(s), over failure_limit 0; last result 0.9: "
        "success_condition 'result < 0.1' does not hold"
    ]


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=50))
def test_percentile_is_a_member_with_enough_values_below(values: list[float]) -> None:
    ordered = sorted(values)
    for quantile in (50, 90, 95, 99, 100):
        chosen = percentile(ordered, quantile)
        assert chosen in ordered
        assert sum(1 for value in ordered if value <= chosen) >= quantile / 100 * len(ordered)
    assert percentile(ordered, 100) == ordered[-1]


class _Every4thFails(http.server.BaseHTTPRequestHandler):
    served = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            type(self).served += 1
            fails = type(self).served % 4 == 0
        self.send_response(503 if fails else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def quarter_failing_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Every4thFails)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probe_statistics_count_5xx_as_errors(quarter_failing_url: str) -> None:
    metrics = parse_metrics(
        [{"name": "e", "statistic": "error_rate", "success_condition": "result < 1"}], "pass", 0, 0, False
    )
    settings = parse_probe({"url": quarter_failing_url, "requests": 40, "concurrency": 4}, metrics)
    assert settings is not None
    statistics = probe_statistics(settings)
    assert statistics["requests"] == 40 and statistics["errors"] == 10 and statistics["error_rate"] == 0.25
    assert statistics["statuses"] == {"200": 30, "503": 10}
    assert 0 < statistics["latency_p50"] <= statistics["latency_p99"] <= statistics["latency_max"]


def test_probe_of_a_closed_port_has_errors_but_no_latency() -> None:
    metrics = parse_metrics(
        [{"name": "p", "statistic": "latency_p95", "success_condition": "result < 1", "no_data": "fail"}],
        "pass",
        0,
        0,
        False,
    )
    settings = parse_probe({"url": "http://127.0.0.1:9/", "requests": 3, "timeout": 2}, metrics)
    assert settings is not None
    statistics = probe_statistics(settings)
    assert statistics["error_rate"] == 1.0 and statistics["latency_p95"] is None
    assert statistics["statuses"] == {"no answer": 3}
    assert judge(metrics[0], statistics["latency_p95"])["phase"] == FAILED


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (None, "needs probe.url"),
        ({"url": "ftp://x/"}, "is not an http:// or https:// URL"),
        ({"url": "http://x/", "method": "POST"}, "method 'POST' may change the canary"),
        ({"url": "http://x/", "requests": 0}, "requests and concurrency must be at least 1"),
        ({"url": "http://x/", "retries": 3}, "unknown field\\(s\\) retries"),
    ],
)
def test_probe_mistakes_are_named(probe: Optional[dict], message: str) -> None:
    metrics = parse_metrics(
        [{"name": "e", "statistic": "error_rate", "success_condition": "result < 1"}], "pass", 0, 0, False
    )
    with pytest.raises(AnalysisError, match=message):
        parse_probe(probe, metrics)
