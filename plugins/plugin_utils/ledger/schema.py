# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger's versioned schema, applied by the collection's own migration engine.

``sql/<dialect>/V<n>__<description>.sql`` files are applied in version order
by ``module_utils/migrations.py`` and recorded in ``relops_schema_history``
(Flyway's layout), one transaction per file, under the engine's lock. Version
numbers are pre-assigned to parallel branches, so a lower number may arrive
after a higher one was applied: the ledger migrates with ``out_of_order``.

Ledgers created by the foundation's applier recorded their versions in
``relops_schema_version`` (sha256 checksums). Opening one converts those rows
into the history table, after checking each file still has the recorded
sha256; the old table is left as it was. Opening a ledger newer than this code
fails, naming both versions.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, List, Optional

from ansible_collections.relops.release.plugins.module_utils import migrations
from ansible_collections.relops.release.plugins.module_utils.migrations import (
    HistoryRow,
    MigrationError,
    Migrator,
    Options,
    SchemaState,
    Script,
    fold_history,
    version_key,
)

from .backends import POSTGRES_SCHEMA, Backend
from .errors import LedgerSchemaError
from .url import LedgerURL

HISTORY_TABLE = "relops_schema_history"
LEGACY_TABLE = "relops_schema_version"
SCHEMA_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")
LOCK_TIMEOUT_SECONDS = 120.0
_HISTORY_COLUMNS = (
    "installed_rank, version, description, type, script, checksum, installed_by, installed_on, execution_time, success"
)


def load_scripts(dialect: str, directory: str = SCHEMA_DIRECTORY) -> List[Script]:
    """Read the dialect's schema files; the ledger has versioned files only."""
    folder = os.path.join(directory, dialect)
    try:
        scripts = migrations.load_scripts(folder)
    except MigrationError as exc:
        raise LedgerSchemaError("ledger schema files: %s" % exc) from None
    others = [script.script for script in scripts if script.kind != "V"]
    if others:
        raise LedgerSchemaError("ledger schema files in %s must all be V<n>__*.sql, not %s" % (folder, others))
    return scripts


def latest_version(dialect: str, directory: str = SCHEMA_DIRECTORY) -> int:
    """Return the newest schema version this code knows for a dialect."""
    scripts = load_scripts(dialect, directory)
    return max(_as_int(script.version) for script in scripts) if scripts else 0


def check_is_ledger(backend: Backend) -> bool:
    """Return whether the database already holds a ledger; refuse a database holding something else."""
    tables = backend.table_names()
    if HISTORY_TABLE in tables or LEGACY_TABLE in tables:
        return True
    if tables:
        shown = ", ".join(tables[:8]) + (" ..." if len(tables) > 8 else "")
        raise LedgerSchemaError(
            "%s is not a relops ledger: it holds tables (%s) but no %s table; "
            "point ledger_url at a new file or database, or at the right ledger"
            % (backend.description, shown, HISTORY_TABLE)
        )
    return False


def read_version(backend: Backend) -> Optional[int]:
    """Return the applied schema version, or None when the database holds no ledger yet."""
    if not check_is_ledger(backend):
        return None
    state = _read_state(backend)
    if state is not None:
        return _as_int(state.current) if state.current else 0
    with backend.transaction(write=False) as cursor:
        row = cursor.one("SELECT max(version) AS version FROM relops_schema_version")
    return int(row["version"]) if row and row["version"] is not None else 0


def pending_scripts(backend: Backend, directory: str = SCHEMA_DIRECTORY) -> List[Script]:
    """Return the schema files not yet applied, without changing anything."""
    scripts = load_scripts(backend.dialect, directory)
    if not check_is_ledger(backend):
        return scripts
    state = _read_state(backend)
    if state is None:
        # A foundation-era ledger: everything after its legacy version, plus the conversion itself.
        legacy = read_version(backend) or 0
        return [script for script in scripts if _as_int(script.version) > legacy]
    _refuse_newer(backend, state, scripts)
    return [script for script in scripts if (script.key or ()) not in state.applied]


def upgrade(backend: Backend, url: LedgerURL, applied_by: str, directory: str = SCHEMA_DIRECTORY) -> List[str]:
    """Bring the ledger to the newest schema; return the scripts applied (none when it is current)."""
    scripts = load_scripts(backend.dialect, directory)
    is_ledger = check_is_ledger(backend)
    backend.prepare_for_writes()
    state = _read_state(backend) if is_ledger else None
    if state is not None:
        verify_checksums(backend, state, scripts)
        if not pending_scripts(backend, directory):
            # Up to date: no lock and no DDL, so a least-privilege database role can use the ledger.
            return []
    migrator = Migrator(
        _open_engine_database(url),
        scripts,
        Options(table=HISTORY_TABLE, out_of_order=True, installed_by=applied_by, lock_timeout=LOCK_TIMEOUT_SECONDS),
    )
    try:
        with migrator.locked():
            _convert_legacy(migrator, scripts, applied_by)
            _refuse_newer(backend, migrator.state(), scripts)
            outcome = migrator.migrate()
    except MigrationError as exc:
        raise LedgerSchemaError("%s: %s" % (backend.description, exc)) from None
    finally:
        migrator.db.close()
    if outcome.failure is not None:
        raise LedgerSchemaError("%s: schema upgrade failed: %s" % (backend.description, outcome.failure["message"]))
    return [str(applied["script"]) for applied in outcome.applied]


def _open_engine_database(url: LedgerURL) -> migrations.Database:
    if url.dialect == "sqlite" and url.path is not None:
        return migrations.SQLiteDatabase(url.path)
    return migrations.PostgresDatabase(url.raw, schema=POSTGRES_SCHEMA)


def _read_state(backend: Backend) -> Optional[SchemaState]:
    """The folded history, or None when the ledger has no history table yet."""
    if HISTORY_TABLE not in backend.table_names():
        return None
    with backend.transaction(write=False) as cursor:
        rows = cursor.all("SELECT %s FROM relops_schema_history ORDER BY installed_rank" % _HISTORY_COLUMNS)
    return fold_history([_history_row(row) for row in rows])


def _history_row(row: Any) -> HistoryRow:
    return HistoryRow(
        installed_rank=int(row["installed_rank"]),
        version=row["version"],
        description=row["description"],
        type=row["type"],
        script=row["script"],
        checksum=None if row["checksum"] is None else int(row["checksum"]),
        installed_by=row["installed_by"],
        installed_on=str(row["installed_on"]),
        execution_time=int(row["execution_time"]),
        success=bool(row["success"]),
    )


def _convert_legacy(migrator: Migrator, scripts: List[Script], applied_by: str) -> None:
    """Copy a foundation-era ledger's relops_schema_version rows into the history table, once."""
    db = migrator.db
    if not db.table_exists(LEGACY_TABLE) or migrator.history():
        return
    by_version = {_as_int(script.version): script for script in scripts}
    legacy = db.query(
        "SELECT version, description, script, checksum, applied_at, applied_by FROM relops_schema_version"
        " ORDER BY version"
    )
    unknown = [int(row[0]) for row in legacy if int(row[0]) not in by_version]
    if unknown:
        raise LedgerSchemaError(
            "%s has schema version %d but this relops.release knows versions up to %d; "
            "upgrade the relops.release collection, or point ledger_url at another ledger"
            % (db.description, max(unknown), max(by_version, default=0))
        )
    rows = []
    for rank, (version, description, name, checksum, applied_at, legacy_by) in enumerate(legacy, start=1):
        script = by_version[int(version)]
        recorded = "sha256:" + hashlib.sha256(script.text.encode("utf-8")).hexdigest()
        if recorded != checksum:
            raise LedgerSchemaError(
                "%s: %s changed after it was applied (recorded %s, file %s); restore the file as released"
                % (db.description, name, checksum, recorded)
            )
        installed_by = legacy_by or applied_by
        rows.append(
            (
                rank,
                script.version,
                description,
                "SQL",
                name,
                script.checksum,
                installed_by,
                _flyway_time(str(applied_at)),
                0,
                True,
            )
        )
    insert = "INSERT INTO relops_schema_history (%s) VALUES (%s)" % (_HISTORY_COLUMNS, ", ".join([db.param] * 10))
    db.begin()
    try:
        for row in rows:
            db.execute(insert, row)
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _flyway_time(rfc3339: str) -> str:
    """'2026-11-26T09:30:00.123456Z' -> '2026-11-26 09:30:00.123', the text both databases accept."""
    return rfc3339.replace("T", " ").rstrip("Z")[:23]


def verify_checksums(backend: Backend, state: SchemaState, scripts: List[Script]) -> None:
    """Fail when an applied schema file has changed since: fix forward with a new version instead."""
    for script in scripts:
        applied = state.applied.get(script.key or ())
        if applied is not None and applied.checksum is not None and applied.checksum != script.checksum:
            raise LedgerSchemaError(
                "schema file %s was changed after %s applied it (recorded checksum %s, file has %s); restore the "
                "file and put the change in a new version"
                % (script.script, backend.description, applied.checksum, script.checksum)
            )


def _refuse_newer(backend: Backend, state: SchemaState, scripts: List[Script]) -> None:
    known = max((script.key or () for script in scripts), default=())
    if state.current is not None and version_key(state.current) > known:
        raise LedgerSchemaError(
            "%s has schema version %s but this relops.release knows versions up to %s; "
            "upgrade the relops.release collection, or point ledger_url at another ledger"
            % (backend.description, state.current, ".".join(str(part) for part in known) or "0")
        )


def _as_int(version: Optional[str]) -> int:
    return int(str(version).split(".", maxsplit=1)[0]) if version else 0
