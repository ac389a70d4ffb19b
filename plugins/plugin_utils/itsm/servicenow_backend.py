# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``servicenow`` ITSM backend: the Change Management API where the instance has it, the Table API otherwise.

Changes are created through ``/api/sn_chg_rest/change/{normal,emergency}`` and
``/change/standard/{template}`` (complete, from the template's values), moved
through the states the instance lists in ``/nextstates``, approved through
``/approvals`` and checked with ``/conflict``. Without the plugin the same
operations use the ``change_request``, ``std_change_producer_version`` and
``sysapproval_approver`` tables and the local state model. Standard-change
templates are ``std_change_record_producer`` records (``name``,
``current_version``, ``active``, ``retired``); a change references the version
it was created from in ``std_change_producer_version``, whose
``std_change_producer`` points back at the template. CIs live in their
class tables, relations in ``cmdb_rel_ci`` with types from ``cmdb_rel_type``,
and ``use_ire`` sends CIs through ``/api/now/identifyreconcile``.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp

from . import model
from .backend import ItsmBackend, Record, as_text
from .errors import ITSMAmbiguousWrite, ITSMError
from .query import Query
from .servicenow import ServiceNowClient

_CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CHANGE_FIELDS = (
    "sys_id",
    "number",
    "type",
    "state",
    "approval",
    "correlation_id",
    "correlation_display",
    "short_description",
    "description",
    "assignment_group",
    "cmdb_ci",
    "start_date",
    "end_date",
    "close_code",
    "close_notes",
    "risk",
    "impact",
    "priority",
    "category",
    "implementation_plan",
    "backout_plan",
    "test_plan",
    "justification",
    "std_change_producer_version",
    "chg_model",
    "sys_created_on",
    "sys_updated_on",
)
IN_BATCH = 100
# Standard-change catalog tables (Change Management - Standard Change Catalog plugin).
VERSION_FIELDS = ("sys_id", "name", "version", "std_change_producer")
PRODUCER_FIELDS = ("sys_id", "name", "active", "retired", "current_version")
# Schedule tables by the kind of window they hold, and the entry fields the calendar reads.
SCHEDULE_TABLES = (("cmn_schedule_blackout", "blackout"), ("cmn_schedule_maintenance", "maintenance"))
SPAN_FIELDS = (
    "sys_id",
    "name",
    "start_date_time",
    "end_date_time",
    "all_day",
    "repeat_type",
    "repeat_count",
    "days_of_week",
    "repeat_until",
)
INCIDENT_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "impact",
    "urgency",
    "priority",
    "business_service",
    "cmdb_ci",
    "caused_by",
    "correlation_id",
    "assignment_group",
    "caller_id",
    "close_code",
    "close_notes",
    "opened_at",
    "resolved_at",
)
# Incident fields that reference another record: (incident field, table, column naming the record there).
INCIDENT_REFERENCES = (
    ("cmdb_ci", "cmdb_ci", "name"),
    ("caused_by", "change_request", "number"),
    ("assignment_group", "sys_user_group", "name"),
    ("caller", "sys_user", "user_name"),
)


