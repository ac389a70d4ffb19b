# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Flyway-compatible SQL migration engine for SQLite and PostgreSQL.

Target-safe: the standard library only; psycopg 3 is imported when a
PostgreSQL URL is opened. The history table has Flyway's layout and the
checksums are Flyway's, so a database can move between Flyway and this engine
without rewriting history. docs/migrations.md describes the rules.
"""

from __future__ import annotations

import contextlib
import getpass
import importlib.util
import os
import re
import sqlite3
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type

from ansible_collections.relops.release.plugins.module_utils.url_secrets import redact_url, scrub

# Only whether PostgreSQL databases can be opened: importing psycopg costs about a second on a busy
# controller, which every SQLite-only task would pay; PostgresDatabase imports it when it connects.
HAS_PSYCOPG = importlib.util.find_spec("psycopg") is not None

try:
    import fcntl

    HAS_FCNTL = True
except ImportError:  # pragma: no cover - non-POSIX controllers only
    HAS_FCNTL = False

DEFAULT_TABLE = "flyway_schema_history"
# Flyway's default for its encoding setting; any codec Python knows is accepted.
DEFAULT_ENCODING = "UTF-8"
BYTE_ORDER_MARK = "\ufeff"
BASELINE_DESCRIPTION = "<< Flyway Baseline >>"
TYPE_SQL = "SQL"
TYPE_UNDO = "UNDO_SQL"
TYPE_BASELINE = "BASELINE"
PHASES = ("expand", "contract")
# Lock key space for pg_try_advisory_lock(int, int); the second key is the table's CRC32.
PG_LOCK_CLASS = 0x72656C6F  # "relo"
LOCK_POLL_SECONDS = 0.05

_SCRIPT_NAME = re.compile(r"^(?P<prefix>[VUR])(?P<version>[^_]*(?:_[^_]+)*?)__(?P<description>.+)\.sql$")
_VERSION = re.compile(r"^[0-9]+(?:[._][0-9]+)*$")
_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z0-9_.:-]+)\}")
_HEADER = re.compile(r"^--\s*relops:(?P<key>[a-z_]+)\s*=\s*(?P<value>\S+)\s*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_0-9]*\$")


class MigrationError(Exception):
    """A migration problem reported to the user; the message names the value and the fix."""


class MigrationFailed(MigrationError):
    """A script failed while running; where and why are kept for the result."""

    def __init__(self, message: str, script: str, line: int, database_message: str) -> None:
        super().__init__(message)
        self.script = script
        self.line = line
        self.database_message = database_message


# ---------------------------------------------------------------------------
# Versions and checksums


def parse_version(text: str) -> Tuple[int, ...]:
    """Parse a Flyway version (``1``, ``1.2``, ``1_2``, ``2024.01.05``) into its numeric parts."""
    if not _VERSION.match(text):
        raise MigrationError(
            "version %r is not a Flyway version; use digits separated by dots or underscores, e.g. 1, 1.2, 1_2" % text
        )
    return tuple(int(part) for part in re.split(r"[._]", text))


def version_key(text: str) -> Tuple[int, ...]:
    """Key that orders and compares versions as Flyway does: numerically, part by part, 1.0 == 1."""
    parts = list(parse_version(text))
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def display_version(text: str) -> str:
    """The version as Flyway stores it: underscores become dots, digits kept as written."""
    return text.replace("_", ".")


def flyway_checksum(text: str) -> int:
    """Flyway's checksum: CRC32 over each line's UTF-8 bytes, line endings and a leading BOM dropped.

    Java's BufferedReader.readLine() ends a line at \\n, \\r\\n or \\r and never
    returns the terminator; the CRC continues across lines, so the result is the
    CRC32 of the lines concatenated. Java casts the value to a signed int.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    crc = 0
    for line in _java_lines(text):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _java_lines(text: str) -> List[str]:
    # str.splitlines() also splits on \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029, which Java does not.
    return re.split(r"\r\n|\r|\n", text[:-1] if text.endswith(("\n", "\r")) else text) if text else []


# ---------------------------------------------------------------------------
# Scripts


@dataclass(frozen=True)
class Script:
    """One migration file."""

    kind: str  # V, U or R
    version: Optional[str]
    description: str
    script: str
    text: str
    checksum: int
    transactional: bool
    phase: str

    @property
    def key(self) -> Optional[Tuple[int, ...]]:
        return version_key(self.version) if self.version is not None else None

    def sql(self, placeholders: Mapping[str, str]) -> str:
        return replace_placeholders(self.text, placeholders, self.script)

    def as_dict(self, placeholders: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "script": self.script,
            "version": self.version,
            "description": self.description,
            "type": "UNDO_SQL" if self.kind == "U" else "SQL",
            "checksum": self.checksum,
            "phase": self.phase,
            "transactional": self.transactional,
        }
        if placeholders is not None:
            result["sql"] = self.sql(placeholders)
        return result


def parse_script(name: str, text: str, placeholders: Optional[Mapping[str, str]] = None) -> Optional[Script]:
    """Return the Script a file name and text describe, or None when the name is not a migration's."""
    text = strip_byte_order_mark(text)
    match = _SCRIPT_NAME.match(name)
    if match is None:
        return None
    prefix, raw_version = match.group("prefix"), match.group("version")
    if prefix == "R" and raw_version:
        raise MigrationError("%s: a repeatable migration has no version; rename it R__<description>.sql" % name)
    if prefix in "VU" and not raw_version:
        raise MigrationError("%s: a %s migration needs a version, e.g. %s1__%s" % (name, prefix, prefix, name[3:]))
    if raw_version:
        parse_version(raw_version)
    headers = read_headers(name, text)
    checksum_text = text
    if prefix == "R" and placeholders is not None:
        # As Flyway does: a repeatable's checksum covers its placeholder values, so changing one re-applies it.
        checksum_text = replace_placeholders(text, placeholders, name)
    return Script(
        kind=prefix,
        version=display_version(raw_version) if raw_version else None,
        description=match.group("description").replace("_", " "),
        script=name,
        text=text,
        checksum=flyway_checksum(checksum_text),
        transactional=headers.get("transactional", "true") != "false",
        phase=headers.get("phase", "expand"),
    )


