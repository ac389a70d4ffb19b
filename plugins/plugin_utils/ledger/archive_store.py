# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The archive index (schema V18) and what retention must never remove, mixed into :class:`Ledger`.

Each method is one short transaction. An archive run records all of its files
in one transaction, so the index never holds half a run; a restore marks an
item's rows restored in one transaction too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .backends import Backend, Cursor, Row
from .errors import LedgerError

ARCHIVE_KINDS = ("artifact", "audit", "report")
_ITEM_COLUMNS = (
    "archive_id",
    "kind",
    "original_path",
    "archive_path",
    "member",
    "sha256",
    "size",
    "service",
    "version",
    "reason",
    "first_seq",
    "last_seq",
    "last_hash",
)


class ArchiveStore:
    """Ledger methods for relops.release.archive; needs ``self.backend`` and ``_touch_run``."""

    backend: Backend

    if TYPE_CHECKING:  # provided by Ledger; declared for the type checker only

        def _touch_run(
            self, cursor: Cursor, actor: Actor, now: str, playbook: Optional[str] = None, play: Optional[str] = None
        ) -> bool: ...

    def protected_releases(self, services: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """What retention must keep: per service and environment, the deployed release and the rollback target.

        The deployed release is the latest successful deployment (by start time,
        then id); the rollback target is the newest earlier successful
        deployment of another version, the one a rollback would go back to.
        """
        sql = "SELECT id, service, version, environment, started_at FROM deployments WHERE status = 'successful'"
        params: List[Any] = []
        if services:
            sql += " AND service IN (%s)" % ", ".join("?" for _name in services)
            params.extend(services)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql + " ORDER BY service, environment, started_at DESC, id DESC", params)
        found: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        for row in rows:
            chosen = found.setdefault((row["service"], row["environment"]), [])
            if len(chosen) == 2 or any(entry["version"] == row["version"] for entry in chosen):
                continue
            chosen.append(
                {
                    "service": row["service"],
                    "version": row["version"],
                    "environment": row["environment"],
                    "role": "deployed" if not chosen else "rollback target",
                    "deployment_id": int(row["id"]),
                    "deployed_at": row["started_at"],
                }
            )
        return [entry for key in sorted(found) for entry in found[key]]

    def record_archived(self, actor: Actor, items: Sequence[Mapping[str, Any]]) -> List[Row]:
        """Record archived files (one mapping per file, keys as the table's columns); return the rows."""
        now = now_timestamp()
        stored: List[Row] = []
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            for item in items:
                if item["kind"] not in ARCHIVE_KINDS:
                    raise LedgerError("archive kind %r is not one of %s" % (item["kind"], ", ".join(ARCHIVE_KINDS)))
                row = cursor.one(
                    "INSERT INTO archive_items (run_id, status, archived_at, details, %s)"
                    " VALUES (?, 'archived', ?, ?, %s) RETURNING *"
                    % (", ".join(_ITEM_COLUMNS), ", ".join("?" for _column in _ITEM_COLUMNS)),
                    (
                        actor.run_id,
                        now,
                        json.dumps(dict(item.get("details") or {}), sort_keys=True),
                        *(item.get(column) for column in _ITEM_COLUMNS),
                    ),
                )
                if row is None:
                    raise LedgerError("the ledger returned no row for archived file %s" % item["original_path"])
                stored.append(_decode(row))
        return stored

    def archived_items(
        self,
        kind: Optional[str] = None,
        status: Optional[str] = "archived",
        archive_ids: Optional[Sequence[str]] = None,
        original_paths: Optional[Sequence[str]] = None,
    ) -> List[Row]:
        """Index rows, oldest first, filtered by kind, status, archive ids or original paths."""
        clauses: List[str] = []
        params: List[Any] = []
        for column, value in (("kind", kind), ("status", status)):
            if value is not None:
                clauses.append("%s = ?" % column)
                params.append(value)
        for column, values in (("archive_id", archive_ids), ("original_path", original_paths)):
            if values is not None:
                if not values:
                    return []
                clauses.append("%s IN (%s)" % (column, ", ".join("?" for _value in values)))
                params.extend(values)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM archive_items%s ORDER BY id" % where, params)
        return [_decode(row) for row in rows]

    def mark_restored(self, actor: Actor, archive_ids: Sequence[str]) -> int:
        """Mark every archived row of these items restored; return how many rows changed."""
        now = now_timestamp()
        changed = 0
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            for archive_id in archive_ids:
                changed += cursor.execute(
                    "UPDATE archive_items SET status = 'restored', restored_at = ?, restored_run_id = ?"
                    " WHERE archive_id = ? AND status = 'archived'",
                    (now, actor.run_id, archive_id),
                )
        return changed


def _decode(row: Row) -> Row:
    decoded = dict(row)
    for column in ("size", "first_seq", "last_seq", "id"):
        if decoded.get(column) is not None:
            decoded[column] = int(decoded[column])
    decoded["details"] = json.loads(decoded["details"]) if decoded.get("details") else {}
    return decoded