class ServiceNowBackend(ItsmBackend):
    name = "servicenow"

    def __init__(self, client: ServiceNowClient) -> None:
        self.client = client
        self._change_api: Optional[bool] = None
        self._relation_types: Optional[Dict[str, str]] = None

    @property
    def change_api(self) -> bool:
        if self._change_api is None:
            self._change_api = self.client.change_api_available()
        return self._change_api

    # Change schedules

    def change_schedule(self, name: str) -> Optional[Record]:
        for table, kind in SCHEDULE_TABLES:
            found = self.client.list_records(
                table, str(Query().equals("name", name)), fields=("sys_id", "name", "time_zone"), limit=1
            )
            if found:
                schedule = dict(found[0], kind=kind)
                schedule["spans"] = self.client.list_records(
                    "cmn_schedule_span", str(Query().equals("schedule", schedule["sys_id"])), fields=SPAN_FIELDS
                )
                return schedule
        return None

    # Changes

    def get_change(
        self, number: Optional[str] = None, sys_id: Optional[str] = None, correlation_id: Optional[str] = None
    ) -> Optional[Record]:
        query = Query()
        for column, value in (("sys_id", sys_id), ("number", number), ("correlation_id", correlation_id)):
            if value:
                query.equals(column, value)
        # Every match is read, not the first: nothing makes correlation_id unique on an instance, and
        # picking one of several (a closed one, say) would silently act on the wrong change.
        query.order_by("number")
        found = self.client.list_records("change_request", str(query), fields=CHANGE_FIELDS)
        if len(found) > 1:
            numbers = ", ".join(str(record.get("number")) for record in found)
            raise ITSMError(
                "%d changes on %s share correlation_id %r: %s; a correlation id must name one change: cancel "
                "or re-correlate the extra ones on the instance, or give number to pick one"
                % (len(found), self.client.config.host, correlation_id, numbers)
            )
        return _change(found[0]) if found else None

    def list_changes(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        built = Query()
        for column, value in filters.items():
            built.equals(column, model.state_value(value) if column == "state" else value)
        built.raw(query or "").order_by("sys_created_on", descending=True)
        return [
            _change(r)
            for r in self.client.list_records("change_request", str(built), fields=CHANGE_FIELDS, limit=limit)
        ]

    def create_change(self, change_type: str, fields: Mapping[str, str], template: Optional[str]) -> Record:
        values = dict(fields)
        template_record = self._template(template) if change_type == "standard" else None
        if self.change_api:
            suffix = "/standard/%s" % template_record["sys_id"] if template_record else "/" + change_type
            return _change(self.client.change_api("POST", suffix, body=values))
        if template_record:
            values = dict(_template_values(template_record), **values)
            values["std_change_producer_version"] = template_record["sys_id"]
        values["type"] = change_type
        return _change(self.client.create_record("change_request", values))

    def _template(self, template: Optional[str]) -> Record:
        """The producer version to create a standard change from.

        ``template`` names a template (std_change_record_producer name or sys_id: its current_version is
        used) or one version of it (std_change_producer_version name or sys_id).
        """
        if not template:
            raise ITSMError(
                "a standard change needs template: the name or sys_id of a std_change_record_producer "
                "(or of one std_change_producer_version)"
            )
        query = str(Query().equals("name", template).or_equals("sys_id", template))
        producers = self.client.list_records("std_change_record_producer", query, fields=PRODUCER_FIELDS, limit=1)
        if producers:
            current = _reference(producers[0].get("current_version"))
            version = self.client.get_record("std_change_producer_version", current) if current else None
            if version is None:
                raise ITSMError(
                    "standard change template %r on %s has no current version (current_version is empty); "
                    "publish the template or give a std_change_producer_version" % (template, self.client.config.host)
                )
            return version
        found = self.client.list_records("std_change_producer_version", query, limit=1)
        if not found:
            raise ITSMError(
                "standard change template %r is not on %s; give the name or sys_id of a published "
                "std_change_record_producer or std_change_producer_version" % (template, self.client.config.host)
            )
        return found[0]

    def standard_template(self, change: Record) -> Optional[Record]:
        """Follow change_request.std_change_producer_version to the version and its std_change_record_producer."""
        version_id = _reference(change.get("std_change_producer_version"))
        if not version_id:
            return None
        version = self.client.get_record("std_change_producer_version", version_id, fields=VERSION_FIELDS)
        producer_id = _reference(version.get("std_change_producer")) if version else ""
        producer = (
            self.client.get_record("std_change_record_producer", producer_id, fields=PRODUCER_FIELDS)
            if producer_id
            else None
        ) or {}
        version = version or {}
        return {
            "producer": str(producer["name"]) if producer.get("name") else None,
            "producer_sys_id": producer_id or None,
            "version": version_id,
            "version_name": str(version.get("name") or "") or None,
            "version_number": str(version.get("version") or "") or None,
            "current": bool(producer) and _reference(producer.get("current_version")) == version_id,
            "active": bool(producer) and _true(producer.get("active", "true")),
            "retired": bool(producer) and _true(producer.get("retired", "false")),
        }

    def _reread(self, sys_id: str) -> Record:
        return self.require_change(sys_id=sys_id)

    def write_change(self, change: Record, fields: Mapping[str, str]) -> Record:
        return _change(self.client.update_record("change_request", change["sys_id"], fields))

    def change_cis(self, change: Record) -> List[str]:
        records = self.client.list_records(
            "task_ci", str(Query().equals("task", change["sys_id"])), fields=("ci_item",)
        )
        return [r["ci_item"] for r in records]

    def add_change_cis(self, change: Record, sys_ids: Sequence[str]) -> None:
        for sys_id in sys_ids:
            for _attempt in range(5):
                try:
                    self.client.create_record("task_ci", {"task": change["sys_id"], "ci_item": sys_id})
                    break
                except ITSMAmbiguousWrite:
                    if sys_id in self.change_cis(change):
                        break

    def ci_changes(self, sys_id: str, limit: int) -> List[Record]:
        """Read the CI's ``task_ci`` rows (its Affected CIs entries), newest first, and the changes they name."""
        links = self.client.list_records(
            "task_ci",
            str(Query().equals("ci_item", sys_id).order_by("sys_created_on", descending=True)),
            fields=("task", "sys_created_on"),
        )
        added: Dict[str, str] = {}
        for link in links:
            added[link["task"]] = max(added.get(link["task"], ""), link["sys_created_on"])
        if not added:
            return []
        changes = [
            _change(record)
            for start in range(0, len(added), IN_BATCH)
            for record in self.client.list_records(
                "change_request",
                str(Query().is_in("sys_id", list(added)[start : start + IN_BATCH])),
                fields=CHANGE_FIELDS,
            )
        ]
        # sys_created_on has whole seconds: the change number breaks a tie, as numbers only grow.
        changes.sort(key=lambda change: (added[change["sys_id"]], change["number"]), reverse=True)
        return changes[:limit]

    def has_work_note(self, change: Record, note: str) -> bool:
        query = Query().equals("element_id", change["sys_id"]).equals("element", "work_notes").equals("value", note)
        return bool(self.client.list_records("sys_journal_field", str(query), fields=("sys_id",), limit=1))

    def add_work_note(self, change: Record, note: str) -> None:
        self.client.update_record("change_request", change["sys_id"], {"work_notes": note})

    def next_states(self, change: Record) -> List[str]:
        if not self.change_api:
            return model.allowed_next_states(change["type"], change["state"], change["approval"])
        result = self.client.change_api("GET", "/%s/nextstates" % change["sys_id"])
        states = [model.state_name(value) for value in result.get("available_states", [])]
        return [name for name in states if name != change["state"]]

    def set_state(self, change: Record, target: str, fields: Mapping[str, str]) -> Record:
        values = dict(fields, state=model.state_value(target))
        if self.change_api:
            return _change(self.client.change_api("PATCH", "/%s" % change["sys_id"], body=values))
        return _change(self.client.update_record("change_request", change["sys_id"], values))

    def decide_approval(self, change: Record, decision: str, comments: str) -> Record:
        if self.change_api:
            try:
                return _change(
                    self.client.change_api(
                        "PATCH", "/%s/approvals" % change["sys_id"], body={"state": decision, "comments": comments}
                    )
                )
            except ITSMError:
                # A retried PATCH whose first attempt was applied finds no approval left to decide.
                current = self._reread(change["sys_id"])
                if current.get("approval") != decision:
                    raise
                return current
        pending = self.client.list_records(
            "sysapproval_approver", str(Query().equals("sysapproval", change["sys_id"]).equals("state", "requested"))
        )
        if not pending:
            raise ITSMError(
                "change %s has no requested approval; move it to the authorize state first" % change["number"]
            )
        for approval in pending:
            self.client.update_record(
                "sysapproval_approver", approval["sys_id"], {"state": decision, "comments": comments}
            )
        return self._reread(change["sys_id"])

    def approvals(self, change: Record) -> List[Record]:
        """Who decided the change: ``approver`` is the sys_user's ``user_name`` (the login id, what segregation
        of duties compares with the releaser's identity), ``approver_name`` its display name."""
        records = self.client.list_records(
            "sysapproval_approver",
            str(Query().equals("sysapproval", change["sys_id"])),
            fields=("approver", "state", "comments"),
            display_value="all",
        )
        logins = self._user_names([str(r["approver"]["value"]) for r in records if r["approver"]["value"]])
        return [
            {
                "approver": logins.get(str(r["approver"]["value"])) or r["approver"]["display_value"],
                "approver_name": r["approver"]["display_value"],
                "state": r["state"]["value"],
                "comments": r["comments"]["value"],
            }
            for r in records
        ]

    def _user_names(self, sys_ids: List[str]) -> Dict[str, str]:
        """The user_name of each sys_user, by sys_id (one query)."""
        if not sys_ids:
            return {}
        users = self.client.list_records(
            "sys_user", str(Query().is_in("sys_id", sorted(set(sys_ids)))), fields=("sys_id", "user_name")
        )
        return {str(user["sys_id"]): str(user["user_name"]) for user in users if user.get("user_name")}

    def conflicts(self, change: Record) -> List[Record]:
        if not self.change_api:
            return []
        self.client.change_api("POST", "/%s/conflict" % change["sys_id"])
        result = self.client.change_api("GET", "/%s/conflict" % change["sys_id"])
        found = []
        for conflict in result.get("conflicts", []):
            flat = {k: (v.get("display_value") if isinstance(v, dict) else v) for k, v in conflict.items()}
            found.append(
                {
                    k: flat.get(k, "")
                    for k in ("type", "description", "conflicting_change", "schedule", "configuration_item")
                }
            )
        return found

    # Incidents

    def create_incident(self, incident: Mapping[str, Any]) -> Record:
        impact, urgency = model.check_severity(str(incident.get("severity") or "high"))
        values: Dict[str, str] = {
            "short_description": str(incident["short_description"]),
            "description": incident_description(incident),
            "impact": impact,
            "urgency": urgency,
        }
        if incident.get("correlation_id"):
            values.update(correlation_id=str(incident["correlation_id"]), correlation_display="relops.release")
        service = self._find_sys_id("cmdb_ci_service", "name", str(incident["service"]))
        if service:
            values["business_service"] = service
        for option, table, column in INCIDENT_REFERENCES:
            if not incident.get(option):
                continue
            found = self._find_sys_id(table, column, str(incident[option]))
            if found is None:
                raise ITSMError(
                    "incident %s %r is not on %s (no %s with %s %r); fix the value or leave it out"
                    % (option, incident[option], self.client.config.host, table, column, incident[option])
                )
            values["caller_id" if option == "caller" else option] = found
        created = self.client.create_record("incident", values)
        return self._read_incidents(str(Query().equals("sys_id", created["sys_id"])), 1)[0]

    def resolve_incident(self, incident: Record, close_code: str, close_notes: str, resolved_at: str) -> Record:
        """PATCH state 6 (Resolved) with the mandatory resolution code and notes; the instance stamps
        resolved_at and resolved_by, so the ``resolved_at`` given is not sent."""
        del resolved_at
        values = {"state": model.incident_state_value("resolved"), "close_code": close_code, "close_notes": close_notes}
        self.client.update_record("incident", str(incident["sys_id"]), values)
        return self._read_incidents(str(Query().equals("sys_id", str(incident["sys_id"]))), 1)[0]

    def list_incidents(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        built = Query()
        for key, value in filters.items():
            if key == "state":
                built.equals("state", model.incident_state_value(value))
            elif key in ("number", "correlation_id"):
                built.equals(key, value)
            elif key in ("business_service", "caused_by"):
                table, column = (
                    ("cmdb_ci_service", "name") if key == "business_service" else ("change_request", "number")
                )
                found = self._find_sys_id(table, column, value)
                if found is None:
                    return []
                built.equals(key, found)
            else:
                raise ITSMError(
                    "incidents cannot be filtered by %s; use number, state, correlation_id, business_service, "
                    "caused_by, or an encoded query" % key
                )
        # Numbers break ties between incidents opened within the same second (opened_at has seconds only).
        built.raw(query or "").order_by("opened_at", descending=True).order_by("number", descending=True)
        return self._read_incidents(str(built), limit)

    def _read_incidents(self, query: str, limit: Optional[int]) -> List[Record]:
        records = self.client.list_records("incident", query, fields=INCIDENT_FIELDS, display_value="all", limit=limit)
        return [_incident(record) for record in records]

    def _find_sys_id(self, table: str, column: str, value: str) -> Optional[str]:
        found = self.client.list_records(table, str(Query().equals(column, value)), fields=("sys_id",), limit=1)
        return str(found[0]["sys_id"]) if found else None

    # CMDB

    def check_ci_class(self, ci_class: str) -> str:
        if not _CLASS_NAME.match(ci_class) or not ci_class.startswith(("cmdb_ci", "u_")):
            raise ITSMError(
                "CI class %r is not a CMDB table name; use e.g. cmdb_ci_linux_server or cmdb_ci_appl" % ci_class
            )
        return ci_class

    def _list_cis(
        self, ci_class: str, query: str, fields: Optional[Sequence[str]], limit: Optional[int]
    ) -> List[Record]:
        try:
            return self.client.list_records(ci_class, query, fields=fields, limit=limit)
        except ITSMError as exc:
            if "Invalid table" in str(exc):
                raise ITSMError(
                    "CI class %r is unknown to %s; use a CMDB class the instance has, e.g. cmdb_ci_linux_server"
                    % (ci_class, self.client.config.host)
                ) from None
            raise

    def find_cis(
        self,
        ci_class: str,
        match: Mapping[str, str],
        limit: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
    ) -> List[Record]:
        query = Query()
        for column, value in match.items():
            query.equals(column, value)
        return self._list_cis(ci_class, str(query), fields, limit)

    def find_cis_by_values(
        self, ci_class: str, column: str, values: Sequence[str], fields: Optional[Sequence[str]] = None
    ) -> List[Record]:
        found: List[Record] = []
        plain = [v for v in values if "," not in v]
        for start in range(0, len(plain), IN_BATCH):
            found.extend(
                self._list_cis(ci_class, str(Query().is_in(column, plain[start : start + IN_BATCH])), fields, None)
            )
        for value in (v for v in values if "," in v):
            found.extend(self.find_cis(ci_class, {column: value}, fields=fields))
        return found

    def query_cis(self, ci_class: str, query: Optional[str], limit: Optional[int]) -> List[Record]:
        return self._list_cis(ci_class, query or "", None, limit)

    def get_cis(self, sys_ids: Sequence[str]) -> List[Record]:
        return self.find_cis_by_values("cmdb_ci", "sys_id", list(sys_ids))

    def create_ci(self, ci_class: str, values: Mapping[str, str]) -> Record:
        return dict(self.client.create_record(ci_class, values))

    def update_ci(self, ci: Record, values: Mapping[str, str]) -> Record:
        return dict(self.client.update_record(ci.get("sys_class_name") or "cmdb_ci", ci["sys_id"], values))

    def _types(self) -> Dict[str, str]:
        if self._relation_types is None:
            records = self.client.list_records("cmdb_rel_type", "", fields=("sys_id", "name"))
            self._relation_types = {r["name"]: r["sys_id"] for r in records}
        return self._relation_types

    def relation_types(self) -> List[str]:
        return sorted(self._types())

    def relations(self, sys_id: str, direction: str) -> List[Record]:
        column = "parent" if direction == "downstream" else "child"
        records = self.client.list_records(
            "cmdb_rel_ci", str(Query().equals(column, sys_id)), fields=("parent", "child", "type")
        )
        names = {value: key for key, value in self._types().items()}
        return [{"parent": r["parent"], "child": r["child"], "type": names.get(r["type"], r["type"])} for r in records]

    def add_relation(self, parent: str, child: str, type_name: str) -> bool:
        type_id = self._types()[model.check_relation_type(type_name, self.relation_types())]
        query = str(Query().equals("parent", parent).equals("child", child).equals("type", type_id))
        for _attempt in range(5):
            if self.client.list_records("cmdb_rel_ci", query, fields=("sys_id",), limit=1):
                return False
            try:
                self.client.create_record("cmdb_rel_ci", {"parent": parent, "child": child, "type": type_id})
                return True
            except ITSMAmbiguousWrite:
                continue
        raise ITSMError("relating %s to %s failed 5 times; check the instance's health and retry" % (parent, child))

    def remove_relation(self, parent: str, child: str, type_name: str) -> bool:
        type_id = self._types()[model.check_relation_type(type_name, self.relation_types())]
        query = str(Query().equals("parent", parent).equals("child", child).equals("type", type_id))
        found = self.client.list_records("cmdb_rel_ci", query, fields=("sys_id",))
        # The client retries a DELETE and takes a row already gone as deleted, so a dropped answer is safe.
        for record in found:
            self.client.delete_record("cmdb_rel_ci", record["sys_id"])
        return bool(found)

    def identify_reconcile(self, ci_class: str, values: Mapping[str, Any], data_source: str) -> Record:
        """Send one CI through the Identification and Reconciliation Engine; return its result item."""
        body = {"items": [{"className": ci_class, "values": {k: as_text(v) for k, v in values.items()}}]}
        for _attempt in range(5):
            try:
                response = self.client.request(
                    "POST",
                    self.client.config.api_root + "/identifyreconcile",
                    params={"sysparm_data_source": data_source},
                    body=body,
                )
                break
            except ITSMAmbiguousWrite:
                # IRE identifies before it writes, so sending the same item again is safe.
                continue
        else:
            raise ITSMError("IRE did not answer after 5 attempts; check the instance's health and retry")
        items = response.json()["result"]["items"] if response is not None else []
        item: Record = items[0] if items else {}
        if item.get("errors"):
            raise ITSMError(
                "IRE refused the %s CI: %s; fix the values or the identification rule"
                % (ci_class, "; ".join(str(e.get("message")) for e in item["errors"]))
            )
        return item


def _change(record: Mapping[str, Any]) -> Record:
    change = dict(record)
    change["state"] = model.state_name(record.get("state", ""))
    return change


def incident_description(incident: Mapping[str, Any]) -> str:
    """The incident's description: what the caller wrote, then where it happened (the incident table has
    no service, environment or version columns), then the details as JSON."""
    where = "Service %s in %s" % (incident["service"], incident["environment"])
    if incident.get("version"):
        where += ", version %s" % incident["version"]
    parts = [str(incident.get("description") or ""), where + "."]
    if incident.get("details"):
        parts.append("Details: " + json.dumps(incident["details"], sort_keys=True, default=str))
    return "\n\n".join(part for part in parts if part)


def _incident(record: Mapping[str, Any]) -> Record:
    """A Table API incident read with sysparm_display_value=all, in the shape both backends return."""

    def value(name: str) -> str:
        field = record.get(name)
        return str(field.get("value") or "") if isinstance(field, dict) else str(field or "")

    def label(name: str) -> str:
        field = record.get(name)
        return str(field.get("display_value") or "") if isinstance(field, dict) else str(field or "")

    priority = value("priority")
    return {
        "sys_id": value("sys_id"),
        "number": value("number"),
        "short_description": value("short_description"),
        "description": value("description"),
        "state": model.incident_state_name(value("state")),
        "impact": value("impact"),
        "urgency": value("urgency"),
        "priority": priority,
        "severity": model.PRIORITY_SEVERITY.get(priority, ""),
        "business_service": label("business_service"),
        "cmdb_ci": label("cmdb_ci"),
        "caused_by": label("caused_by"),
        "correlation_id": value("correlation_id"),
        "assignment_group": label("assignment_group"),
        "caller_id": label("caller_id"),
        "close_code": value("close_code"),
        "close_notes": value("close_notes"),
        "opened_at": glide_to_rfc3339(value("opened_at")),
        "resolved_at": glide_to_rfc3339(value("resolved_at")),
    }


def glide_to_rfc3339(text: str) -> str:
    """The Table API's stored date-times are UTC ``YYYY-MM-DD HH:MM:SS``; return the collection's RFC 3339 form."""
    if not text:
        return ""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return text
    return format_timestamp(moment)


def _template_values(template: Mapping[str, Any]) -> Dict[str, str]:
    """A template's ``template_value`` is an encoded query of field=value pairs."""
    values: Dict[str, str] = {}
    for part in str(template.get("template_value") or "").split("^"):
        if "=" in part and not part.startswith("EQ"):
            key, _sep, value = part.partition("=")
            values[key] = value
    return values


def _reference(value: Any) -> str:
    """A reference field's sys_id, whether the Table API sent it bare or as {value, link}."""
    if isinstance(value, Mapping):
        return str(value.get("value") or "")
    return str(value or "")


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1")