def read_headers(name: str, text: str) -> Dict[str, str]:
    """Read ``-- relops:key=value`` comments from the top of a script (before its first statement)."""
    headers: Dict[str, str] = {}
    for line in _java_lines(text.lstrip("\ufeff")):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = _HEADER.match(stripped)
        if match is None:
            continue
        key, value = match.group("key"), match.group("value").lower()
        if key == "transactional" and value not in ("true", "false"):
            raise MigrationError("%s: relops:transactional=%s; use true or false" % (name, value))
        if key == "phase" and value not in PHASES:
            raise MigrationError("%s: relops:phase=%s; use expand or contract" % (name, value))
        if key not in ("transactional", "phase"):
            raise MigrationError(
                "%s: unknown header relops:%s; known headers are transactional and phase" % (name, key)
            )
        headers[key] = value
    return headers


def replace_placeholders(text: str, placeholders: Mapping[str, str], script: str) -> str:
    """Replace ``${name}`` with its value; an unknown name is an error naming it."""

    def substitute(match: "re.Match[str]") -> str:
        name = match.group("name")
        if name not in placeholders:
            raise MigrationError(
                "%s: placeholder ${%s} has no value; pass it in placeholders, e.g. placeholders: {%s: ...}"
                % (script, name, name)
            )
        return str(placeholders[name])

    return _PLACEHOLDER.sub(substitute, text)


def strip_byte_order_mark(text: str) -> str:
    """Drop a leading byte-order mark: Flyway's parser reads scripts through a BOM-stripping reader, and a
    database given the mark fails (PostgreSQL: syntax error at line 1)."""
    return text[1:] if text.startswith(BYTE_ORDER_MARK) else text


def decode_script(data: bytes, source: str, encoding: str = DEFAULT_ENCODING) -> str:
    """A script's text from its bytes in ``encoding``, without a byte-order mark; line endings are kept."""
    try:
        text = data.decode(encoding)
    except LookupError:
        raise MigrationError(
            "encoding %r is not a text encoding Python knows; use one such as UTF-8, ISO-8859-1 or UTF-16" % encoding
        ) from None
    except UnicodeDecodeError as exc:
        line, column = _text_position(data[: exc.start].decode(encoding, errors="replace"))
        raise MigrationError(
            "%s: byte 0x%02x at line %d, column %d is not valid %s (%s); save the file as %s or set encoding "
            "to the one it was written in (e.g. ISO-8859-1)"
            % (source, data[exc.start], line, column, encoding, exc.reason, encoding)
        ) from None
    return strip_byte_order_mark(text)


def _text_position(before: str) -> Tuple[int, int]:
    """Line and column (both from 1) just after ``before``, with line ends counted as Java's readLine does."""
    lines = re.split(r"\r\n|\r|\n", strip_byte_order_mark(before))
    return len(lines), len(lines[-1]) + 1


def load_scripts(
    directory: str, placeholders: Optional[Mapping[str, str]] = None, encoding: str = DEFAULT_ENCODING
) -> List[Script]:
    """Read every migration file in a directory (not recursive); duplicates are refused."""
    if not os.path.isdir(directory):
        raise MigrationError("migrations directory %s does not exist; point migrations_dir at the folder" % directory)
    scripts: List[Script] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or _SCRIPT_NAME.match(name) is None:
            continue
        with open(path, "rb") as handle:
            text = decode_script(handle.read(), path, encoding)
        script = parse_script(name, text, placeholders or {})
        if script is not None:
            scripts.append(script)
    refuse_duplicates(scripts)
    return scripts


def refuse_duplicates(scripts: Sequence[Script]) -> None:
    seen: Dict[Tuple[str, Any], str] = {}
    for script in scripts:
        identity = (script.kind, script.key if script.kind != "R" else script.description)
        if identity in seen:
            raise MigrationError(
                "%s and %s are the same migration (%s %s); rename one of them"
                % (seen[identity], script.script, script.kind, script.version or script.description)
            )
        seen[identity] = script.script


# ---------------------------------------------------------------------------
# Splitting scripts into statements


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int


def split_statements(sql: str, dialect: str) -> List[Statement]:
    """Split a script on top-level semicolons, respecting quotes, comments and dollar quotes.

    On SQLite a piece is extended until sqlite3.complete_statement() accepts it,
    which keeps trigger bodies (BEGIN ... END) whole.
    """
    pieces: List[Statement] = []
    start, line, start_line, index = 0, 1, 1, 0
    length = len(sql)
    while index < length:
        char = sql[index]
        if char == "\n":
            line += 1
        if sql.startswith("--", index):
            end = sql.find("\n", index)
            index = length if end < 0 else end
            continue
        if sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            end = length if end < 0 else end + 2
            line += sql.count("\n", index, end)
            index = end
            continue
        if char in ("'", '"'):
            end = _closing_quote(sql, index, char)
            line += sql.count("\n", index + 1, end)
            index = end
            continue
        if char == "$" and dialect == "postgresql":
            tag = _DOLLAR_TAG.match(sql, index)
            if tag is not None:
                end = sql.find(tag.group(0), tag.end())
                end = length if end < 0 else end + len(tag.group(0))
                line += sql.count("\n", index, end)
                index = end
                continue
        if char == ";":
            pieces.append(Statement(sql[start : index + 1], start_line))
            start, start_line = index + 1, line
        index += 1
    pieces.append(Statement(sql[start:], start_line))
    if dialect == "sqlite":
        pieces = _join_incomplete(pieces)
    return [_trimmed(piece) for piece in pieces if _has_code(piece.sql)]


