# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary analysis run, judged the way Argo Rollouts judges an AnalysisRun.

Each metric is measured ``count`` times every ``interval`` seconds. A
measurement's value is tested against the metric's ``success_condition`` and
``failure_condition`` (Jinja2 expressions on ``result``); a metric fails once
more than ``failure_limit`` measurements failed and is inconclusive once more
than ``inconclusive_limit`` were inconclusive. A value that is missing (the
query returned no samples) gets the metric's explicit ``no_data`` verdict.

Values come from Prometheus (through the health gate's client in
``plugin_utils/health.py``) or, with no Prometheus, from probe statistics: the
canary's URL requested N times per interval with the smoke checks' HTTP code
(``module_utils/smoke.py``).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from jinja2 import TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ansible_collections.relops.release.plugins.module_utils import smoke
from ansible_collections.relops.release.plugins.plugin_utils.health import (
    REDUCERS,
    VERDICTS,
    Prometheus,
    PrometheusUnavailable,
)

SUCCESSFUL, FAILED, INCONCLUSIVE = "successful", "failed", "inconclusive"
PHASES = (SUCCESSFUL, FAILED, INCONCLUSIVE)
# no_data is written as the health gate writes it (pass, fail, inconclusive); phases are Argo's words.
NO_DATA_PHASE = {"pass": SUCCESSFUL, "fail": FAILED, "inconclusive": INCONCLUSIVE}
PROVIDERS = ("prometheus", "probe")
STATISTICS = (
    "error_rate",
    "success_rate",
    "latency_mean",
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "latency_max",
)
_METRIC_KEYS = (
    "name",
    "provider",
    "query",
    "range",
    "reduce",
    "statistic",
    "success_condition",
    "failure_condition",
    "no_data",
    "failure_limit",
    "inconclusive_limit",
)
# What a probe counts as an answer from a working service: anything but a 5xx (Flagger's request success rate).
DEFAULT_PROBE_STATUSES = list(range(100, 500))
_ENVIRONMENT = ImmutableSandboxedEnvironment()


class AnalysisError(ValueError):
    """The analysis is configured wrongly; the message names the metric, the field and the fix."""


@dataclass(frozen=True)
class Metric:
    """One metric of the analysis and how its values are judged."""

    name: str
    provider: str
    success_condition: Optional[str]
    failure_condition: Optional[str]
    no_data: str
    failure_limit: int
    inconclusive_limit: int
    query: Optional[str] = None
    range_seconds: Optional[float] = None
    step_seconds: Optional[float] = None
    reduce: str = "max"
    statistic: Optional[str] = None


@dataclass(frozen=True)
class ProbeSettings:
    """How the probe provider asks the canary: one batch of ``requests`` per measurement."""

    url: str
    requests: int = 20
    concurrency: int = 4
    timeout: float = 5.0
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    statuses: Sequence[int] = field(default_factory=lambda: list(DEFAULT_PROBE_STATUSES))
    validate_certs: bool = True
    ca_path: Optional[str] = None


@dataclass
class MetricState:
    """One metric's tallies during a run."""

    metric: Metric
    phase: Optional[str] = None
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    measurements: List[Dict[str, Any]] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        return {
            "name": self.metric.name,
            "provider": self.metric.provider,
            "phase": self.phase or SUCCESSFUL,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "failure_limit": self.metric.failure_limit,
            "inconclusive_limit": self.metric.inconclusive_limit,
            "measurements": self.measurements,
        }


@dataclass
class AnalysisOutcome:
    verdict: str
    metrics: List[Dict[str, Any]]
    rounds: int
    reasons: List[str]


# Definitions


