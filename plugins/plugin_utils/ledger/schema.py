# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger's versioned schema: ordered SQL files per dialect.

``sql/<dialect>/V<n>__<description>.sql`` files are applied in version
order on first use, each recorded in ``relops_schema_version``. Opening an
older ledger applies the missing versions; opening a newer one than this code
knows fails, naming both versions. The applier is deliberately small: the
database-migration engine will take this over.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp

from .backends import Backend, Cursor
from .errors import LedgerSchemaError

VERSION_TABLE = "relops_schema_version"
SCHEMA_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")
_SCRIPT_NAME = re.compile(r"^V(?P<version>[1-9][0-9]*)__(?P<description>[A-Za-z0-9_]+)\.sql$")
_VERSION_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS relops_schema_version ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, script TEXT NOT NULL,"
    " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, applied_by TEXT NOT NULL)"
)


@dataclass(frozen=True)
class SchemaScript:
    """One versioned schema file."""

    version: int
    description: str
    script: str
    sql: str

    @property
    def checksum(self) -> str:
        return "sha256:" + hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_scripts(dialect: str, directory: str = SCHEMA_DIRECTORY) -> List[SchemaScript]:
    """Read the dialect's schema files in version order; versions must run 1, 2, 3, ..."""
    folder = os.path.join(directory, dialect)
    scripts: List[SchemaScript] = []
    for name in sorted(os.listdir(folder)):
        match = _SCRIPT_NAME.match(name)
        if match is None:
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            sql = handle.read()
        description = match.group("description").replace("_", " ")
        scripts.append(SchemaScript(int(match.group("version")), description, name, sql))
    scripts.sort(key=lambda script: script.version)
    versions = [script.version for script in scripts]
    # Numbers are pre-assigned to parallel branches (V2 ITSM, V3 artifacts, ..., V6 validation),
    # so a checkout may hold V6 without V4; only a missing V1 or a repeated number is an error.
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise LedgerSchemaError(
            "schema files in %s must start at V1 and use each version number once: %s; fix the file names"
            % (folder, [script.script for script in scripts])
        )
    return scripts


def latest_version(dialect: str, directory: str = SCHEMA_DIRECTORY) -> int:
    """Return the newest schema version this code knows for a dialect."""
    return load_scripts(dialect, directory)[-1].version


def applied_versions(cursor: Cursor) -> List[int]:
    """Return every version recorded in the version table."""
    return [int(row["version"]) for row in cursor.all("SELECT version FROM relops_schema_version")]


def current_version(cursor: Cursor) -> int:
    """Return the highest applied version recorded in the version table."""
    row = cursor.one("SELECT max(version) AS version FROM relops_schema_version")
    return int(row["version"]) if row and row["version"] is not None else 0


def check_is_ledger(backend: Backend) -> bool:
    """Return whether the database already holds a ledger; refuse a database holding something else."""
    tables = backend.table_names()
    if VERSION_TABLE in tables:
        return True
    if tables:
        shown = ", ".join(tables[:8]) + (" ..." if len(tables) > 8 else "")
        raise LedgerSchemaError(
            "%s is not a relops ledger: it holds tables (%s) but no %s table; "
            "point ledger_url at a new file or database, or at the right ledger"
            % (backend.description, shown, VERSION_TABLE)
        )
    return False


def pending_scripts(backend: Backend, directory: str = SCHEMA_DIRECTORY) -> List[SchemaScript]:
    """Return the schema files not yet applied, without changing anything."""
    scripts = load_scripts(backend.dialect, directory)
    if not check_is_ledger(backend):
        return scripts
    with backend.transaction(write=False) as cursor:
        done = applied_versions(cursor)
    _refuse_newer(backend, max(done, default=0), scripts[-1].version)
    return [script for script in scripts if script.version not in done]


def upgrade(backend: Backend, applied_by: str, directory: str = SCHEMA_DIRECTORY) -> List[SchemaScript]:
    """Apply every missing schema version in one transaction; return what was applied."""
    scripts = load_scripts(backend.dialect, directory)
    is_ledger = check_is_ledger(backend)
    backend.prepare_for_writes()
    if is_ledger:
        with backend.transaction(write=False) as cursor:
            applied_rows = cursor.all("SELECT version, script, checksum FROM relops_schema_version ORDER BY version")
        verify_checksums(backend, scripts, applied_rows)
        done = {int(row["version"]) for row in applied_rows}
        _refuse_newer(backend, max(done, default=0), scripts[-1].version)
        if done >= {script.version for script in scripts}:
            # Up to date: no lock and no DDL, so a least-privilege database role can use the ledger.
            return []
    with backend.transaction(write=True) as cursor:
        backend.lock_schema(cursor)
        cursor.execute(_VERSION_TABLE_SQL)
        done_now = applied_versions(cursor)
        _refuse_newer(backend, max(done_now, default=0), scripts[-1].version)
        applied = [script for script in scripts if script.version not in done_now]
        for script in applied:
            cursor.script(script.sql)
            cursor.execute(
                "INSERT INTO relops_schema_version (version, description, script, checksum, applied_at, applied_by)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (script.version, script.description, script.script, script.checksum, now_timestamp(), applied_by),
            )
    return applied


def read_version(backend: Backend) -> Optional[int]:
    """Return the applied schema version, or None when the database holds no ledger yet."""
    if not check_is_ledger(backend):
        return None
    with backend.transaction(write=False) as cursor:
        return current_version(cursor)


def verify_checksums(backend: Backend, scripts: List[SchemaScript], applied: List[Dict[str, Any]]) -> None:
    """Fail when an applied schema file has changed since: fix forward with a new version instead."""
    known = {script.version: script for script in scripts}
    for row in applied:
        script = known.get(int(row["version"]))
        if script is not None and script.checksum != row["checksum"]:
            raise LedgerSchemaError(
                "schema file %s was changed after %s applied it (recorded %s, file has %s); restore the file "
                "and put the change in a new version"
                % (script.script, backend.description, row["checksum"], script.checksum)
            )


def _refuse_newer(backend: Backend, version: int, known: int) -> None:
    if version > known:
        raise LedgerSchemaError(
            "%s has schema version %d but this relops.release knows versions up to %d; "
            "upgrade the relops.release collection, or point ledger_url at another ledger"
            % (backend.description, version, known)
        )
