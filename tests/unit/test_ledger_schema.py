"""The ledger's schema on the migration engine: Flyway-layout history, and ledgers created by the
foundation's applier (relops_schema_version, sha256 checksums) converted without loss."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading

import psycopg
import pytest

from ansible_collections.relops.release.plugins.module_utils.migrations import flyway_checksum
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.ledger.schema import (
    SCHEMA_DIRECTORY,
    latest_version,
    read_version,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

LEGACY_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS relops_schema_version ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, script TEXT NOT NULL,"
    " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, applied_by TEXT NOT NULL)"
)


def actor(run_id: str) -> Actor:
    return Actor(run_id=run_id, user="tester", host="ctl")


def v1_text(dialect: str) -> str:
    with open(os.path.join(SCHEMA_DIRECTORY, dialect, "V1__core.sql"), encoding="utf-8") as handle:
        return handle.read()


def make_foundation_ledger(ledger_url: str, checksum: "str | None" = None, version: int = 1) -> None:
    """Leave a database exactly as the foundation's applier did: V1 applied, one relops_schema_version row."""
    dialect = "sqlite" if ledger_url.startswith("sqlite") else "postgresql"
    text = v1_text(dialect)
    recorded = checksum or "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    row = (version, "core", "V%d__core.sql" % version, recorded, "2026-11-01T10:00:00.000000Z", "foundation-user")
    if dialect == "sqlite":
        path = "/" + ledger_url[len("sqlite:///") :]
        with sqlite3.connect(path) as raw:
            raw.executescript(text)
            raw.execute(LEGACY_TABLE_SQL)
            raw.execute("INSERT INTO relops_schema_version VALUES (?, ?, ?, ?, ?, ?)", row)
        return
    with psycopg.connect(ledger_url, autocommit=True) as raw:
        raw.execute("CREATE SCHEMA relops")
        raw.execute("SET search_path TO relops")
        raw.execute(text.encode("utf-8"))
        raw.execute(LEGACY_TABLE_SQL)
        raw.execute("INSERT INTO relops_schema_version VALUES (%s, %s, %s, %s, %s, %s)", row)


def history(ledger_url: str) -> list[tuple]:
    url = parse_ledger_url(ledger_url)
    with open_ledger(url) as ledger, ledger.backend.transaction(write=False) as cursor:
        rows = cursor.all(
            "SELECT version, description, type, script, checksum, installed_by, success"
            " FROM relops_schema_history ORDER BY installed_rank"
        )
    return [tuple(row.values()) for row in rows]


def test_new_ledger_records_its_schema_in_flyway_layout(ledger_url: str) -> None:
    dialect = "sqlite" if ledger_url.startswith("sqlite") else "postgresql"
    with open_ledger(parse_ledger_url(ledger_url), applied_by="alice") as ledger:
        assert read_version(ledger.backend) == latest_version(dialect)
    rows = history(ledger_url)
    assert rows[0] == ("1", "core", "SQL", "V1__core.sql", flyway_checksum(v1_text(dialect)), "alice", True)


def test_foundation_ledger_is_converted_without_loss(ledger_url: str) -> None:
    dialect = "sqlite" if ledger_url.startswith("sqlite") else "postgresql"
    make_foundation_ledger(ledger_url)
    url = parse_ledger_url(ledger_url)
    with open_ledger(url) as ledger:
        deployment = ledger.record_deployment(actor("r1"), "demo", "1.0.0", "prod", "successful")
        assert read_version(ledger.backend) == latest_version(dialect)
        assert "relops_schema_version" in ledger.backend.table_names()
    rows = history(ledger_url)
    assert rows[0] == ("1", "core", "SQL", "V1__core.sql", flyway_checksum(v1_text(dialect)), "foundation-user", True)
    with open_ledger(url) as reopened:
        assert [d["id"] for d in reopened.list_deployments()] == [deployment]
    assert history(ledger_url) == rows


def test_foundation_ledger_with_edited_schema_file_is_refused(ledger_url: str) -> None:
    make_foundation_ledger(ledger_url, checksum="sha256:" + "0" * 64)
    with pytest.raises(LedgerError, match=r"V1__core\.sql changed after it was applied \(recorded sha256:0000"):
        open_ledger(parse_ledger_url(ledger_url))


def test_foundation_ledger_newer_than_this_code_is_refused(ledger_url: str) -> None:
    make_foundation_ledger(ledger_url, version=99)
    with pytest.raises(LedgerError, match=r"schema version 99 but this relops\.release knows versions up to"):
        open_ledger(parse_ledger_url(ledger_url))


def test_a_late_lower_version_is_applied_out_of_order(ledger_url: str, tmp_path: "os.PathLike[str]") -> None:
    """Parallel branches own pre-assigned numbers, so V2 may land after a higher one was applied."""
    directory = os.path.join(str(tmp_path), "schema")
    shutil.copytree(SCHEMA_DIRECTORY, directory)
    high = latest_version("sqlite") + 10
    for dialect in ("sqlite", "postgresql"):
        with open(os.path.join(directory, dialect, "V%d__later.sql" % high), "w", encoding="utf-8") as handle:
            handle.write("CREATE TABLE later_one (id INTEGER PRIMARY KEY);\n")
    url = parse_ledger_url(ledger_url)
    open_ledger(url, schema_directory=directory).close()
    for dialect in ("sqlite", "postgresql"):
        with open(os.path.join(directory, dialect, "V%d__late.sql" % (high - 1)), "w", encoding="utf-8") as handle:
            handle.write("CREATE TABLE late_one (id INTEGER PRIMARY KEY);\n")
    with open_ledger(url, schema_directory=directory) as ledger:
        assert "late_one" in ledger.backend.table_names()
        assert read_version(ledger.backend) == high


def test_concurrent_first_opens_apply_the_schema_once(ledger_url: str) -> None:
    url = parse_ledger_url(ledger_url)
    errors: list[BaseException] = []

    def open_once() -> None:
        try:
            open_ledger(url).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_once) for _number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    versions = [row[0] for row in history(ledger_url)]
    assert len(versions) == len(set(versions))
