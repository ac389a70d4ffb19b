# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.canary_analysis (documentation in plugins/modules/canary_analysis.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.canary_analysis import (
    FAILED,
    INCONCLUSIVE,
    SUCCESSFUL,
    AnalysisError,
    Measurer,
    parse_metrics,
    parse_probe,
    run_analysis,
)
from ansible_collections.relops.release.plugins.plugin_utils.health import VERDICTS, HealthGateError, Prometheus
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

POLICY_VERSION = "canary-analysis/1"
DECISIONS = {SUCCESSFUL: "allow", FAILED: "deny", INCONCLUSIVE: "wait"}

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "metrics": {"type": "list", "elements": "dict", "required": True},
    "interval": {"type": "float", "default": 30},
    "count": {"type": "int", "default": 1},
    "failure_limit": {"type": "int", "default": 0},
    "inconclusive_limit": {"type": "int", "default": 0},
    "no_data": {"type": "str", "default": "inconclusive", "choices": list(VERDICTS)},
    "prometheus_url": {"type": "str"},
    "timeout": {"type": "float", "default": 10},
    "probe": {"type": "dict"},
    "label": {"type": "str"},
    "subject": {"type": "str"},
    "policy_version": {"type": "str", "default": POLICY_VERSION},
    "fail_on": {
        "type": "list",
        "elements": "str",
        "default": [FAILED, INCONCLUSIVE],
        "choices": [FAILED, INCONCLUSIVE],
    },
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            _check_numbers(args)
            metrics = parse_metrics(
                args["metrics"],
                args["no_data"],
                args["failure_limit"],
                args["inconclusive_limit"],
                has_prometheus=bool(args["prometheus_url"]),
            )
            probe = parse_probe(args["probe"], metrics)
            prometheus = Prometheus(args["prometheus_url"], args["timeout"]) if args["prometheus_url"] else None
            outcome = run_analysis(metrics, Measurer(prometheus, probe).measure, args["interval"], args["count"])
        except (AnalysisError, HealthGateError) as exc:
            return {"failed": True, "msg": str(exc)}
        decision = DECISIONS[outcome.verdict]
        record = self.record_decision(
            args, "canary_analysis", decision, outcome.reasons, _digest(args, outcome.metrics)
        )
        self.audit(
            "canary_analysis",
            label=args["label"],
            subject=args["subject"],
            verdict=outcome.verdict,
            rounds=outcome.rounds,
            reasons=outcome.reasons,
            metrics=outcome.metrics,
        )
        result: Dict[str, Any] = {
            "changed": False,
            **record,
            "verdict": outcome.verdict,
            "label": args["label"],
            "rounds": outcome.rounds,
            "metrics": outcome.metrics,
            "recorded": bool(args["subject"]) and not self.check_mode,
            "msg": "canary analysis %s%s: %s"
            % (outcome.verdict, " (%s)" % args["label"] if args["label"] else "", "; ".join(outcome.reasons)),
        }
        if outcome.verdict in args["fail_on"]:
            result["failed"] = True
        return result


def _check_numbers(args: Dict[str, Any]) -> None:
    if args["count"] < 1:
        raise AnalysisError("count %r must be at least 1 measurement" % args["count"])
    if args["interval"] < 0:
        raise AnalysisError("interval %r is negative; give the seconds between measurements" % args["interval"])
    for key in ("failure_limit", "inconclusive_limit"):
        if args[key] < 0:
            raise AnalysisError("%s %r is negative; use 0 to allow none" % (key, args[key]))


def _digest(args: Dict[str, Any], metrics: List[Dict[str, Any]]) -> str:
    """What the decision read: the settings and every measured value."""
    settings = ("metrics", "interval", "count", "failure_limit", "inconclusive_limit", "no_data", "prometheus_url")
    document = {
        "settings": {key: args[key] for key in settings},
        "probe": args["probe"],
        "values": [[metric["name"], entry["value"]] for metric in metrics for entry in metric["measurements"]],
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()
