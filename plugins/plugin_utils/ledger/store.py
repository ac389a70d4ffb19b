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
from .archive_store import ArchiveStore
from .backends import Backend, Cursor, Row, open_backend
from .ci_change_store import CiChangeStore
from .envs_store import EnvsStore
from .errors import LedgerError
from .governance_store import GovernanceStore
from .incident_store import IncidentStore
from .lock_recovery_store import LockRecoveryStore
from .metrics_store import MetricsStore
from .planning_store import PlanningStore
from .url import LedgerURL

RUN_STATUSES = ("running", "successful", "failed", "aborted")
DEPLOYMENT_STATUSES = ("in_progress", "successful", "failed", "rolled_back")
DECISIONS = ("allow", "deny", "wait")
SCHEMA_PHASES = ("all", "expand", "contract", "undo")

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


class Ledger(
    ArchiveStore,
    EnvsStore,
    GovernanceStore,
    PlanningStore,
    IncidentStore,
    CiChangeStore,
    MetricsStore,
    LockRecoveryStore,
):
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
            deployment_id = int(_must_exist(row, "the new deployment")["id"])
            self._store_deployment_facts(cursor, deployment_id, service, details or {})
        return deployment_id

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
        return self._newest("deployments", "started_at", ("details",), limit, service=service, environment=environment)

    # Schema migrations

    def latest_schema_migration(
        self, service: str, environment: str, release: str, phase: str, database_url: str
    ) -> Optional[Row]:
        """The last schema version recorded for one release, phase and database, or None."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT * FROM schema_migrations WHERE service = ? AND environment = ? AND release = ?"
                " AND phase = ? AND database_url = ? ORDER BY id DESC LIMIT 1",
                (service, environment, release, phase, database_url),
            )
        return _decode_json_columns(row, ("applied",)) if row else None

    def record_schema_migration(
        self,
        actor: Actor,
        service: str,
        environment: str,
        release: str,
        phase: str,
        database_url: str,
        version_before: Optional[str],
        version_after: Optional[str],
        applied: Sequence[str],
    ) -> "tuple[Row, bool]":
        """Record the schema version a release's migrations reached; return the row and whether it is new.

        Once a release's phase is recorded for a database, a run that applied nothing (a later batch
        under ``serial``, a rerun) adds nothing, so the record is made once per release; a run that
        applied scripts (a failed run fixed and rerun) adds its own record.
        """
        _require_choice("phase", phase, SCHEMA_PHASES)
        with self.backend.transaction(write=True) as cursor:
            previous = cursor.one(
                "SELECT * FROM schema_migrations WHERE service = ? AND environment = ? AND release = ?"
                " AND phase = ? AND database_url = ? ORDER BY id DESC LIMIT 1",
                (service, environment, release, phase, database_url),
            )
            if previous is not None and (previous["version_after"] == version_after or not applied):
                return _decode_json_columns(previous, ("applied",)), False
            now = now_timestamp()
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO schema_migrations (run_id, service, environment, release, phase, database_url,"
                " version_before, version_after, applied, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING *",
                (
                    actor.run_id,
                    service,
                    environment,
                    release,
                    phase,
                    database_url,
                    version_before,
                    version_after,
                    _dump(list(applied)),
                    now,
                ),
            )
        return _decode_json_columns(_must_exist(row, "the schema migration record"), ("applied",)), True

    def list_schema_migrations(
        self, service: Optional[str] = None, environment: Optional[str] = None, limit: int = 10
    ) -> List[Row]:
        return self._newest(
            "schema_migrations", "recorded_at", ("applied",), limit, service=service, environment=environment
        )

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
        return decision_record(decision, reasons, policy_version, inputs_digest, now)

    def list_decisions(self, subject: Optional[str] = None, limit: int = 10) -> List[Row]:
        return self._newest("decisions", "decided_at", ("reasons",), limit, subject=subject)

    # Artifact promotions (schema V3)

    def record_promotion(
        self,
        actor: Actor,
        artifact: str,
        service: str,
        version: str,
        sha256: str,
        environments: "tuple[str, str]",
        repositories: "tuple[str, str]",
        signers: Sequence[str],
    ) -> Dict[str, Any]:
        """Record that an artifact was copied from one environment's repository to the next; return the row."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO artifact_promotions (run_id, artifact, service, version, sha256, from_environment,"
                " to_environment, from_repository, to_repository, signers, promoted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    actor.run_id,
                    artifact,
                    service,
                    version,
                    sha256,
                    environments[0],
                    environments[1],
                    repositories[0],
                    repositories[1],
                    _dump(list(signers)),
                    now,
                ),
            )
        return _decode_json_columns(_must_exist(row, "the new promotion"), ("signers",))

    def list_promotions(
        self, service: Optional[str] = None, sha256: Optional[str] = None, limit: int = 10
    ) -> List[Row]:
        return self._newest("artifact_promotions", "promoted_at", ("signers",), limit, service=service, sha256=sha256)

    # Locks

    def try_lock(
        self, name: str, actor: Actor, ttl_seconds: int, process: Optional[Mapping[str, Any]] = None
    ) -> LockAttempt:
        """Try once to take (or renew) a named lock for this run.

        ``process`` (runctx.controller_process()) is kept in the owner, so a later run on the same
        host can take over the lock of a run that died (lock_recovery_store).
        """
        if ttl_seconds < 1:
            raise LedgerError("lock ttl %r is too short; give at least 1 second" % ttl_seconds)
        moment = utc_now()
        now = format_timestamp(moment)
        expires = format_timestamp(moment + datetime.timedelta(seconds=ttl_seconds))
        owner = _dump({**actor.as_dict(), **({"process": dict(process)} if process else {})})
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

    # ITSM (the local backend: plugin_utils/itsm/local.py holds the rules, these the storage)

    def itsm_get_change(
        self, sys_id: Optional[str] = None, number: Optional[str] = None, correlation_id: Optional[str] = None
    ) -> Optional[Row]:
        """Return one change by sys_id, number or correlation id, or None."""
        clauses, params = _filters(sys_id=sys_id, number=number, correlation_id=correlation_id)
        if not params:
            return None
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT * FROM itsm_changes" + clauses, params)
        return _decode_change(row) if row else None

    def itsm_list_changes(self, limit: int = 100, **filters: Optional[str]) -> List[Row]:
        clauses, params = _filters(**filters)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM itsm_changes" + clauses + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_decode_change(row) for row in rows]

    def itsm_create_change(self, actor: Actor, change: Mapping[str, Any]) -> "tuple[Row, bool]":
        """Insert a change (number CHG + its id); an existing correlation id returns that change instead."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            if change.get("correlation_id"):
                existing = cursor.one(
                    "SELECT * FROM itsm_changes WHERE correlation_id = ?", (change["correlation_id"],)
                )
                if existing:
                    return _decode_change(existing), False
            row = cursor.one(
                "INSERT INTO itsm_changes (sys_id, type, state, approval, correlation_id, fields, cis, run_id,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    change["sys_id"],
                    change["type"],
                    change["state"],
                    change["approval"],
                    change.get("correlation_id"),
                    _dump(dict(change.get("fields") or {})),
                    _dump(list(change.get("cis") or [])),
                    actor.run_id,
                    now,
                    now,
                ),
            )
            number = "CHG%07d" % (10000 + int(_must_exist(row, "the new change")["id"]))
            cursor.execute("UPDATE itsm_changes SET number = ? WHERE sys_id = ?", (number, change["sys_id"]))
            self._itsm_event(cursor, change["sys_id"], "created", {"number": number}, actor, now)
            created = cursor.one("SELECT * FROM itsm_changes WHERE sys_id = ?", (change["sys_id"],))
        return _decode_change(_must_exist(created, "change %s" % number)), True

    def itsm_update_change(
        self,
        actor: Actor,
        sys_id: str,
        expected_state: str,
        values: Mapping[str, Any],
        event: str,
        detail: Mapping[str, Any],
        approval_request: bool = False,
    ) -> Row:
        """Update a change's columns if its state is still ``expected_state`` (a compare-and-swap)."""
        now = now_timestamp()
        allowed = ("state", "approval", "fields", "cis")
        columns = [name for name in allowed if name in values]
        encoded = [_dump(values[name]) if name in ("fields", "cis") else values[name] for name in columns]
        assignments = "".join("%s = ?, " % name for name in columns)
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            changed = cursor.execute(
                "UPDATE itsm_changes SET " + assignments + "updated_at = ? WHERE sys_id = ? AND state = ?",
                (*encoded, now, sys_id, expected_state),
            )
            if changed == 0:
                raise LedgerError(
                    "change %s moved on from state %s while this task ran; re-run the task to act on its new state"
                    % (sys_id, expected_state)
                )
            if approval_request:
                cursor.execute(
                    "INSERT INTO itsm_approvals (change_sys_id, state, requested_at) VALUES (?, 'requested', ?)",
                    (sys_id, now),
                )
            self._itsm_event(cursor, sys_id, event, detail, actor, now)
            row = cursor.one("SELECT * FROM itsm_changes WHERE sys_id = ?", (sys_id,))
        return _decode_change(_must_exist(row, "change %s" % sys_id))

    def itsm_decide_approval(
        self, actor: Actor, sys_id: str, decision: str, approver: str, comments: str, state_after: str
    ) -> Row:
        """Record an approver's decision on a change's requested approval and move the change on."""
        _require_choice("decision", decision, ("approved", "rejected"))
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            decided = cursor.execute(
                "UPDATE itsm_approvals SET state = ?, approver = ?, comments = ?, decided_at = ?"
                " WHERE change_sys_id = ? AND state = 'requested'",
                (decision, approver, comments, now, sys_id),
            )
            if decided == 0:
                raise LedgerError("change %s has no requested approval; move it to the authorize state first" % sys_id)
            cursor.execute(
                "UPDATE itsm_changes SET approval = ?, state = ?, updated_at = ? WHERE sys_id = ?",
                (decision, state_after, now, sys_id),
            )
            self._itsm_event(cursor, sys_id, decision, {"approver": approver, "comments": comments}, actor, now)
            row = cursor.one("SELECT * FROM itsm_changes WHERE sys_id = ?", (sys_id,))
        return _decode_change(_must_exist(row, "change %s" % sys_id))

    def itsm_approvals(self, sys_id: str) -> List[Row]:
        with self.backend.transaction(write=False) as cursor:
            return cursor.all("SELECT * FROM itsm_approvals WHERE change_sys_id = ? ORDER BY id", (sys_id,))

    def itsm_change_events(self, sys_id: str) -> List[Row]:
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM itsm_change_events WHERE change_sys_id = ? ORDER BY id", (sys_id,))
        return [_decode_json_columns(row, ("detail", "actor")) for row in rows]

    def _itsm_event(
        self, cursor: Cursor, sys_id: str, event: str, detail: Mapping[str, Any], actor: Actor, now: str
    ) -> None:
        cursor.execute(
            "INSERT INTO itsm_change_events (change_sys_id, event, detail, run_id, actor, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (sys_id, event, _dump(dict(detail)), actor.run_id, _dump(actor.as_dict()), now),
        )

    def itsm_find_cis(
        self, classes: Sequence[str], name: Optional[str] = None, sys_ids: Optional[Sequence[str]] = None
    ) -> List[Row]:
        """Return the CIs of any of ``classes`` (optionally one name, or given sys_ids), oldest first."""
        if not classes:
            return []
        sql = "SELECT * FROM itsm_cis WHERE class IN (%s)" % ", ".join("?" for _item in classes)
        params: List[Any] = list(classes)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        if sys_ids is not None:
            if not sys_ids:
                return []
            sql += " AND sys_id IN (%s)" % ", ".join("?" for _item in sys_ids)
            params.extend(sys_ids)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql + " ORDER BY id", params)
        return [_decode_json_columns(row, ("attributes",)) for row in rows]

    def itsm_save_ci(
        self, sys_id: str, ci_class: str, name: Optional[str], attributes: Mapping[str, Any], create: bool
    ) -> Row:
        """Insert a new CI or replace an existing CI's name and attributes."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            if create:
                cursor.execute(
                    "INSERT INTO itsm_cis (sys_id, class, name, attributes, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (sys_id, ci_class, name, _dump(dict(attributes)), now, now),
                )
            else:
                cursor.execute(
                    "UPDATE itsm_cis SET name = ?, attributes = ?, updated_at = ? WHERE sys_id = ?",
                    (name, _dump(dict(attributes)), now, sys_id),
                )
            row = cursor.one("SELECT * FROM itsm_cis WHERE sys_id = ?", (sys_id,))
        return _decode_json_columns(_must_exist(row, "CI %s" % sys_id), ("attributes",))

    def itsm_relate(self, sys_id: str, parent: str, child: str, relation_type: str) -> bool:
        """Relate two CIs; return False when the relation already existed."""
        with self.backend.transaction(write=True) as cursor:
            created = cursor.execute(
                "INSERT INTO itsm_ci_relations (sys_id, parent, child, type, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (parent, child, type) DO NOTHING",
                (sys_id, parent, child, relation_type, now_timestamp()),
            )
        return created == 1

    def itsm_unrelate(self, parent: str, child: str, relation_type: str) -> bool:
        """Remove a relation between two CIs; return False when there was none."""
        with self.backend.transaction(write=True) as cursor:
            removed = cursor.execute(
                "DELETE FROM itsm_ci_relations WHERE parent = ? AND child = ? AND type = ?",
                (parent, child, relation_type),
            )
        return removed == 1

    def itsm_relations(self, parent: Optional[str] = None, child: Optional[str] = None) -> List[Row]:
        clauses, params = _filters(parent=parent, child=child)
        with self.backend.transaction(write=False) as cursor:
            return cursor.all("SELECT * FROM itsm_ci_relations" + clauses + " ORDER BY id", params)

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

    def active_stabilizations(
        self, service: Optional[str] = None, environment: Optional[str] = None, include_lapsed: bool = False
    ) -> List[Row]:
        """Periods still running: recorded active and not past their end (a run that died mid-period lapses).
        ``include_lapsed`` also returns active periods past their end: the watcher that ends a period may
        finish after the end time (a slow health gate) and must still record how the period ended."""
        clauses, params = _filters(service=service, environment=environment)
        clauses += (" AND" if clauses else " WHERE") + " status = 'active'"
        if not include_lapsed:
            clauses += " AND ends_at > ?"
            params = [*params, now_timestamp()]
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM stabilization_periods" + clauses + " ORDER BY started_at DESC, id DESC", tuple(params)
            )
        return [_decode_json_columns(row, ("details",)) for row in rows]

    def list_stabilizations(
        self, service: Optional[str] = None, environment: Optional[str] = None, limit: int = 10
    ) -> List[Row]:
        return self._newest(
            "stabilization_periods", "started_at", ("details",), limit, service=service, environment=environment
        )

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
        correlation_id: Optional[str] = None,
        caused_by: Optional[str] = None,
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
                " stabilization_id, opened_at, details, correlation_id, caused_by)"
                " VALUES (?, ?, ?, ?, ?, ?, 'open', 'stabilization', ?, ?, ?, ?, ?) RETURNING *",
                (
                    actor.run_id,
                    service,
                    environment,
                    version,
                    title,
                    severity,
                    period_id,
                    now,
                    _dump(dict(details or {})),
                    correlation_id,
                    caused_by,
                ),
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
        return self._newest(
            "incidents", "opened_at", ("details",), limit, service=service, environment=environment, status=status
        )

    def _newest(
        self, table: str, time_column: str, json_columns: Sequence[str], limit: int, **filters: Optional[str]
    ) -> List[Row]:
        """Rows of a ledger table matching equality filters, newest first, JSON columns decoded."""
        clauses, params = _filters(**filters)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM %s%s ORDER BY %s DESC, id DESC LIMIT ?" % (table, clauses, time_column),
                (*params, limit),
            )
        return [_decode_json_columns(row, json_columns) for row in rows]

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


def decision_record(
    decision: str,
    reasons: Sequence[str],
    policy_version: Optional[str],
    inputs_digest: Optional[str],
    decided_at: Optional[str] = None,
) -> Dict[str, Any]:
    """A gate's answer as DESIGN.md section 5 shapes it (the ledger stores the same fields)."""
    _require_choice("decision", decision, DECISIONS)
    return {
        "decision": decision,
        "reasons": list(reasons),
        "policy_version": policy_version,
        "inputs_digest": inputs_digest,
        "decided_at": decided_at or now_timestamp(),
    }


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
        schema.upgrade(backend, url, applied_by, schema_directory)
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


def _decode_change(row: Row) -> Row:
    return _decode_json_columns(row, ("fields", "cis"))


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
