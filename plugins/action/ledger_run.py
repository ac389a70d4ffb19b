# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.ledger_run (documentation in plugins/modules/ledger_run.py)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "default": "started", "choices": ["started", "finished"]},
    "status": {"type": "str", "choices": ["successful", "failed", "aborted"]},
    "summary": {"type": "dict", "default": {}},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["state"] == "finished" and not args.get("status"):
            raise LedgerError("state=finished needs a status; add status: successful, failed or aborted")
        if args["state"] == "started" and args.get("status"):
            raise LedgerError(
                "status %r only goes with state=finished; drop it or set state: finished" % args["status"]
            )
        if self.check_mode:
            before = self._read_run(args)
            after: Dict[str, Any] = dict(before or {"run_id": self.actor.run_id, "actor": self.actor.as_dict()})
            changed = _differs(before, args)
            if args["state"] == "finished" or before is None:
                after["status"] = args["status"] or "running"
            if args["state"] == "finished":
                after["summary"] = args["summary"]
        else:
            with self.open_task_ledger(args, touch=False) as ledger:
                before = ledger.get_run(self.actor.run_id)
                changed = _differs(before, args)
                self.touch_run(ledger)
                if args["state"] == "finished" and changed:
                    after = ledger.finish_run(self.actor, args["status"], args["summary"])
                else:
                    after = ledger.get_run(self.actor.run_id) or {}
        result: Dict[str, Any] = {"changed": changed, "run": after}
        if self.diff_mode:
            result["diff"] = {
                "before": "status: %s\n" % (before["status"] if before else "(not recorded)"),
                "after": "status: %s\n" % after.get("status"),
                "before_header": "run %s" % self.actor.run_id,
                "after_header": "run %s" % self.actor.run_id,
            }
        return result

    def _read_run(self, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return None
        with ledger:
            return ledger.get_run(self.actor.run_id)


def _differs(before: Optional[Dict[str, Any]], args: Dict[str, Any]) -> bool:
    """Whether recording this state would change the run's row."""
    if before is None:
        return True
    if args["state"] == "started":
        return False
    return bool(before["status"] != args["status"] or (before.get("summary") or {}) != args["summary"])