def _closing_quote(sql: str, index: int, quote: str) -> int:
    position = index + 1
    while True:
        end = sql.find(quote, position)
        if end < 0:
            return len(sql)
        if sql.startswith(quote * 2, end):
            position = end + 2
            continue
        return end + 1


def _join_incomplete(pieces: List[Statement]) -> List[Statement]:
    joined: List[Statement] = []
    pending: Optional[Statement] = None
    for piece in pieces:
        current = piece if pending is None else Statement(pending.sql + piece.sql, pending.line)
        if sqlite3.complete_statement(current.sql) or not _has_code(current.sql):
            joined.append(current)
            pending = None
        else:
            pending = current
    if pending is not None:
        joined.append(pending)
    return joined


def _has_code(sql: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)
    return bool(without_comments.strip().strip(";").strip())


# Statements that end, start or abandon the transaction a script runs in (SAVEPOINT, RELEASE and ROLLBACK TO
# stay inside it). SQLite trigger bodies and PostgreSQL DO blocks are single statements after splitting, so
# their inner BEGIN/END never start a statement here.
_TRANSACTION_CONTROL = re.compile(
    r"^(?P<keyword>COMMIT|END|ABORT|START\s+TRANSACTION|BEGIN|ROLLBACK(?!\s+(?:TRANSACTION\s+|WORK\s+)?TO\b))\b",
    re.IGNORECASE,
)


def refuse_transaction_control(scripts: Sequence[Script], dialect: str, placeholders: Mapping[str, str]) -> None:
    """Refuse, before anything runs, a transactional script that controls the transaction itself.

    Its own COMMIT would keep the statements before it while the engine records the script as failed and
    rolls back only the rest: a half-applied script whose rerun fails with "already exists". Flyway
    refuses what it cannot run atomically (mixed: false) rather than run it half-way; so do we.
    """
    for script in scripts:
        if not script.transactional:
            continue
        for statement in split_statements(script.sql(placeholders), dialect):
            match = _TRANSACTION_CONTROL.match(statement.sql)
            if match is not None:
                raise MigrationError(
                    "%s, line %d: %s controls the transaction, but the script runs in a transaction of its own "
                    "(a COMMIT there would keep half the script while the history records it failed); remove it, "
                    "or run the script outside a transaction with a first line -- relops:transactional=false "
                    "and write it so it can be re-run. Nothing was applied"
                    % (script.script, statement.line, " ".join(match.group("keyword").upper().split()))
                )


def _trimmed(statement: Statement) -> Statement:
    """Drop leading blank lines and comments, so the statement's line is that of its first keyword."""
    text, line = statement.sql, statement.line
    while True:
        stripped = text.lstrip()
        line += text[: len(text) - len(stripped)].count("\n")
        if stripped.startswith("--"):
            end = stripped.find("\n")
            text = "" if end < 0 else stripped[end:]
        elif stripped.startswith("/*") and "*/" in stripped:
            end = stripped.index("*/") + 2
            line += stripped[:end].count("\n")
            text = stripped[end:]
        else:
            return Statement(stripped.rstrip(), line)


# ---------------------------------------------------------------------------
# Databases


class Database:
    """One connection to the database being migrated, in autocommit mode with explicit transactions."""

    dialect = ""
    param = "?"
    description = ""

    def execute(self, sql: str, params: Optional[Sequence[Any]] = None) -> None:
        raise MigrationError("%s cannot execute statements" % type(self).__name__)

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        raise MigrationError("%s cannot run queries" % type(self).__name__)

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        with contextlib.suppress(Exception):
            self.execute("ROLLBACK")

    def table_exists(self, table: str) -> bool:
        raise MigrationError("%s cannot list tables" % type(self).__name__)

    def create_history_sql(self, table: str) -> List[str]:
        return []

    def current_user(self) -> str:
        return getpass.getuser()

    def acquire_lock(self, table: str, timeout: float) -> None:
        """Wait up to timeout seconds to become the only migrating process."""

    def release_lock(self) -> None:
        """Give the migration lock back."""

    def error_details(self, exc: BaseException, statement: Statement) -> Tuple[int, str]:
        return statement.line, str(exc).strip()

    def database_errors(self) -> Tuple[Type[BaseException], ...]:
        return (sqlite3.Error,)

    def close(self) -> None:
        """Close the connection."""


