# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release ledger: the one store for everything relops.release remembers.

All SQL that reads or writes ledger records lives in this package; plugins call
the methods here. Each method is one short transaction.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    now_timestamp,
    parse_timestamp,
    utc_now,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from . import schema
from .backends import Backend, Cursor, Row, open_backend
from .errors import LedgerError
from .url import LedgerURL

RUN_STATUSES = ("running", "successful", "failed", "aborted")
DEPLOYMENT_STATUSES = ("in_progress", "successful", "failed", "rolled_back")
DECISIONS = ("allow", "deny", "wait")
STABILIZATION_STATUSES = ("active", "completed", "breached")
INCIDENT_SEVERITIES = ("critical", "high", "moderate", "low")


@dataclass(frozen=True)
class LockState:
    """A lock as stored: who holds it and until when."""

    name: str
    owner_run_id: str
    owner: Dict[str, Any]
    acquired_at: str
    heartbeat_at: str
    expires_at: str
    ttl_seconds: int

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "owner_run_id": self.owner_run_id,
            "owner": self.owner,
            "acquired_at": self.acquired_at,
            "heartbeat_at": self.heartbeat_at,
            "expires_at": self.expires_at,
            "ttl_seconds": self.ttl_seconds,
        }

    def describe_holder(self) -> str:
        who = self.owner.get("awx_user_name") or self.owner.get("sudo_user") or self.owner.get("user", "?")
        return "run %s (%s@%s)" % (self.owner_run_id, who, self.owner.get("host", "?"))


@dataclass
class LockAttempt:
    """The outcome of one try to take a lock.

    ``outcome`` is ``acquired`` (new), ``taken_over`` (an expired holder was
    replaced), ``renewed`` (this run already held it) or ``held`` (another run
    holds it; ``holder`` says who).
    """

    outcome: str
    lock: Optional[LockState] = None
    holder: Optional[LockState] = None
    previous: Optional[LockState] = None

    @property
    def obtained(self) -> bool:
        return self.outcome in ("acquired", "taken_over", "renewed")


@dataclass
class LedgerSummary:
    """What ledger_info reports."""

    url: str
    dialect: str
    schema_version: Optional[int]
    latest_schema_version: int
    runs: List[Dict[str, Any]] = field(default_factory=list)
    deployments: List[Dict[str, Any]] = field(default_factory=list)
    locks: List[Dict[str, Any]] = field(default_factory=list)


