# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_review (documentation in plugins/modules/release_review.py)."""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.review import (
    ACTION_STATES,
    ReviewError,
    ReviewPlan,
    ReviewStore,
    action_request,
    feedback_entry,
    with_overdue,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "release_id": {"type": "str", "required": True},
    "feedback": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {"author": {"type": "str", "required": True}, "text": {"type": "str", "required": True}},
    },
    "actions": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "id": {"type": "str"},
            "title": {"type": "str", "required": True},
            "owner": {"type": "str"},
            "due": {"type": "str"},
            "state": {"type": "str", "choices": list(ACTION_STATES)},
        },
    },
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        release_id = args["release_id"]
        feedback = [feedback_entry(entry) for entry in args["feedback"]]
        actions = [action_request(entry) for entry in args["actions"]]
        _refuse_repeated_ids([request.action_id for request in actions])
        if self.check_mode:
            ledger = self.open_task_ledger_readonly(args)
            if ledger is None:
                raise ReviewError("release %s: there is no ledger yet; record the release first" % release_id)
            with ledger:
                store = ReviewStore(ledger)
                before = store.require_review(release_id)
                plan = store.plan(release_id, feedback, actions)
            return self._result(release_id, before, _planned(before, plan), plan)
        with self.open_task_ledger(args) as ledger:
            store = ReviewStore(ledger)
            before = store.require_review(release_id)
            plan = store.record(self.actor, release_id, feedback, actions)
            after = store.require_review(release_id)
        if plan.changed:
            self.audit(
                "release_review",
                release_id=release_id,
                feedback_added=len(plan.feedback),
                actions=[action["action_id"] for action in plan.actions],
            )
        return self._result(release_id, before, after, plan)

    def _result(self, release_id: str, before: Any, after: Any, plan: ReviewPlan) -> Dict[str, Any]:
        today = utc_now().date()
        result: Dict[str, Any] = {
            "changed": plan.changed,
            "release_id": release_id,
            "feedback": [_shown_feedback(entry) for entry in after["feedback"]],
            "actions": with_overdue(after["actions"], today),
            "feedback_added": len(plan.feedback),
            "actions_changed": [action["action_id"] for action in plan.actions],
        }
        result["overdue"] = [action["action_id"] for action in result["actions"] if action["overdue"]]
        if self.diff_mode:
            result["diff"] = {"before": _diffable(before), "after": _diffable(after)}
        return result


def _refuse_repeated_ids(action_ids: List[str]) -> None:
    repeated = sorted({action_id for action_id in action_ids if action_ids.count(action_id) > 1})
    if repeated:
        raise ReviewError(
            "actions %s are given more than once; give each action once (an action's id defaults to its title)"
            % ", ".join(repeated)
        )


def _planned(before: Dict[str, Any], plan: ReviewPlan) -> Dict[str, Any]:
    """The review as the write would leave it (check mode)."""
    actions = {action["action_id"]: action for action in before["actions"]}
    for action in plan.actions:
        actions[action["action_id"]] = dict(actions.get(action["action_id"], {}), **action)
    added = [{"author": entry.author, "text": entry.text, "recorded_at": None} for entry in plan.feedback]
    return {
        "release_id": before["release_id"],
        "feedback": before["feedback"] + added,
        "actions": sorted(actions.values(), key=lambda a: (a["due_date"], a["action_id"])),
    }


def _shown_feedback(entry: Dict[str, Any]) -> Dict[str, Any]:
    return {key: entry.get(key) for key in ("author", "text", "recorded_at")}


def _diffable(review: Dict[str, Any]) -> Dict[str, Any]:
    """What a reviewer compares: who said what, and each action's fields (times left out)."""
    return {
        "feedback": ["%s: %s" % (entry["author"], entry["text"]) for entry in review["feedback"]],
        "actions": {
            action["action_id"]: {
                "title": action["title"],
                "owner": action["owner"],
                "due": action["due_date"],
                "state": action["state"],
            }
            for action in review["actions"]
        },
    }
