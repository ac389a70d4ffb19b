# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a release review holds: feedback (who said what) and follow-up actions (owner, due date, state).

The review of a release is kept beside its release record (docs/metrics.md, post-implementation
review): the team's feedback, and the actions it agreed on, tracked until they are done. This module
is pure: it checks what a caller asks for and works out what would change, so check mode and diff
come from the same plan as the write.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError

ACTION_STATES = ("open", "done")
# The fields of an action a caller may change; the rest (times, recorder) follow from the write.
ACTION_FIELDS = ("title", "owner", "due_date", "state")

Row = Dict[str, Any]


class ReviewError(LedgerError):
    """A review entry cannot be recorded or read as asked: the value and the fix."""


@dataclass(frozen=True)
class Feedback:
    author: str
    text: str

    @property
    def digest(self) -> str:
        """What makes an entry the same entry: author and text (a rerun adds nothing)."""
        return hashlib.sha256(("%s\n%s" % (self.author, self.text)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ActionRequest:
    """An action as asked: ``None`` fields keep the recorded value (a new action needs owner and due date)."""

    action_id: str
    title: str
    owner: Optional[str] = None
    due_date: Optional[str] = None
    state: Optional[str] = None


@dataclass
class ReviewPlan:
    """What a review write adds and changes; empty when the ledger already holds it all."""

    feedback: List[Feedback] = field(default_factory=list)
    actions: List[Row] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.feedback or self.actions)


def feedback_entry(entry: Mapping[str, Any]) -> Feedback:
    author, text = str(entry.get("author") or "").strip(), str(entry.get("text") or "").strip()
    if not author or not text:
        raise ReviewError(
            "feedback %r needs an author (who) and a text (what); e.g. {author: alice, text: the smoke tests"
            " caught it}" % dict(entry)
        )
    return Feedback(author, text)


def action_request(entry: Mapping[str, Any]) -> ActionRequest:
    title = str(entry.get("title") or "").strip()
    if not title:
        raise ReviewError("action %r has no title; give title (and id to rename it later)" % dict(entry))
    state = entry.get("state")
    if state is not None and state not in ACTION_STATES:
        raise ReviewError(
            "action %r: state %r is not an action state; use one of %s" % (title, state, ", ".join(ACTION_STATES))
        )
    due = entry.get("due")
    return ActionRequest(
        action_id=str(entry.get("id") or title),
        title=title,
        owner=_text(entry.get("owner")),
        due_date=None if due in (None, "") else check_due_date(title, due),
        state=state,
    )


def check_due_date(title: str, due: Any) -> str:
    """A due date as YYYY-MM-DD (a date object from YAML is taken as it is)."""
    if isinstance(due, datetime.date) and not isinstance(due, datetime.datetime):
        return due.isoformat()
    try:
        return datetime.date.fromisoformat(str(due)).isoformat()
    except ValueError:
        raise ReviewError(
            "action %r: due date %r is not a date; give it as YYYY-MM-DD, e.g. 2026-12-31" % (title, due)
        ) from None


def plan_review(
    recorded_feedback: Sequence[Row],
    recorded_actions: Sequence[Row],
    feedback: Sequence[Feedback],
    actions: Sequence[ActionRequest],
) -> ReviewPlan:
    """The feedback not yet recorded and the actions whose fields differ (new ones complete)."""
    plan = ReviewPlan()
    known = {row["digest"] for row in recorded_feedback}
    for entry in feedback:
        if entry.digest not in known:
            known.add(entry.digest)
            plan.feedback.append(entry)
    current = {row["action_id"]: row for row in recorded_actions}
    for request in actions:
        wanted = _wanted_action(request, current.get(request.action_id))
        before = current.get(request.action_id)
        if before is None or any(before[name] != wanted[name] for name in ACTION_FIELDS):
            plan.actions.append(wanted)
            current[request.action_id] = wanted
    return plan


def _wanted_action(request: ActionRequest, before: Optional[Row]) -> Row:
    if before is None:
        missing = [name for name, value in (("owner", request.owner), ("due", request.due_date)) if value is None]
        if missing:
            raise ReviewError(
                "action %r is new and has no %s; a new action needs an owner and a due date (YYYY-MM-DD)"
                % (request.action_id, " or ".join(missing))
            )
        before = {"state": "open"}
    return {
        "action_id": request.action_id,
        "title": request.title,
        "owner": request.owner if request.owner is not None else before["owner"],
        "due_date": request.due_date if request.due_date is not None else before["due_date"],
        "state": request.state if request.state is not None else before["state"],
    }


def is_overdue(action: Mapping[str, Any], today: datetime.date) -> bool:
    """An open action whose due date has passed (due today is not yet overdue)."""
    return action["state"] == "open" and str(action["due_date"]) < today.isoformat()


def with_overdue(actions: Sequence[Row], today: datetime.date) -> List[Row]:
    return [dict(action, overdue=is_overdue(action, today)) for action in actions]


def _text(value: Any) -> Optional[str]:
    return None if value in (None, "") else str(value).strip()
