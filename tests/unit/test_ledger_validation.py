"""Ledger records of the validation capability (schema V6): stabilization periods and
incidents, and schema versions that arrive out of order from parallel branches.
Run against SQLite and a real PostgreSQL alike."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    Ledger,
    LedgerError,
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.schema import SCHEMA_DIRECTORY, load_scripts
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

RUN = Actor(run_id="run-1", user="tester", host="ctl")


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def test_a_period_is_active_until_completed(ledger: Ledger) -> None:
    period = ledger.start_stabilization(RUN, "payments", "production", "1.4.2", 600, {"interval": 30})
    assert period["status"] == "active" and period["ends_at"] > period["started_at"]
    assert period["details"] == {"interval": 30}
    assert [row["id"] for row in ledger.active_stabilizations("payments", "production")] == [period["id"]]
    assert ledger.active_stabilizations("payments", "staging") == []
    done = ledger.complete_stabilization(int(period["id"]))
    assert done["status"] == "completed" and done["ended_at"] is not None
    assert ledger.active_stabilizations("payments", "production") == []
    with pytest.raises(LedgerError, match="stabilization period %d is not active" % period["id"]):
        ledger.complete_stabilization(int(period["id"]))


def test_a_period_past_its_end_no_longer_restricts(ledger: Ledger) -> None:
    ledger.start_stabilization(RUN, "payments", "production", "1.4.2", 0)
    assert ledger.active_stabilizations("payments", "production") == []
    assert [row["status"] for row in ledger.list_stabilizations("payments")] == ["active"]


def test_a_watch_that_ran_past_the_end_still_finds_the_period_to_close(ledger: Ledger) -> None:
    period = ledger.start_stabilization(RUN, "payments", "production", "1.4.2", 0)
    lapsed = ledger.active_stabilizations("payments", "production", include_lapsed=True)
    assert [row["id"] for row in lapsed] == [period["id"]]
    assert ledger.complete_stabilization(int(period["id"]))["status"] == "completed"
    assert ledger.active_stabilizations("payments", "production", include_lapsed=True) == []


def test_a_breach_ends_the_period_and_opens_an_incident(ledger: Ledger) -> None:
    period = ledger.start_stabilization(RUN, "payments", "production", "1.4.2", 600)
    ended, incident = ledger.breach_stabilization(
        RUN,
        int(period["id"]),
        "payments",
        "production",
        "error ratio 0.2 over 0.01",
        "critical",
        "1.4.2",
        {"verdict": "fail"},
    )
    assert ended is not None and ended["status"] == "breached"
    assert incident["status"] == "open" and incident["stabilization_id"] == period["id"]
    assert (incident["severity"], incident["source"], incident["details"]) == (
        "critical",
        "stabilization",
        {"verdict": "fail"},
    )
    assert ledger.active_stabilizations("payments") == []
    assert [row["id"] for row in ledger.list_incidents("payments", status="open")] == [incident["id"]]


def test_a_failed_breach_leaves_nothing_half_written(ledger: Ledger) -> None:
    period = ledger.start_stabilization(RUN, "payments", "production", "1.4.2", 600)
    ledger.complete_stabilization(int(period["id"]))
    with pytest.raises(LedgerError, match="is not active"):
        ledger.breach_stabilization(RUN, int(period["id"]), "payments", "production", "late breach")
    assert ledger.list_incidents("payments") == []
    with pytest.raises(LedgerError, match="severity 'urgent' is not one of"):
        ledger.breach_stabilization(RUN, None, "payments", "production", "x", "urgent")


def test_a_lower_version_from_a_parallel_branch_is_applied_later(ledger_url: str, tmp_path: "os.PathLike[str]") -> None:
    url = parse_ledger_url(ledger_url)
    with open_ledger(url) as first:
        first.start_stabilization(RUN, "payments", "production", "1.4.2", 600)
    merged = os.path.join(str(tmp_path), "merged")
    shutil.copytree(SCHEMA_DIRECTORY, merged)
    known = {int(str(script.version)) for script in load_scripts(url.dialect)}
    missing = min(set(range(2, max(known))) - known)
    for dialect in ("sqlite", "postgresql"):
        with open(os.path.join(merged, dialect, "V%d__branch.sql" % missing), "w", encoding="utf-8") as handle:
            handle.write("CREATE TABLE branch_%d (id INTEGER PRIMARY KEY);\n" % missing)
    with open_ledger(url, schema_directory=merged) as upgraded:
        assert "branch_%d" % missing in upgraded.backend.table_names()
        assert len(upgraded.list_stabilizations()) == 1
