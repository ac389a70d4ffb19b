# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ephemeral environments in the ledger (schema V15), mixed into :class:`Ledger`.

Each method is one short transaction. Ports are handed out from a range: the
lowest port no active environment holds. A partial unique index on active
ports backs that choice, so when two runs pick the same port at once one
insert fails and that run picks again.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, now_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .backends import Backend, Cursor, Row
from .errors import LedgerError

ENV_STATUSES = ("active", "torn_down", "reaped")
_PICK_ATTEMPTS = 5


class EnvsStore:
    """Ledger methods for relops.release.ephemeral_env; needs ``self.backend`` and ``_touch_run``."""

    backend: Backend

    if TYPE_CHECKING:  # provided by Ledger; declared for the type checker only

        def _touch_run(
            self, cursor: Cursor, actor: Actor, now: str, playbook: Optional[str] = None, play: Optional[str] = None
        ) -> bool: ...

    def active_env(self, name: str) -> Optional[Row]:
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT * FROM ephemeral_envs WHERE name = ? AND status = 'active'", (name,))
        return _decode(row) if row else None

    def list_envs(self, status: Optional[str] = None, limit: int = 100) -> List[Row]:
        sql, params = "SELECT * FROM ephemeral_envs", []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit))
        return [_decode(row) for row in rows]

    def expired_envs(self) -> List[Row]:
        """Active environments whose TTL has passed, oldest first."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM ephemeral_envs WHERE status = 'active' AND expires_at <= ? ORDER BY expires_at, id",
                (now_timestamp(),),
            )
        return [_decode(row) for row in rows]

    def provision_env(
        self,
        actor: Actor,
        name: str,
        ports: Tuple[int, int],
        ttl_seconds: int,
        db_name: Optional[str],
        slot_dir: str,
        details: Optional[Mapping[str, Any]] = None,
    ) -> Row:
        """Record a new active environment on the lowest free port of ``ports``; return it."""
        for _attempt in range(_PICK_ATTEMPTS):
            try:
                return self._insert_env(actor, name, ports, ttl_seconds, db_name, slot_dir, details)
            except LedgerError as error:
                # Another run took the same port between our read and our insert (PostgreSQL's
                # read committed); the partial unique index refused ours, so pick again.
                if not _is_port_clash(error):
                    raise
        raise LedgerError(
            "could not reserve a port for %r after %d attempts; too many environments start at once, retry"
            % (name, _PICK_ATTEMPTS)
        )

    def _insert_env(
        self,
        actor: Actor,
        name: str,
        ports: Tuple[int, int],
        ttl_seconds: int,
        db_name: Optional[str],
        slot_dir: str,
        details: Optional[Mapping[str, Any]],
    ) -> Row:
        moment = utc_now()
        now = format_timestamp(moment)
        expires = format_timestamp(moment + datetime.timedelta(seconds=ttl_seconds))
        with self.backend.transaction(write=True) as cursor:
            if cursor.one("SELECT id FROM ephemeral_envs WHERE name = ? AND status = 'active'", (name,)):
                raise LedgerError(
                    "ephemeral environment %r is already active; tear it down first or pick another name" % name
                )
            self._touch_run(cursor, actor, now)
            taken = {
                int(row["port"])
                for row in cursor.all(
                    "SELECT port FROM ephemeral_envs WHERE status = 'active' AND port BETWEEN ? AND ?", ports
                )
            }
            port = next((candidate for candidate in range(ports[0], ports[1] + 1) if candidate not in taken), None)
            if port is None:
                raise LedgerError(
                    "every port from %d to %d is held by an active ephemeral environment; reap expired ones"
                    " (state=reaped) or widen the port range" % ports
                )
            row = cursor.one(
                "INSERT INTO ephemeral_envs (run_id, name, status, port, db_name, slot_dir, created_at, expires_at,"
                " details) VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    actor.run_id,
                    name,
                    port,
                    db_name,
                    slot_dir.replace("{port}", str(port)),
                    now,
                    expires,
                    json.dumps(dict(details or {}), sort_keys=True),
                ),
            )
        if row is None:
            raise LedgerError("the ledger returned no row for the new ephemeral environment %r" % name)
        return _decode(row)

    def end_env(self, env_id: int, status: str) -> Row:
        """Mark an active environment torn down or reaped; return it."""
        if status not in ENV_STATUSES[1:]:
            raise LedgerError("status %r is not valid; use one of %s" % (status, ", ".join(ENV_STATUSES[1:])))
        with self.backend.transaction(write=True) as cursor:
            changed = cursor.execute(
                "UPDATE ephemeral_envs SET status = ?, ended_at = ? WHERE id = ? AND status = 'active'",
                (status, now_timestamp(), env_id),
            )
            row = cursor.one("SELECT * FROM ephemeral_envs WHERE id = ?", (env_id,))
        if changed == 0 or row is None:
            raise LedgerError("ephemeral environment %d is not active in the ledger; it has ended already" % env_id)
        return _decode(row)


def _is_port_clash(error: LedgerError) -> bool:
    """The backends word a unique violation differently; both name the index or the column."""
    text = str(error)
    return "ephemeral_envs_active_port" in text or "ephemeral_envs.port" in text


def _decode(row: Row) -> Row:
    decoded = dict(row)
    if isinstance(decoded.get("details"), str):
        decoded["details"] = json.loads(decoded["details"])
    return decoded
