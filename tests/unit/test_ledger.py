"""The ledger's behaviour, run against SQLite and a real PostgreSQL alike."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator

import psycopg
import pytest

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    Ledger,
    LedgerConnectionError,
    LedgerError,
    LedgerSchemaError,
    open_existing_ledger,
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.schema import (
    SCHEMA_DIRECTORY,
    latest_version,
    read_version,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor


def actor(run_id: str) -> Actor:
    return Actor(run_id=run_id, user="tester", host="ctl")


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def test_first_open_creates_the_schema_and_a_second_changes_nothing(ledger_url: str) -> None:
    url = parse_ledger_url(ledger_url)
    latest = latest_version(url.dialect)
    with open_ledger(url) as first:
        assert first.summary().schema_version == latest
    with open_ledger(url) as second:
        summary = second.summary()
    assert (summary.schema_version, summary.latest_schema_version) == (latest, latest)


def test_runs_are_recorded_once_and_finished(ledger: Ledger) -> None:
    assert ledger.touch_run(actor("r1"), playbook="/p/release.yml", play="Release") is True
    assert ledger.touch_run(actor("r1")) is False
    finished = ledger.finish_run(actor("r1"), "successful", {"service": "demo"})
    assert finished["status"] == "successful"
    assert finished["summary"] == {"service": "demo"}
    assert finished["playbook"] == "/p/release.yml"
    assert [run["run_id"] for run in ledger.list_runs()] == ["r1"]


def test_finish_run_refuses_an_unknown_status(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match=r"status 'done' is not one of successful, failed, aborted"):
        ledger.finish_run(actor("r1"), "done")


def test_deployments_and_decisions_round_trip(ledger: Ledger) -> None:
    first = ledger.record_deployment(actor("r1"), "demo", "1.0.0", "staging", "successful", strategy="blue_green")
    second = ledger.record_deployment(actor("r1"), "demo", "1.1.0", "production", "in_progress", details={"hosts": 3})
    ledger.finish_deployment(second, "rolled_back")
    production = ledger.list_deployments(service="demo", environment="production")
    assert [(row["id"], row["version"], row["status"], row["details"]) for row in production] == [
        (second, "1.1.0", "rolled_back", {"hosts": 3})
    ]
    assert {row["id"] for row in ledger.list_deployments(service="demo")} == {first, second}
    record = ledger.record_decision(
        actor("r1"), "change_gate", "demo@1.1.0", "deny", ["in blackout"], "2026.4", "sha256:ab"
    )
    assert record["decision"] == "deny" and record["reasons"] == ["in blackout"]
    stored = ledger.list_decisions(subject="demo@1.1.0")
    assert stored[0]["reasons"] == ["in blackout"] and stored[0]["run_id"] == "r1"


def test_finish_deployment_of_unknown_id_names_it(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="deployment 999 is not in the ledger"):
        ledger.finish_deployment(999, "failed")


def test_lock_is_exclusive_renewable_and_releasable(ledger: Ledger) -> None:
    taken = ledger.try_lock("demo", actor("a"), 60)
    assert taken.outcome == "acquired" and taken.lock is not None
    refused = ledger.try_lock("demo", actor("b"), 60)
    assert refused.outcome == "held" and refused.holder is not None and refused.holder.owner_run_id == "a"
    renewed = ledger.try_lock("demo", actor("a"), 120)
    assert renewed.outcome == "renewed" and renewed.lock is not None and renewed.lock.ttl_seconds == 120
    assert renewed.lock.expires_at > taken.lock.expires_at
    with pytest.raises(LedgerError, match=r"held by run a .* not by this run b"):
        ledger.release_lock("demo", actor("b"))
    released = ledger.release_lock("demo", actor("a"))
    assert released is not None and ledger.get_lock("demo") is None
    assert ledger.release_lock("demo", actor("a")) is None
    assert [event["event"] for event in ledger.lock_events("demo")] == ["released", "acquired"]


def test_expired_lock_is_taken_over_and_the_takeover_recorded(ledger: Ledger) -> None:
    ledger.try_lock("demo", actor("dead"), 1)
    time.sleep(1.1)
    attempt = ledger.try_lock("demo", actor("next"), 60)
    assert attempt.outcome == "taken_over"
    assert attempt.previous is not None and attempt.previous.owner_run_id == "dead"
    latest = ledger.lock_events("demo")[0]
    assert (latest["event"], latest["run_id"], latest["previous_run_id"]) == ("taken_over", "next", "dead")
    assert [lock.name for lock in ledger.active_locks()] == ["demo"]


def test_forced_release_is_recorded_with_the_previous_owner(ledger: Ledger) -> None:
    ledger.try_lock("demo", actor("stuck"), 600)
    ledger.release_lock("demo", actor("operator"), force=True)
    latest = ledger.lock_events("demo")[0]
    assert (latest["event"], latest["previous_run_id"]) == ("force_released", "stuck")


def test_heartbeat_needs_the_lock(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="held by nobody"):
        ledger.heartbeat_lock("demo", actor("a"))
    first = ledger.try_lock("demo", actor("a"), 60).lock
    assert first is not None
    beat = ledger.heartbeat_lock("demo", actor("a"))
    assert beat.expires_at > first.expires_at and beat.heartbeat_at > first.heartbeat_at


def _contend(url: str, run_id: str, start_at: float, queue: "multiprocessing.Queue[str]") -> None:
    with open_ledger(parse_ledger_url(url)) as own:
        while time.time() < start_at:
            time.sleep(0.001)
        queue.put("%s:%s" % (run_id, own.try_lock("contended", actor(run_id), 60).outcome))


def test_concurrent_contenders_from_separate_processes_get_one_holder(ledger_url: str) -> None:
    open_ledger(parse_ledger_url(ledger_url)).close()
    context = multiprocessing.get_context("spawn")
    queue: "multiprocessing.Queue[str]" = context.Queue()
    start_at = time.time() + 2.0
    workers = [context.Process(target=_contend, args=(ledger_url, "run%d" % n, start_at, queue)) for n in range(8)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for _worker in workers]
    for worker in workers:
        worker.join(timeout=60)
    winners = [outcome for outcome in outcomes if outcome.endswith(":acquired")]
    assert len(winners) == 1, outcomes
    assert sum(outcome.endswith(":held") for outcome in outcomes) == 7
    with open_ledger(parse_ledger_url(ledger_url)) as check:
        lock = check.get_lock("contended")
        assert lock is not None and lock.owner_run_id == winners[0].split(":")[0]


def _race_for_expired(url: str, run_id: str, start_at: float, queue: "multiprocessing.Queue[str]") -> None:
    with open_ledger(parse_ledger_url(url)) as own:
        while time.time() < start_at:
            time.sleep(0.001)
        queue.put("%s:%s" % (run_id, own.try_lock("expired", actor(run_id), 60).outcome))


def test_racing_for_an_expired_lock_while_its_owner_renews_leaves_one_holder(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as setup:
        setup.try_lock("expired", actor("old"), 1)
    time.sleep(1.1)
    context = multiprocessing.get_context("spawn")
    queue: "multiprocessing.Queue[str]" = context.Queue()
    start_at = time.time() + 2.0
    names = ["old"] + ["new%d" % n for n in range(6)]
    workers = [context.Process(target=_race_for_expired, args=(ledger_url, name, start_at, queue)) for name in names]
    for worker in workers:
        worker.start()
    outcomes = dict(queue.get(timeout=60).split(":") for _worker in workers)
    for worker in workers:
        worker.join(timeout=60)
    winners = [name for name, outcome in outcomes.items() if outcome in ("renewed", "taken_over", "acquired")]
    assert len(winners) == 1, outcomes
    with open_ledger(parse_ledger_url(ledger_url)) as check:
        lock = check.get_lock("expired")
        assert lock is not None and lock.owner_run_id == winners[0]
        takeovers = [event for event in check.lock_events("expired") if event["event"] == "taken_over"]
        assert len(takeovers) == (0 if winners[0] == "old" else 1)


def test_releasing_another_runs_expired_lock_changes_nothing(ledger: Ledger) -> None:
    ledger.try_lock("demo", actor("gone"), 1)
    time.sleep(1.1)
    assert ledger.release_lock("demo", actor("tidy")) is None
    lock = ledger.get_lock("demo")
    assert lock is not None and lock.owner_run_id == "gone"
    assert ledger.try_lock("demo", actor("tidy"), 60).outcome == "taken_over"


def test_a_changed_schema_file_is_refused_naming_it(ledger_url: str, tmp_path: os.PathLike[str]) -> None:
    url = parse_ledger_url(ledger_url)
    folder = _schema_dir(tmp_path, 2)
    name = "V{0}__extra_{0}.sql".format(latest_version(url.dialect) + 1)
    open_ledger(url, schema_directory=folder).close()
    for dialect in ("sqlite", "postgresql"):
        with open(os.path.join(folder, dialect, name), "a", encoding="utf-8") as handle:
            handle.write("CREATE TABLE sneaky (id INTEGER);\n")
    with pytest.raises(LedgerSchemaError, match=r"schema file %s was changed after .* applied it" % re.escape(name)):
        open_ledger(url, schema_directory=folder)


@pytest.mark.postgres
def test_an_up_to_date_ledger_needs_no_ddl_rights(postgres_database: str) -> None:
    open_ledger(parse_ledger_url(postgres_database)).close()
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS relops_app")
        admin.execute("CREATE ROLE relops_app LOGIN")
        admin.execute("GRANT USAGE ON SCHEMA relops TO relops_app")
        admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA relops TO relops_app")
        admin.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA relops TO relops_app")
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        database = postgres_database.rsplit("/", 1)[1]
        admin.execute("REVOKE CREATE ON DATABASE %s FROM PUBLIC" % database)
    app_url = postgres_database.replace("postgresql://postgres@", "postgresql://relops_app@")
    try:
        with open_ledger(parse_ledger_url(app_url)) as ledger:
            assert ledger.try_lock("payments", actor("app"), 60).outcome == "acquired"
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute("DROP OWNED BY relops_app")
            admin.execute("DROP ROLE relops_app")


def test_database_errors_become_ledger_errors_naming_the_ledger(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "ledger.db")
    url = parse_ledger_url("sqlite:///" + path.lstrip("/"))
    with open_ledger(url) as first, sqlite3.connect(path, timeout=0) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        first.backend._connection.execute("PRAGMA busy_timeout = 100")  # type: ignore[attr-defined]
        with pytest.raises(LedgerConnectionError, match=r"SQLite ledger .*ledger\.db failed: database is locked"):
            first.try_lock("demo", actor("a"), 60)
        blocker.execute("ROLLBACK")


def _write_many(url: str, run_id: str, count: int) -> None:
    with open_ledger(parse_ledger_url(url)) as own:
        for number in range(count):
            own.record_deployment(actor(run_id), "svc", "1.0.%d" % number, "test", "successful")


def test_concurrent_writers_lose_nothing_and_keep_the_file_sound(ledger_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(ledger_url, "w%d" % n, 40)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with open_ledger(parse_ledger_url(ledger_url)) as check:
        assert len(check.list_deployments(limit=1000)) == 160
        assert len(check.list_runs(limit=100)) == 4
    if ledger_url.startswith("sqlite"):
        path = parse_ledger_url(ledger_url).path
        assert path is not None
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _schema_dir(tmp_path: "os.PathLike[str]", extra: int) -> str:
    """A copy of the real schema files plus ``extra`` made-up later versions, to test upgrades."""
    target = os.path.join(str(tmp_path), "schema%d" % extra)
    shutil.copytree(SCHEMA_DIRECTORY, target)
    latest = latest_version("sqlite")
    for dialect in ("sqlite", "postgresql"):
        for version in range(latest + 1, latest + extra + 1):
            with open(
                os.path.join(target, dialect, "V%d__extra_%d.sql" % (version, version)), "w", encoding="utf-8"
            ) as handle:
                handle.write("CREATE TABLE extra_%d (id INTEGER PRIMARY KEY, note TEXT);\n" % version)
    return target


def test_an_older_ledger_is_upgraded_in_place(ledger_url: str, tmp_path: "os.PathLike[str]") -> None:
    url = parse_ledger_url(ledger_url)
    latest = latest_version(url.dialect)
    with open_ledger(url, schema_directory=_schema_dir(tmp_path, 0)) as old:
        old.record_deployment(actor("r1"), "demo", "1.0.0", "prod", "successful")
    newer = _schema_dir(tmp_path, 2)
    with pytest.raises(LedgerError, match="older schema"):
        open_existing_ledger(url, schema_directory=newer)
    with open_ledger(url, schema_directory=newer) as upgraded:
        assert upgraded.backend.table_names().count("extra_%d" % (latest + 2)) == 1
        assert len(upgraded.list_deployments()) == 1
        assert read_version(upgraded.backend) == latest + 2


def test_a_newer_ledger_is_refused_naming_both_versions(ledger_url: str, tmp_path: "os.PathLike[str]") -> None:
    url = parse_ledger_url(ledger_url)
    latest = latest_version(url.dialect)
    open_ledger(url, schema_directory=_schema_dir(tmp_path, 1)).close()
    with pytest.raises(
        LedgerSchemaError,
        match=r"schema version %d but this relops\.release knows versions up to %d; upgrade" % (latest + 1, latest),
    ):
        open_ledger(url)


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_a_sqlite_file_that_is_not_a_ledger_is_refused_untouched(tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "app.db")
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    before = _digest(path)
    with pytest.raises(LedgerSchemaError, match=r"is not a relops ledger: it holds tables \(customers\)"):
        open_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/")))
    assert _digest(path) == before
    assert sorted(os.listdir(str(tmp_path))) == ["app.db"]


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "notes.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("these are not the tables you are looking for\n" * 100)
    before = _digest(path)
    with pytest.raises(LedgerSchemaError, match="is not a SQLite database"):
        open_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/")))
    assert _digest(path) == before


@pytest.mark.postgres
def test_a_postgres_database_with_foreign_tables_in_our_schema_is_refused(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as raw:
        raw.execute("CREATE SCHEMA relops")
        raw.execute("CREATE TABLE relops.invoices (id int)")
    with pytest.raises(LedgerSchemaError, match=r"not a relops ledger: it holds tables \(invoices\)"):
        open_ledger(parse_ledger_url(postgres_database))


def test_unreachable_postgres_names_the_url_without_the_password() -> None:
    port = _closed_port()
    with pytest.raises(LedgerConnectionError) as error:
        open_ledger(parse_ledger_url("postgresql://relops:s3cret@127.0.0.1:%d/relops" % port))
    message = str(error.value)
    assert "cannot connect to the PostgreSQL ledger postgresql://relops:***@127.0.0.1:%d/relops" % port in message
    assert "s3cret" not in message
    assert "check that the server is running" in message


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_missing_ledger_is_not_created_by_readers(tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "nested", "ledger.db")
    assert open_existing_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/"))) is None
    assert not os.path.exists(os.path.dirname(path))