class Ledger:
    """An open ledger. Use :func:`open_ledger` to get one."""

    def __init__(self, url: LedgerURL, backend: Backend) -> None:
        self.url = url
        self.backend = backend

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Runs

    def touch_run(self, actor: Actor, playbook: Optional[str] = None, play: Optional[str] = None) -> bool:
        """Record that this run is alive; create its row on first sight. Return True when created."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            return self._touch_run(cursor, actor, now, playbook, play)

    def _touch_run(
        self, cursor: Cursor, actor: Actor, now: str, playbook: Optional[str] = None, play: Optional[str] = None
    ) -> bool:
        created = cursor.execute(
            "INSERT INTO runs (run_id, started_at, last_seen_at, status, playbook, play, actor)"
            " VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
            (actor.run_id, now, now, playbook, play, _dump(actor.as_dict())),
        )
        if created == 0:
            cursor.execute(
                "UPDATE runs SET last_seen_at = ?, play = coalesce(?, play) WHERE run_id = ?",
                (now, play, actor.run_id),
            )
        return created == 1

    def finish_run(self, actor: Actor, status: str, summary: Optional[Mapping[str, Any]] = None) -> Row:
        """Mark this run finished with a status and an optional summary; return the run."""
        _require_choice("status", status, RUN_STATUSES[1:])
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            cursor.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
                (status, now, _dump(dict(summary or {})), actor.run_id),
            )
            row = cursor.one("SELECT * FROM runs WHERE run_id = ?", (actor.run_id,))
        return _decode_run(_must_exist(row, "run %s" % actor.run_id))

    def get_run(self, run_id: str) -> Optional[Row]:
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return _decode_run(row) if row else None

    def list_runs(self, limit: int = 10) -> List[Row]:
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM runs ORDER BY started_at DESC, run_id LIMIT ?", (limit,))
        return [_decode_run(row) for row in rows]

    # Deployments

    def record_deployment(
        self,
        actor: Actor,
        service: str,
        version: str,
        environment: str,
        status: str,
        strategy: Optional[str] = None,
        artifact_digest: Optional[str] = None,
        change_id: Optional[str] = None,
        started_at: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> int:
        """Record a deployment of a service version to an environment; return its id."""
        _require_choice("status", status, DEPLOYMENT_STATUSES)
        now = now_timestamp()
        finished = None if status == "in_progress" else now
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO deployments (run_id, service, version, environment, status, strategy,"
                " artifact_digest, change_id, started_at, finished_at, details)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    actor.run_id,
                    service,
                    version,
                    environment,
                    status,
                    strategy,
                    artifact_digest,
                    change_id,
                    started_at or now,
                    finished,
                    _dump(dict(details or {})),
                ),
            )
        return int(_must_exist(row, "the new deployment")["id"])

    def finish_deployment(self, deployment_id: int, status: str) -> None:
        """Set the final status of a deployment recorded as in progress."""
        _require_choice("status", status, DEPLOYMENT_STATUSES[1:])
        with self.backend.transaction(write=True) as cursor:
            changed = cursor.execute(
                "UPDATE deployments SET status = ?, finished_at = ? WHERE id = ?",
                (status, now_timestamp(), deployment_id),
            )
        if changed == 0:
            raise LedgerError(
                "deployment %d is not in the ledger; pass an id that record_deployment returned" % deployment_id
            )

    def list_deployments(
        self, service: Optional[str] = None, environment: Optional[str] = None, limit: int = 10
    ) -> List[Row]:
        clauses, params = _filters(service=service, environment=environment)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM deployments" + clauses + " ORDER BY started_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
        return [_decode_json_columns(row, ("details",)) for row in rows]

    # Decisions

    def record_decision(
        self,
        actor: Actor,
        gate: str,
        subject: str,
        decision: str,
        reasons: Sequence[str],
        policy_version: Optional[str] = None,
        inputs_digest: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Store a gate's decision record and return it as DESIGN.md section 5 shapes it."""
        _require_choice("decision", decision, DECISIONS)
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            cursor.execute(
                "INSERT INTO decisions (run_id, gate, subject, decision, reasons, policy_version, inputs_digest,"
                " decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (actor.run_id, gate, subject, decision, _dump(list(reasons)), policy_version, inputs_digest, now),
            )
        return {
            "decision": decision,
            "reasons": list(reasons),
            "policy_version": policy_version,
            "inputs_digest": inputs_digest,
            "decided_at": now,
        }

    def list_decisions(self, subject: Optional[str] = None, limit: int = 10) -> List[Row]:
        clauses, params = _filters(subject=subject)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM decisions" + clauses + " ORDER BY decided_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
        return [_decode_json_columns(row, ("reasons",)) for row in rows]

    # Locks

    def try_lock(self, name: str, actor: Actor, ttl_seconds: int) -> LockAttempt:
        """Try once to take (or renew) a named lock for this run."""
        if ttl_seconds < 1:
            raise LedgerError("lock ttl %r is too short; give at least 1 second" % ttl_seconds)
        moment = utc_now()
        now = format_timestamp(moment)
        expires = format_timestamp(moment + datetime.timedelta(seconds=ttl_seconds))
        owner = _dump(actor.as_dict())
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            current = self._locked_row(cursor, name)
            if current is None:
                inserted = cursor.execute(
                    "INSERT INTO locks (name, owner_run_id, owner, acquired_at, heartbeat_at, expires_at, ttl_seconds)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, actor.run_id, owner, now, now, expires, ttl_seconds),
                )
                if inserted == 0:
                    # Another process inserted between our read and write (PostgreSQL, read committed).
                    return LockAttempt("held", holder=self._read_lock(cursor, name))
                self._lock_event(cursor, name, "acquired", actor, now)
                return LockAttempt("acquired", lock=self._read_lock(cursor, name))
            if current.owner_run_id == actor.run_id:
                renewed = cursor.execute(
                    "UPDATE locks SET heartbeat_at = ?, expires_at = ?, ttl_seconds = ?"
                    " WHERE name = ? AND owner_run_id = ?",
                    (now, expires, ttl_seconds, name, actor.run_id),
                )
                if renewed == 0:
                    return LockAttempt("held", holder=self._read_lock(cursor, name))
                return LockAttempt("renewed", lock=self._read_lock(cursor, name))
            if current.expires_at > now:
                return LockAttempt("held", holder=current)
            # Compare-and-swap on the expired holder, so two contenders cannot both take over.
            swapped = cursor.execute(
                "UPDATE locks SET owner_run_id = ?, owner = ?, acquired_at = ?, heartbeat_at = ?, expires_at = ?,"
                " ttl_seconds = ? WHERE name = ? AND owner_run_id = ? AND expires_at = ?",
                (actor.run_id, owner, now, now, expires, ttl_seconds, name, current.owner_run_id, current.expires_at),
            )
            if swapped == 0:
                return LockAttempt("held", holder=self._read_lock(cursor, name))
            self._lock_event(cursor, name, "taken_over", actor, now, previous=current)
            return LockAttempt("taken_over", lock=self._read_lock(cursor, name), previous=current)

    def heartbeat_lock(self, name: str, actor: Actor) -> LockState:
        """Push a held lock's expiry forward by its TTL; fail when this run does not hold it."""
        current = ensure_holder(self.get_lock(name), name, actor)
        attempt = self.try_lock(name, actor, current.ttl_seconds)
        if attempt.lock is None:
            raise LedgerError(
                "lock %r was lost to %s before the heartbeat"
                % (name, attempt.holder.describe_holder() if attempt.holder else "another run")
            )
        return attempt.lock

    def release_lock(self, name: str, actor: Actor, force: bool = False) -> Optional[LockState]:
        """Release a lock this run holds (or any holder's, with ``force``); return what was released.

        Another run's lock whose time has run out is already free: releasing it
        changes nothing and returns None, with or without ``force``.
        """
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            current = self._locked_row(cursor, name)
            if current is None or (current.owner_run_id != actor.run_id and current.expires_at <= now):
                return None
            ensure_releasable(current, name, actor, force)
            self._touch_run(cursor, actor, now)
            deleted = cursor.execute(
                "DELETE FROM locks WHERE name = ? AND owner_run_id = ? AND expires_at = ?",
                (name, current.owner_run_id, current.expires_at),
            )
            if deleted == 0:
                raise LedgerError("lock %r changed hands while it was being released; run the task again" % name)
            event = "released" if current.owner_run_id == actor.run_id else "force_released"
            self._lock_event(cursor, name, event, actor, now, previous=current if event == "force_released" else None)
        return current

    def get_lock(self, name: str) -> Optional[LockState]:
        with self.backend.transaction(write=False) as cursor:
            return _lock_from_row(cursor.one("SELECT * FROM locks WHERE name = ?", (name,)))

    def active_locks(self) -> List[LockState]:
        """Return the locks whose holders' time has not run out."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM locks WHERE expires_at > ? ORDER BY name", (now_timestamp(),))
        return [lock for lock in (_lock_from_row(row) for row in rows) if lock is not None]

    def lock_events(self, name: str, limit: int = 50) -> List[Row]:
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM lock_events WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit))
        return [_decode_json_columns(row, ("actor", "previous_owner")) for row in rows]

    def _read_lock(self, cursor: Cursor, name: str) -> Optional[LockState]:
        return _lock_from_row(cursor.one("SELECT * FROM locks WHERE name = ?", (name,)))

    def _locked_row(self, cursor: Cursor, name: str) -> Optional[LockState]:
        """Read a lock row and hold it until the transaction ends, so it cannot change under us."""
        return _lock_from_row(cursor.one("SELECT * FROM locks WHERE name = ?" + self.backend.row_lock, (name,)))

    def _lock_event(
        self, cursor: Cursor, name: str, event: str, actor: Actor, now: str, previous: Optional[LockState] = None
    ) -> None:
        cursor.execute(
            "INSERT INTO lock_events (name, event, run_id, actor, previous_run_id, previous_owner, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                event,
                actor.run_id,
                _dump(actor.as_dict()),
                previous.owner_run_id if previous else None,
                _dump(previous.owner) if previous else None,
                now,
            ),
        )

    # Stabilization periods and incidents (schema V6)

    def start_stabilization(
        self,
        actor: Actor,
        service: str,
        environment: str,
        version: str,
        duration_seconds: int,
        details: Optional[Mapping[str, Any]] = None,
    ) -> Row:
        """Open a stabilization period for a release; return it."""
        moment = utc_now()
        now = format_timestamp(moment)
        ends = format_timestamp(moment + datetime.timedelta(seconds=duration_seconds))
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO stabilization_periods (run_id, service, environment, version, status, started_at,"
                " ends_at, details) VALUES (?, ?, ?, ?, 'active', ?, ?, ?) RETURNING *",
                (actor.run_id, service, environment, version, now, ends, _dump(dict(details or {}))),
            )
        return _decode_json_columns(_must_exist(row, "the new stabilization period"), ("details",))

    def active_stabilizations(self, service: Optional[str] = None, environment: Optional[str] = None) -> List[Row]:
        """Periods still running: recorded active and not past their end (a run that died mid-period lapses)."""
        clauses, params = _filters(service=service, environment=environment)
        clauses += (" AND" if clauses else " WHERE") + " status = 'active' AND ends_at > ?"
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM stabilization_periods" + clauses + " ORDER BY started_at DESC, id DESC",
                (*params, now_timestamp()),
            )
        return [_decode_json_columns(row, ("details",)) for row in rows]

    def list_stabilizations(
        self, service: Optional[str] = None, environment: Optional[str] = None, limit: int = 10
    ) -> List[Row]:
        clauses, params = _filters(service=service, environment=environment)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM stabilization_periods" + clauses + " ORDER BY started_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
        return [_decode_json_columns(row, ("details",)) for row in rows]

    def complete_stabilization(self, period_id: int) -> Row:
        """Record that a period ended without a breach, which lifts the change gate's restriction."""
        with self.backend.transaction(write=True) as cursor:
            self._end_period(cursor, period_id, "completed", now_timestamp())
            row = cursor.one("SELECT * FROM stabilization_periods WHERE id = ?", (period_id,))
        return _decode_json_columns(_must_exist(row, "stabilization period %d" % period_id), ("details",))

    def breach_stabilization(
        self,
        actor: Actor,
        period_id: Optional[int],
        service: str,
        environment: str,
        title: str,
        severity: str = "high",
        version: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> "tuple[Optional[Row], Row]":
        """End a period as breached and open its incident in one transaction; return both.

        Without a period (none active any more) only the incident is opened.
        """
        _require_choice("severity", severity, INCIDENT_SEVERITIES)
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            period = None
            if period_id is not None:
                self._end_period(cursor, period_id, "breached", now)
                period = cursor.one("SELECT * FROM stabilization_periods WHERE id = ?", (period_id,))
            incident = cursor.one(
                "INSERT INTO incidents (run_id, service, environment, version, title, severity, status, source,"
                " stabilization_id, opened_at, details) VALUES (?, ?, ?, ?, ?, ?, 'open', 'stabilization', ?, ?, ?)"
                " RETURNING *",
                (actor.run_id, service, environment, version, title, severity, period_id, now,
                 _dump(dict(details or {}))),
            )
        return (
            _decode_json_columns(period, ("details",)) if period else None,
            _decode_json_columns(_must_exist(incident, "the new incident"), ("details",)),
        )

    def _end_period(self, cursor: Cursor, period_id: int, status: str, now: str) -> None:
        changed = cursor.execute(
            "UPDATE stabilization_periods SET status = ?, ended_at = ? WHERE id = ? AND status = 'active'",
            (status, now, period_id),
        )
        if changed == 0:
            raise LedgerError(
                "stabilization period %d is not active in the ledger; it has ended already or the id is wrong"
                % period_id
            )

    def list_incidents(
        self,
        service: Optional[str] = None,
        environment: Optional[str] = None,
        status: Optional[str] = None,
        limit: int = 10,
    ) -> List[Row]:
        clauses, params = _filters(service=service, environment=environment, status=status)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM incidents" + clauses + " ORDER BY opened_at DESC, id DESC LIMIT ?", (*params, limit)
            )
        return [_decode_json_columns(row, ("details",)) for row in rows]

    # Overview

    def summary(
        self, limit: int = 10, service: Optional[str] = None, environment: Optional[str] = None
    ) -> LedgerSummary:
        return LedgerSummary(
            url=self.url.redacted(),
            dialect=self.url.dialect,
            schema_version=schema.read_version(self.backend),
            latest_schema_version=schema.latest_version(self.url.dialect),
            runs=self.list_runs(limit),
            deployments=self.list_deployments(service, environment, limit),
            locks=[lock.as_dict() for lock in self.active_locks()],
        )