class SQLiteDatabase(Database):
    """A SQLite file. The migration lock is an flock() on ``<file>.migrate.lock``: the kernel drops it
    when the holding process exits for any reason, kill -9 included, so it never stays stuck."""

    dialect = "sqlite"
    param = "?"

    def __init__(self, path: str, busy_timeout: float = 30.0, create: bool = True) -> None:
        self.path = path
        self.description = "SQLite database %s" % path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise MigrationError("directory %s for %s does not exist; create it first" % (parent, path))
        # A reader (check mode, info) must not create the file: a missing one reads as an empty database.
        target = path if create or os.path.exists(path) else ":memory:"
        self._connection = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None)
        self._connection.execute("PRAGMA busy_timeout = %d" % int(busy_timeout * 1000))
        self._lock_handle: Optional[Any] = None

    def execute(self, sql: str, params: Optional[Sequence[Any]] = None) -> None:
        self._connection.execute(sql, tuple(params or ()))

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        return [tuple(row) for row in self._connection.execute(sql, tuple(params)).fetchall()]

    def begin(self) -> None:
        # IMMEDIATE takes the write lock at once, so a reader never has to upgrade mid-migration.
        self.execute("BEGIN IMMEDIATE")

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)))

    def create_history_sql(self, table: str) -> List[str]:
        return [
            'CREATE TABLE IF NOT EXISTS "%s" ("installed_rank" INT NOT NULL PRIMARY KEY, "version" VARCHAR(50),'
            ' "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL,'
            ' "checksum" INT, "installed_by" VARCHAR(100) NOT NULL,'
            " \"installed_on\" TEXT NOT NULL DEFAULT (strftime('%%Y-%%m-%%d %%H:%%M:%%f','now')),"
            ' "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL)' % table,
            'CREATE INDEX IF NOT EXISTS "%s_s_idx" ON "%s" ("success")' % (table, table),
        ]

    def acquire_lock(self, table: str, timeout: float) -> None:
        if not HAS_FCNTL:
            raise MigrationError("locking a SQLite database needs fcntl (a POSIX system); run on Linux or macOS")
        lock_path = "%s.migrate.lock" % self.path
        handle = open(lock_path, "a+")  # noqa: SIM115 - held until release_lock()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise MigrationError(
                        "another process has been migrating %s for over %ss (lock file %s); "
                        "wait for it to finish or raise lock_timeout" % (self.path, timeout, lock_path)
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)
        self._lock_handle = handle

    def release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def database_errors(self) -> Tuple[Type[BaseException], ...]:
        return (sqlite3.Error,)

    def close(self) -> None:
        self.release_lock()
        self._connection.close()


