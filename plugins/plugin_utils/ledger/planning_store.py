# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger queries for planning (issue 12): reservations of shared test services (schema V14).

A mixin of :class:`~.store.Ledger`; it uses the same backend and transaction helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .backends import Backend, Cursor, Row
from .errors import LedgerError


class ReservationConflict(LedgerError):
    """A requested slot overlaps another active reservation, or its data name is taken."""


@dataclass(frozen=True)
class ReservationRequest:
    """What a task asks for: one service, one slot [starts_at, ends_at), one data name."""

    service: str
    name: str
    owner: str
    starts_at: str
    ends_at: str
    data_name: str
    purpose: Optional[str] = None

    def describe(self) -> str:
        return "reservation %r of %r (%s to %s)" % (self.name, self.service, self.starts_at, self.ends_at)


def describe_reservation(row: Mapping[str, Any]) -> str:
    return "reservation %r of %r by %s (%s to %s, data %s)" % (
        row["name"],
        row["service"],
        row["owner"],
        row["starts_at"],
        row["ends_at"],
        row["data_name"],
    )


class PlanningStore:
    """Reservations: at most one active reservation of a service at any moment, one data name each."""

    backend: Backend

    def get_reservation(self, service: str, name: str) -> Optional[Row]:
        with self.backend.transaction(write=False) as cursor:
            return self._active_reservation(cursor, service, name)

    def list_reservations(self, service: Optional[str] = None, active_only: bool = True) -> List[Row]:
        clauses = []
        params: List[Any] = []
        if service is not None:
            clauses.append("service = ?")
            params.append(service)
        if active_only:
            clauses.append("status = 'active'")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.backend.transaction(write=False) as cursor:
            return cursor.all("SELECT * FROM env_reservations%s ORDER BY service, starts_at, id" % where, params)

    def reservation_conflicts(self, request: ReservationRequest) -> List[Row]:
        """Active reservations of the same service whose slot overlaps, or that use the same data name."""
        with self.backend.transaction(write=False) as cursor:
            return self._conflicts(cursor, request)

    def reserve(self, actor: Actor, request: ReservationRequest) -> Tuple[Row, Optional[Row]]:
        """Create or move the reservation; return (new row, previous row or None).

        The overlap check and the write happen in one write transaction (SQLite's ``BEGIN IMMEDIATE``,
        a table lock on PostgreSQL), so two runs can never both take overlapping slots.
        """
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._serialize_reservations(cursor)
            self._touch_run(cursor, actor, now)  # type: ignore[attr-defined]
            conflicts = self._conflicts(cursor, request)
            if conflicts:
                raise_conflict(request, conflicts[0])
            previous = self._active_reservation(cursor, request.service, request.name)
            if previous is not None:
                cursor.execute(
                    "UPDATE env_reservations SET owner = ?, purpose = ?, data_name = ?, starts_at = ?, ends_at = ?,"
                    " run_id = ? WHERE id = ?",
                    (
                        request.owner,
                        request.purpose,
                        request.data_name,
                        request.starts_at,
                        request.ends_at,
                        actor.run_id,
                        previous["id"],
                    ),
                )
                row = cursor.one("SELECT * FROM env_reservations WHERE id = ?", (previous["id"],))
            else:
                row = cursor.one(
                    "INSERT INTO env_reservations (run_id, service, name, owner, purpose, data_name, status,"
                    " starts_at, ends_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?) RETURNING *",
                    (
                        actor.run_id,
                        request.service,
                        request.name,
                        request.owner,
                        request.purpose,
                        request.data_name,
                        request.starts_at,
                        request.ends_at,
                        now,
                    ),
                )
        if row is None:
            raise LedgerError("%s was not stored; check the ledger's database" % request.describe())
        return row, previous

    def release_reservation(self, actor: Actor, service: str, name: str) -> Optional[Row]:
        """Mark the active reservation released; return it as it was, or None when there was none."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)  # type: ignore[attr-defined]
            current = self._active_reservation(cursor, service, name)
            if current is not None:
                cursor.execute(
                    "UPDATE env_reservations SET status = 'released', released_at = ? WHERE id = ?",
                    (now, current["id"]),
                )
        return current

    def _serialize_reservations(self, cursor: Cursor) -> None:
        # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs a lock that
        # conflicts with itself so a concurrent check-then-insert waits for this one.
        if self.backend.dialect == "postgresql":
            cursor.execute("LOCK TABLE env_reservations IN SHARE ROW EXCLUSIVE MODE")

    @staticmethod
    def _active_reservation(cursor: Cursor, service: str, name: str) -> Optional[Row]:
        return cursor.one(
            "SELECT * FROM env_reservations WHERE service = ? AND name = ? AND status = 'active'",
            (service, name),
        )

    @staticmethod
    def _conflicts(cursor: Cursor, request: ReservationRequest) -> List[Row]:
        # Half-open slots: one ending at 10:00 and another starting at 10:00 do not overlap.
        return cursor.all(
            "SELECT * FROM env_reservations WHERE status = 'active' AND NOT (service = ? AND name = ?)"
            " AND ((service = ? AND starts_at < ? AND ends_at > ?) OR data_name = ?)"
            " ORDER BY starts_at, id",
            (
                request.service,
                request.name,
                request.service,
                request.ends_at,
                request.starts_at,
                request.data_name,
            ),
        )


def raise_conflict(request: ReservationRequest, other: Mapping[str, Any]) -> None:
    overlaps = (
        other["service"] == request.service
        and other["starts_at"] < request.ends_at
        and other["ends_at"] > request.starts_at
    )
    if not overlaps:
        raise ReservationConflict(
            "%s: data name %r is already used by %s; choose another data_name"
            % (request.describe(), request.data_name, describe_reservation(other))
        )
    raise ReservationConflict(
        "%s overlaps %s; choose a slot starting at or after %s or ending by %s, or release %r first"
        % (request.describe(), describe_reservation(other), other["ends_at"], other["starts_at"], other["name"])
    )