def ensure_holder(current: Optional[LockState], name: str, actor: Actor) -> LockState:
    """Return the lock when this run holds it; otherwise fail naming who does."""
    if current is None or current.owner_run_id != actor.run_id:
        holder = current.describe_holder() if current else "nobody"
        raise LedgerError(
            "lock %r is held by %s, not by this run %s; acquire it before sending heartbeats"
            % (name, holder, actor.run_id)
        )
    return current


def ensure_releasable(current: LockState, name: str, actor: Actor, force: bool) -> None:
    """Fail unless this run holds the lock or the release is forced."""
    if current.owner_run_id != actor.run_id and not force:
        raise LedgerError(
            "lock %r is held by %s until %s, not by this run %s; wait for it to expire, or release it with "
            "force: true if that run is known to be dead"
            % (name, current.describe_holder(), current.expires_at, actor.run_id)
        )


def open_ledger(
    url: LedgerURL, applied_by: str = "relops.release", schema_directory: str = schema.SCHEMA_DIRECTORY
) -> Ledger:
    """Open (and on first use create or upgrade) the ledger a URL names."""
    backend = open_backend(url, create=True)
    try:
        schema.upgrade(backend, applied_by, schema_directory)
    except BaseException:
        backend.close()
        raise
    return Ledger(url, backend)