def parse_metrics(
    entries: Sequence[Any],
    no_data: str,
    failure_limit: int,
    inconclusive_limit: int,
    has_prometheus: bool,
) -> List[Metric]:
    """Validate metric definitions and fill in the run's defaults; raise AnalysisError naming each problem."""
    if not entries:
        raise AnalysisError("metrics is empty; give at least one metric (see docs/canary.md)")
    metrics = [
        _parse_metric(entry, index, no_data, failure_limit, inconclusive_limit, has_prometheus)
        for index, entry in enumerate(entries)
    ]
    names = [metric.name for metric in metrics]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise AnalysisError("metric names must be unique, repeated: %s; rename them" % ", ".join(repeated))
    return metrics


def _parse_metric(
    entry: Any, index: int, no_data: str, failure_limit: int, inconclusive_limit: int, has_prometheus: bool
) -> Metric:
    if not isinstance(entry, dict):
        raise AnalysisError("metric #%d is %r, not a mapping; write it as {name: ..., query: ...}" % (index + 1, entry))
    name = str(entry.get("name") or "metric-%d" % (index + 1))
    unknown = sorted(set(entry) - set(_METRIC_KEYS))
    if unknown:
        raise AnalysisError(
            "metric %r: unknown field(s) %s; allowed are %s" % (name, ", ".join(unknown), ", ".join(_METRIC_KEYS))
        )
    provider = str(entry.get("provider") or ("probe" if entry.get("statistic") else "prometheus"))
    if provider not in PROVIDERS:
        raise AnalysisError("metric %r: provider %r is not one of %s" % (name, provider, ", ".join(PROVIDERS)))
    success, failure = entry.get("success_condition"), entry.get("failure_condition")
    if not success and not failure:
        raise AnalysisError(
            "metric %r needs success_condition, failure_condition or both (e.g. success_condition: result < 0.01)"
            % name
        )
    for key in ("success_condition", "failure_condition"):
        if entry.get(key):
            compile_condition(str(entry[key]), name, key)
    metric_no_data = str(entry.get("no_data") or no_data)
    if metric_no_data not in VERDICTS:
        raise AnalysisError("metric %r: no_data %r is not one of %s" % (name, metric_no_data, ", ".join(VERDICTS)))
    settings: Dict[str, Any] = {
        "name": name,
        "provider": provider,
        "success_condition": str(success) if success else None,
        "failure_condition": str(failure) if failure else None,
        "no_data": metric_no_data,
        "failure_limit": _limit(entry, name, "failure_limit", failure_limit),
        "inconclusive_limit": _limit(entry, name, "inconclusive_limit", inconclusive_limit),
    }
    if provider == "prometheus":
        settings.update(_prometheus_settings(entry, name, has_prometheus))
    else:
        settings.update(_probe_settings(entry, name))
    return Metric(**settings)


def _prometheus_settings(entry: Mapping[str, Any], name: str, has_prometheus: bool) -> Dict[str, Any]:
    if not has_prometheus:
        raise AnalysisError(
            "metric %r reads Prometheus but prometheus_url is not set; set it, or use provider: probe "
            "with a statistic" % name
        )
    if not entry.get("query"):
        raise AnalysisError("metric %r has no query; give a PromQL expression" % name)
    if entry.get("statistic"):
        raise AnalysisError("metric %r: statistic belongs to provider probe; remove it or the query" % name)
    settings: Dict[str, Any] = {"query": str(entry["query"])}
    window = entry.get("range")
    if window is not None:
        if not isinstance(window, dict) or "duration" not in window:
            raise AnalysisError("metric %r: range must be {duration: 60, step: 5} in seconds" % name)
        duration = _positive(window["duration"], name, "range.duration")
        settings.update(range_seconds=duration, step_seconds=_positive(window.get("step", 1), name, "range.step"))
    reduce = str(entry.get("reduce") or "max")
    if reduce not in REDUCERS:
        raise AnalysisError("metric %r: reduce %r is not one of %s" % (name, reduce, ", ".join(REDUCERS)))
    settings["reduce"] = reduce
    return settings


