# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.readiness_check (documentation in plugins/modules/readiness_check.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.governance.readiness import READINESS_OPTIONS, review
from ansible_collections.relops.release.plugins.plugin_utils.governance.times import optional_moment
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "version": {"type": "str", "required": True},
    "environment": {"type": "str", "default": "production"},
    "planned_start": {"type": "str"},
    "planned_end": {"type": "str"},
    **READINESS_OPTIONS,
    "lower_environments": {"type": "list", "elements": "str"},
    "policy": {"type": "path"},
    "fail_on_failure": {"type": "bool", "default": True},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            start = optional_moment(args.get("planned_start"), "planned_start")
            end = optional_moment(args.get("planned_end"), "planned_end")
        except ValueError as exc:
            raise LedgerError(str(exc)) from None
        if (start is None) != (end is None) or (start and end and end <= start):
            raise LedgerError("give planned_start and planned_end together, with the end after the start")
        window = (start, end) if start and end else None
        args = self.with_local_paths(args, ("manifest", "roster")) or args
        lower = args.get("lower_environments")
        if lower is None:
            lower = load_policy(self.optional_local_path(args.get("policy"))).gate["lower_environments"]
        existing = self.open_task_ledger_readonly(args)
        try:
            checklist = review(args, existing, window, lower)
        finally:
            if existing is not None:
                existing.close()
        failed = [item["item"] for item in checklist if not item["passed"]]
        result: Dict[str, Any] = {
            "changed": False,
            "passed": not failed,
            "checklist": checklist,
            "failed_items": failed,
            "msg": "readiness of %s %s for %s: %s"
            % (
                args["service"],
                args["version"],
                args["environment"],
                "passed" if not failed else "failed (%s)" % ", ".join(failed),
            ),
        }
        self.audit("readiness", service=args["service"], version=args["version"], passed=not failed, failed=failed)
        if failed and args["fail_on_failure"]:
            result["failed"] = True
        return result
