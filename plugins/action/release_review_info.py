# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_review_info (documentation in plugins/modules/release_review_info.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.review import (
    ACTION_STATES,
    ReviewError,
    ReviewStore,
    with_overdue,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "release_id": {"type": "str"},
    "state": {"type": "str", "choices": [*ACTION_STATES, "all"], "default": "open"},
    "overdue": {"type": "bool", "default": False},
    "environment": {"type": "str"},
    "service": {"type": "str"},
    "owner": {"type": "str"},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        today = utc_now().date()
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            if args.get("release_id"):
                raise ReviewError("release %s: there is no ledger yet" % args["release_id"])
            return {"changed": False, "actions": [], "overdue": []}
        with ledger:
            store = ReviewStore(ledger)
            if args.get("release_id"):
                review = store.review(args["release_id"])
                if review is None:
                    raise ReviewError(
                        "release %s has no record in the ledger; list releases with relops.release.release_record_info"
                        % args["release_id"]
                    )
                actions = with_overdue(review["actions"], today)
                feedback = [{k: entry[k] for k in ("author", "text", "recorded_at")} for entry in review["feedback"]]
                return {
                    "changed": False,
                    "release_id": args["release_id"],
                    "feedback": feedback,
                    "actions": actions,
                    "overdue": [action for action in actions if action["overdue"]],
                }
            # Overdue is open and due before today, whatever state was asked for.
            state = "open" if args["overdue"] else (None if args["state"] == "all" else args["state"])
            rows = store.actions(
                state=state,
                environment=args.get("environment"),
                service=args.get("service"),
                owner=args.get("owner"),
                due_before=today.isoformat() if args["overdue"] else None,
            )
        actions = with_overdue(rows, today)
        return {"changed": False, "actions": actions, "overdue": [action for action in actions if action["overdue"]]}
