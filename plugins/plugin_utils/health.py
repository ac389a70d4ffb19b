# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring health gate: conditions on Prometheus queries, measured
``count`` times every ``interval`` seconds, judged the way Argo Rollouts judges
an analysis run (failure and inconclusive limits), with an explicit verdict for
queries that return no data and an optional canary-versus-baseline ratio.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

try:
    import requests
except ImportError:  # reported when a gate runs, naming the fix
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

VERDICTS = ("pass", "fail", "inconclusive")
REDUCERS: Dict[str, Callable[[List[float]], float]] = {
    "max": max,
    "min": min,
    "avg": lambda values: sum(values) / len(values),
    "last": lambda values: values[-1],
}
_CONDITION_KEYS = ("name", "query", "below", "above", "range", "reduce", "no_data")
_COMPARISON_KEYS = ("name", "canary_query", "baseline_query", "max_ratio", "no_data")


class HealthGateError(ValueError):
    """The gate is configured wrongly or Prometheus refused a query; the message names which and why."""


@dataclass(frozen=True)
class Condition:
    """One threshold on one query; a comparison divides a canary query by a baseline query."""

    name: str
    query: str
    below: Optional[float] = None
    above: Optional[float] = None
    range_seconds: Optional[float] = None
    step_seconds: Optional[float] = None
    reduce: str = "max"
    no_data: Optional[str] = None
    baseline_query: Optional[str] = None

    @property
    def is_comparison(self) -> bool:
        return self.baseline_query is not None

    def describe(self) -> str:
        if self.is_comparison:
            return "canary/baseline < %g" % (self.below or 0)
        bounds = []
        if self.above is not None:
            bounds.append("> %g" % self.above)
        if self.below is not None:
            bounds.append("< %g" % self.below)
        return " and ".join(bounds)


