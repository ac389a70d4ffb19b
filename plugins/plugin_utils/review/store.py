# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The review's queries (schema V25), over the ledger core.

Feedback and follow-up actions hang off a release record (``releases``, V22). Each method is one
short transaction on the ledger's backend; the review's SQL lives here and nowhere else.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .model import ActionRequest, Feedback, ReviewError, ReviewPlan, plan_review

Row = Dict[str, Any]
# Releases that changed something in the environment (an aborted one was refused before it did).
DEPLOYED_OUTCOMES = ("successful", "failed", "rolled_back")
_ACTION_COLUMNS = (
    "a.release_id, a.action_id, a.title, a.owner, a.due_date, a.state, a.recorded_by, a.created_at,"
    " a.updated_at, a.done_at, r.service, r.environment, r.version"
)


class ReviewStore:
    """The feedback and follow-up actions of releases in one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.backend = ledger.backend

    def plan(self, release_id: str, feedback: Sequence[Feedback], actions: Sequence[ActionRequest]) -> ReviewPlan:
        """What recording these entries would add or change (nothing is written)."""
        with self.backend.transaction(write=False) as cursor:
            _require_release(cursor, release_id)
            return plan_review(
                _feedback(cursor, release_id), _actions(cursor, "a.release_id = ?", [release_id]), feedback, actions
            )

    def record(
        self, actor: Actor, release_id: str, feedback: Sequence[Feedback], actions: Sequence[ActionRequest]
    ) -> ReviewPlan:
        """Add the new feedback and write the changed actions; return what was done (empty: nothing was)."""
        now = now_timestamp()
        self.ledger.touch_run(actor)
        with self.backend.transaction(write=True) as cursor:
            _require_release(cursor, release_id)
            recorded = _actions(cursor, "a.release_id = ?", [release_id])
            plan = plan_review(_feedback(cursor, release_id), recorded, feedback, actions)
            for entry in plan.feedback:
                cursor.execute(
                    "INSERT INTO release_feedback (release_id, author, feedback, digest, run_id, recorded_by,"
                    " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (release_id, entry.author, entry.text, entry.digest, actor.run_id, actor.display(), now),
                )
            known = {row["action_id"]: row for row in recorded}
            for action in plan.actions:
                _write_action(cursor, actor, release_id, action, known.get(action["action_id"]), now)
        return plan

    def review(self, release_id: str) -> Optional[Row]:
        """The feedback (oldest first) and the actions (by due date) of one release, or None without a record."""
        try:
            return self.require_review(release_id)
        except ReviewError:
            return None

    def require_review(self, release_id: str) -> Row:
        """As :meth:`review`, for a release that must have a record (the error names it and the fix)."""
        with self.backend.transaction(write=False) as cursor:
            _require_release(cursor, release_id)
            return {
                "release_id": release_id,
                "feedback": _feedback(cursor, release_id),
                "actions": _actions(cursor, "a.release_id = ?", [release_id]),
            }

    def actions(
        self,
        state: Optional[str] = None,
        environment: Optional[str] = None,
        service: Optional[str] = None,
        owner: Optional[str] = None,
        due_before: Optional[str] = None,
    ) -> List[Row]:
        """Actions across releases, by due date; ``due_before`` (YYYY-MM-DD) keeps those due earlier."""
        where: List[str] = []
        params: List[Any] = []
        for column, value in (("a.state", state), ("r.environment", environment), ("r.service", service)):
            if value is not None:
                where.append("%s = ?" % column)
                params.append(value)
        if owner is not None:
            where.append("a.owner = ?")
            params.append(owner)
        if due_before is not None:
            where.append("a.due_date < ?")
            params.append(due_before)
        with self.backend.transaction(write=False) as cursor:
            return _actions(cursor, " AND ".join(where) or "1 = 1", params)

    def release_of_deployment(self, deployment: Row) -> Optional[str]:
        """The release record a deployment row belongs to: same service, environment and version, the run
        that deployed it first, else the same artifact (the newest attempt)."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT release_id FROM releases WHERE service = ? AND environment = ? AND version = ?"
                " AND (run_id = ? OR digest = ?)"
                " ORDER BY CASE WHEN run_id = ? THEN 0 ELSE 1 END, attempt DESC LIMIT 1",
                (
                    deployment["service"],
                    deployment["environment"],
                    deployment["version"],
                    deployment.get("run_id"),
                    deployment.get("artifact_digest"),
                    deployment.get("run_id"),
                ),
            )
        return None if row is None else str(row["release_id"])

    def deployed_releases(
        self,
        environment: str,
        start: str,
        end: str,
        service: Optional[str] = None,
        team: Optional[str] = None,
    ) -> List[Row]:
        """Releases that deployed (finished in [start, end)) with their runbook and when traffic moved
        (``deployed_at``: the deployment stage's time, else the release's finish), oldest first."""
        sql = (
            "SELECT release_id, service, version, team, runbook, outcome, started_at, finished_at FROM releases"
            " WHERE environment = ? AND finished_at >= ? AND finished_at < ? AND outcome IN (?, ?, ?)"
        )
        params: List[Any] = [environment, start, end, *DEPLOYED_OUTCOMES]
        for column, value in (("service", service), ("team", team)):
            if value is not None:
                sql += " AND %s = ?" % column
                params.append(value)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql + " ORDER BY finished_at, release_id", params)
            for row in rows:
                stage = cursor.one(
                    "SELECT recorded_at FROM release_stages WHERE release_id = ? AND stage = 'deployment'"
                    " ORDER BY id LIMIT 1",
                    (row["release_id"],),
                )
                row["deployed_at"] = stage["recorded_at"] if stage is not None else row["finished_at"]
        return rows


