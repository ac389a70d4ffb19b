# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger records of incidents opened through the ITSM interface (schema V6 table, V11 columns).

The ``local`` ITSM backend keeps its incidents here, in the same ``incidents``
table the stabilization period's breaches open (source ``stabilization``), so
one list holds every incident of a service whichever way it was opened.
"""

from __future__ import annotations

from typing import Any, Callable, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

# store.py builds Ledger from this mixin; the package imports store first, so this import finds it
# (partly initialised) and the helpers below are looked up when called.
from . import store
from .backends import Backend, Cursor, Row

INCIDENT_NUMBER_OFFSET = 10000
INCIDENT_COLUMNS = ("number", "correlation_id", "service", "environment", "status", "caused_by")


def incident_number(incident_id: int) -> str:
    """The local incident number, shaped like ServiceNow's (INC + seven digits)."""
    return "INC%07d" % (INCIDENT_NUMBER_OFFSET + incident_id)


def incident_id(number: str) -> Optional[int]:
    """The ledger id behind a local incident number, or None when it is not one."""
    digits = number[3:] if number.upper().startswith("INC") else ""
    return int(digits) - INCIDENT_NUMBER_OFFSET if digits.isdigit() and int(digits) > INCIDENT_NUMBER_OFFSET else None


class IncidentStore:
    """Open and find incidents; a mixin of Ledger (uses its backend, _touch_run and JSON helpers)."""

    # Provided by Ledger, which this class is mixed into.
    backend: Backend
    _touch_run: Callable[[Cursor, Actor, str], bool]

    def open_incident(
        self,
        actor: Actor,
        incident: Mapping[str, Any],
    ) -> Tuple[Row, bool]:
        """Insert an incident; an existing correlation id returns that incident instead. Return it and created.

        ``incident`` holds service, environment, title, severity, and optionally version, source,
        correlation_id, caused_by and details.
        """
        store._require_choice("severity", incident["severity"], store.INCIDENT_SEVERITIES)
        now = now_timestamp()
        correlation_id = incident.get("correlation_id") or None
        with self.backend.transaction(write=True) as cursor:
            if correlation_id:
                existing = cursor.one("SELECT * FROM incidents WHERE correlation_id = ?", (correlation_id,))
                if existing:
                    return store._decode_json_columns(existing, ("details",)), False
            self._touch_run(cursor, actor, now)
            row = cursor.one(
                "INSERT INTO incidents (run_id, service, environment, version, title, severity, status, source,"
                " opened_at, details, correlation_id, caused_by) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)"
                " RETURNING *",
                (
                    actor.run_id,
                    incident["service"],
                    incident["environment"],
                    incident.get("version"),
                    incident["title"],
                    incident["severity"],
                    incident.get("source") or "itsm",
                    now,
                    store._dump(dict(incident.get("details") or {})),
                    correlation_id,
                    incident.get("caused_by") or None,
                ),
            )
        return store._decode_json_columns(store._must_exist(row, "the new incident"), ("details",)), True

    def find_incidents(self, limit: int = 100, **filters: Optional[str]) -> List[Row]:
        """Incidents matching equality filters (number, correlation_id, service, environment, status,
        caused_by), newest first."""
        unknown = sorted(set(filters) - set(INCIDENT_COLUMNS))
        if unknown:
            raise ValueError("incidents cannot be filtered by %s" % ", ".join(unknown))
        columns = dict(filters)
        number = columns.pop("number", None)
        if number is not None:
            found = incident_id(number)
            if found is None:
                return []
            columns["id"] = str(found)
        clauses, params = store._filters(**columns)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM incidents%s ORDER BY opened_at DESC, id DESC LIMIT ?" % clauses, (*params, limit)
            )
        return [store._decode_json_columns(row, ("details",)) for row in rows]
