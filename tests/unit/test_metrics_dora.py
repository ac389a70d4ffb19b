"""DORA metrics over generated ledgers whose answers were computed by hand (docs/metrics.md has the
definitions): no deployments, an incident before any deployment, overlapping incidents, a rollback
without an incident, services sharing a CI, explicit links, and days across a DST change."""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.metrics_data import ACTOR, DAY, deployment, incident, seed_week, ts

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    MetricsError,
    MetricsRequest,
    calendar_periods,
    compute,
    resolve_window,
    zone,
)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def request(start: str, end: str, **extra: Any) -> MetricsRequest:
    timezone = extra.pop("timezone", "UTC")
    first, last = resolve_window(None, start, end, timezone)
    return MetricsRequest(
        environment="production",
        start=first,
        end=last,
        timezone=timezone,
        granularity=extra.pop("granularity", "day"),
        link_window_seconds=extra.pop("link_window_seconds", DAY),
        **extra,
    )


def test_no_deployments_gives_no_rates_and_no_tiers(ledger: Ledger) -> None:
    answer = compute(ledger, request("2026-03-01", "2026-03-07"))
    summary = answer["summary"]
    assert summary["deployment_frequency"] == {
        "deployments": 0,
        "per_day": 0.0,
        "per_week": 0.0,
        "tier": None,
        "deployment_days": 0,
        "fourkeys": None,
        "devlake": None,
    }
    assert summary["change_failure_rate"]["rate"] is None
    assert summary["change_failure_rate"]["tier"] is None
    assert summary["lead_time"]["median_seconds"] is None
    assert summary["recovery_time"]["median_seconds"] is None
    assert summary["rework_rate"]["rate"] is None
    assert [entry["period"] for entry in answer["series"]] == ["2026-03-0%d" % day for day in range(1, 8)]


def test_week_of_deployments_matches_the_hand_computed_answer(ledger: Ledger) -> None:
    seed_week(ledger)
    answer = compute(ledger, request("2026-03-01", "2026-03-07"))
    summary = answer["summary"]
    assert summary["deployment_frequency"]["deployments"] == 5
    assert summary["deployment_frequency"]["deployment_days"] == 4
    assert summary["deployment_frequency"]["per_day"] == round(5 / 7, 4)
    assert summary["deployment_frequency"]["tier"] == "high"
    # ISO week 9 holds Sunday 03-01 (1 deployment day), week 10 the rest (3): median 2.
    assert summary["deployment_frequency"]["fourkeys"] == "Weekly"
    assert summary["deployment_frequency"]["devlake"] == "high"
    # Failures: d2 (incident 2 h later), d3 (rolled back, no incident), worker's d6 (two overlapping incidents).
    assert summary["change_failure_rate"] == {
        "deployments": 6,
        "failures": 3,
        "rollbacks": 1,
        "with_incident": 2,
        "rate": 0.5,
        "tier": "low",
    }
    # Lead times 2 h, 24 h, 4 h, 1 h: median (2 h + 4 h) / 2.
    assert summary["lead_time"]["median_seconds"] == 3 * 3600
    assert summary["lead_time"]["samples"] == 4
    assert summary["lead_time"]["tier"] == "elite"
    # Recovery: d2 1 h (incident), d3 30 min (rollback), d6 12:00-15:00 (span of overlapping incidents).
    assert summary["recovery_time"]["median_seconds"] == 3600
    assert summary["recovery_time"]["recovered"] == 3
    assert summary["recovery_time"]["tier"] == "high"
    assert summary["rework_rate"] == {"deployments": 6, "rework": 1, "rate": round(1 / 6, 4)}
    by_day = {entry["period"]: entry for entry in answer["series"]}
    assert by_day["2026-03-02"]["change_failure_rate"]["rate"] == 1.0
    assert by_day["2026-03-02"]["lead_time"]["median_seconds"] == DAY
    assert by_day["2026-03-05"]["change_failure_rate"]["failures"] == 1
    assert by_day["2026-03-05"]["deployment_frequency"]["deployment_days"] == 1
    assert by_day["2026-03-06"]["change_failure_rate"]["deployments"] == 0


def test_groups_by_team_and_service(ledger: Ledger) -> None:
    seed_week(ledger)
    teams = compute(ledger, request("2026-03-01", "2026-03-07", group_by="team"))["groups"]
    assert {name: group["change_failure_rate"]["failures"] for name, group in teams.items()} == {"blue": 2, "red": 1}
    assert teams["blue"]["change_failure_rate"]["deployments"] == 4
    services = compute(ledger, request("2026-03-01", "2026-03-07", group_by="service"))["groups"]
    assert {name: group["change_failure_rate"]["rate"] for name, group in services.items()} == {
        "api": 0.5,
        "web": 0.0,
        "worker": 1.0,
    }
    only_red = compute(ledger, request("2026-03-01", "2026-03-07", team="red"))["summary"]
    assert only_red["change_failure_rate"]["deployments"] == 2


