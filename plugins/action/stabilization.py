# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.stabilization (documentation in plugins/modules/stabilization.py)."""

from __future__ import annotations

import datetime
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.ledger.store import INCIDENT_SEVERITIES

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "environment": {"type": "str", "required": True},
    "version": {"type": "str"},
    "state": {"type": "str", "default": "started", "choices": ["started", "completed", "breached", "status"]},
    "period": {"type": "int", "default": 3600},
    "incident": {
        "type": "dict",
        "default": {},
        "options": {
            "title": {"type": "str"},
            "severity": {"type": "str", "default": "high", "choices": list(INCIDENT_SEVERITIES)},
            "details": {"type": "dict", "default": {}},
        },
    },
    "details": {"type": "dict", "default": {}},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_arguments(args)
        before = self._read_active(args)
        result = self._decide(args, before)
        if self.diff_mode:
            header = "stabilization %s/%s" % (args["service"], args["environment"])
            result["diff"] = {
                "before": _describe(before),
                "after": _describe(result.get("period")),
                "before_header": header,
                "after_header": header,
            }
        return result

    def _read_active(self, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The newest running period of the service in the environment, read without creating the ledger."""
        try:
            existing = self.open_task_ledger_readonly(args)
        except LedgerError:
            if self.check_mode:
                raise
            # An older schema: this task writes anyway, so upgrade now and read from the upgraded ledger.
            existing = self.open_task_ledger(args, touch=False)
        if existing is None:
            return None
        with existing as ledger:
            active = ledger.active_stabilizations(args["service"], args["environment"])
        return active[0] if active else None

    def _decide(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        state = args["state"]
        if state == "status":
            return {"changed": False, "outcome": "active" if before else "none", "period": before}
        if state == "started" and before is not None and before["version"] == args["version"]:
            return {"changed": False, "outcome": "already_active", "period": before}
        if state == "completed" and before is None:
            return {"changed": False, "outcome": "not_active", "period": None}
        if self.check_mode:
            return self._predict(args, before)
        with self.open_task_ledger(args) as ledger:
            if state == "started":
                period = ledger.start_stabilization(
                    self.actor, args["service"], args["environment"], args["version"], args["period"], args["details"]
                )
                return {"changed": True, "outcome": "started", "period": period}
            if state == "completed":
                period = ledger.complete_stabilization(int(_required(before)["id"]))
                return {"changed": True, "outcome": "completed", "period": period}
            return self._breach(ledger, args, before)

    def _breach(self, ledger: Ledger, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        incident = args["incident"]
        period, opened = ledger.breach_stabilization(
            self.actor,
            int(before["id"]) if before else None,
            args["service"],
            args["environment"],
            incident["title"],
            incident["severity"],
            args["version"] or (before or {}).get("version"),
            incident["details"],
        )
        result: Dict[str, Any] = {"changed": True, "outcome": "breached", "period": period, "incident": opened}
        if before is None:
            result["warnings"] = [
                "no stabilization period of %s in %s was running; opened the incident alone"
                % (args["service"], args["environment"])
            ]
        return result

    def _predict(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """Check mode: the period as the write would leave it."""
        now = utc_now()
        if args["state"] == "started":
            period = {
                "service": args["service"],
                "environment": args["environment"],
                "version": args["version"],
                "status": "active",
                "started_at": format_timestamp(now),
                "ends_at": format_timestamp(now + datetime.timedelta(seconds=args["period"])),
            }
            return {"changed": True, "outcome": "started", "period": period}
        status = "completed" if args["state"] == "completed" else "breached"
        ended = dict(before, status=status, ended_at=format_timestamp(now)) if before else None
        result: Dict[str, Any] = {"changed": True, "outcome": status, "period": ended}
        if status == "breached":
            result["incident"] = {
                "title": args["incident"]["title"],
                "severity": args["incident"]["severity"],
                "status": "open",
            }
        return result


def _check_arguments(args: Dict[str, Any]) -> None:
    if args["state"] == "started" and not args["version"]:
        raise LedgerError("state=started needs the version being stabilized; set version (e.g. version: 1.4.2)")
    if args["period"] < 1:
        raise LedgerError("period %r is not a positive number of seconds; use e.g. period: 3600" % args["period"])
    if args["state"] == "breached" and not args["incident"].get("title"):
        raise LedgerError("state=breached needs incident.title, saying what breached (e.g. the gate's message)")


def _required(period: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if period is None:
        raise LedgerError("no stabilization period is running")
    return period


def _describe(period: Optional[Dict[str, Any]]) -> str:
    if not period:
        return "no period running\n"
    return "%s %s until %s\n" % (period.get("version"), period.get("status"), period.get("ends_at"))
