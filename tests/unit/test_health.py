"""Parsing the health gate's conditions: every mistake named before Prometheus is asked."""

from __future__ import annotations

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.health import HealthGateError, parse_conditions


def test_conditions_and_comparisons_are_parsed() -> None:
    parsed = parse_conditions(
        [{"name": "errors", "query": "x", "below": 0.01}, {"query": "y", "above": 1, "range": {"duration": 60}}],
        [{"name": "latency", "canary_query": "c", "baseline_query": "b", "max_ratio": 1.5}],
    )
    assert [condition.name for condition in parsed] == ["errors", "condition-2", "latency"]
    assert parsed[1].range_seconds == 60 and parsed[1].step_seconds == 6
    assert parsed[2].is_comparison and parsed[2].below == 1.5
    assert parsed[0].describe() == "< 0.01" and parsed[2].describe() == "canary/baseline < 1.5"


@pytest.mark.parametrize(
    ("conditions", "baseline", "message"),
    [
        ([], [], "give at least one entry"),
        ([{"name": "a", "query": "x"}], [], "'a' needs below, above or both"),
        ([{"name": "a", "below": 1}], [], "condition 'a' has no query"),
        ([{"name": "a", "query": "x", "below": "low"}], [], "'a': below 'low' is not a number"),
        ([{"name": "a", "query": "x", "below": 1, "no_data": "ok"}], [], "'a': no_data 'ok' is not one of"),
        ([{"name": "a", "query": "x", "below": 1, "reduce": "p99"}], [], "reduce 'p99' is not one of"),
        ([{"name": "a", "query": "x", "below": 1, "range": {"duration": 0}}], [], "duration 0 must be a positive"),
        ([{"name": "a", "query": "x", "below": 1, "treshold": 2}], [], "unknown field\\(s\\) treshold"),
        ([], [{"name": "c", "canary_query": "x", "baseline_query": "y"}], "'c' needs max_ratio above 0"),
        ([{"name": "a", "query": "x", "below": 1}, {"name": "a", "query": "y", "below": 1}], [], "repeated: a"),
    ],
)
def test_mistakes_are_named(conditions: list, baseline: list, message: str) -> None:
    with pytest.raises(HealthGateError, match=message):
        parse_conditions(conditions, baseline)
