"""Exact medians of the DORA metrics at the edges of how they are computed (issue 11, V21): odd and
even counts, middle ranks in different histogram buckets, negative and sub-second lead times, empty
windows, per-group medians, and lead times kept up to date when a deployment is recorded, then
finished. Every expected value comes from statistics.median over the same samples."""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.metrics_data import ACTOR, DAY, deployment, incident, ts

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    MetricsRequest,
    compute,
    resolve_window,
)

BASE = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def request(start: str = "2026-03-01", end: str = "2026-03-07", **extra: Any) -> MetricsRequest:
    first, last = resolve_window(None, start, end, "UTC")
    return MetricsRequest("production", first, last, "UTC", extra.pop("granularity", "day"), DAY, **extra)


def with_lead(service: str, finished: datetime.datetime, lead: float, **extra: Any) -> dict[str, Any]:
    """A successful deployment finished at ``finished`` whose commit was ``lead`` seconds earlier."""
    return {
        "service": service,
        "version": "1.0.%d" % int(finished.timestamp()),
        "environment": "production",
        "status": extra.pop("status", "successful"),
        "started_at": format_timestamp(finished - datetime.timedelta(minutes=5)),
        "finished_at": format_timestamp(finished),
        "commit_at": format_timestamp(finished - datetime.timedelta(seconds=lead)),
        **extra,
    }


# Lead times across many buckets: negative (a commit recorded after the deployment), sub-second,
# whole seconds below 100, and values with 3 to 7 digits, some on bucket edges (100, 1000, 99999).
LEADS = [-30.0, -0.5, 0.25, 5.0, 99.0, 100.0, 101.5, 999.0, 1000.0, 12345.678, 99999.0, 100000.0, 3600000.0]


def expected(values: list[float]) -> float:
    return round(float(statistics.median(values)), 3)


@pytest.mark.parametrize("count", [len(LEADS), len(LEADS) - 1, 1, 2])
def test_lead_median_is_exact_for_odd_and_even_counts(ledger: Ledger, count: int) -> None:
    leads = LEADS[:count]
    ledger.import_deployments(
        ACTOR, [with_lead("api", BASE + datetime.timedelta(minutes=index), lead) for index, lead in enumerate(leads)]
    )
    summary = compute(ledger, request())["summary"]["lead_time"]
    assert summary["samples"] == count
    assert summary["median_seconds"] == expected(leads)


def test_middle_ranks_in_two_buckets_average_across_them(ledger: Ledger) -> None:
    # Ranks 2 and 3 of four: 20 s (bucket of 20) and 150 s (bucket of 3 digits starting 15).
    leads = [10.0, 20.0, 150.0, 5000.0]
    ledger.import_deployments(
        ACTOR, [with_lead("api", BASE + datetime.timedelta(minutes=index), lead) for index, lead in enumerate(leads)]
    )
    assert compute(ledger, request())["summary"]["lead_time"]["median_seconds"] == 85.0


def test_each_day_and_the_window_have_their_own_exact_median(ledger: Ledger) -> None:
    by_day = {
        "2026-03-02": [3600.0, 7200.0, 7300.0],
        "2026-03-03": [50.0, 86400.0],
        "2026-03-05": [120.5, 121.5, 122.5, 99999.0, 250000.0],
    }
    rows = []
    for label, leads in by_day.items():
        day = datetime.datetime.fromisoformat(label + "T08:00:00+00:00")
        rows.extend(with_lead("api", day + datetime.timedelta(minutes=index), lead) for index, lead in enumerate(leads))
    ledger.import_deployments(ACTOR, rows)
    answer = compute(ledger, request())
    series = {entry["period"]: entry["lead_time"] for entry in answer["series"]}
    for label, leads in by_day.items():
        assert series[label]["median_seconds"] == expected(leads)
        assert series[label]["samples"] == len(leads)
    assert series["2026-03-04"]["median_seconds"] is None
    assert series["2026-03-04"]["samples"] == 0
    every = [lead for leads in by_day.values() for lead in leads]
    assert answer["summary"]["lead_time"]["median_seconds"] == expected(every)
    weekly = compute(ledger, request(granularity="week"))["series"]
    # ISO week 9 is Sunday 03-01 alone (no deployments); week 10 holds all of them.
    assert [entry["lead_time"]["median_seconds"] for entry in weekly] == [None, expected(every)]


