# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.health_gate (documentation in plugins/modules/health_gate.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.health import (
    VERDICTS,
    HealthGateError,
    Prometheus,
    parse_conditions,
    run_gate,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

POLICY_VERSION = "health-gate/1"
DECISIONS = {"pass": "allow", "fail": "deny", "inconclusive": "wait"}

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "prometheus_url": {"type": "str", "required": True},
    "conditions": {"type": "list", "elements": "dict", "default": []},
    "baseline": {"type": "list", "elements": "dict", "default": []},
    "interval": {"type": "float", "default": 30},
    "count": {"type": "int", "default": 1},
    "failure_limit": {"type": "int", "default": 0},
    "inconclusive_limit": {"type": "int", "default": 0},
    "no_data": {"type": "str", "default": "inconclusive", "choices": list(VERDICTS)},
    "timeout": {"type": "float", "default": 10},
    "subject": {"type": "str"},
    "policy_version": {"type": "str", "default": POLICY_VERSION},
    "fail_on": {
        "type": "list",
        "elements": "str",
        "default": ["fail", "inconclusive"],
        "choices": ["fail", "inconclusive"],
    },
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            _check_numbers(args)
            conditions = parse_conditions(args["conditions"], args["baseline"])
            outcome = run_gate(
                Prometheus(args["prometheus_url"], args["timeout"]),
                conditions,
                args["interval"],
                args["count"],
                args["failure_limit"],
                args["inconclusive_limit"],
                args["no_data"],
            )
        except HealthGateError as exc:
            return {"failed": True, "msg": str(exc)}
        decision = DECISIONS[outcome.verdict]
        digest = _digest(args, outcome.measurements)
        record = self.record_decision(args, "health_gate", decision, outcome.reasons, digest)
        result: Dict[str, Any] = {
            "changed": False,
            **record,
            "verdict": outcome.verdict,
            "recorded": bool(args["subject"]) and not self.check_mode,
            "measurements": outcome.measurements,
            "failures": outcome.failures,
            "inconclusives": outcome.inconclusives,
            "msg": "health gate %s (%s): %s" % (outcome.verdict, decision, "; ".join(outcome.reasons)),
        }
        if outcome.verdict in args["fail_on"]:
            result["failed"] = True
        return result


def _check_numbers(args: Dict[str, Any]) -> None:
    if args["count"] < 1:
        raise HealthGateError("count %r must be at least 1 measurement" % args["count"])
    if args["interval"] < 0:
        raise HealthGateError("interval %r is negative; give the seconds between measurements" % args["interval"])
    for key in ("failure_limit", "inconclusive_limit"):
        if args[key] < 0:
            raise HealthGateError("%s %r is negative; use 0 to allow none" % (key, args[key]))


def _digest(args: Dict[str, Any], measurements: List[Dict[str, Any]]) -> str:
    """What the decision read: the settings and every measured value."""
    document = {
        "settings": {
            key: args[key]
            for key in (
                "prometheus_url",
                "conditions",
                "baseline",
                "interval",
                "count",
                "failure_limit",
                "inconclusive_limit",
                "no_data",
            )
        },
        "values": [
            [entry["name"], entry["value"]] for measurement in measurements for entry in measurement["conditions"]
        ],
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()