class PostgresDatabase(Database):
    """A PostgreSQL database through psycopg 3. The migration lock is a session-level advisory lock:
    the server drops it when the session ends, including when the client process dies."""

    dialect = "postgresql"
    param = "%s"

    def __init__(
        self,
        url: str,
        schema: Optional[str] = None,
        connect_timeout: int = 10,
        create: bool = True,
        password: Optional[str] = None,
    ) -> None:
        try:
            import psycopg  # noqa: PLC0415 - optional dependency, only PostgreSQL needs it
        except ImportError:
            raise MigrationError(
                "%s needs the Python package psycopg (version 3) where the task runs; "
                "install it with: pip install 'psycopg[binary]'" % redact_url(url)
            ) from None
        self._psycopg: Any = psycopg
        self._connection: Any = None
        self.description = "PostgreSQL database %s" % redact_url(url)
        try:
            # A separate password (db_password, no_log) keeps it out of the URL the task shows.
            extra: Dict[str, Any] = {"password": password} if password else {}
            self._connection = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=connect_timeout,
                application_name="relops.release db_migrate",
                **extra,
            )
        except psycopg.Error as exc:
            raise MigrationError(
                "cannot connect to %s: %s; check the server, user, password and database in db_url"
                % (self.description, scrub(_first_line(str(exc)), url))
            ) from None
        self._locked: Optional[int] = None
        if self._connection.info.server_version >= 140000:
            # Lets the server notice a dead client even mid-statement (e.g. during pg_sleep), so the
            # advisory lock and the open transaction go away within a second of a kill -9.
            self.execute("SET client_connection_check_interval = 1000")
        if schema:
            if not _IDENTIFIER.match(schema):
                raise MigrationError("schema %r is not a plain identifier; use letters, digits and _" % schema)
            if create:
                self.ensure_schema(schema)
            self.execute("SET search_path TO %s" % schema)

    def ensure_schema(self, schema: str) -> None:
        """Create the schema unless it exists. CREATE SCHEMA IF NOT EXISTS is not race-free in PostgreSQL:
        two first connections at once can both pass the check and one fails on pg_namespace's unique
        index, so the loser treats that as "someone else created it"."""
        if self.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
            return
        try:
            self.execute("CREATE SCHEMA IF NOT EXISTS %s" % schema)
        except (self._psycopg.errors.UniqueViolation, self._psycopg.errors.DuplicateSchema):
            pass

    def execute(self, sql: str, params: Optional[Sequence[Any]] = None) -> None:
        # Without parameters psycopg sends the text as is, so a % in a migration needs no escaping.
        self._connection.execute(sql, None if params is None else tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
        return [tuple(row) for row in self._connection.execute(sql, tuple(params)).fetchall()]

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT to_regclass(%s) IS NOT NULL", ('"%s"' % table,))[0][0])

    def create_history_sql(self, table: str) -> List[str]:
        return [
            'CREATE TABLE IF NOT EXISTS "%s" ("installed_rank" INT NOT NULL, "version" VARCHAR(50),'
            ' "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL,'
            ' "checksum" INTEGER, "installed_by" VARCHAR(100) NOT NULL,'
            ' "installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" INTEGER NOT NULL,'
            ' "success" BOOLEAN NOT NULL, CONSTRAINT "%s_pk" PRIMARY KEY ("installed_rank"))' % (table, table),
            'CREATE INDEX IF NOT EXISTS "%s_s_idx" ON "%s" ("success")' % (table, table),
        ]

    def current_user(self) -> str:
        return str(self.query("SELECT current_user")[0][0])

    def acquire_lock(self, table: str, timeout: float) -> None:
        key = _signed32(zlib.crc32(self._qualified(table).encode("utf-8")))
        deadline = time.monotonic() + timeout
        while not self.query("SELECT pg_try_advisory_lock(%s, %s)", (PG_LOCK_CLASS, key))[0][0]:
            if time.monotonic() >= deadline:
                holder = self.query(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s"
                    " AND granted LIMIT 1",
                    (PG_LOCK_CLASS, key & 0xFFFFFFFF),
                )
                raise MigrationError(
                    "another session (pid %s) has been migrating %s for over %ss; "
                    "wait for it to finish or raise lock_timeout"
                    % (holder[0][0] if holder else "?", self.description, timeout)
                )
            time.sleep(LOCK_POLL_SECONDS)
        self._locked = key

    def release_lock(self) -> None:
        if self._locked is not None:
            with contextlib.suppress(Exception):
                self.query("SELECT pg_advisory_unlock(%s, %s)", (PG_LOCK_CLASS, self._locked))
            self._locked = None

    def error_details(self, exc: BaseException, statement: Statement) -> Tuple[int, str]:
        line = statement.line
        diag = getattr(exc, "diag", None)
        position = getattr(diag, "statement_position", None) if diag is not None else None
        if position:
            line += statement.sql[: int(position) - 1].count("\n")
        return line, _first_line(str(exc))

    def database_errors(self) -> Tuple[Type[BaseException], ...]:
        return (self._psycopg.Error,)

    def close(self) -> None:
        self.release_lock()
        self._connection.close()

    def _qualified(self, table: str) -> str:
        return "%s.%s" % (self.query("SELECT current_schema()")[0][0], table)


def open_database(
    url: str, schema: Optional[str] = None, create: bool = True, password: Optional[str] = None
) -> Database:
    """Connect to ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db``.

    With create=False nothing is created: no SQLite file, no PostgreSQL schema.
    """
    if url.startswith("sqlite:///"):
        return SQLiteDatabase("/" + url[len("sqlite:///") :].lstrip("/"), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, schema=schema, create=create, password=password)
    raise MigrationError(
        "db_url %s is neither sqlite:///path/to/file.db nor postgresql://user@host/database; fix db_url"
        % redact_url(url)
    )


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "(no message)"


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= (1 << 31) else value


# ---------------------------------------------------------------------------
# History


@dataclass(frozen=True)
class HistoryRow:
    installed_rank: int
    version: Optional[str]
    description: str
    type: str
    script: str
    checksum: Optional[int]
    installed_by: str
    installed_on: str
    execution_time: int
    success: bool

    def as_dict(self) -> Dict[str, Any]:
        return {
            "installed_rank": self.installed_rank,
            "version": self.version,
            "description": self.description,
            "type": self.type,
            "script": self.script,
            "checksum": self.checksum,
            "installed_by": self.installed_by,
            "installed_on": self.installed_on,
            "execution_time": self.execution_time,
            "success": self.success,
        }


@dataclass
class SchemaState:
    """What the history says, folded: which versions stand applied, which failed, the baseline."""

    rows: List[HistoryRow]
    applied: Dict[Tuple[int, ...], HistoryRow] = field(default_factory=dict)
    failed: Dict[Tuple[int, ...], HistoryRow] = field(default_factory=dict)
    repeatables: Dict[str, HistoryRow] = field(default_factory=dict)
    baseline: Optional[HistoryRow] = None
    _last: Optional[Dict[Tuple[str, Any], HistoryRow]] = None

    @property
    def current(self) -> Optional[str]:
        """The highest applied version (the baseline counts), or None on an empty history."""
        candidates = list(self.applied.values())
        if self.baseline is not None:
            candidates.append(self.baseline)
        if not candidates:
            return None
        return max(candidates, key=lambda row: version_key(row.version or "0")).version

    def last_attempts(self) -> Dict[Tuple[str, Any], HistoryRow]:
        """The latest history row of every migration (by type and version, or description for repeatables)."""
        if self._last is None:
            self._last = {_identity(row.type, row.version, row.description): row for row in self.rows}
        return self._last

    def is_below_baseline(self, key: Tuple[int, ...]) -> bool:
        return self.baseline is not None and key <= version_key(self.baseline.version or "0")


def fold_history(rows: List[HistoryRow]) -> SchemaState:
    state = SchemaState(rows=rows)
    for row in rows:
        if row.type == TYPE_BASELINE and row.success:
            state.baseline = row
        elif row.type == TYPE_SQL and row.version is None:
            if row.success:
                state.repeatables[row.description] = row
        elif row.type == TYPE_SQL and row.version is not None:
            key = version_key(row.version)
            if row.success:
                state.applied[key] = row
                state.failed.pop(key, None)
            else:
                state.failed[key] = row
        elif row.type == TYPE_UNDO and row.version is not None and row.success:
            state.applied.pop(version_key(row.version), None)
    return state


# ---------------------------------------------------------------------------
# The engine


@dataclass
class Options:
    table: str = DEFAULT_TABLE
    placeholders: Dict[str, str] = field(default_factory=dict)
    target: Optional[str] = None
    out_of_order: bool = False
    installed_by: Optional[str] = None
    lock_timeout: float = 300.0
    phase: Optional[str] = None  # None runs every script; expand or contract runs that phase only


@dataclass
class Plan:
    """What a migrate run would do, in order."""

    versioned: List[Script]
    repeatable: List[Script]
    held_back: List[Script]  # contract scripts waiting for the contract phase

    @property
    def scripts(self) -> List[Script]:
        return self.versioned + self.repeatable


@dataclass
class Outcome:
    applied: List[Dict[str, Any]]
    before: Optional[str]
    after: Optional[str]
    failure: Optional[Dict[str, Any]] = None
    repaired: List[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied) or self.failure is not None


class Migrator:
    """Plans, validates, applies and undoes one directory of migrations against one database."""

    def __init__(self, database: Database, scripts: Sequence[Script], options: Optional[Options] = None) -> None:
        self.db = database
        self.options = options or Options()
        if not _IDENTIFIER.match(self.options.table):
            raise MigrationError(
                "history table %r is not a plain identifier; use letters, digits and _" % self.options.table
            )
        if self.options.target not in (None, "latest"):
            parse_version(self.options.target or "")
        self.versioned = sorted((s for s in scripts if s.kind == "V"), key=lambda s: s.key or ())
        self.undo_scripts = {s.key: s for s in scripts if s.kind == "U"}
        self.repeatable = sorted((s for s in scripts if s.kind == "R"), key=lambda s: s.description)
        self._lock_depth = 0
        # Only the lock holder writes the history, so the next rank is read once per hold.
        self._next_rank: Optional[int] = None

    # -- reading ------------------------------------------------------------

    def history(self) -> List[HistoryRow]:
        table = self.options.table
        if not self.db.table_exists(table):
            return []
        rows = self.db.query(
            'SELECT "installed_rank", "version", "description", "type", "script", "checksum", "installed_by",'
            ' "installed_on", "execution_time", "success" FROM "%s" ORDER BY "installed_rank"' % table
        )
        return [
            HistoryRow(
                int(row[0]),
                row[1],
                row[2],
                row[3],
                row[4],
                None if row[5] is None else int(row[5]),
                row[6],
                str(row[7]),
                int(row[8]),
                bool(row[9]),
            )
            for row in rows
        ]

    def state(self) -> SchemaState:
        return fold_history(self.history())

    def drift(self, state: SchemaState) -> List[Dict[str, Any]]:
        """Applied versioned scripts whose file changed since: script, recorded and current checksums."""
        drifted = []
        for script in self.versioned:
            row = state.applied.get(script.key or ())
            if row is not None and row.checksum != script.checksum:
                drifted.append(
                    {
                        "script": script.script,
                        "version": script.version,
                        "applied_checksum": row.checksum,
                        "current_checksum": script.checksum,
                    }
                )
        return drifted

    def validate(self, state: Optional[SchemaState] = None) -> None:
        """Fail on checksum drift, on applied versions whose script is gone, and on failed migrations
        whose script is gone (nothing could repair them)."""
        state = state or self.state()
        drifted = self.drift(state)
        if drifted:
            first = drifted[0]
            raise MigrationError(
                "validate failed: %s changed after it was applied (checksum in history %s, checksum of the file %s); "
                "restore the file as applied, or put the change in a new migration"
                % (first["script"], first["applied_checksum"], first["current_checksum"])
            )
        local = {script.key or () for script in self.versioned}
        latest_local = max(local) if local else ()
        for key, row in sorted(state.applied.items()):
            if key not in local and key < latest_local:
                raise MigrationError(
                    "validate failed: version %s (%s) is applied but its script is missing from the migrations; "
                    "restore the file" % (row.version, row.script)
                )

    def plan(self, state: Optional[SchemaState] = None) -> Plan:
        """The scripts a migrate would run, in order; refuses what Flyway refuses (drift, ignored scripts)."""
        state = state or self.state()
        self.validate(state)
        current = version_key(state.current) if state.current else None
        target = None if self.options.target in (None, "latest") else version_key(self.options.target or "")
        versioned: List[Script] = []
        held_back: List[Script] = []
        for script in self.versioned:
            key = script.key or ()
            if key in state.applied or state.is_below_baseline(key):
                continue
            if target is not None and key > target:
                continue
            if current is not None and key < current and not self.options.out_of_order:
                raise MigrationError(
                    "%s (version %s) is older than the applied version %s and was never applied; "
                    "set out_of_order: true to apply it, or renumber it above %s"
                    % (script.script, script.version, state.current, state.current)
                )
            if held_back or (self.options.phase == "expand" and script.phase == "contract"):
                # Keep version order: nothing after a held-back contract script may run before it.
                held_back.append(script)
                continue
            versioned.append(script)
        repeatable = []
        for script in self.repeatable:
            row = state.repeatables.get(script.description)
            if row is None or row.checksum != script.checksum:
                if self.options.phase == "expand" and script.phase == "contract":
                    held_back.append(script)
                else:
                    repeatable.append(script)
        plan = Plan(versioned=versioned, repeatable=repeatable, held_back=held_back)
        refuse_transaction_control(plan.scripts, self.db.dialect, self.options.placeholders)
        return plan

    # -- changing -----------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the migration lock (re-entrant: a caller may wrap several steps in one hold)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.db.acquire_lock(self.options.table, self.options.lock_timeout)
        self._lock_depth = 1
        self._next_rank = None
        try:
            self._ensure_history_table()
            yield
        finally:
            self._lock_depth = 0
            self._next_rank = None
            self.db.release_lock()

    def migrate(self) -> Outcome:
        """Apply the plan under the lock, one transaction per script; stop at the first failure."""
        with self.locked():
            state = self.state()
            before = state.current
            plan = self.plan(state)
            applied: List[Dict[str, Any]] = []
            repaired: List[str] = []
            for script in plan.scripts:
                retried = last_failure(state, script, TYPE_SQL)
                try:
                    elapsed = self._apply(script, TYPE_SQL, script.version, retried)
                except MigrationFailed as failure:
                    return Outcome(
                        applied, before, self.state().current, failure=_failure_dict(failure), repaired=repaired
                    )
                if retried is not None:
                    repaired.append(retried.script)
                applied.append(dict(script.as_dict(), execution_time=elapsed))
            return Outcome(applied, before, self.state().current, repaired=repaired)

    def undo_plan(self, target: str, state: Optional[SchemaState] = None) -> List[Script]:
        """U scripts that take the schema down to target, newest first; refuses when one is missing."""
        state = state or self.state()
        goal = version_key(target)
        to_undo = sorted((key for key in state.applied if key > goal), reverse=True)
        missing = [state.applied[key].version for key in to_undo if key not in self.undo_scripts]
        if missing:
            raise MigrationError(
                "cannot undo to version %s: no undo script for version %s; add U%s__<description>.sql "
                "or roll forward instead" % (target, ", ".join(str(v) for v in missing), missing[0])
            )
        scripts = [self.undo_scripts[key] for key in to_undo]
        refuse_transaction_control(scripts, self.db.dialect, self.options.placeholders)
        return scripts

    def undo(self, target: str) -> Outcome:
        with self.locked():
            state = self.state()
            before = state.current
            applied: List[Dict[str, Any]] = []
            for script in self.undo_plan(target, state):
                try:
                    elapsed = self._apply(script, TYPE_UNDO, script.version, last_failure(state, script, TYPE_UNDO))
                except MigrationFailed as failure:
                    return Outcome(applied, before, self.state().current, failure=_failure_dict(failure))
                applied.append(dict(script.as_dict(), execution_time=elapsed))
            return Outcome(applied, before, self.state().current)

    def baseline(self, version: str, description: str = BASELINE_DESCRIPTION) -> bool:
        """Record a baseline version on an empty history; True when it changed something."""
        parse_version(version)
        with self.locked():
            state = self.state()
            if state.baseline is not None and version_key(state.baseline.version or "0") == version_key(version):
                return False
            if state.rows:
                raise MigrationError(
                    "cannot baseline %s at version %s: its history already holds %d entries (current version %s); "
                    "baseline only a database that has no history"
                    % (self.db.description, version, len(state.rows), state.current)
                )
            self.db.begin()
            try:
                self._insert(version, description, TYPE_BASELINE, description, None, 0, True)
            except BaseException:
                self.db.rollback()
                raise
            self.db.commit()
            return True

    # -- internals ----------------------------------------------------------

    def _ensure_history_table(self) -> None:
        if not self.db.table_exists(self.options.table):
            for statement in self.db.create_history_sql(self.options.table):
                self.db.execute(statement)

    def _apply(self, script: Script, kind: str, version: Optional[str], retried: Optional[HistoryRow]) -> int:
        statements = split_statements(script.sql(self.options.placeholders), self.db.dialect)
        started = time.monotonic()
        if script.transactional:
            self.db.begin()
        try:
            for statement in statements:
                self._run(script, statement)
            elapsed = int((time.monotonic() - started) * 1000)
            if not script.transactional:
                self.db.begin()
            if retried is not None:
                # What `flyway repair` would do: the failed attempt gives way to the successful one.
                self._delete_failures(script, kind)
            self._insert(version, script.description, kind, script.script, script.checksum, elapsed, True)
            self.db.commit()
            return elapsed
        except MigrationFailed as failure:
            self.db.rollback()
            self._record_failure(script, kind, version, started, failure)
            raise

    def _run(self, script: Script, statement: Statement) -> None:
        try:
            self.db.execute(statement.sql)
        except self.db.database_errors() as exc:
            line, message = self.db.error_details(exc, statement)
            raise MigrationFailed(
                "%s failed at line %d: %s; fix the script and run again (the failed attempt is recorded "
                "in %s and replaced when the fixed script succeeds)"
                % (script.script, line, message, self.options.table),
                script.script,
                line,
                message,
            ) from None

    def _record_failure(
        self, script: Script, kind: str, version: Optional[str], started: float, failure: MigrationFailed
    ) -> None:
        elapsed = int((time.monotonic() - started) * 1000)
        self.db.begin()
        try:
            self._delete_failures(script, kind)
            self._insert(version, script.description, kind, script.script, script.checksum, elapsed, False)
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    def _delete_failures(self, script: Script, kind: str) -> None:
        """Drop earlier failed attempts of the same migration, keeping one row per attempt outcome."""
        table, param = self.options.table, self.db.param
        if script.version is not None:
            self.db.execute(
                'DELETE FROM "%s" WHERE "type" = %s AND "success" = %s AND "version" = %s'
                % (table, param, param, param),
                (kind, False, script.version),
            )
        else:
            self.db.execute(
                'DELETE FROM "%s" WHERE "type" = %s AND "success" = %s AND "version" IS NULL AND "description" = %s'
                % (table, param, param, param),
                (kind, False, script.description),
            )

    def _insert(
        self,
        version: Optional[str],
        description: str,
        kind: str,
        script: str,
        checksum: Optional[int],
        elapsed: int,
        success: bool,
    ) -> None:
        table, param = self.options.table, self.db.param
        if self._next_rank is None:
            rank_rows = self.db.query('SELECT max("installed_rank") FROM "%s"' % table)
            self._next_rank = int(rank_rows[0][0] or 0) + 1
        rank = self._next_rank
        self.db.execute(
            'INSERT INTO "%s" ("installed_rank", "version", "description", "type", "script", "checksum",'
            ' "installed_by", "execution_time", "success") VALUES (%s)' % (table, ", ".join([param] * 9)),
            (
                rank,
                version,
                description[:200],
                kind,
                script,
                checksum,
                self._installer(),
                elapsed,
                success,
            ),
        )
        self._next_rank = rank + 1

    def _installer(self) -> str:
        if not self.options.installed_by:
            self.options.installed_by = self.db.current_user()
        return self.options.installed_by[:100]


@dataclass
class Compatibility:
    """Whether the schema suits an application version, and the undo that would make it so."""

    current: Optional[str]
    minimum: Optional[str]
    maximum: Optional[str]
    undo_to: Optional[str]
    scripts: List[Script]

    @property
    def compatible(self) -> bool:
        return self.undo_to is None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "current": self.current,
            "supported": {"min": self.minimum, "max": self.maximum},
            "compatible": self.compatible,
            "undo_to": self.undo_to,
            "undo_scripts": [script.script for script in self.scripts],
        }


