# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release record's queries (schema V22), over the ledger core.

Each method is one short transaction on the ledger's backend. The store never
reaches into the :class:`Ledger` class beyond its backend and its run
bookkeeping, so the record's SQL lives here and nowhere else.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .model import (
    FINAL_OUTCOMES,
    MANIFEST_COLUMNS,
    ReleaseRecordError,
    check_outcome,
    check_stage,
    default_release_id,
)

Row = Dict[str, Any]
# Stage entries that also set a column of the record: stage -> (column, key of the stage's data).
_STAGE_COLUMNS = {
    "change": ("change_number", "number"),
    "permit": ("permit_id", "permit_id"),
    "deployment": ("strategy", "strategy"),
}


class ReleaseRecordStore:
    """Release records, their stages and their permits in one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.backend = ledger.backend

    def open_release(
        self,
        actor: Actor,
        service: str,
        environment: str,
        version: str,
        digest: str,
        manifest: Mapping[str, Optional[str]],
        release_id: Optional[str] = None,
    ) -> "tuple[Row, bool]":
        """Start the record of a release attempt, or continue the unfinished one with the same id.

        Return the record and whether it is new. A finished record is never reopened: the next attempt
        of the same release gets ``<id>#<attempt>``, so one attempt is one unit of DORA.
        """
        base = release_id or default_release_id(service, environment, version, digest)
        now = now_timestamp()
        self.ledger.touch_run(actor)
        with self.backend.transaction(write=True) as cursor:
            rows = cursor.all(
                "SELECT * FROM releases WHERE release_id = ? OR release_id LIKE ? ESCAPE '\\' ORDER BY attempt DESC",
                (base, _like_prefix(base)),
            )
            latest = rows[0] if rows else None
            if latest is not None and latest["outcome"] not in FINAL_OUTCOMES:
                _check_same_release(latest, service, environment, version, digest)
                cursor.execute(
                    "UPDATE releases SET run_id = ?, updated_at = ? WHERE release_id = ?",
                    (actor.run_id, now, latest["release_id"]),
                )
                return self._require(cursor, latest["release_id"]), False
            attempt = int(latest["attempt"]) + 1 if latest is not None else 1
            chosen = base if attempt == 1 else "%s#%d" % (base, attempt)
            cursor.execute(
                "INSERT INTO releases (release_id, service, environment, version, digest, attempt, run_id, actor,"
                " owner, team, source_revision, commit_time, runbook, started_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chosen,
                    service,
                    environment,
                    version,
                    digest,
                    attempt,
                    actor.run_id,
                    actor.display(),
                    *(manifest.get(column) for column in MANIFEST_COLUMNS),
                    now,
                    now,
                ),
            )
            return self._require(cursor, chosen), True

    def record_stage(self, actor: Actor, release_id: str, stage: str, data: Mapping[str, Any]) -> Row:
        """Append what a stage saw; stages that name a column (change, permit, deployment) also set it."""
        check_stage(stage)
        now = now_timestamp()
        self.ledger.touch_run(actor)
        with self.backend.transaction(write=True) as cursor:
            record = self._require(cursor, release_id)
            if stage != "rollback" and record["outcome"] in FINAL_OUTCOMES and stage != "outcome":
                raise ReleaseRecordError(
                    "release %s is finished (%s); a new attempt writes a new record" % (release_id, record["outcome"])
                )
            cursor.execute(
                "INSERT INTO release_stages (release_id, stage, run_id, recorded_at, data) VALUES (?, ?, ?, ?, ?)",
                (release_id, stage, actor.run_id, now, _dump(data)),
            )
            if stage in _STAGE_COLUMNS and data.get(_STAGE_COLUMNS[stage][1]) not in (None, ""):
                column, key = _STAGE_COLUMNS[stage]
                cursor.execute("UPDATE releases SET %s = ? WHERE release_id = ?" % column, (str(data[key]), release_id))
            if stage == "outcome":
                self._finish(cursor, release_id, data, now)
            cursor.execute("UPDATE releases SET updated_at = ? WHERE release_id = ?", (now, release_id))
            return self._require(cursor, release_id)

    def _finish(self, cursor: Any, release_id: str, data: Mapping[str, Any], now: str) -> None:
        outcome = str(data.get("outcome"))
        check_outcome(outcome)
        cursor.execute(
            "UPDATE releases SET outcome = ?, rolled_back_to = ?, finished_at = ? WHERE release_id = ?",
            (outcome, data.get("rolled_back_to"), now, release_id),
        )

    def get_record(self, release_id: str) -> Optional[Row]:
        """The record with its stages: ``stages`` maps each stage to its newest entry, ``history`` has them all."""
        with self.backend.transaction(write=False) as cursor:
            record = cursor.one("SELECT * FROM releases WHERE release_id = ?", (release_id,))
            if record is None:
                return None
            entries = cursor.all(
                "SELECT stage, run_id, recorded_at, data FROM release_stages WHERE release_id = ? ORDER BY id",
                (release_id,),
            )
        return _with_stages(record, entries)

    def list_records(
        self, service: Optional[str] = None, environment: Optional[str] = None, limit: int = 20
    ) -> List[Row]:
        """The newest records first, without their stages."""
        where, params = _filters(service=service, environment=environment)
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT * FROM releases%s ORDER BY started_at DESC, release_id DESC LIMIT ?" % where,
                (*params, int(limit)),
            )

    def latest_stage(self, service: str, environment: str, digest: str, stage: str) -> Optional[Row]:
        """The newest entry of a stage for a digest in an environment, across release attempts
        (the quality decision for an artifact outlives the attempt that recorded it)."""
        check_stage(stage)
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT s.release_id, s.recorded_at, s.data FROM release_stages s"
                " JOIN releases r ON r.release_id = s.release_id"
                " WHERE r.service = ? AND r.environment = ? AND r.digest = ? AND s.stage = ?"
                " ORDER BY s.id DESC LIMIT 1",
                (service, environment, digest, stage),
            )
        return None if row is None else dict(row, data=json.loads(row["data"]))

    def released_before(self, service: str, environment: str, digest: str) -> bool:
        """Whether this artifact was once released successfully here: a rollback onto it needs no new
        approval (its own release was approved), only the permit of the release it rolls back."""
        wanted = "sha256:" + digest.rsplit(":", maxsplit=1)[-1].lower()
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT 1 AS found FROM releases WHERE service = ? AND environment = ? AND digest = ?"
                " AND outcome = 'successful' UNION ALL SELECT 1 FROM deployments WHERE service = ?"
                " AND environment = ? AND artifact_digest = ? AND status = 'successful' LIMIT 1",
                (service, environment, wanted, service, environment, wanted),
            )
        return row is not None

    # Permits

    def save_permit(self, permit: Mapping[str, Any]) -> None:
        with self.backend.transaction(write=True) as cursor:
            cursor.execute(
                "INSERT INTO release_permits (permit_id, release_id, environment, digest, not_before, not_after,"
                " issued_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    permit["permit_id"],
                    permit["release_id"],
                    permit["environment"],
                    permit["digest"],
                    permit["not_before"],
                    permit["not_after"],
                    now_timestamp(),
                ),
            )

    def get_permit(self, permit_id: str) -> Optional[Row]:
        with self.backend.transaction(write=False) as cursor:
            return cursor.one("SELECT * FROM release_permits WHERE permit_id = ?", (permit_id,))

    def revoke_permit(self, permit_id: str, revoked_by: str, reason: str) -> bool:
        """Revoke a permit; return False when it was revoked already."""
        with self.backend.transaction(write=True) as cursor:
            if cursor.one("SELECT permit_id FROM release_permits WHERE permit_id = ?", (permit_id,)) is None:
                raise ReleaseRecordError("permit %s is not in this ledger; check the permit id" % permit_id)
            changed = cursor.execute(
                "UPDATE release_permits SET revoked_at = ?, revoked_by = ?, revoke_reason = ?"
                " WHERE permit_id = ? AND revoked_at IS NULL",
                (now_timestamp(), revoked_by, reason, permit_id),
            )
        return changed == 1

    @staticmethod
    def _require(cursor: Any, release_id: str) -> Row:
        row: Optional[Row] = cursor.one("SELECT * FROM releases WHERE release_id = ?", (release_id,))
        if row is None:
            raise ReleaseRecordError(
                "release %s has no record in this ledger; start it with relops.release.release_record"
                " (stage: manifest) or check the release id" % release_id
            )
        return dict(row)


def _check_same_release(record: Row, service: str, environment: str, version: str, digest: str) -> None:
    wanted = {"service": service, "environment": environment, "version": version, "digest": digest}
    different = {key: value for key, value in wanted.items() if record[key] != value}
    if different:
        raise ReleaseRecordError(
            "release %s is open for %s; it cannot continue with %s; give another release_id"
            % (
                record["release_id"],
                ", ".join("%s=%s" % (key, record[key]) for key in different),
                ", ".join("%s=%s" % item for item in different.items()),
            )
        )


def _with_stages(record: Row, entries: List[Row]) -> Row:
    shown = dict(record)
    history = [dict(entry, data=json.loads(entry["data"])) for entry in entries]
    shown["stages"] = {entry["stage"]: entry["data"] for entry in history}
    shown["history"] = history
    return shown


def _filters(**columns: Optional[str]) -> "tuple[str, List[Any]]":
    used = [(name, value) for name, value in columns.items() if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join("%s = ?" % name for name, _value in used), [value for _name, value in used]


def _dump(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def _like_prefix(release_id: str) -> str:
    """A LIKE pattern for the later attempts of a release (``<id>#<n>``), the id's own wildcards escaped."""
    return release_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "#%"
