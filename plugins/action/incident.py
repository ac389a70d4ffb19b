# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.incident (documentation in plugins/modules/incident.py)."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm import incidents
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.store import INCIDENT_SEVERITIES

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "default": "present", "choices": ["present", "resolved", "list", "imported"]},
    "id": {"type": "int"},
    "external_id": {"type": "str"},
    "source": {"type": "str", "default": "manual"},
    "service": {"type": "str"},
    "environment": {"type": "str", "default": "production"},
    "ci": {"type": "str"},
    "title": {"type": "str"},
    "severity": {"type": "str", "default": "moderate", "choices": list(INCIDENT_SEVERITIES)},
    "opened_at": {"type": "str"},
    "resolved_at": {"type": "str"},
    "component": {"type": "str"},
    "root_cause": {"type": "str"},
    "deployment_ids": {"type": "list", "elements": "int", "default": []},
    "details": {"type": "dict", "default": {}},
    "since": {"type": "str"},
    "status": {"type": "str", "choices": ["open", "resolved"]},
    "query": {"type": "str"},
    "unassigned_service": {"type": "str"},
    "limit": {"type": "int", "default": 100},
    "itsm": {"type": "bool", "default": False},
    "correlation_id": {"type": "str"},
    "caused_by": {"type": "str"},
    "version": {"type": "str"},
    "close_code": {"type": "str"},
    "close_notes": {"type": "str"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC
    # With itsm=true: the backend the incident was opened or resolved on, for the result.
    _backend_name = ""

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        for name in ("opened_at", "resolved_at", "since"):
            if args[name]:
                args[name] = _timestamp(name, args[name])
        state = args["state"]
        if state == "list":
            return self._list(args)
        if state == "imported":
            return self._import(args)
        if state == "resolved":
            return self._resolve(args)
        return self._add(args)

    def _list(self, args: Dict[str, Any]) -> Dict[str, Any]:
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return {"changed": False, "incidents": [], "statistics": []}
        with ledger:
            statistics = ledger.component_stats(args["environment"], args["since"] or "0000", "9999")
            incidents = ledger.list_incident_records(
                environment=args["environment"],
                service=args["service"],
                status=args["status"],
                since=args["since"],
                limit=args["limit"],
            )
        return {"changed": False, "incidents": incidents, "statistics": [_numbers(row) for row in statistics]}

    def _add(self, args: Dict[str, Any]) -> Dict[str, Any]:
        missing = [name for name in ("service", "title") if not args[name]]
        if missing:
            raise LedgerError("state=present needs %s; give the affected service and a title" % " and ".join(missing))
        if args["itsm"] and not args["correlation_id"]:
            raise LedgerError(
                "itsm=true needs correlation_id (e.g. relops-release-<release id>), so a rerun finds the incident "
                "in the ITSM instead of opening another"
            )
        if not (args["external_id"] or args["opened_at"] or args["correlation_id"]):
            raise LedgerError(
                "give external_id or opened_at, so a rerun finds this incident instead of opening another"
            )
        incident = _incident(args)
        if args["itsm"]:
            return self._open_in_itsm(args, incident)
        existing = self._existing(args, incident["external_id"])
        if existing is not None or self.check_mode:
            return {"changed": existing is None, "incident": existing or incident, **self._diff(None, existing)}
        with self.open_task_ledger(args) as ledger:
            self._check_deployments(ledger, args["deployment_ids"])
            row, created = ledger.record_incident(self.actor, incident)
        self.audit("incident", action="opened", incident=row["id"], service=row["service"], title=row["title"])
        return {"changed": created, "incident": row, **self._diff(None, row)}

    def _resolve(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["id"] is None and not args["external_id"] and not args["correlation_id"]:
            raise LedgerError(
                "state=resolved needs id, correlation_id or external_id (with source) to find the incident"
            )
        existing = self._existing(args, args["external_id"])
        if existing is None:
            raise LedgerError(
                "incident %s is not in the ledger; list incidents to find its id"
                % (
                    args["id"]
                    if args["id"] is not None
                    else args["correlation_id"] or "%s/%s" % (args["source"], args["external_id"])
                )
            )
        resolved_at = args["resolved_at"] or format_timestamp(utc_now())
        if args["itsm"]:
            return self._resolve_in_itsm(args, existing, resolved_at)
        if existing["status"] == "resolved":
            return {"changed": False, "incident": existing}
        if self.check_mode:
            after = {**existing, "status": "resolved", "resolved_at": resolved_at}
            return {"changed": True, "incident": after, **self._diff(existing, after)}
        with self.open_task_ledger(args) as ledger:
            row = ledger.resolve_incident(int(existing["id"]), resolved_at, args["root_cause"], args["component"])
        self.audit("incident", action="resolved", incident=row["id"], root_cause=row.get("root_cause"))
        return {"changed": True, "incident": row, **self._diff(existing, row)}

    def _open_in_itsm(self, args: Dict[str, Any], incident: Dict[str, Any]) -> Dict[str, Any]:
        """Open the incident in the ITSM backend the task uses, and its ledger row (plugin_utils/itsm/incidents.py)."""
        # Without an external id, the ITSM's number becomes it (the correlation id when the ITSM is down).
        incident["external_id"] = args["external_id"]
        if self.check_mode:
            existing = self._existing(args, None)
            return {
                "changed": existing is None,
                "incident": existing or incident,
                "itsm_incident": None,
                **self._diff(None, None if existing else incident),
            }
        with self.itsm_backend(args, write=True) as backend, self._ledger_of(args, backend) as ledger:
            outcome = incidents.open_incident(backend, ledger, self.actor, incident)
            self._backend_name = backend.name
        row = outcome.row
        if outcome.changed:
            self.audit(
                "incident",
                action="opened",
                incident=row["id"],
                service=row["service"],
                title=row["title"],
                itsm_incident=(outcome.itsm or {}).get("number"),
            )
        return self._itsm_result(outcome, None)

    def _resolve_in_itsm(self, args: Dict[str, Any], existing: Dict[str, Any], resolved_at: str) -> Dict[str, Any]:
        resolution = {name: args[name] for name in ("close_code", "close_notes", "root_cause", "component")}
        if self.check_mode:
            after = {**existing, "status": "resolved", "resolved_at": existing.get("resolved_at") or resolved_at}
            return {
                "changed": existing["status"] != "resolved",
                "incident": after,
                "itsm_incident": None,
                **self._diff(existing, after),
            }
        with self.itsm_backend(args, write=True) as backend, self._ledger_of(args, backend) as ledger:
            outcome = incidents.resolve_incident(backend, ledger, existing, resolved_at, resolution)
            self._backend_name = backend.name
        if outcome.changed:
            self.audit(
                "incident",
                action="resolved",
                incident=outcome.row["id"],
                itsm_incident=(outcome.itsm or {}).get("number"),
                close_code=args["close_code"],
            )
        return self._itsm_result(outcome, existing)

    @contextlib.contextmanager
    def _ledger_of(self, args: Dict[str, Any], backend: ItsmBackend) -> Iterator[Ledger]:
        """The local backend's own ledger (its incidents are the ledger's), else the task's ledger."""
        if isinstance(backend, LocalBackend) and backend.ledger is not None:
            yield backend.ledger
            return
        with self.open_task_ledger(args) as ledger:
            yield ledger

    def _itsm_result(self, outcome: incidents.IncidentOutcome, before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "changed": outcome.changed,
            "incident": outcome.row,
            "itsm_incident": outcome.itsm,
            "itsm_backend": self._backend_name,
            **self._diff(before, outcome.row),
        }
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        return result

    def _import(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Copy incidents from the ITSM backend (ServiceNow's incident table) into the metrics ledger.

        Every incident is read and converted before anything is written, and the writes go in one
        transaction, so an incident that cannot be imported leaves the ledger as it was.
        """
        with self.itsm_backend(args, write=False) as backend:
            if isinstance(backend, LocalBackend):
                return {
                    "changed": False,
                    "imported": [],
                    "msg": "the local ITSM backend keeps its incidents in the ledger already; nothing to import",
                }
            filters = {"business_service": args["service"]} if args["service"] else {}
            records = backend.list_incidents(filters, args["query"], args["limit"])
        ledger = self.open_task_ledger_readonly(args) if self.check_mode else self.open_task_ledger(args)
        if ledger is None:
            # Check mode before the ledger exists: every incident would be added.
            for record in records:
                _from_servicenow(args, record, [])
            return {
                "changed": bool(records),
                "imported": [{"number": str(r["number"]), "outcome": "added"} for r in records],
            }
        with ledger:
            imported, added, resolved = self._plan_import(ledger, args, records)
            if not self.check_mode and (added or resolved):
                ledger.sync_incidents(self.actor, added, resolved)
        changed = any(item["outcome"] != "unchanged" for item in imported)
        return {"changed": changed, "imported": imported}

    def _plan_import(
        self, ledger: Ledger, args: Dict[str, Any], records: List[Record]
    ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[Tuple[int, str]]]:
        """Each incident's outcome, the ledger rows to add and the (id, resolved_at) to resolve."""
        imported: List[Dict[str, Any]] = []
        added: List[Dict[str, Any]] = []
        resolved: List[Tuple[int, str]] = []
        for record in records:
            number = str(record["number"])
            existing = ledger.get_incident(source="servicenow", external_id=number)
            outcome = _outcome(existing, record)
            if outcome == "added":
                links = ledger.deployment_ids_for_change(str(record["caused_by"])) if record.get("caused_by") else []
                added.append(_from_servicenow(args, record, links))
            elif outcome == "resolved" and existing is not None:
                resolved.append((int(existing["id"]), _timestamp("resolved_at", str(record["resolved_at"]))))
            imported.append({"number": number, "outcome": outcome})
        return imported, added, resolved

    def _existing(self, args: Dict[str, Any], external_id: Optional[str]) -> Optional[Dict[str, Any]]:
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return None
        with ledger:
            if args["id"] is not None:
                return ledger.get_incident(incident_id=args["id"])
            if args["correlation_id"] and not external_id:
                found = ledger.find_incidents(limit=1, correlation_id=args["correlation_id"])
                return found[0] if found else None
            return ledger.get_incident(source=args["source"], external_id=external_id)

    def _check_deployments(self, ledger: Ledger, deployment_ids: List[int]) -> None:
        for deployment_id in deployment_ids:
            if ledger.get_deployment(deployment_id) is None:
                raise LedgerError("deployment %d is not in the ledger; link only recorded deployments" % deployment_id)

    def _diff(self, before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if not self.diff_mode:
            return {}
        return {"diff": {"before": _describe(before), "after": _describe(after)}}


def _incident(args: Dict[str, Any]) -> Dict[str, Any]:
    key = (
        args["external_id"]
        or args["correlation_id"]
        or hashlib.sha256(
            "\n".join((args["service"], args["environment"], args["opened_at"], args["title"])).encode()
        ).hexdigest()[:16]
    )
    return {
        "service": args["service"],
        "environment": args["environment"],
        "ci": args["ci"] or args["service"],
        "title": args["title"],
        "severity": args["severity"],
        "status": "resolved" if args["resolved_at"] else "open",
        "source": args["source"],
        "external_id": key,
        "opened_at": args["opened_at"] or format_timestamp(utc_now()),
        "resolved_at": args["resolved_at"],
        "component": args["component"],
        "root_cause": args["root_cause"],
        "deployment_ids": args["deployment_ids"],
        "details": args["details"],
        "correlation_id": args["correlation_id"],
        "caused_by": args["caused_by"],
        "version": args["version"],
    }


def _from_servicenow(args: Dict[str, Any], record: Record, links: List[int]) -> Dict[str, Any]:
    ci = str(record.get("cmdb_ci") or "") or None
    service = str(record.get("business_service") or "") or args["service"] or ci or args["unassigned_service"]
    if not service:
        raise LedgerError(
            "incident %s names neither business_service nor cmdb_ci; set unassigned_service (e.g. unassigned) "
            "to import such incidents under that service, or narrow query; nothing was imported" % record["number"]
        )
    resolved = str(record.get("resolved_at") or "")
    return {
        "service": service,
        "environment": args["environment"],
        "ci": ci or service,
        "title": str(record.get("short_description") or record["number"]),
        "severity": record.get("severity") if record.get("severity") in INCIDENT_SEVERITIES else "moderate",
        "source": "servicenow",
        "external_id": str(record["number"]),
        "opened_at": _timestamp("opened_at", str(record["opened_at"])),
        "resolved_at": _timestamp("resolved_at", resolved) if resolved else None,
        "component": ci,
        "root_cause": str(record.get("close_code") or "") or None,
        "deployment_ids": links,
        "details": {"sys_id": record.get("sys_id"), "caused_by": record.get("caused_by") or None},
        "caused_by": record.get("caused_by") or None,
    }


def _numbers(row: Dict[str, Any]) -> Dict[str, Any]:
    """PostgreSQL returns sums as Decimal; the result must be plain JSON."""
    return {key: float(value) if key == "resolution_seconds" else value for key, value in row.items()}


def _outcome(existing: Optional[Dict[str, Any]], record: Record) -> str:
    if existing is None:
        return "added"
    if existing["status"] != "resolved" and record.get("resolved_at"):
        return "resolved"
    return "unchanged"


def _timestamp(name: str, text: str) -> str:
    try:
        return format_timestamp(parse_timestamp(text))
    except ValueError as exc:
        raise LedgerError("%s: %s" % (name, exc)) from None


def _describe(incident: Optional[Dict[str, Any]]) -> str:
    if not incident:
        return ""
    keys = ("service", "environment", "ci", "title", "severity", "status", "opened_at", "resolved_at", "root_cause")
    return "".join("%s: %s\n" % (key, incident.get(key)) for key in keys)