def plan_compatibility(
    migrator: Migrator, minimum: Optional[str], maximum: Optional[str], app: str = "the application"
) -> Compatibility:
    """Check that the schema suits an application supporting versions minimum..maximum (inclusive).

    Nothing to do when the current version is in range. Above the range, plan the undo down to the
    highest applied version within it; refuse, before anything changes, when an undo script is missing
    or when the range lies above the current version (an undo cannot raise a schema).
    """
    state = migrator.state()
    current = state.current
    if minimum is not None and (current is None or version_key(current) < version_key(minimum)):
        raise MigrationError(
            "%s needs schema version %s or newer but %s is at %s; an undo cannot raise a schema: "
            "migrate forward to %s first, or roll back to an application version that supports %s"
            % (app, minimum, migrator.db.description, current or "no version", minimum, current or "an empty schema")
        )
    if maximum is None or current is None or version_key(current) <= version_key(maximum):
        return Compatibility(current, minimum, maximum, None, [])
    below = [row.version for key, row in state.applied.items() if key <= version_key(maximum)]
    if state.baseline is not None and version_key(state.baseline.version or "0") <= version_key(maximum):
        below.append(state.baseline.version)
    landing = max(below, key=lambda version: version_key(version or "0")) if below else None
    if minimum is not None and (landing is None or version_key(landing) < version_key(minimum)):
        raise MigrationError(
            "%s supports schema versions %s to %s but no applied version of %s lies in that range; "
            "it cannot be reached by undoing, roll forward instead" % (app, minimum, maximum, migrator.db.description)
        )
    try:
        scripts = migrator.undo_plan(maximum, state)
    except MigrationError as exc:
        raise MigrationError(
            "%s supports schema versions up to %s but %s is at %s, and %s"
            % (app, maximum, migrator.db.description, current, exc)
        ) from None
    return Compatibility(current, minimum, maximum, landing or maximum, scripts)


