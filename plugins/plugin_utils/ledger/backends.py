# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two databases a ledger can live in, behind one small interface.

Queries are written once, with ``?`` placeholders (SQLite's style); the
PostgreSQL backend rewrites them to psycopg's ``%s``. No query in the ledger
contains a literal question mark or percent sign, which keeps that rewrite
exact. Transactions are short and explicit: SQLite write transactions start
with ``BEGIN IMMEDIATE`` so concurrent ansible-playbook processes queue on the
write lock (busy timeout) instead of failing on a lock upgrade.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence

from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff, poll_until

from .errors import LedgerConnectionError, LedgerSchemaError
from .url import LedgerURL, scrub

Row = Dict[str, Any]
SQLITE_BUSY_TIMEOUT_MS = 30000
POSTGRES_SCHEMA = "relops"


class Cursor(Protocol):
    """What a transaction hands to ledger code."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Optional[Row]:
        """Run a query and return its first row, or None."""

    def all(self, sql: str, params: Sequence[Any] = ()) -> List[Row]:
        """Run a query and return every row."""


class Backend(Protocol):
    """One database holding a ledger."""

    dialect: str
    description: str
    # Appended to a SELECT inside a write transaction to lock the rows it reads.
    row_lock: str

    def transaction(self, write: bool) -> contextlib.AbstractContextManager[Cursor]:
        """Open a short transaction; a write one takes the write lock at once."""

    def table_names(self) -> List[str]:
        """List the tables that hold (or would hold) the ledger."""

    def prepare_for_writes(self) -> None:
        """Set connection-level options once the database is known to be a ledger."""

    def close(self) -> None:
        """Close the connection."""


class _SQLiteCursor:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._cursor = connection.cursor()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(sql, tuple(params))
        return self._cursor.rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> Optional[Row]:
        self._cursor.execute(sql, tuple(params))
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> List[Row]:
        self._cursor.execute(sql, tuple(params))
        return [dict(row) for row in self._cursor.fetchall()]


class SQLiteBackend:
    """The embedded ledger: one SQLite file in WAL mode."""

    dialect = "sqlite"
    # BEGIN IMMEDIATE already excludes every other writer for the whole transaction.
    row_lock = ""

    def __init__(self, url: LedgerURL, create: bool = True) -> None:
        if url.path is None:
            raise LedgerConnectionError("ledger_url %s names no SQLite file; use sqlite:///path/to/ledger.db" % url.raw)
        self.path = url.path
        self.description = "SQLite ledger %s" % self.path
        self._connection = self._connect(create)

    def _connect(self, create: bool) -> sqlite3.Connection:
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise LedgerConnectionError(
                "ledger file %s does not exist; run a task that writes to the ledger first, or fix ledger_url"
                % self.path
            )
        if exists and os.path.isdir(self.path):
            raise LedgerConnectionError(
                "ledger path %s is a directory; point ledger_url at a file inside it, e.g. sqlite:///%s/ledger.db"
                % (self.path, self.path.lstrip("/"))
            )
        if not exists:
            _make_parent_directory(self.path)
        try:
            connection = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000.0, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA busy_timeout = %d" % SQLITE_BUSY_TIMEOUT_MS)
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerSchemaError(
                "%s is not a SQLite database (%s); point ledger_url at a ledger file or at a new path"
                % (self.path, exc)
            ) from None
        return connection

    def prepare_for_writes(self) -> None:
        """Switch the file to write-ahead logging, so readers never block the writer."""
        self._switch_to_wal()
        self._connection.execute("PRAGMA synchronous = NORMAL")
        self._connection.execute("PRAGMA foreign_keys = ON")

    def _switch_to_wal(self) -> None:
        """Set WAL mode, waiting while another process holds the new file (e.g. creating the schema).

        SQLite answers "database is locked" to this pragma at once instead of
        applying the busy timeout, so the wait happens here, bounded by that timeout.
        """

        def attempt() -> Optional[str]:
            try:
                self._connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                return str(exc)
            return None

        waited = poll_until(
            attempt, lambda error: error is None, Backoff(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000.0, initial=0.05)
        )
        if not waited.done:
            raise LedgerConnectionError(
                "%s stayed locked by another process for %.0fs (%s); find the process holding it, or retry"
                % (self.path, waited.waited, waited.value)
            )

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Cursor]:
        try:
            self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteCursor(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerConnectionError(
                "%s failed: %s; if it is locked, another process holds a write transaction for over %ds; "
                "if it is read-only, fix the file's permissions or choose another ledger_url"
                % (self.description, exc, SQLITE_BUSY_TIMEOUT_MS // 1000)
            ) from None

    def table_names(self) -> List[str]:
        rows = self._connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self._connection.close()


def _make_parent_directory(path: str) -> None:
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise LedgerConnectionError(
            "cannot create the ledger's directory %s (%s); create it or choose another ledger_url" % (parent, exc)
        ) from None


class _PostgresCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(to_psycopg(sql), tuple(params))
        return int(self._cursor.rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Optional[Row]:
        self._cursor.execute(to_psycopg(sql), tuple(params))
        row = self._cursor.fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> List[Row]:
        self._cursor.execute(to_psycopg(sql), tuple(params))
        return [dict(row) for row in self._cursor.fetchall()]


class PostgresBackend:
    """The shared ledger: a PostgreSQL database, tables in the ``relops`` schema."""

    dialect = "postgresql"
    # Under read committed, a row read without FOR UPDATE can change before our UPDATE lands.
    row_lock = " FOR UPDATE"

    def __init__(self, url: LedgerURL, connect_timeout: int = 10) -> None:
        self.description = "PostgreSQL ledger %s" % url.redacted()
        self._connection = self._connect(url, connect_timeout)

    def _connect(self, url: LedgerURL, connect_timeout: int) -> Any:
        # psycopg is imported here, not at the top, because only PostgreSQL ledgers need it.
        try:
            import psycopg  # noqa: PLC0415
            from psycopg.rows import dict_row  # noqa: PLC0415
        except ImportError:
            raise LedgerConnectionError(
                "ledger_url %s needs the Python package psycopg (version 3) on the controller; "
                "install it with: pip install 'psycopg[binary]'" % url.redacted()
            ) from None
        try:
            connection = psycopg.connect(
                url.raw,
                autocommit=True,
                connect_timeout=connect_timeout,
                row_factory=dict_row,
                application_name="relops.release",
            )
        except psycopg.Error as exc:
            reason = scrub(str(exc).strip().splitlines()[0], url.raw) if str(exc).strip() else type(exc).__name__
            raise LedgerConnectionError(
                "cannot connect to the %s: %s; check that the server is running and reachable, and the user, "
                "password (PGPASSWORD or ~/.pgpass) and database in ledger_url" % (self.description, reason)
            ) from None
        connection.execute("SET search_path TO %s" % POSTGRES_SCHEMA)
        return connection

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[Cursor]:
        import psycopg  # noqa: PLC0415 - loaded already by _connect; imported here for the error class

        try:
            with self._connection.transaction(), self._connection.cursor() as cursor:
                yield _PostgresCursor(cursor)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LedgerConnectionError(
                "%s failed: %s; check that the ledger's user may read and write the %s schema "
                "(a new ledger also needs CREATE on the database)" % (self.description, reason, POSTGRES_SCHEMA)
            ) from None

    def table_names(self) -> List[str]:
        rows = self._connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            (POSTGRES_SCHEMA,),
        ).fetchall()
        return [row["table_name"] for row in rows]

    def prepare_for_writes(self) -> None:
        """Nothing to set: PostgreSQL's defaults (read committed, autocommit outside transactions) fit."""

    def close(self) -> None:
        self._connection.close()


def to_psycopg(sql: str) -> str:
    """Rewrite ``?`` placeholders to psycopg's ``%s``."""
    return sql.replace("?", "%s")


def open_backend(url: LedgerURL, create: bool = True) -> Backend:
    """Connect to the database a ledger URL names."""
    if url.dialect == "sqlite":
        return SQLiteBackend(url, create=create)
    return PostgresBackend(url)