def test_group_medians_come_from_each_groups_own_samples(ledger: Ledger) -> None:
    teams = {"blue": [60.0, 600.0, 6000.0, 60000.0], "red": [7.0, 700.0, 7000.0]}
    rows = []
    for name, leads in teams.items():
        for index, lead in enumerate(leads):
            rows.append(with_lead("svc-" + name, BASE + datetime.timedelta(hours=index), lead, team=name))
    ledger.import_deployments(ACTOR, rows)
    answer = compute(ledger, request(group_by="team"))
    for name, leads in teams.items():
        assert answer["groups"][name]["lead_time"]["median_seconds"] == expected(leads)
        assert answer["groups"][name]["lead_time"]["samples"] == len(leads)
    assert answer["summary"]["lead_time"]["median_seconds"] == expected(teams["blue"] + teams["red"])


def test_recovery_median_for_even_counts_and_linked_failures(ledger: Ledger) -> None:
    # Rollbacks of 10 and 40 minutes, and a successful deployment whose incident took 2 h to resolve;
    # a failed deployment linked to an incident recovers at the incident's resolution, not its rollback.
    ledger.import_deployments(
        ACTOR,
        [
            deployment("api", "03-02 10:00", "rolled_back", ci="api-ci", started=ts("03-02 09:50")),
            deployment("web", "03-03 10:00", "failed", ci="web-ci", started=ts("03-03 09:20")),
            deployment("db", "03-04 10:00", ci="db-ci"),
            deployment("mq", "03-05 10:00", "failed", ci="mq-ci", started=ts("03-05 09:59")),
        ],
    )
    for item in (
        incident("db-ci", "03-04 11:00", "03-04 13:00", service="db"),
        incident("mq-ci", "03-05 10:30", "03-05 11:30", service="mq"),
    ):
        ledger.record_incident(ACTOR, item)
    answer = compute(ledger, request())
    recovery = answer["summary"]["recovery_time"]
    # Samples 10 min, 40 min, 2 h, 1 h: median (40 min + 1 h) / 2.
    assert recovery["median_seconds"] == (2400 + 3600) / 2
    assert (recovery["recovered"], recovery["unrecovered"]) == (4, 0)
    assert answer["summary"]["change_failure_rate"]["failures"] == 4
    assert answer["summary"]["change_failure_rate"]["with_incident"] == 2
    series = {entry["period"]: entry["recovery_time"]["median_seconds"] for entry in answer["series"]}
    assert series["2026-03-05"] == 3600.0


def test_window_without_lead_or_recovery_samples(ledger: Ledger) -> None:
    ledger.import_deployments(ACTOR, [deployment("api", "03-02 10:00"), deployment("api", "03-03 10:00")])
    summary = compute(ledger, request())["summary"]
    assert summary["lead_time"] == {
        "median_seconds": None,
        "median_hours": None,
        "samples": 0,
        "tier": None,
        "source": "commit_at",
    }
    assert summary["recovery_time"]["median_seconds"] is None
    assert (summary["recovery_time"]["recovered"], summary["recovery_time"]["unrecovered"]) == (0, 0)
    empty = compute(ledger, request("2026-04-01", "2026-04-03", group_by="service"))
    assert empty["groups"] == {}
    assert empty["summary"]["lead_time"]["samples"] == 0


def test_lead_time_of_a_deployment_recorded_then_finished(ledger: Ledger) -> None:
    # The commit time comes in with the details, the finish time later: the stored lead time follows both.
    committed = utc_now() - datetime.timedelta(hours=3)
    running = ledger.record_deployment(
        ACTOR, "api", "2.0.0", "production", "in_progress", details={"commit_at": format_timestamp(committed)}
    )
    ledger.record_deployment(
        ACTOR,
        "web",
        "2.0.0",
        "production",
        "successful",
        details={"commit_at": format_timestamp(committed - datetime.timedelta(hours=1))},
    )
    # Yesterday to tomorrow: the test may run across midnight.
    first, last = ((utc_now() + datetime.timedelta(days=days)).date().isoformat() for days in (-1, 1))
    before = compute(ledger, request(first, last))["summary"]["lead_time"]
    assert before["samples"] == 1
    ledger.finish_deployment(running, "successful")
    after = compute(ledger, request(first, last))["summary"]["lead_time"]
    assert after["samples"] == 2
    rows = {row["service"]: row for row in ledger.list_deployments(limit=10)}
    leads = [
        (
            datetime.datetime.fromisoformat(rows[service]["finished_at"].replace("Z", "+00:00"))
            - datetime.datetime.fromisoformat(rows[service]["commit_at"].replace("Z", "+00:00"))
        ).total_seconds()
        for service in ("api", "web")
    ]
    assert after["median_seconds"] == pytest.approx(statistics.median(leads), abs=0.002)
