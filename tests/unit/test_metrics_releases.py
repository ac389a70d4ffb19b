"""DORA metrics over release records written by the real ReleaseRecordStore (docs/metrics.md,
"Definitions"), on SQLite and PostgreSQL, with every figure computed by hand.

The store stamps its writes with the clock; the test sets that clock so each record's times are
known: the same writes a release makes, at chosen moments.

Releases to production (UTC):

| release | team | outcome | commit | deployed | finished | notes |
|---|---|---|---|---|---|---|
| payments-api 1.0.0 | payments | successful | 12-01 08:00 | 10:05 | 10:10 | a rerun continues it |
| payments-api 1.1.0 | payments | aborted | - | - | 11:01 | gate deny: not a deployment |
| payments-api 1.2.0 | payments | rolled_back | 11:00 | 12:05 | 12:17 | detected 12:06, restored 12:14, incident 12:10 |
| payments-api 1.2.1 | payments | successful | 12:30 | 13:05 | 13:20 | the fix (rework) |
| checkout 2.0.0 | web | successful | 12-02 09:00 | 10:02 | 10:05 | incident 11:05-12:35 (within 24 h) |
| checkout 2.1.0 | web | failed | - | 12-03 09:00 | 09:30 | no rollback: fixed forward |
| checkout 2.1.1 | web | successful | 09:40 | - | 10:30 | the fix forward (rework) |
| checkout 3.0.0 | web | in progress | - | - | - | not finished: not counted |

Deployed 6 (the abort is not one), successful 4; failures 3 (1.2.0 rolled back, 2.0.0's incident,
2.1.0 failed): CFR 3/6 = 0.5. Lead times 7800, 3000, 3900, 3000 s: median 3450 s. Recovery 480 s
(12:06 to 12:14), 5400 s (incident 11:05 to 12:35), 5400 s (09:00 to the fix at 10:30): median
5400 s. Rework: 1.2.1, 2.1.0 (after 2.0.0's incident), 2.1.1: 3 of 6.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    MetricsRequest,
    compute,
    resolve_window,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record import store as store_module
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "metrics-run"})
RERUN = current_actor(environ={"RELOPS_RUN_ID": "metrics-rerun"})
HOUR = 3600


class Clock:
    """The time the release record store stamps its next write with."""

    def __init__(self) -> None:
        self.now = ""

    def __call__(self) -> str:
        return self.now


@pytest.fixture
def ledger(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        clock = Clock()
        monkeypatch.setattr(store_module, "now_timestamp", clock)
        release(ReleaseRecordStore(opened), opened, clock)
        yield opened


def at(day: int, hhmm: str) -> str:
    return "2026-12-%02dT%s:00.000000Z" % (day, hhmm)


def release(store: ReleaseRecordStore, ledger: Ledger, clock: Clock) -> None:
    """Write the releases of the table above, stage by stage, as the release role does."""

    def open_(service: str, version: str, team: str, commit: str | None, when: str, actor: Any = ACTOR) -> str:
        clock.now = when
        facts = {"owner": "alice", "team": team, "source_revision": "abc" + version, "commit_time": commit}
        record, _created = store.open_release(
            actor, service, "production", version, "sha256:" + version.replace(".", "") * 8, facts
        )
        return str(record["release_id"])

    def stage(release_id: str, name: str, when: str, data: dict[str, Any]) -> None:
        clock.now = when
        store.record_stage(ACTOR, release_id, name, data)

    first = open_("payments-api", "1.0.0", "payments", "2026-12-01T08:00:00Z", at(1, "10:00"))
    stage(first, "change", at(1, "10:01"), {"number": "CHG1"})
    # Killed after the change, started again: the rerun continues the same record.
    assert open_("payments-api", "1.0.0", "payments", "2026-12-01T08:00:00Z", at(1, "10:03"), RERUN) == first
    stage(first, "deployment", at(1, "10:05"), {"strategy": "blue_green"})
    stage(first, "outcome", at(1, "10:10"), {"outcome": "successful"})

    denied = open_("payments-api", "1.1.0", "payments", "2026-12-01T10:30:00Z", at(1, "11:00"))
    stage(denied, "outcome", at(1, "11:01"), {"outcome": "aborted"})

    broken = open_("payments-api", "1.2.0", "payments", "2026-12-01T11:00:00Z", at(1, "12:00"))
    stage(broken, "change", at(1, "12:01"), {"number": "CHG3"})
    stage(broken, "deployment", at(1, "12:05"), {"strategy": "blue_green"})
    incident, _new = ledger.record_incident(
        ACTOR,
        {
            "service": "payments-api",
            "environment": "production",
            "title": "1.2.0 failed its smoke test",
            "source": "relops",
            "external_id": "CHG3",
            "opened_at": at(1, "12:10"),
        },
    )
    stage(
        broken,
        "rollback",
        at(1, "12:16"),
        {"detected_at": at(1, "12:06"), "restored_at": at(1, "12:14"), "rolled_back_to": "1.0.0"},
    )
    stage(broken, "incident", at(1, "12:16"), {"id": incident["id"], "change": "CHG3"})
    stage(broken, "outcome", at(1, "12:17"), {"outcome": "rolled_back", "rolled_back_to": "1.0.0"})

    fixed = open_("payments-api", "1.2.1", "payments", "2026-12-01T12:30:00Z", at(1, "13:00"))
    stage(fixed, "deployment", at(1, "13:05"), {"strategy": "canary"})
    stage(fixed, "outcome", at(1, "13:20"), {"outcome": "successful"})

    checkout = open_("checkout", "2.0.0", "web", "2026-12-02T09:00:00Z", at(2, "10:00"))
    stage(checkout, "deployment", at(2, "10:02"), {"strategy": "blue_green"})
    stage(checkout, "outcome", at(2, "10:05"), {"outcome": "successful"})
    ledger.record_incident(
        ACTOR,
        {
            "service": "checkout",
            "environment": "production",
            "title": "checkout errors after 2.0.0",
            "opened_at": at(2, "11:05"),
            "resolved_at": at(2, "12:35"),
        },
    )

    forward = open_("checkout", "2.1.0", "web", None, at(3, "08:55"))
    stage(forward, "deployment", at(3, "09:00"), {"strategy": "blue_green"})
    stage(forward, "outcome", at(3, "09:30"), {"outcome": "failed"})

    fix = open_("checkout", "2.1.1", "web", "2026-12-03T09:40:00Z", at(3, "10:00"))
    stage(fix, "outcome", at(3, "10:30"), {"outcome": "successful"})

    open_("checkout", "3.0.0", "web", "2026-12-03T11:00:00Z", at(3, "11:30"))


def request(**extra: Any) -> MetricsRequest:
    first, last = resolve_window(None, "2026-12-01", "2026-12-03", "UTC")
    return MetricsRequest("production", first, last, "UTC", "day", 24 * HOUR, **extra)


def test_the_four_keys_and_rework_over_release_records(ledger: Ledger) -> None:
    answer = compute(ledger, request())
    assert answer["window"]["source"] == "releases"
    summary = answer["summary"]
    assert summary["deployment_frequency"]["deployments"] == 4
    assert summary["deployment_frequency"]["per_day"] == round(4 / 3, 4)
    assert summary["deployment_frequency"]["deployment_days"] == 3
    assert summary["lead_time"] == {
        "median_seconds": 3450.0,
        "median_hours": round(3450 / 3600, 3),
        "samples": 4,
        "tier": "elite",
        "source": "commit_time",
    }
    assert summary["change_failure_rate"] == {
        "deployments": 6,
        "failures": 3,
        "rollbacks": 1,
        "with_incident": 2,
        "rate": 0.5,
        "tier": "low",
    }
    assert summary["recovery_time"] == {
        "median_seconds": 5400.0,
        "median_hours": 1.5,
        "recovered": 3,
        "unrecovered": 0,
        "tier": "high",
    }
    assert summary["rework_rate"] == {"deployments": 6, "rework": 3, "rate": 0.5}


def test_each_day_counts_the_releases_that_finished_on_it(ledger: Ledger) -> None:
    series = compute(ledger, request())["series"]
    assert [
        (
            day["period"],
            day["deployment_frequency"]["deployments"],
            day["change_failure_rate"]["deployments"],
            day["change_failure_rate"]["failures"],
            day["lead_time"]["median_seconds"],
            day["recovery_time"]["median_seconds"],
        )
        for day in series
    ] == [
        ("2026-12-01", 2, 3, 1, 5400.0, 480.0),
        ("2026-12-02", 1, 1, 1, 3900.0, 5400.0),
        ("2026-12-03", 1, 2, 1, 3000.0, 5400.0),
    ]


def test_per_team_from_the_records_team(ledger: Ledger) -> None:
    groups = compute(ledger, request(group_by="team"))["groups"]
    assert sorted(groups) == ["payments", "web"]
    payments, web = groups["payments"], groups["web"]
    assert (payments["deployment_frequency"]["deployments"], payments["change_failure_rate"]["rate"]) == (2, 0.3333)
    assert (payments["lead_time"]["median_seconds"], payments["recovery_time"]["median_seconds"]) == (5400.0, 480.0)
    assert (web["deployment_frequency"]["deployments"], web["change_failure_rate"]["rate"]) == (2, 0.6667)
    assert (web["lead_time"]["median_seconds"], web["recovery_time"]["median_seconds"]) == (3450.0, 5400.0)


def test_a_team_filter_and_the_deployments_table_source(ledger: Ledger) -> None:
    web = compute(ledger, request(team="web"))["summary"]
    assert (web["deployment_frequency"]["deployments"], web["change_failure_rate"]["failures"]) == (2, 2)
    # The deployments table holds no rows here: asked for explicitly, it answers from that table alone.
    table = compute(ledger, request(source="deployments"))
    assert table["window"]["source"] == "deployments"
    assert table["summary"]["change_failure_rate"]["deployments"] == 0


def test_an_incident_opened_by_a_failed_release_does_not_blame_the_one_before(ledger: Ledger) -> None:
    # Opened at 12:10, two hours after 1.0.0 finished and before 1.2.0 did: 1.2.0's stage names it.
    one_day = compute(ledger, request(service="payments-api"))["summary"]["change_failure_rate"]
    assert (one_day["deployments"], one_day["failures"], one_day["with_incident"]) == (3, 1, 1)


def test_an_incident_caused_by_a_change_counts_against_the_release_made_under_it(ledger: Ledger) -> None:
    # Opened in ServiceNow on 12-03, days after any payments-api release (outside the 24 h link window):
    # only its caused_by (1.0.0's change, CHG1) links it, and 1.0.0 becomes a failure.
    ledger.record_incident(
        ACTOR,
        {
            "service": "payments-api",
            "environment": "production",
            "title": "payments slow since 1.0.0",
            "source": "servicenow",
            "external_id": "INC0010099",
            "caused_by": "CHG1",
            "opened_at": at(3, "12:00"),
        },
    )
    rate = compute(ledger, request(service="payments-api"))["summary"]["change_failure_rate"]
    assert (rate["deployments"], rate["failures"], rate["with_incident"]) == (3, 2, 2)