def last_failure(state: SchemaState, script: Script, kind: str) -> Optional[HistoryRow]:
    """The failed row of the script's last attempt, or None when its last attempt (if any) succeeded."""
    row = state.last_attempts().get(_identity(kind, script.version, script.description))
    return row if row is not None and not row.success else None


def _identity(kind: str, version: Optional[str], description: str) -> Tuple[str, Any]:
    return (kind, version_key(version)) if version is not None else (kind, description)


def _failure_dict(failure: MigrationFailed) -> Dict[str, Any]:
    return {
        "script": failure.script,
        "line": failure.line,
        "database_message": failure.database_message,
        "message": str(failure),
    }


def info(migrator: Migrator) -> Dict[str, Any]:
    """Current version, pending, applied, failed and drifted scripts, without changing anything."""
    state = migrator.state()
    try:
        pending = [script.as_dict() for script in migrator.plan(state).scripts]
        problem = None
    except MigrationError as exc:
        pending, problem = [], str(exc)
    return {
        "current_version": state.current,
        "pending": pending,
        "applied": [row.as_dict() for row in state.rows if row.success],
        "failed_migrations": [row.as_dict() for row in state.failed.values()],
        "drift": migrator.drift(state),
        "problem": problem,
    }


# ---------------------------------------------------------------------------
# What the db_migrate modules share