def test_incidents_link_by_ci_within_the_window_only(ledger: Ledger) -> None:
    ids = seed_week(ledger)
    rows = ledger.incidents_with_links("production", ts("03-01 00:00"), ts("03-08 00:00"), DAY)
    links = {int(row["id"]): (row["deployment_id"], row["link"]) for row in rows}
    assert links[ids["before_any"]] == (None, None)
    assert links[ids["after_d2"]] == (ids["d2"], "window")
    assert links[ids["too_late"]] == (None, None)
    # Two services share shared-ci: both incidents go to the newest deployment on the CI (worker's).
    assert links[ids["shared_1"]] == (ids["d6"], "window")
    assert links[ids["shared_2"]] == (ids["d6"], "window")
    # A wider window reaches the deployment 50 hours back.
    wide = ledger.incidents_with_links("production", ts("03-01 00:00"), ts("03-08 00:00"), 3 * DAY)
    assert {int(row["id"]): row["link"] for row in wide}[ids["too_late"]] == "window"


def test_explicit_link_replaces_the_window_rule(ledger: Ledger) -> None:
    ids = seed_week(ledger)
    assert ledger.link_incident(ids["too_late"], ids["d1"]) is True
    assert ledger.link_incident(ids["too_late"], ids["d1"]) is False
    summary = compute(ledger, request("2026-03-01", "2026-03-07"))["summary"]
    assert summary["change_failure_rate"]["failures"] == 4
    # d1's incident is still open: a failure not yet recovered.
    assert summary["recovery_time"]["unrecovered"] == 1


def test_incident_import_is_idempotent_by_external_id(ledger: Ledger) -> None:
    first, created = ledger.record_incident(
        ACTOR, {**incident("api", "03-02 12:00"), "external_id": "INC0010001", "source": "servicenow"}
    )
    again, created_again = ledger.record_incident(
        ACTOR, {**incident("api", "03-02 12:00"), "external_id": "INC0010001", "source": "servicenow"}
    )
    assert (created, created_again) == (True, False)
    assert again["id"] == first["id"]
    resolved = ledger.resolve_incident(int(first["id"]), ts("03-02 12:30"), "bad config", "gateway")
    assert (resolved["status"], resolved["root_cause"], resolved["component"]) == ("resolved", "bad config", "gateway")


def test_sync_incidents_writes_all_or_nothing(ledger: Ledger) -> None:
    """incident state=imported writes through sync_incidents: one transaction for every add and resolve."""
    first, _created = ledger.record_incident(
        ACTOR, {**incident("api", "03-02 12:00"), "external_id": "INC0010001", "source": "servicenow"}
    )
    broken = {**incident("api", "03-02 13:00"), "external_id": "INC0010003", "source": "servicenow"}
    del broken["title"]
    good = {**incident("api", "03-02 12:30"), "external_id": "INC0010002", "source": "servicenow"}
    with pytest.raises(KeyError):
        ledger.sync_incidents(ACTOR, [good, broken], [(int(first["id"]), ts("03-02 14:00"))])
    assert [(r["external_id"], r["status"]) for r in ledger.list_incident_records()] == [("INC0010001", "open")]
    ledger.sync_incidents(ACTOR, [good], [(int(first["id"]), ts("03-02 14:00"))])
    stored = {r["external_id"]: r for r in ledger.list_incident_records()}
    assert sorted(stored) == ["INC0010001", "INC0010002"]
    assert (stored["INC0010001"]["status"], stored["INC0010001"]["resolved_at"]) == ("resolved", ts("03-02 14:00"))


def test_component_statistics(ledger: Ledger) -> None:
    seed_week(ledger)
    stats = ledger.component_stats("production", ts("03-01 00:00"), ts("03-08 00:00"))
    assert (stats[0]["service"], stats[0]["component"], int(stats[0]["incidents"])) == ("api", "api", 3)
    by_key = {(row["service"], row["component"]): row for row in stats}
    assert int(by_key[("api", "api")]["incidents"]) == 3
    assert int(by_key[("api", "api")]["resolved"]) == 2
    assert float(by_key[("web", "db")]["resolution_seconds"]) == 2 * 3600