@dataclass
class GateOutcome:
    verdict: str
    measurements: List[Dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    inconclusives: int = 0
    reasons: List[str] = field(default_factory=list)


def parse_conditions(conditions: Sequence[Any], comparisons: Sequence[Any]) -> List[Condition]:
    """Validate condition and comparison definitions; raise HealthGateError naming each problem."""
    parsed = [_parse_condition(entry, index) for index, entry in enumerate(conditions)]
    parsed += [_parse_comparison(entry, index) for index, entry in enumerate(comparisons)]
    if not parsed:
        raise HealthGateError("give at least one entry in conditions or baseline; see docs/validation.md")
    names = [condition.name for condition in parsed]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise HealthGateError("condition names must be unique, repeated: %s" % ", ".join(repeated))
    return parsed


def _parse_condition(entry: Any, index: int) -> Condition:
    name = _entry_name(entry, index, "condition")
    _refuse_unknown(entry, name, _CONDITION_KEYS)
    if not entry.get("query"):
        raise HealthGateError("condition %r has no query; give a PromQL expression" % name)
    below, above = _float(entry, name, "below"), _float(entry, name, "above")
    if below is None and above is None:
        raise HealthGateError("condition %r needs below, above or both (e.g. below: 0.01)" % name)
    range_seconds = step_seconds = None
    if entry.get("range") is not None:
        window = entry["range"]
        if not isinstance(window, dict) or "duration" not in window:
            raise HealthGateError("condition %r: range must be {duration: 60, step: 5} in seconds" % name)
        range_seconds = _positive(window["duration"], name, "range.duration")
        step_seconds = _positive(window.get("step", max(range_seconds / 10, 1)), name, "range.step")
    reduce = str(entry.get("reduce") or "max")
    if reduce not in REDUCERS:
        raise HealthGateError("condition %r: reduce %r is not one of %s" % (name, reduce, ", ".join(REDUCERS)))
    return Condition(
        name, str(entry["query"]), below, above, range_seconds, step_seconds, reduce, _no_data(entry, name)
    )


def _parse_comparison(entry: Any, index: int) -> Condition:
    name = _entry_name(entry, index, "baseline comparison")
    _refuse_unknown(entry, name, _COMPARISON_KEYS)
    for key in ("canary_query", "baseline_query"):
        if not entry.get(key):
            raise HealthGateError("baseline comparison %r has no %s; give a PromQL expression" % (name, key))
    max_ratio = _float(entry, name, "max_ratio")
    if max_ratio is None or max_ratio <= 0:
        raise HealthGateError("baseline comparison %r needs max_ratio above 0 (e.g. max_ratio: 1.5)" % name)
    return Condition(
        name,
        str(entry["canary_query"]),
        below=max_ratio,
        no_data=_no_data(entry, name),
        baseline_query=str(entry["baseline_query"]),
    )


def _entry_name(entry: Any, index: int, what: str) -> str:
    if not isinstance(entry, dict):
        raise HealthGateError("%s #%d is %r, not a mapping" % (what, index + 1, entry))
    return str(entry.get("name") or "%s-%d" % (what.rsplit(maxsplit=1)[-1], index + 1))


def _refuse_unknown(entry: Mapping[str, Any], name: str, allowed: Sequence[str]) -> None:
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise HealthGateError(
            "%r: unknown field(s) %s; allowed are %s" % (name, ", ".join(unknown), ", ".join(allowed))
        )


def _float(entry: Mapping[str, Any], name: str, key: str) -> Optional[float]:
    if entry.get(key) is None:
        return None
    try:
        return float(entry[key])
    except (TypeError, ValueError):
        raise HealthGateError("%r: %s %r is not a number" % (name, key, entry[key])) from None


def _positive(value: Any, name: str, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if number <= 0:
        raise HealthGateError("%r: %s %r must be a positive number of seconds" % (name, key, value))
    return number


def _no_data(entry: Mapping[str, Any], name: str) -> Optional[str]:
    value = entry.get("no_data")
    if value is not None and value not in VERDICTS:
        raise HealthGateError("%r: no_data %r is not one of %s" % (name, value, ", ".join(VERDICTS)))
    return None if value is None else str(value)


class Prometheus:
    """The Prometheus HTTP API: instant and range queries, numbers out, NaN and empty results as None."""

    def __init__(self, url: str, timeout: float, session: Optional["requests.Session"] = None) -> None:
        if not HAS_REQUESTS:
            raise HealthGateError("the health gate needs the requests library on the controller; pip install requests")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def instant(self, query: str) -> List[float]:
        data = self._get("/api/v1/query", {"query": query})
        return _values(data, query)

    def range(self, query: str, seconds: float, step: float) -> List[float]:
        end = time.time()
        data = self._get("/api/v1/query_range", {"query": query, "start": end - seconds, "end": end, "step": step})
        return _values(data, query)

    def _get(self, path: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        try:
            response = self.session.get(self.url + path, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailable("Prometheus at %s did not answer: %s" % (self.url, exc)) from None
        try:
            document: Dict[str, Any] = response.json()
        except ValueError:
            raise PrometheusUnavailable(
                "Prometheus at %s answered HTTP %d without JSON; is the URL the Prometheus server?"
                % (self.url, response.status_code)
            ) from None
        if document.get("status") != "success":
            message = "query %r was refused by Prometheus (%s: %s); fix the PromQL" % (
                params["query"],
                document.get("errorType"),
                document.get("error"),
            )
            if response.status_code >= 500 or document.get("errorType") in ("timeout", "canceled", "internal"):
                raise PrometheusUnavailable(message)
            raise HealthGateError(message)
        return dict(document.get("data") or {})


class PrometheusUnavailable(RuntimeError):
    """Prometheus could not answer this time; the measurement is inconclusive, not the gate broken."""


def _values(data: Mapping[str, Any], query: str) -> List[float]:
    kind = data.get("resultType")
    result = data.get("result")
    samples: List[Any] = []
    if kind == "scalar" and isinstance(result, list):
        samples = [result[1]]
    elif kind == "vector" and isinstance(result, list):
        samples = [series["value"][1] for series in result]
    elif kind == "matrix" and isinstance(result, list):
        samples = [value for series in result for _moment, value in series["values"]]
    else:
        raise HealthGateError(
            "query %r returned a %s, not a number; aggregate it to a vector or scalar" % (query, kind)
        )
    numbers = [float(sample) for sample in samples]
    # NaN is what 0/0 gives, e.g. an error ratio with no traffic: there is nothing to judge.
    return [number for number in numbers if not math.isnan(number)]


def measure_condition(prometheus: Prometheus, condition: Condition, default_no_data: str) -> Dict[str, Any]:
    """One condition's value and verdict now."""
    entry: Dict[str, Any] = {"name": condition.name, "condition": condition.describe()}
    try:
        value, detail = _read_value(prometheus, condition)
    except PrometheusUnavailable as exc:
        entry.update(value=None, verdict="inconclusive", detail=str(exc))
        return entry
    if value is None:
        verdict = condition.no_data or default_no_data
        entry.update(value=None, verdict=verdict, detail="no data (%s); no_data makes that %s" % (detail, verdict))
        return entry
    failed = (condition.below is not None and not value < condition.below) or (
        condition.above is not None and not value > condition.above
    )
    entry.update(
        value=value,
        verdict="fail" if failed else "pass",
        detail="%s %g, wanted %s" % (detail, value, condition.describe()),
    )
    return entry


def _read_value(prometheus: Prometheus, condition: Condition) -> Tuple[Optional[float], str]:
    if condition.is_comparison:
        canary = _reduced(prometheus, condition.query, condition)
        baseline = _reduced(prometheus, str(condition.baseline_query), condition)
        if canary is None or baseline is None:
            return None, "canary %s, baseline %s" % (_show(canary), _show(baseline))
        if baseline == 0:
            return (1.0 if canary == 0 else None), "baseline is 0, canary %g" % canary
        return canary / baseline, "canary %g / baseline %g =" % (canary, baseline)
    value = _reduced(prometheus, condition.query, condition)
    return value, "value" if value is not None else "the query returned no samples"


def _reduced(prometheus: Prometheus, query: str, condition: Condition) -> Optional[float]:
    if condition.range_seconds is not None:
        values = prometheus.range(query, condition.range_seconds, condition.step_seconds or 1)
    else:
        values = prometheus.instant(query)
    if not values:
        return None
    # Several series (one per instance, say): judge the worst for the bound that matters.
    return REDUCERS[condition.reduce](values)


def _show(value: Optional[float]) -> str:
    return "no data" if value is None else "%g" % value


def run_gate(
    prometheus: Prometheus,
    conditions: Sequence[Condition],
    interval: float,
    count: int,
    failure_limit: int,
    inconclusive_limit: int,
    no_data: str,
    sleep: Callable[[float], None] = time.sleep,
) -> GateOutcome:
    """Measure up to ``count`` times; stop as soon as a limit is exceeded."""
    outcome = GateOutcome(verdict="pass")
    for index in range(count):
        if index:
            sleep(interval)
        entries = [measure_condition(prometheus, condition, no_data) for condition in conditions]
        verdict = _combine([entry["verdict"] for entry in entries])
        outcome.measurements.append({"index": index + 1, "at": time.time(), "verdict": verdict, "conditions": entries})
        if verdict == "fail":
            outcome.failures += 1
        elif verdict == "inconclusive":
            outcome.inconclusives += 1
        if outcome.failures > failure_limit:
            outcome.verdict = "fail"
            break
        if outcome.inconclusives > inconclusive_limit:
            outcome.verdict = "inconclusive"
            break
    outcome.reasons = _reasons(outcome, failure_limit, inconclusive_limit, count)
    return outcome


def _combine(verdicts: Sequence[str]) -> str:
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def _reasons(outcome: GateOutcome, failure_limit: int, inconclusive_limit: int, count: int) -> List[str]:
    taken = len(outcome.measurements)
    if outcome.verdict == "pass":
        return [
            "%d of %d measurements taken: %d failed (limit %d), %d inconclusive (limit %d)"
            % (taken, count, outcome.failures, failure_limit, outcome.inconclusives, inconclusive_limit)
        ]
    kind = "fail" if outcome.verdict == "fail" else "inconclusive"
    limit = failure_limit if kind == "fail" else inconclusive_limit
    tally = outcome.failures if kind == "fail" else outcome.inconclusives
    adjective = "failed" if kind == "fail" else kind
    reasons = ["%d %s measurement(s) in %d, over the limit of %d" % (tally, adjective, taken, limit)]
    seen = set()
    for measurement in outcome.measurements:
        for entry in measurement["conditions"]:
            text = "%s: %s" % (entry["name"], entry["detail"])
            if entry["verdict"] == kind and entry["name"] not in seen:
                seen.add(entry["name"])
                reasons.append(text)
    return reasons