def connection_argument_spec() -> Dict[str, Any]:
    """Options every db_migrate* module takes (documented in doc_fragments/migrations.py)."""
    return {
        "db_url": {"type": "str", "required": True},
        "db_password": {"type": "str", "no_log": True},
        "migrations_dir": {"type": "path", "required": True},
        "table": {"type": "str", "default": DEFAULT_TABLE},
        "schema": {"type": "str"},
        "placeholders": {"type": "dict", "default": {}},
        "out_of_order": {"type": "bool", "default": False},
        "lock_timeout": {"type": "int", "default": 300},
        "encoding": {"type": "str", "default": DEFAULT_ENCODING},
    }


def needs_psycopg(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://")) and not HAS_PSYCOPG


def open_migrator(
    params: Mapping[str, Any], target: Optional[str] = None, phase: Optional[str] = None, read_only: bool = False
) -> Migrator:
    """Open the database and read the scripts the module parameters name; a reader creates nothing."""
    placeholders = {str(key): str(value) for key, value in (params.get("placeholders") or {}).items()}
    scripts = load_scripts(str(params["migrations_dir"]), placeholders, str(params.get("encoding") or DEFAULT_ENCODING))
    options = Options(
        table=str(params.get("table") or DEFAULT_TABLE),
        placeholders=placeholders,
        target=target,
        out_of_order=bool(params.get("out_of_order")),
        installed_by=params.get("installed_by"),
        lock_timeout=float(params.get("lock_timeout") or 300),
        phase=phase,
    )
    database = open_database(
        str(params["db_url"]), schema=params.get("schema"), create=not read_only, password=params.get("db_password")
    )
    return Migrator(database, scripts, options)