def _probe_settings(entry: Mapping[str, Any], name: str) -> Dict[str, Any]:
    statistic = entry.get("statistic")
    if statistic not in STATISTICS:
        raise AnalysisError("metric %r: statistic %r is not one of %s" % (name, statistic, ", ".join(STATISTICS)))
    for key in ("query", "range"):
        if entry.get(key) is not None:
            raise AnalysisError("metric %r: %s belongs to provider prometheus; remove it" % (name, key))
    return {"statistic": str(statistic)}


def _limit(entry: Mapping[str, Any], name: str, key: str, default: int) -> int:
    value = entry.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise AnalysisError("metric %r: %s %r must be a whole number, 0 or more" % (name, key, value))
    return number


def _positive(value: Any, name: str, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if number <= 0:
        raise AnalysisError("metric %r: %s %r must be a positive number of seconds" % (name, key, value))
    return number


def compile_condition(expression: str, name: str, key: str) -> Callable[..., Any]:
    """Compile a condition in the sandbox; the only name it may use is ``result``."""
    try:
        undeclared, compiled = _compile(expression)
    except TemplateSyntaxError as exc:
        raise AnalysisError("metric %r: %s %r is not a valid expression (%s)" % (name, key, expression, exc)) from None
    unknown = sorted(undeclared - {"result"})
    if unknown:
        raise AnalysisError(
            "metric %r: %s %r uses %s; the only value a condition sees is result (e.g. result < 0.01)"
            % (name, key, expression, ", ".join(unknown))
        )
    return compiled


@functools.lru_cache(maxsize=256)
def _compile(expression: str) -> Tuple[FrozenSet[str], Callable[..., Any]]:
    """Each expression is parsed once per process, however many measurements test it."""
    undeclared = frozenset(meta.find_undeclared_variables(_ENVIRONMENT.parse("{{ %s }}" % expression)))
    return undeclared, _ENVIRONMENT.compile_expression(expression)


def parse_probe(probe: Optional[Mapping[str, Any]], metrics: Sequence[Metric]) -> Optional[ProbeSettings]:
    """The probe settings, required when any metric uses provider probe."""
    if not any(metric.provider == "probe" for metric in metrics):
        return None
    if not probe or not probe.get("url"):
        raise AnalysisError("a probe metric needs probe.url, the canary's own address (e.g. http://10.0.0.5:8081/)")
    allowed = ("url", "requests", "concurrency", "timeout", "method", "headers", "status", "validate_certs", "ca_path")
    unknown = sorted(set(probe) - set(allowed))
    if unknown:
        raise AnalysisError("probe: unknown field(s) %s; allowed are %s" % (", ".join(unknown), ", ".join(allowed)))
    status = probe.get("status")
    settings = ProbeSettings(
        url=str(probe["url"]),
        requests=_probe_number(probe, "requests", 20, int),
        concurrency=_probe_number(probe, "concurrency", 4, int),
        timeout=_probe_number(probe, "timeout", 5.0, float),
        method=str(probe.get("method") or "GET").upper(),
        headers=dict(probe.get("headers") or {}),
        statuses=list(status) if isinstance(status, list) else list(DEFAULT_PROBE_STATUSES),
        validate_certs=bool(probe.get("validate_certs", True)),
        ca_path=probe.get("ca_path"),
    )
    if settings.requests < 1 or settings.concurrency < 1:
        raise AnalysisError(
            "probe: requests and concurrency must be at least 1, got %d and %d"
            % (settings.requests, settings.concurrency)
        )
    if settings.method not in ("GET", "HEAD"):
        raise AnalysisError("probe: method %r may change the canary; a probe uses GET or HEAD" % settings.method)
    # Validates the URL and the accepted statuses with the smoke checks' own rules.
    _probe_checks(settings)
    return settings


def _probe_number(probe: Mapping[str, Any], key: str, default: Any, kind: Callable[[Any], Any]) -> Any:
    value = probe.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise AnalysisError("probe: %s %r is not a number; e.g. %s: %s" % (key, value, key, default)) from None


# Measuring


def _probe_checks(settings: ProbeSettings) -> List[Dict[str, Any]]:
    try:
        return [
            smoke.normalize_check(
                {
                    "name": "probe-%d" % (index + 1),
                    "url": settings.url,
                    "method": settings.method,
                    "headers": dict(settings.headers),
                    "status": list(settings.statuses),
                    "timeout": settings.timeout,
                    "validate_certs": settings.validate_certs,
                    "ca_path": settings.ca_path,
                },
                index,
            )
            for index in range(settings.requests)
        ]
    except smoke.SmokeCheckError as exc:
        raise AnalysisError("probe: %s" % exc) from None


def probe_statistics(settings: ProbeSettings) -> Dict[str, Any]:
    """Request the canary ``requests`` times; return the statistics every probe metric reads.

    A request without an answer, or answered with a status not in ``status``, is an error. Latency is
    taken over answered requests only, so latencies are missing (no data) when nothing answered.
    """
    results = smoke.run_checks(_probe_checks(settings), concurrency=settings.concurrency)
    answered = sorted(result["observed"]["latency_ms"] / 1000.0 for result in results if "status" in result["observed"])
    errors = sum(1 for result in results if not result["passed"])
    statistics: Dict[str, Any] = {
        "requests": len(results),
        "errors": errors,
        "error_rate": errors / len(results),
        "success_rate": 1 - errors / len(results),
        "statuses": _status_counts(results),
    }
    for quantile in (50, 90, 95, 99):
        statistics["latency_p%d" % quantile] = percentile(answered, quantile)
    statistics["latency_mean"] = sum(answered) / len(answered) if answered else None
    statistics["latency_max"] = answered[-1] if answered else None
    return statistics


def _status_counts(results: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for result in results:
        key = str(result["observed"].get("status", "no answer"))
        counts[key] = counts.get(key, 0) + 1
    return counts


def percentile(values: Sequence[float], quantile: float) -> Optional[float]:
    """Nearest-rank percentile of sorted values: the smallest value with ``quantile`` percent at or below it."""
    if not values:
        return None
    rank = max(1, math.ceil(quantile / 100.0 * len(values)))
    return values[rank - 1]


def read_prometheus(prometheus: Prometheus, metric: Metric) -> Optional[float]:
    """The metric's value now, or None when the query returned no samples (or only NaN)."""
    if metric.range_seconds is not None:
        values = prometheus.range(str(metric.query), metric.range_seconds, metric.step_seconds or 1)
    else:
        values = prometheus.instant(str(metric.query))
    return REDUCERS[metric.reduce](values) if values else None


def judge(metric: Metric, value: Optional[float]) -> Dict[str, Any]:
    """A measurement's phase, with Argo's rules for which condition decides."""
    if value is None:
        phase = NO_DATA_PHASE[metric.no_data]
        return {"value": None, "phase": phase, "detail": "no data; no_data: %s makes it %s" % (metric.no_data, phase)}
    failure = _evaluate(metric, "failure_condition", value)
    success = _evaluate(metric, "success_condition", value)
    if failure:
        phase, detail = FAILED, "failure_condition %r holds" % metric.failure_condition
    elif success is None:
        phase, detail = SUCCESSFUL, "failure_condition %r does not hold" % metric.failure_condition
    elif success:
        phase, detail = SUCCESSFUL, "success_condition %r holds" % metric.success_condition
    elif failure is None:
        phase, detail = FAILED, "success_condition %r does not hold" % metric.success_condition
    else:
        phase, detail = INCONCLUSIVE, "neither success_condition nor failure_condition holds"
    return {"value": value, "phase": phase, "detail": "result %g: %s" % (value, detail)}


def _evaluate(metric: Metric, key: str, value: float) -> Optional[bool]:
    expression = getattr(metric, key)
    if expression is None:
        return None
    try:
        answer = compile_condition(expression, metric.name, key)(result=value)
    except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
        raise AnalysisError(
            "metric %r: %s %r could not be evaluated for result %g (%s)" % (metric.name, key, expression, value, exc)
        ) from None
    if not isinstance(answer, bool):
        raise AnalysisError(
            "metric %r: %s %r gave %r, not true or false; write a comparison such as result < 0.01"
            % (metric.name, key, expression, answer)
        )
    return answer


class Measurer:
    """Takes one round of measurements: one probe batch shared by the probe metrics, one query per metric."""

    def __init__(self, prometheus: Optional[Prometheus], probe: Optional[ProbeSettings]) -> None:
        self.prometheus = prometheus
        self.probe = probe

    def measure(self, metrics: Sequence[Metric]) -> List[Dict[str, Any]]:
        statistics = probe_statistics(self.probe) if self.probe is not None else None
        return [self._measure_one(metric, statistics) for metric in metrics]

    def _measure_one(self, metric: Metric, statistics: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if metric.provider == "probe" and statistics is not None:
            entry = judge(metric, statistics[str(metric.statistic)])
            entry["probe"] = {key: statistics[key] for key in ("requests", "errors", "statuses")}
            return entry
        if self.prometheus is None:
            raise AnalysisError("metric %r reads Prometheus but prometheus_url is not set" % metric.name)
        try:
            value = read_prometheus(self.prometheus, metric)
        except PrometheusUnavailable as exc:
            return {"value": None, "phase": INCONCLUSIVE, "detail": str(exc)}
        return judge(metric, value)


# Running


def run_analysis(
    metrics: Sequence[Metric],
    measure: Callable[[Sequence[Metric]], List[Dict[str, Any]]],
    interval: float,
    count: int,
    sleep: Callable[[float], None] = time.sleep,
) -> AnalysisOutcome:
    """Measure every still-running metric up to ``count`` times; stop once any metric has failed
    or turned inconclusive, as the run's verdict is then known."""
    states = [MetricState(metric) for metric in metrics]
    rounds = 0
    for index in range(count):
        if index:
            sleep(interval)
        rounds += 1
        at = time.time()
        for state, entry in zip(states, measure(metrics), strict=True):
            _tally(state, dict(entry, index=index + 1, at=at))
        if any(state.phase in (FAILED, INCONCLUSIVE) for state in states):
            break
    verdict = _verdict(states)
    return AnalysisOutcome(verdict, [state.summary() for state in states], rounds, _reasons(states, verdict))


def _tally(state: MetricState, entry: Dict[str, Any]) -> None:
    state.measurements.append(entry)
    if entry["phase"] == FAILED:
        state.failed += 1
    elif entry["phase"] == INCONCLUSIVE:
        state.inconclusive += 1
    else:
        state.successful += 1
    if state.failed > state.metric.failure_limit:
        state.phase = FAILED
    elif state.inconclusive > state.metric.inconclusive_limit:
        state.phase = INCONCLUSIVE


def _verdict(states: Sequence[MetricState]) -> str:
    phases = [state.phase for state in states]
    if FAILED in phases:
        return FAILED
    if INCONCLUSIVE in phases:
        return INCONCLUSIVE
    return SUCCESSFUL


def _reasons(states: Sequence[MetricState], verdict: str) -> List[str]:
    reasons = []
    for state in states:
        if verdict not in (SUCCESSFUL, state.phase):
            continue
        last = state.measurements[-1] if state.measurements else {"detail": "not measured"}
        if state.phase == FAILED:
            reasons.append(
                "%s failed: %d failed measurement(s), over failure_limit %d; last %s"
                % (state.metric.name, state.failed, state.metric.failure_limit, last["detail"])
            )
        elif state.phase == INCONCLUSIVE:
            reasons.append(
                "%s inconclusive: %d inconclusive measurement(s), over inconclusive_limit %d; last %s"
                % (state.metric.name, state.inconclusive, state.metric.inconclusive_limit, last["detail"])
            )
        else:
            reasons.append(
                "%s successful: %d of %d measurement(s) successful (%d failed, %d inconclusive within limits)"
                % (state.metric.name, state.successful, len(state.measurements), state.failed, state.inconclusive)
            )
    return reasons