def test_days_follow_local_midnights_across_a_dst_change(ledger: Ledger) -> None:
    # Berlin moves from +01:00 to +02:00 at 2026-03-29 02:00 local.
    ledger.import_deployments(
        ACTOR,
        [
            deployment("api", "03-28 23:30"),  # 03-29 00:30 local
            deployment("api", "03-29 21:30"),  # 03-29 23:30 local
            deployment("api", "03-29 22:30"),  # 03-30 00:30 local
        ],
    )
    answer = compute(ledger, request("2026-03-28", "2026-03-30", timezone="Europe/Berlin"))
    counts = {entry["period"]: entry["deployment_frequency"]["deployments"] for entry in answer["series"]}
    assert counts == {"2026-03-28": 0, "2026-03-29": 2, "2026-03-30": 1}
    bounds = {entry["period"]: (entry["start"], entry["end"]) for entry in answer["series"]}
    assert bounds["2026-03-29"] == ("2026-03-28T23:00:00.000000Z", "2026-03-29T22:00:00.000000Z")
    utc = compute(ledger, request("2026-03-28", "2026-03-30"))
    assert {e["period"]: e["deployment_frequency"]["deployments"] for e in utc["series"]} == {
        "2026-03-28": 1,
        "2026-03-29": 2,
        "2026-03-30": 0,
    }


def test_weeks_and_months_are_calendar_periods_clipped_to_the_window() -> None:
    tz = zone("UTC")
    start = datetime.datetime(2026, 3, 1, tzinfo=tz)
    end = datetime.datetime(2026, 4, 3, tzinfo=tz)
    weeks = calendar_periods(start, end, "week", tz)
    assert [label for label, _s, _e in weeks][:2] == ["2026-W09", "2026-W10"]
    assert weeks[0][1:] == ("2026-03-01T00:00:00.000000Z", "2026-03-02T00:00:00.000000Z")
    months = calendar_periods(start, end, "month", tz)
    assert [label for label, _s, _e in months] == ["2026-03", "2026-04"]
    assert months[1][2] == "2026-04-03T00:00:00.000000Z"


def test_windows_and_bad_requests() -> None:
    now = datetime.datetime(2026, 3, 10, 15, 0, tzinfo=datetime.timezone.utc)
    first, last = resolve_window("7d", None, None, "UTC", now=now)
    assert (first.date().isoformat(), last.date().isoformat()) == ("2026-03-04", "2026-03-11")
    with pytest.raises(MetricsError, match="window '2w'"):
        resolve_window("2w", None, None, "UTC")
    with pytest.raises(MetricsError, match="before start"):
        resolve_window(None, "2026-03-05", "2026-03-01", "UTC")
    with pytest.raises(MetricsError, match="Mars/Olympus"):
        zone("Mars/Olympus")


def _commit(repo: str, message: str, when: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"]
    with open(os.path.join(repo, "file.txt"), "a", encoding="utf-8") as handle:
        handle.write(message + "\n")
    subprocess.run([*git, "add", "file.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True, env=env)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_lead_time_from_git_counts_every_commit_between_releases(ledger: Ledger, tmp_path: Any) -> None:
    repo = str(tmp_path / "src")
    subprocess.run(["git", "init", "-q", repo], check=True)
    first = _commit(repo, "one", "2026-02-27T10:00:00Z")
    _commit(repo, "two", "2026-03-01T06:00:00Z")
    _commit(repo, "three", "2026-03-01T08:00:00Z")
    second = _commit(repo, "four", "2026-03-02T09:00:00Z")
    ledger.import_deployments(
        ACTOR,
        [
            deployment("api", "02-28 10:00", source_revision=first),  # before the window: the previous release
            deployment("api", "03-02 10:00", source_revision=second, commit_at=ts("03-02 09:00")),
        ],
    )
    plain = compute(ledger, request("2026-03-01", "2026-03-07"))["summary"]["lead_time"]
    assert (plain["median_seconds"], plain["source"]) == (3600, "commit_at")
    answer = compute(ledger, request("2026-03-01", "2026-03-07", repository=repo))
    lead = answer["summary"]["lead_time"]
    # Commits two, three, four reached production at 03-02 10:00: 28 h, 26 h and 1 h; median 26 h.
    assert (lead["median_seconds"], lead["source"]) == (26 * 3600, "git")
    by_day = {entry["period"]: entry["lead_time"]["median_seconds"] for entry in answer["series"]}
    assert by_day["2026-03-02"] == 26 * 3600
    with pytest.raises(MetricsError, match="git log"):
        compute(ledger, request("2026-03-01", "2026-03-07", repository=str(tmp_path)))


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
def test_weekly_and_monthly_series_sum_to_the_window(ledger: Ledger, timezone: str) -> None:
    seed_week(ledger)
    weekly = compute(ledger, request("2026-03-01", "2026-03-07", granularity="week", timezone=timezone))
    assert [(e["period"], e["change_failure_rate"]["deployments"]) for e in weekly["series"]] == [
        ("2026-W09", 1),
        ("2026-W10", 5),
    ]
    assert weekly["summary"]["deployment_frequency"]["deployment_days"] == 4
    monthly = compute(ledger, request("2026-03-01", "2026-03-07", granularity="month", timezone=timezone))
    ((label, entry),) = [(e["period"], e) for e in monthly["series"]]
    assert (label, entry["change_failure_rate"]["failures"], entry["lead_time"]["median_seconds"]) == (
        "2026-03",
        3,
        3 * 3600,
    )
