"""Delivery metrics over release records beyond the four keys (issue 18): lead time from git over
the records, and which releases fail (docs/metrics.md). Records are written by the real
ReleaseRecordStore with its clock set, on SQLite and PostgreSQL; every figure is computed by hand.
"""

from __future__ import annotations

import datetime
import os
import random
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    MetricsRequest,
    compute,
    median,
    release_facts,
    resolve_window,
    scope_of,
)
from ansible_collections.relops.release.plugins.plugin_utils.metrics.release_store import ReleaseMetricsStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record import store as store_module
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "patterns-run"})
HOUR = 3600


class Clock:
    """The time the release record store stamps its next write with."""

    def __init__(self) -> None:
        self.now = ""

    def __call__(self) -> str:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moment = Clock()
    monkeypatch.setattr(store_module, "now_timestamp", moment)
    return moment


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def at(day: str, hhmm: str) -> str:
    return "2026-%sT%s:00.000000Z" % (day, hhmm)


def release(
    store: ReleaseRecordStore,
    clock: Clock,
    service: str,
    version: str,
    opened: str,
    finished: str,
    outcome: str,
    stages: dict[str, dict[str, Any]] | None = None,
    revision: str | None = None,
    commit: str | None = None,
    digest: str | None = None,
) -> str:
    """Open a record, write its stages, finish it: what the release role does, at chosen moments."""
    clock.now = opened
    facts = {"owner": "alice", "team": "payments", "source_revision": revision, "commit_time": commit}
    record, _created = store.open_release(
        ACTOR, service, "production", version, digest or "sha256:" + (version.replace(".", "") * 16)[:64], facts
    )
    release_id = str(record["release_id"])
    for name, data in (stages or {}).items():
        store.record_stage(ACTOR, release_id, name, data)
    clock.now = finished
    store.record_stage(ACTOR, release_id, "outcome", {"outcome": outcome})
    return release_id


