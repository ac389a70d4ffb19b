# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger methods for change governance (schema V7): exemptions and their uses, plus the
deployment questions the risk assessment and readiness review ask.

A mixin of :class:`~.store.Ledger`: it uses the same backend transaction
helpers, so every method is one short transaction like the rest of the ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .backends import Row
from .errors import LedgerError

if TYPE_CHECKING:
    from .backends import Backend, Cursor


class GovernanceStore:
    """Exemptions, exemption uses and governance reads of deployments and incidents."""

    backend: "Backend"

    if TYPE_CHECKING:
        # Provided by Ledger, which this class is mixed into.
        def _touch_run(self, cursor: "Cursor", actor: Actor, now: str) -> bool: ...

    # Exemptions

    def get_exemption(self, name: str) -> Optional[Row]:
        with self.backend.transaction(write=False) as cursor:
            return cursor.one("SELECT * FROM exemptions WHERE name = ?", (name,))

    def create_exemption(self, actor: Actor, values: Dict[str, Any]) -> "tuple[Row, bool]":
        """Create an exemption unless one with the name exists; return it and whether it is new."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            existing = cursor.one("SELECT * FROM exemptions WHERE name = ?", (values["name"],))
            if existing is not None:
                return existing, False
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO exemptions (name, run_id, team, service, rule, approver, reason, requested_by,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    values["name"],
                    actor.run_id,
                    values.get("team"),
                    values.get("service"),
                    values["rule"],
                    values["approver"],
                    values["reason"],
                    values["requested_by"],
                    now,
                    values["expires_at"],
                ),
            )
        if row is None:
            raise LedgerError("exemption %s was written but cannot be read back" % values["name"])
        return row, True

    def revoke_exemption(self, actor: Actor, name: str, revoked_by: str, reason: str) -> Optional[Row]:
        """Revoke an active exemption; return it, or None when it was revoked already."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            changed = cursor.execute(
                "UPDATE exemptions SET revoked_at = ?, revoked_by = ?, revoke_reason = ?"
                " WHERE name = ? AND revoked_at IS NULL",
                (now, revoked_by, reason, name),
            )
            row = cursor.one("SELECT * FROM exemptions WHERE name = ?", (name,))
        return row if changed else None

    def list_exemptions(
        self,
        rule: Optional[str] = None,
        service: Optional[str] = None,
        team: Optional[str] = None,
        include_inactive: bool = True,
        limit: int = 100,
    ) -> List[Row]:
        """Exemptions matching the filters (service and team match the exemption's scope), newest first."""
        clauses: List[str] = []
        params: List[Any] = []
        if rule is not None:
            clauses.append("rule = ?")
            params.append(rule)
        scope = []
        if service is not None:
            scope.append("service = ?")
            params.append(service)
        if team is not None:
            scope.append("team = ?")
            params.append(team)
        if scope:
            clauses.append("(" + " OR ".join(scope) + ")")
        if not include_inactive:
            clauses.append("revoked_at IS NULL AND expires_at > ?")
            params.append(now_timestamp())
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT * FROM exemptions%s ORDER BY created_at DESC, id DESC LIMIT ?" % where, (*params, limit)
            )

    def record_exemption_use(self, actor: Actor, exemption_id: int, gate: str, subject: str) -> None:
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            cursor.execute(
                "INSERT INTO exemption_uses (exemption_id, run_id, gate, subject, used_at) VALUES (?, ?, ?, ?, ?)",
                (exemption_id, actor.run_id, gate, subject, now),
            )

    def exemption_uses(self, exemption_id: int, limit: int = 100) -> List[Row]:
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT * FROM exemption_uses WHERE exemption_id = ? ORDER BY used_at DESC, id DESC LIMIT ?",
                (exemption_id, limit),
            )

    # Reads for risk assessment and readiness

    def finished_deployment_outcomes(self, service: str, environment: str, limit: int) -> List[str]:
        """Statuses of the service's last finished deployments in the environment, newest first."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT status FROM deployments WHERE service = ? AND environment = ? AND status != 'in_progress'"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (service, environment, limit),
            )
        return [str(row["status"]) for row in rows]

    def last_incident_at(self, service: str) -> Optional[str]:
        """When the service's newest incident (any environment) was opened, or None."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT max(opened_at) AS opened_at FROM incidents WHERE service = ?", (service,))
        return str(row["opened_at"]) if row and row["opened_at"] else None

    def rollback_rehearsals(self, service: str, version: str, environments: Sequence[str]) -> List[Row]:
        """Deployments of this version that were rolled back in one of the (lower) environments."""
        if not environments:
            return []
        marks = ", ".join("?" for _env in environments)
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT id, service, version, environment, status, started_at, finished_at FROM deployments"
                " WHERE service = ? AND version = ? AND status = 'rolled_back' AND environment IN (%s)"
                " ORDER BY started_at DESC, id DESC" % marks,
                (service, version, *environments),
            )

    def deployed_versions(self, service: str, environment: str, limit: int = 1) -> List[str]:
        """The versions of the service's newest successful deployments in the environment."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT version FROM deployments WHERE service = ? AND environment = ? AND status = 'successful'"
                " ORDER BY started_at DESC, id DESC LIMIT ?",
                (service, environment, limit),
            )
        return [str(row["version"]) for row in rows]
