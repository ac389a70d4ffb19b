# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.deployment_record (documentation in plugins/modules/deployment_record.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.ledger.store import DEPLOYMENT_STATUSES

# How far back a rerun looks for the deployment it continues.
LOOKBACK = 50

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "version": {"type": "str", "required": True},
    "environment": {"type": "str", "required": True},
    "status": {"type": "str", "required": True, "choices": list(DEPLOYMENT_STATUSES)},
    "strategy": {"type": "str"},
    "artifact_digest": {"type": "str"},
    "change": {"type": "str"},
    "details": {"type": "dict", "default": {}},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if self.check_mode:
            ledger = self.open_task_ledger_readonly(args)
            rows: List[Dict[str, Any]] = []
            if ledger is not None:
                with ledger:
                    rows = _rows(ledger, args)
            current = _current(rows, args)
            before_status = current["status"] if current else None
            deployment = dict(current) if current else None
            changed = _needs_change(current, args["status"])
            if changed and deployment is not None:
                deployment["status"] = args["status"]
        else:
            with self.open_task_ledger(args) as ledger:
                current = _current(_rows(ledger, args), args)
                before_status = current["status"] if current else None
                changed = _needs_change(current, args["status"])
                if changed:
                    _write(ledger, self, current, args)
                    current = _current(_rows(ledger, args), args)
                deployment = dict(current) if current else None
        result: Dict[str, Any] = {
            "changed": changed,
            "deployment": deployment,
            "deployment_id": deployment["id"] if deployment and "id" in deployment else None,
        }
        if self.diff_mode:
            header = "%s %s in %s" % (args["service"], args["version"], args["environment"])
            result["diff"] = {
                "before": "status: %s\n" % (before_status or "(not recorded)"),
                "after": "status: %s\n" % args["status"],
                "before_header": header,
                "after_header": header,
            }
        return result


def _rows(ledger: Ledger, args: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = ledger.list_deployments(args["service"], args["environment"], limit=LOOKBACK)
    return [dict(row) for row in rows if row["version"] == args["version"]]


def _current(rows: List[Dict[str, Any]], args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The deployment this task continues: the newest one of this version (and change, when given)."""
    for row in rows:
        if args.get("change") is None or row["change_id"] == args["change"]:
            return row
    return None


def _needs_change(current: Optional[Dict[str, Any]], status: str) -> bool:
    # A finished deployment is history: in_progress after it records the next attempt.
    return current is None or current["status"] != status


def _write(ledger: Ledger, action: ActionModule, current: Optional[Dict[str, Any]], args: Dict[str, Any]) -> None:
    if current is not None and current["status"] == "in_progress" and args["status"] != "in_progress":
        ledger.finish_deployment(int(current["id"]), args["status"])
        return
    ledger.record_deployment(
        action.actor,
        args["service"],
        args["version"],
        args["environment"],
        args["status"],
        strategy=args.get("strategy"),
        artifact_digest=args.get("artifact_digest"),
        change_id=args.get("change"),
        details=args["details"],
    )