def _commit(repo: str, message: str, when: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"]
    with open(os.path.join(repo, "file.txt"), "a", encoding="utf-8") as handle:
        handle.write(message + "\n")
    subprocess.run([*git, "add", "file.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True, env=env)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_lead_time_from_git_reads_the_release_records(ledger: Ledger, clock: Clock, tmp_path: Any) -> None:
    repo = str(tmp_path / "src")
    subprocess.run(["git", "init", "-q", repo], check=True)
    first = _commit(repo, "one", "2026-02-27T10:00:00Z")
    _commit(repo, "two", "2026-03-01T06:00:00Z")
    _commit(repo, "three", "2026-03-01T08:00:00Z")
    second = _commit(repo, "four", "2026-03-02T09:00:00Z")
    store = ReleaseRecordStore(ledger)
    # Before the window: the release whose commits were already out.
    release(store, clock, "api", "1.0.0", at("02-28", "09:50"), at("02-28", "10:00"), "successful", revision=first)
    # A failed release in the window is not a release of its commits: they count at the next success.
    release(store, clock, "api", "1.1.0", at("03-01", "11:00"), at("03-01", "11:30"), "failed", revision="f" * 40)
    release(
        store,
        clock,
        "api",
        "1.1.1",
        at("03-02", "09:50"),
        at("03-02", "10:00"),
        "successful",
        revision=second,
        commit="2026-03-02T09:00:00Z",
    )
    first_day, last_day = resolve_window(None, "2026-03-01", "2026-03-07", "UTC")
    plain = compute(ledger, MetricsRequest("production", first_day, last_day, "UTC", "day", 24 * HOUR))
    assert plain["window"]["source"] == "releases"
    assert (plain["summary"]["lead_time"]["median_seconds"], plain["summary"]["lead_time"]["source"]) == (
        3600,
        "commit_time",
    )
    answer = compute(
        ledger, MetricsRequest("production", first_day, last_day, "UTC", "day", 24 * HOUR, repository=repo)
    )
    lead = answer["summary"]["lead_time"]
    # Commits two, three and four reached production with 1.1.1 at 03-02 10:00: 28 h, 26 h, 1 h.
    assert (lead["median_seconds"], lead["source"]) == (26 * 3600, "git")
    by_day = {entry["period"]: entry["lead_time"]["median_seconds"] for entry in answer["series"]}
    assert (by_day["2026-03-01"], by_day["2026-03-02"]) == (None, 26 * 3600)


def test_the_counts_in_sql_equal_the_per_release_facts(ledger: Ledger, clock: Clock) -> None:
    """Many releases of every kind: compute() (counting in SQL) agrees with release_facts (per release)."""
    pick = random.Random(26)
    store = ReleaseRecordStore(ledger)
    moment = datetime.datetime(2026, 4, 1, 8, 0, tzinfo=datetime.timezone.utc)
    for number in range(70):
        moment += datetime.timedelta(minutes=pick.randint(20, 400))
        service = "svc%d" % pick.randint(0, 2)
        outcome = pick.choice(["successful"] * 5 + ["failed", "rolled_back", "aborted"])
        stages: dict[str, dict[str, Any]] = {}
        if outcome != "aborted":
            stages["deployment"] = {"strategy": "blue_green"}
        if outcome == "rolled_back" and pick.random() < 0.7:
            detected = moment + datetime.timedelta(minutes=3)
            stages["rollback"] = {
                "detected_at": format_timestamp(detected),
                "restored_at": format_timestamp(detected + datetime.timedelta(seconds=pick.randint(30, 900))),
            }
        if pick.random() < 0.3:
            stages["change"] = {"number": "CHG%d" % number}
        commit = format_timestamp(moment - datetime.timedelta(minutes=pick.randint(5, 3000)))
        release_id = release(
            store,
            clock,
            service,
            "1.%d.0" % number,
            format_timestamp(moment),
            format_timestamp(moment + datetime.timedelta(minutes=10)),
            outcome,
            stages,
            commit=commit if pick.random() < 0.8 else None,
        )
        if pick.random() < 0.25:
            opened = moment + datetime.timedelta(minutes=pick.randint(5, 600))
            resolved = opened + datetime.timedelta(minutes=pick.randint(5, 300)) if pick.random() < 0.8 else None
            incident, _new = ledger.record_incident(
                ACTOR,
                {
                    "service": service,
                    "environment": "production",
                    "title": "incident after %s" % release_id,
                    "opened_at": format_timestamp(opened),
                    "resolved_at": format_timestamp(resolved) if resolved else None,
                    "external_id": stages.get("change", {}).get("number") if pick.random() < 0.5 else None,
                },
            )
            if outcome in ("failed", "rolled_back") and pick.random() < 0.5:
                clock.now = format_timestamp(moment + datetime.timedelta(minutes=11))
                store.record_stage(ACTOR, release_id, "incident", {"id": incident["id"]})
    first_day, last_day = resolve_window(None, "2026-04-03", "2026-04-12", "UTC")
    for team in (None, "payments"):
        request = MetricsRequest("production", first_day, last_day, "UTC", "day", 6 * HOUR, team=team)
        summary = compute(ledger, request)["summary"]
        facts = release_facts(ReleaseMetricsStore(ledger), scope_of(request))
        deployed = sum(fact["deployments"] for fact in facts)
        assert deployed > 20
        assert summary["change_failure_rate"]["deployments"] == deployed
        assert summary["deployment_frequency"]["deployments"] == sum(fact["successful"] for fact in facts)
        for name in ("failures", "rollbacks", "with_incident"):
            assert summary["change_failure_rate"][name] == sum(fact[name] for fact in facts), name
        assert summary["rework_rate"]["rework"] == sum(fact["rework"] for fact in facts)
        assert summary["recovery_time"]["recovered"] == sum(fact.get("recovered", 0) for fact in facts)
        assert summary["recovery_time"]["unrecovered"] == sum(fact.get("unrecovered", 0) for fact in facts)
        leads = [fact["lead_seconds"] for fact in facts if fact["lead_seconds"] is not None]
        recoveries = [fact["recovery_seconds"] for fact in facts if fact["recovery_seconds"] is not None]
        assert summary["lead_time"]["median_seconds"] == median(leads)
        assert summary["recovery_time"]["median_seconds"] == median(recoveries)
        assert summary["change_failure_rate"]["with_incident"] > 0
