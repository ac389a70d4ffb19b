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

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    MetricsRequest,
    compute,
    median,
    release_facts,
    resolve_window,
    scope_of,
)
from ansible_collections.relops.release.plugins.plugin_utils.metrics.patterns import failure_patterns
from ansible_collections.relops.release.plugins.plugin_utils.metrics.release_store import ReleaseMetricsStore
from ansible_collections.relops.release.plugins.plugin_utils.metrics.report import ReportInputs, build
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


def assess(risk: str | None, release_class: str, files: int, migrations: int, strategy: str) -> dict[str, Any]:
    """The stages risk_assess and the release role write: the risk band and facts, the strategy."""
    stages: dict[str, dict[str, Any]] = {}
    if risk is not None:
        facts = {"release_class": release_class, "files_changed": files, "migrations": migrations}
        stages["risk"] = {"risk": risk, "facts": facts}
    stages["deployment"] = {"strategy": strategy}
    return stages


def test_change_failure_rate_by_release_attributes(ledger: Ledger, clock: Clock) -> None:
    """2026-05-04 is a Monday. Deployed: a1.0 ok, a1.1 rolled back, a1.2 ok, b2.0 failed, b2.1 ok (not
    assessed); b2.2 aborted (not deployed, not counted). Failures: a1.1 and b2.0, both high risk,
    major, 150 files, with migrations, started at 16:00."""
    store = ReleaseRecordStore(ledger)
    rows = [
        ("a", "1.0.0", "05-04", "10:00", "successful", assess("low", "minor", 5, 0, "blue_green")),
        ("a", "1.1.0", "05-04", "16:00", "rolled_back", assess("high", "major", 150, 2, "canary")),
        ("a", "1.2.0", "05-05", "10:00", "successful", assess("low", "minor", 20, 0, "blue_green")),
        ("b", "2.0.0", "05-05", "16:00", "failed", assess("high", "major", 150, 1, "blue_green")),
        ("b", "2.1.0", "05-06", "10:00", "successful", assess(None, "", 0, 0, "canary")),
        ("b", "2.2.0", "05-06", "12:00", "aborted", {"risk": {"risk": "high", "facts": {"migrations": 3}}}),
    ]
    for service, version, day, hhmm, outcome, stages in rows:
        release(store, clock, service, version, at(day, hhmm), at(day, hhmm).replace(":00.", ":30."), outcome, stages)
    first_day, last_day = resolve_window(None, "2026-05-04", "2026-05-10", "UTC")
    request = MetricsRequest("production", first_day, last_day, "UTC", "day", HOUR)
    patterns = failure_patterns(ledger, request)

    def table(name: str) -> list[tuple[str, int, int, float]]:
        return [(row["value"], row["deployments"], row["failures"], row["rate"]) for row in patterns[name]]

    assert table("risk") == [("high", 2, 2, 1.0), ("low", 2, 0, 0.0), ("(not assessed)", 1, 0, 0.0)]
    assert table("migrations") == [
        ("with migrations", 2, 2, 1.0),
        ("without migrations", 2, 0, 0.0),
        ("(not assessed)", 1, 0, 0.0),
    ]
    assert table("strategy") == [("canary", 2, 1, 0.5), ("blue_green", 3, 1, 0.3333)]
    assert table("class") == [("major", 2, 2, 1.0), ("minor", 2, 0, 0.0), ("(not assessed)", 1, 0, 0.0)]
    assert table("size") == [
        ("100-999 files", 2, 2, 1.0),
        ("(not assessed)", 1, 0, 0.0),
        ("1-9 files", 1, 0, 0.0),
        ("10-99 files", 1, 0, 0.0),
    ]
    assert table("day") == [("Mon", 2, 1, 0.5), ("Tue", 2, 1, 0.5), ("Wed", 1, 0, 0.0)]
    assert table("hour") == [("16:00", 2, 2, 1.0), ("10:00", 3, 0, 0.0)]
    # The CFR report shows them; its overall rate agrees: 2 failures of 5 deployed releases.
    report = build(ledger, "cfr", ReportInputs(request))
    assert report.data["patterns"] == patterns
    (section,) = [section for section in report.sections if section.heading == "Which kinds of release fail"]
    assert ["risk", "high", 2, 2, "100.0%"] in section.rows
    summary = compute(ledger, request)["summary"]["change_failure_rate"]
    assert (summary["deployments"], summary["failures"]) == (5, 2)


def test_calibration_joins_denials_to_their_release_and_counts_failing_rules(ledger: Ledger, clock: Clock) -> None:
    """Four denials: api (its record, denied then its next attempt deployed), web (subject the change
    number, as the gate writes it with a change; its next attempt deployed), db (no record, subject
    service/environment/version, deployed later), cache (never deployed): 3 of 4 denied then deployed.
    Failing rules: approval twice, quality, freeze, risk; the rules that passed are not counted."""
    store = ReleaseRecordStore(ledger)
    soon = [format_timestamp(utc_now() + datetime.timedelta(minutes=minutes)) for minutes in range(1, 20)]

    def denied(service: str, version: str, subject: str, reasons: list[str], digest: str, record: bool) -> None:
        release_id = None
        if record:
            clock.now = soon.pop(0)
            opened, _new = store.open_release(ACTOR, service, "production", version, "sha256:" + "a" * 64, {})
            release_id = str(opened["release_id"])
        decision = ledger.record_decision(ACTOR, "change_gate", subject, "deny", reasons, "policy-1", digest)
        if release_id is not None:
            clock.now = soon.pop(0)
            store.record_stage(ACTOR, release_id, "gate", dict(decision, checks=[]))
            store.record_stage(ACTOR, release_id, "outcome", {"outcome": "aborted"})

    denied(
        "api",
        "2.0.0",
        "api/production/2.0.0",
        ["approval deny: no approver", "freeze pass: none", "risk pass: low"],
        "d1",
        True,
    )
    denied("web", "1.0.0", "CHG100", ["approval deny: no approver", "quality deny: tests failed"], "d2", True)
    denied("db", "3.0.0", "db/production/3.0.0", ["freeze deny: in the freeze", "approval pass: bob"], "d3", False)
    denied("cache", "1.0.0", "cache/production/1.0.0", ["risk deny: high risk"], "d4", False)
    ledger.record_decision(ACTOR, "change_gate", "api/production/2.0.1", "allow", ["approval pass: bob"])
    for service, version in (("api", "2.0.0"), ("web", "1.0.0")):
        # The next attempt of the same artifact, allowed and deployed: <release id>#2.
        release(store, clock, service, version, soon.pop(0), soon.pop(0), "successful", digest="sha256:" + "a" * 64)
    later = soon.pop(0)
    deployment = {"service": "db", "version": "3.0.0", "environment": "production", "status": "successful"}
    ledger.import_deployments(ACTOR, [dict(deployment, started_at=later, finished_at=later)])
    today = utc_now().date()
    quarter_start = datetime.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    first_day, last_day = resolve_window(
        None, quarter_start.isoformat(), (today + datetime.timedelta(days=1)).isoformat(), "UTC"
    )
    report = build(
        ledger, "calibration", ReportInputs(MetricsRequest("production", first_day, last_day, "UTC", "day", HOUR))
    )
    (entry,) = report.data["quarters"].values()
    assert entry["routes"] == {"change_gate: allow": 1, "change_gate: deny": 4}
    assert entry["denials"] == {
        "change_gate: approval": 2,
        "change_gate: quality": 1,
        "change_gate: freeze": 1,
        "change_gate: risk": 1,
    }
    assert (entry["denied"], entry["later_deployed"]) == (4, 3)
