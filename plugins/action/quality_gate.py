# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.quality_gate (documentation in plugins/modules/quality_gate.py)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.quality import (
    POLICY_VERSION,
    RELEASE_CLASSES,
    Coverage,
    inputs_digest,
    judge,
    merge_cobertura,
    merge_junit,
    thresholds_for,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "subject": {"type": "str", "required": True},
    "release_class": {"type": "str", "required": True, "choices": list(RELEASE_CLASSES)},
    "junit": {"type": "list", "elements": "path", "required": True},
    "coverage": {"type": "list", "elements": "path", "default": []},
    "thresholds": {"type": "dict", "default": {}},
    "peer_reviewed_by": {"type": "str"},
    "policy_version": {"type": "str", "default": POLICY_VERSION},
    "fail_on_deny": {"type": "bool", "default": True},
    "release_id": {"type": "str"},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            thresholds = thresholds_for(args["release_class"], args["thresholds"])
        except ValueError as exc:
            return {"failed": True, "msg": "%s; see docs/validation.md for the thresholds" % exc}
        tests = merge_junit(self.local_paths(args["junit"]))
        coverage: Optional[Coverage] = merge_cobertura(self.local_paths(args["coverage"])) if args["coverage"] else None
        reasons = judge(
            tests,
            coverage,
            thresholds,
            args["release_class"],
            args["peer_reviewed_by"],
            self.actor.awx_user_name or self.actor.sudo_user or self.actor.user,
        )
        decision = "deny" if reasons else "allow"
        settings = {
            "release_class": args["release_class"],
            "thresholds": thresholds,
            "peer_reviewed_by": args["peer_reviewed_by"],
        }
        digest = inputs_digest(tests.files + (coverage.files if coverage else []), settings)
        shown_reasons = reasons or [_allow_reason(args["release_class"], tests.totals().tests, coverage)]
        record = self.record_decision(args, "quality_gate", decision, shown_reasons, digest)
        result: Dict[str, Any] = {
            "changed": False,
            **record,
            "allowed": decision == "allow",
            "recorded": not self.check_mode,
            "release_class": args["release_class"],
            "thresholds": thresholds,
            "tests": {
                "total": tests.totals().as_dict(),
                "suites": {name: totals.as_dict() for name, totals in sorted(tests.suites.items())},
                "failed_cases": tests.failed_cases,
            },
            "coverage": _coverage_summary(coverage),
        }
        if args.get("release_id") and not self.check_mode:
            with self.open_task_ledger(args) as ledger:
                ReleaseRecordStore(ledger).record_stage(
                    self.actor,
                    args["release_id"],
                    "quality",
                    {key: record[key] for key in ("decision", "reasons", "inputs_digest", "decided_at")},
                )
            result["release_id"] = args["release_id"]
        if decision == "deny" and args["fail_on_deny"]:
            result["failed"] = True
        result["msg"] = "quality gate %s for %s (%s release): %s" % (
            decision,
            args["subject"],
            args["release_class"],
            "; ".join(shown_reasons),
        )
        return result


def _allow_reason(release_class: str, tests: int, coverage: Optional[Coverage]) -> str:
    covered = "" if coverage is None or coverage.percent is None else ", line coverage %.2f%%" % coverage.percent
    return "%d test(s) passed the %s thresholds%s" % (tests, release_class, covered)


def _coverage_summary(coverage: Optional[Coverage]) -> Optional[Dict[str, Any]]:
    if coverage is None:
        return None
    return {
        "line_percent": coverage.percent,
        "lines_covered": coverage.lines_covered,
        "lines_valid": coverage.lines_valid,
        "files": coverage.files,
    }
