# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``local`` ITSM backend: change requests and the CMDB kept in the release ledger.

It applies the same state machine as ServiceNow's change model (see model.py),
requests an approval when a change enters Authorize, moves an approved change
on to Scheduled and a rejected one back to New, as the instance does.
Approvers act through change_request's ``approval`` option, recorded with the
controller user (or AWX user) as approver.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.incident_store import incident_number
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from . import model
from .backend import ItsmBackend, Record, as_text
from .errors import ITSMError

# Incident fields the ledger keeps in the incident's details (it has columns for the rest).
INCIDENT_EXTRAS = ("description", "cmdb_ci", "assignment_group", "caller")
# The ledger records an incident as open (shown as state new) or resolved; no local incident is in another state.
LEDGER_STATUS = {"new": "open", "resolved": "resolved"}


class LocalBackend(ItsmBackend):
    """ITSM records in the ledger; ``ledger`` is None when check mode finds no ledger yet."""

    name = "local"

    def __init__(self, ledger: Optional[Ledger], actor: Actor) -> None:
        self.ledger = ledger
        self.actor = actor

    def _writable(self) -> Ledger:
        if self.ledger is None:
            raise ITSMError("the ledger does not exist yet; run without check mode once to create it")
        return self.ledger

    # Changes

    def get_change(
        self, number: Optional[str] = None, sys_id: Optional[str] = None, correlation_id: Optional[str] = None
    ) -> Optional[Record]:
        if self.ledger is None:
            return None
        row = self.ledger.itsm_get_change(sys_id=sys_id, number=number, correlation_id=correlation_id)
        return _change(row) if row else None

    def list_changes(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        if query:
            raise ITSMError(
                "encoded queries need backend servicenow; "
                "on the local backend filter by number, state or correlation_id"
            )
        if self.ledger is None:
            return []
        columns = {k: v for k, v in filters.items() if k in ("number", "correlation_id", "type", "state")}
        return [_change(row) for row in self.ledger.itsm_list_changes(limit=limit, **columns)]

    def create_change(self, change_type: str, fields: Mapping[str, str], template: Optional[str]) -> Record:
        values = dict(fields)
        correlation_id = values.pop("correlation_id", None) or None
        if change_type == "standard" and template:
            values.setdefault("std_change_producer_version", template)
        row, _created = self._writable().itsm_create_change(
            self.actor,
            {
                "sys_id": uuid.uuid4().hex,
                "type": change_type,
                "state": "new",
                "approval": "approved" if change_type == "standard" else "not requested",
                "correlation_id": correlation_id,
                "fields": values,
                "cis": [],
            },
        )
        return _change(row)

    def standard_template(self, change: Record) -> Optional[Record]:
        """Local standard changes keep the template's name in std_change_producer_version (one version each)."""
        name = str(change.get("std_change_producer_version") or "")
        if not name:
            return None
        return {
            "producer": name,
            "producer_sys_id": None,
            "version": name,
            "version_name": name,
            "version_number": None,
            "current": True,
            "active": True,
            "retired": False,
        }

    def write_change(self, change: Record, fields: Mapping[str, str]) -> Record:
        merged = dict(change["_fields"], **fields)
        row = self._writable().itsm_update_change(
            self.actor, change["sys_id"], change["state"], {"fields": merged}, "updated", {"fields": dict(fields)}
        )
        return _change(row)

    def change_cis(self, change: Record) -> List[str]:
        return list(change.get("_cis") or [])

    def add_change_cis(self, change: Record, sys_ids: Sequence[str]) -> None:
        cis = list(change.get("_cis") or [])
        cis.extend(s for s in sys_ids if s not in cis)
        self._writable().itsm_update_change(
            self.actor, change["sys_id"], change["state"], {"cis": cis}, "cis_added", {"cis": list(sys_ids)}
        )

    def ci_changes(self, sys_id: str, limit: int) -> List[Record]:
        if self.ledger is None:
            return []
        return [_change(row) for row in self.ledger.itsm_changes_for_ci(sys_id, limit)]

    def has_work_note(self, change: Record, note: str) -> bool:
        if self.ledger is None:
            return False
        return any(
            e["event"] == "work_note" and e["detail"].get("note") == note
            for e in self.ledger.itsm_change_events(change["sys_id"])
        )

    def add_work_note(self, change: Record, note: str) -> None:
        self._writable().itsm_update_change(
            self.actor, change["sys_id"], change["state"], {}, "work_note", {"note": note}
        )

    def next_states(self, change: Record) -> List[str]:
        return model.allowed_next_states(change["type"], change["state"], change["approval"])

    def set_state(self, change: Record, target: str, fields: Mapping[str, str]) -> Record:
        allowed = self.next_states(change)
        if target not in allowed:
            raise ITSMError(
                "change %s cannot move from %s to %s; allowed next states are %s"
                % (change["number"], change["state"], target, ", ".join(allowed) or "none")
            )
        if target == "closed" and not (fields.get("close_code") or change.get("close_code")):
            raise ITSMError(
                "closing change %s needs close_code (one of %s)" % (change["number"], ", ".join(model.CLOSE_CODES))
            )
        values: Dict[str, Any] = {"state": target, "fields": dict(change["_fields"], **fields)}
        requesting = target == "authorize"
        if requesting:
            values["approval"] = "requested"
        row = self._writable().itsm_update_change(
            self.actor,
            change["sys_id"],
            change["state"],
            values,
            "state",
            {"from": change["state"], "to": target},
            approval_request=requesting,
        )
        return _change(row)

    def decide_approval(self, change: Record, decision: str, comments: str) -> Record:
        approver = self.actor.awx_user_name or self.actor.sudo_user or self.actor.user
        after = "scheduled" if decision == "approved" else "new"
        return _change(
            self._writable().itsm_decide_approval(self.actor, change["sys_id"], decision, approver, comments, after)
        )

    def approvals(self, change: Record) -> List[Record]:
        if self.ledger is None:
            return []
        return [
            {"approver": row["approver"], "state": row["state"], "comments": row["comments"] or ""}
            for row in self.ledger.itsm_approvals(change["sys_id"])
        ]

    def conflicts(self, change: Record) -> List[Record]:
        """Other open changes on the same CIs whose window overlaps this one."""
        start, end = change.get("start_date"), change.get("end_date")
        if not (start and end) or self.ledger is None:
            return []
        mine = set(change.get("_cis") or [])
        found: List[Record] = []
        for other in self.ledger.itsm_list_changes(limit=1000):
            decoded = _change(other)
            if decoded["sys_id"] == change["sys_id"] or decoded["state"] in ("closed", "canceled"):
                continue
            if (
                mine & set(decoded["_cis"])
                and decoded.get("start_date")
                and decoded["start_date"] < end
                and start < decoded.get("end_date", "")
            ):
                found.append(
                    {
                        "type": "ci_already_scheduled",
                        "conflicting_change": decoded["number"],
                        "description": "CI already scheduled by %s" % decoded["number"],
                    }
                )
        return found

    # Incidents

    def create_incident(self, incident: Mapping[str, Any]) -> Record:
        severity = str(incident.get("severity") or "high")
        model.check_severity(severity)
        extra = {key: as_text(incident[key]) for key in INCIDENT_EXTRAS if incident.get(key)}
        row, _created = self._writable().open_incident(
            self.actor,
            {
                "service": incident["service"],
                "environment": incident["environment"],
                "version": incident.get("version"),
                "title": incident["short_description"],
                "severity": severity,
                "source": incident.get("source") or "itsm",
                "correlation_id": incident.get("correlation_id"),
                "caused_by": incident.get("caused_by"),
                "details": dict(incident.get("details") or {}, **extra),
            },
        )
        return _incident(row)

    def resolve_incident(self, incident: Record, close_code: str, close_notes: str, resolved_at: str) -> Record:
        row = self._writable().resolve_incident(
            int(incident["sys_id"]),
            resolved_at,
            None,
            None,
            details={"close_code": close_code, "close_notes": close_notes},
        )
        return _incident(row)

    def list_incidents(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        if query:
            raise ITSMError(
                "encoded queries need backend servicenow; on the local backend filter by number, state, "
                "correlation_id, business_service or caused_by"
            )
        if self.ledger is None:
            return []
        columns: Dict[str, str] = {}
        for key, value in filters.items():
            if key == "state":
                model.incident_state_value(value)
                columns["status"] = LEDGER_STATUS.get(value, "none")
            elif key == "business_service":
                columns["service"] = value
            elif key in ("number", "correlation_id", "caused_by"):
                columns[key] = value
            else:
                raise ITSMError(
                    "incidents cannot be filtered by %s on the local backend; use number, state, correlation_id, "
                    "business_service or caused_by" % key
                )
        return [_incident(row) for row in self.ledger.find_incidents(limit=limit, **columns)]

    # CMDB

    def check_ci_class(self, ci_class: str) -> str:
        return model.check_ci_class(ci_class)

    def find_cis(
        self,
        ci_class: str,
        match: Mapping[str, str],
        limit: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
    ) -> List[Record]:
        if self.ledger is None:
            return []
        rows = self.ledger.itsm_find_cis(model.class_with_descendants(ci_class), name=match.get("name"))
        found = [ci for ci in (_ci(row) for row in rows) if all(as_text(ci.get(k)) == v for k, v in match.items())]
        return found[:limit] if limit else found

    def query_cis(self, ci_class: str, query: Optional[str], limit: Optional[int]) -> List[Record]:
        if query:
            raise ITSMError("encoded queries need backend servicenow; on the local backend filter by class and name")
        return self.find_cis(ci_class, {}, limit)

    def get_cis(self, sys_ids: Sequence[str]) -> List[Record]:
        if self.ledger is None:
            return []
        return [_ci(row) for row in self.ledger.itsm_find_cis(list(model.CI_CLASSES), sys_ids=list(sys_ids))]

    def create_ci(self, ci_class: str, values: Mapping[str, str]) -> Record:
        attributes = {k: v for k, v in values.items() if k != "name"}
        return _ci(
            self._writable().itsm_save_ci(uuid.uuid4().hex, ci_class, values.get("name"), attributes, create=True)
        )

    def update_ci(self, ci: Record, values: Mapping[str, str]) -> Record:
        merged = {k: v for k, v in ci.items() if k not in ("sys_id", "sys_class_name", "name")}
        merged.update({k: v for k, v in values.items() if k != "name"})
        name = values.get("name", ci.get("name"))
        return _ci(self._writable().itsm_save_ci(ci["sys_id"], ci["sys_class_name"], name, merged, create=False))

    def relation_types(self) -> List[str]:
        return list(model.RELATION_TYPES)

    def relations(self, sys_id: str, direction: str) -> List[Record]:
        if self.ledger is None:
            return []
        rows = (
            self.ledger.itsm_relations(parent=sys_id)
            if direction == "downstream"
            else self.ledger.itsm_relations(child=sys_id)
        )
        return [{"parent": r["parent"], "child": r["child"], "type": r["type"]} for r in rows]

    def add_relation(self, parent: str, child: str, type_name: str) -> bool:
        return self._writable().itsm_relate(uuid.uuid4().hex, parent, child, type_name)

    def remove_relation(self, parent: str, child: str, type_name: str) -> bool:
        return self._writable().itsm_unrelate(parent, child, type_name)


def _change(row: Mapping[str, Any]) -> Record:
    fields: Dict[str, Any] = dict(row["fields"])
    change: Record = dict(fields)
    change.update(
        sys_id=row["sys_id"],
        number=row["number"],
        type=row["type"],
        state=row["state"],
        approval=row["approval"],
        correlation_id=row["correlation_id"] or "",
        sys_created_on=row["created_at"],
        sys_updated_on=row["updated_at"],
        _fields=fields,
        _cis=list(row["cis"]),
    )
    return change


def _incident(row: Mapping[str, Any]) -> Record:
    """A ledger incident in the shape both backends return (ServiceNow's incident fields)."""
    details: Dict[str, Any] = dict(row.get("details") or {})
    impact, urgency = model.SEVERITY_IMPACT_URGENCY[row["severity"]]
    return {
        "sys_id": str(row["id"]),
        "number": incident_number(int(row["id"])),
        "short_description": row["title"],
        "description": str(details.get("description") or ""),
        "state": "resolved" if row["status"] == "resolved" else "new",
        "impact": impact,
        "urgency": urgency,
        "priority": model.PRIORITY_LOOKUP[(impact, urgency)],
        "severity": row["severity"],
        "business_service": row["service"],
        "environment": row["environment"],
        "version": row.get("version") or "",
        # A row the incident module recorded names its CI in the ci column; one opened through
        # create_incident keeps it in the details.
        "cmdb_ci": str(details.get("cmdb_ci") or row.get("ci") or ""),
        "caused_by": row.get("caused_by") or "",
        "correlation_id": row.get("correlation_id") or "",
        "assignment_group": str(details.get("assignment_group") or ""),
        "caller_id": str(details.get("caller") or ""),
        "close_code": str(details.get("close_code") or ""),
        "close_notes": str(details.get("close_notes") or ""),
        "opened_at": row["opened_at"],
        "resolved_at": row.get("resolved_at") or "",
        "source": row["source"],
        "stabilization_id": row.get("stabilization_id"),
        "details": details,
    }


def _ci(row: Mapping[str, Any]) -> Record:
    ci: Record = dict(row["attributes"])
    ci.update(sys_id=row["sys_id"], sys_class_name=row["class"], name=row["name"] or "")
    return ci
