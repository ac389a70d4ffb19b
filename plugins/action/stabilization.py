# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.stabilization (documentation in plugins/modules/stabilization.py)."""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import Record
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_backend
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
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
            "description": {"type": "str"},
            "caused_by": {"type": "str"},
            "cmdb_ci": {"type": "str"},
            "assignment_group": {"type": "str"},
        },
    },
    "details": {"type": "dict", "default": {}},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_arguments(args)
        before = self._read_active(args)
        result = self._decide(args, before)
        if result["changed"] and not self.check_mode:
            self._audit_outcome(args, result)
        if self.diff_mode:
            header = "stabilization %s/%s" % (args["service"], args["environment"])
            result["diff"] = {
                "before": _describe(before),
                "after": _describe(result.get("period")),
                "before_header": header,
                "after_header": header,
            }
        return result

    def _audit_outcome(self, args: Dict[str, Any], result: Dict[str, Any]) -> None:
        """Put what was recorded on the audit trail: the period's start or end, a breach and its incidents."""
        period = result.get("period") or {}
        incident = result.get("incident") or {}
        itsm_incident = result.get("itsm_incident") or {}
        self.audit(
            "stabilization",
            service=args["service"],
            environment=args["environment"],
            version=period.get("version") or args.get("version"),
            outcome=result["outcome"],
            period_id=period.get("id"),
            ends_at=period.get("ends_at"),
            incident_id=incident.get("id"),
            incident_title=incident.get("title"),
            severity=incident.get("severity"),
            itsm_incident=itsm_incident.get("number"),
        )

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
            # Ending a period (completed, breached) closes the one recorded active even when the watch ran
            # past its end time; starting one or reporting status ignores lapsed periods.
            lapsed = args["state"] in ("completed", "breached")
            active = ledger.active_stabilizations(args["service"], args["environment"], include_lapsed=lapsed)
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
        version = args["version"] or (before or {}).get("version")
        correlation_id = self._correlation_id(args, before)
        warnings: List[str] = []
        details = dict(incident["details"])
        itsm_incident, itsm_error = self._open_itsm_incident(args, version, correlation_id)
        if itsm_incident is not None:
            details["itsm_incident"] = {"number": itsm_incident["number"], "sys_id": itsm_incident["sys_id"]}
        if itsm_error is not None:
            details["itsm_error"] = itsm_error
            warnings.append(
                "the ServiceNow incident could not be opened (%s); the incident is in the ledger only, "
                "open it in ServiceNow by hand or rerun once the instance answers" % itsm_error
            )
        period, opened = ledger.breach_stabilization(
            self.actor,
            int(before["id"]) if before else None,
            args["service"],
            args["environment"],
            incident["title"],
            incident["severity"],
            version,
            details,
            correlation_id=correlation_id if before else None,
            caused_by=incident.get("caused_by") or None,
        )
        result: Dict[str, Any] = {
            "changed": True,
            "outcome": "breached",
            "period": period,
            "incident": opened,
            "itsm_incident": itsm_incident,
        }
        if before is None:
            warnings.append(
                "no stabilization period of %s in %s was running; opened the incident alone"
                % (args["service"], args["environment"])
            )
        if warnings:
            result["warnings"] = warnings
        return result

    def _correlation_id(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> str:
        """One id per breached period (a period breaches once), so a retried breach finds its incident."""
        if before is not None:
            return "relops-stabilization-%d" % int(before["id"])
        return "relops-incident-%s-%s-%s" % (self.actor.run_id, args["service"], args["environment"])

    def _open_itsm_incident(
        self, args: Dict[str, Any], version: Optional[str], correlation_id: str
    ) -> Tuple[Optional[Record], Optional[str]]:
        """Open the incident on ServiceNow when that is the ITSM backend; the ledger holds it on local.

        A ServiceNow failure is returned, not raised: the breach must still be recorded and the
        rollback must still run when the instance is down.
        """
        if resolve_backend(args.get("backend"), args.get("instance"), os.environ) != "servicenow":
            return None, None
        incident = args["incident"]
        wanted = {
            "short_description": incident["title"],
            "description": incident.get("description"),
            "service": args["service"],
            "environment": args["environment"],
            "version": version,
            "severity": incident["severity"],
            "caused_by": incident.get("caused_by"),
            "cmdb_ci": incident.get("cmdb_ci"),
            "assignment_group": incident.get("assignment_group"),
            "correlation_id": correlation_id,
            "details": incident["details"],
        }
        try:
            with self.itsm_backend(args, write=True) as backend:
                opened, _created = backend.ensure_incident(wanted)
        except ITSMError as exc:
            return None, str(exc)
        return opened, None

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
            result["itsm_incident"] = None
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