def open_existing_ledger(
    url: LedgerURL, schema_directory: str = schema.SCHEMA_DIRECTORY, allow_older: bool = False
) -> Optional[Ledger]:
    """Open a ledger for reading without creating or upgrading it; None when there is none yet.

    An older ledger is refused unless ``allow_older`` (for readers that only
    use the tables every version has, such as ledger_info).
    """
    if url.dialect == "sqlite" and url.path is not None and not os.path.exists(url.path):
        return None
    backend = open_backend(url, create=False)
    try:
        if schema.read_version(backend) is None:
            backend.close()
            return None
        pending = schema.pending_scripts(backend, schema_directory)
    except BaseException:
        backend.close()
        raise
    if pending and not allow_older:
        backend.close()
        raise LedgerError(
            "%s is at an older schema (needs %s); run any writing relops.release task (or this one outside check "
            "mode) to upgrade it" % (backend.description, ", ".join(script.script for script in pending))
        )
    return Ledger(url, backend)


def _filters(**columns: Optional[str]) -> "tuple[str, list[Any]]":
    names = [name for name, value in columns.items() if value is not None]
    params: List[Any] = [columns[name] for name in names]
    if not names:
        return "", params
    return " WHERE " + " AND ".join("%s = ?" % name for name in names), params


def _must_exist(row: Optional[Row], what: str) -> Row:
    """Return a row that the same transaction just wrote; its absence means the database lost a write."""
    if row is None:
        raise LedgerError("%s was written but cannot be read back; check the ledger database's health" % what)
    return row


def _require_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise LedgerError("%s %r is not one of %s; use one of those" % (name, value, ", ".join(choices)))


def _dump(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _decode_json_columns(row: Row, columns: Sequence[str]) -> Row:
    decoded = dict(row)
    for column in columns:
        if isinstance(decoded.get(column), str):
            decoded[column] = json.loads(decoded[column])
    return decoded


def _decode_run(row: Row) -> Row:
    return _decode_json_columns(row, ("actor", "summary"))


def _lock_from_row(row: Optional[Row]) -> Optional[LockState]:
    if row is None:
        return None
    return LockState(
        name=row["name"],
        owner_run_id=row["owner_run_id"],
        owner=json.loads(row["owner"]),
        acquired_at=row["acquired_at"],
        heartbeat_at=row["heartbeat_at"],
        expires_at=row["expires_at"],
        ttl_seconds=int(row["ttl_seconds"]),
    )


def seconds_until(timestamp: str) -> float:
    """Return how many seconds from now until a ledger timestamp (negative when past)."""
    return (parse_timestamp(timestamp) - utc_now()).total_seconds()