def _require_release(cursor: Any, release_id: str) -> None:
    if cursor.one("SELECT release_id FROM releases WHERE release_id = ?", (release_id,)) is None:
        raise ReviewError(
            "release %s has no record in this ledger; reviews attach to a release record (list them with"
            " relops.release.release_record_info) - check the release id" % release_id
        )


def _feedback(cursor: Any, release_id: str) -> List[Row]:
    rows: List[Row] = cursor.all(
        "SELECT author, feedback AS text, digest, recorded_by, recorded_at FROM release_feedback"
        " WHERE release_id = ? ORDER BY id",
        (release_id,),
    )
    return rows


def _actions(cursor: Any, where: str, params: Sequence[Any]) -> List[Row]:
    rows: List[Row] = cursor.all(
        "SELECT %s FROM release_actions a JOIN releases r ON r.release_id = a.release_id WHERE %s"
        " ORDER BY a.due_date, a.release_id, a.action_id" % (_ACTION_COLUMNS, where),
        list(params),
    )
    return rows


def _write_action(cursor: Any, actor: Actor, release_id: str, action: Row, before: Optional[Row], now: str) -> None:
    done_at = (before or {}).get("done_at") if action["state"] == "done" else None
    if action["state"] == "done" and done_at is None:
        done_at = now
    if before is None:
        cursor.execute(
            "INSERT INTO release_actions (release_id, action_id, title, owner, due_date, state, run_id, recorded_by,"
            " created_at, updated_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                release_id,
                action["action_id"],
                action["title"],
                action["owner"],
                action["due_date"],
                action["state"],
                actor.run_id,
                actor.display(),
                now,
                now,
                done_at,
            ),
        )
        return
    cursor.execute(
        "UPDATE release_actions SET title = ?, owner = ?, due_date = ?, state = ?, run_id = ?, recorded_by = ?,"
        " updated_at = ?, done_at = ? WHERE release_id = ? AND action_id = ?",
        (
            action["title"],
            action["owner"],
            action["due_date"],
            action["state"],
            actor.run_id,
            actor.display(),
            now,
            done_at,
            release_id,
            action["action_id"],
        ),
    )
