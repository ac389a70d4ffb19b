"""The tables, columns and change states the stand-in serves.

Every column is one ServiceNow documents for that table (sources: the
ServiceNow product documentation, "Change request table fields",
"Configuration item [cmdb_ci] table", "CI Relationship [cmdb_rel_ci] table",
"Approval [sysapproval_approver]", "Task CI [task_ci]", "Standard change
template versions [std_change_producer_version]", "Standard change record
producer [std_change_record_producer]" (Installed with Change Management -
Standard Change Catalog; name, active, retired, current_version), "Blackout schedules
[cmn_schedule_blackout]", "Maintenance schedules [cmn_schedule_maintenance]"
(both extend cmn_schedule_condition), "Schedule entry [cmn_schedule_span]"
(Repeats, Repeat every, Repeat on, Repeat until, All day), "Journal entry
[sys_journal_field]", "Incident [incident] table" (the incident form's
fields: caller_id, business_service, cmdb_ci, caused_by, impact, urgency,
priority, close_code, close_notes, resolved_by, resolved_at, hold_reason,
incident_state), "Resolve and close an incident" (resolution code and notes),
"Priority lookup rules" (priority from impact and urgency), and the
servicenow.itsm collection's change_request / configuration_item / incident
modules, which read and write the same columns). Writes of other columns are ignored,
as the Table API does.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

SYSTEM_COLUMNS = (
    "sys_id",
    "sys_class_name",
    "sys_created_on",
    "sys_created_by",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
)

TASK_COLUMNS = (
    "number",
    "short_description",
    "description",
    "state",
    "active",
    "approval",
    "assignment_group",
    "assigned_to",
    "business_service",
    "cmdb_ci",
    "correlation_id",
    "correlation_display",
    "priority",
    "impact",
    "urgency",
    "work_notes",
    "comments",
    "opened_by",
    "opened_at",
    "closed_at",
    "close_notes",
    "parent",
)
CI_COLUMNS = (
    "name",
    "short_description",
    "operational_status",
    "install_status",
    "ip_address",
    "mac_address",
    "fqdn",
    "serial_number",
    "asset_tag",
    "environment",
    "category",
    "company",
    "location",
    "support_group",
    "assigned_to",
    "managed_by",
    "owned_by",
    "correlation_id",
    "discovery_source",
    "last_discovered",
    "used_for",
    "version",
    "comments",
    "attributes",
)

# table: (parent table, own columns)
TABLES: Dict[str, Tuple[Optional[str], Tuple[str, ...]]] = {
    "task": (None, TASK_COLUMNS),
    "change_request": (
        "task",
        (
            "type",
            "chg_model",
            "std_change_producer_version",
            "category",
            "risk",
            "start_date",
            "end_date",
            "close_code",
            "implementation_plan",
            "backout_plan",
            "test_plan",
            "justification",
            "on_hold",
            "on_hold_reason",
            "requested_by",
            "conflict_status",
            "conflict_last_run",
        ),
    ),
    "change_task": ("task", ("change_request", "change_task_type", "planned_start_date", "planned_end_date")),
    "incident": (
        "task",
        (
            "caller_id",
            "category",
            "subcategory",
            "severity",
            "incident_state",
            "hold_reason",
            "caused_by",
            "resolved_by",
            "resolved_at",
            "close_code",
        ),
    ),
    "cmdb_ci": (None, CI_COLUMNS),
    "cmdb_ci_hardware": ("cmdb_ci", ("model_id", "manufacturer")),
    "cmdb_ci_computer": ("cmdb_ci_hardware", ("os", "os_version", "cpu_count", "ram")),
    "cmdb_ci_server": ("cmdb_ci_computer", ("classification",)),
    "cmdb_ci_linux_server": ("cmdb_ci_server", ()),
    "cmdb_ci_win_server": ("cmdb_ci_server", ()),
    "cmdb_ci_appl": ("cmdb_ci", ("running_process_command", "tcp_port", "install_directory")),
    "cmdb_ci_service": ("cmdb_ci", ("service_classification", "busines_criticality")),
    "cmdb_rel_ci": (None, ("parent", "child", "type", "connection_strength", "port")),
    "cmdb_rel_type": (None, ("name", "sys_name", "parent_descriptor", "child_descriptor")),
    "sys_user": (None, ("user_name", "name", "first_name", "last_name", "email", "active")),
    "sys_user_group": (None, ("name", "description", "active", "manager")),
    "sysapproval_approver": (None, ("sysapproval", "document_id", "source_table", "approver", "state", "comments")),
    "task_ci": (None, ("task", "ci_item")),
    "std_change_producer_version": (None, ("name", "std_change_producer", "version", "template_value")),
    "std_change_record_producer": (None, ("name", "short_description", "active", "retired", "current_version")),
    "cmn_schedule": (None, ("name", "type", "time_zone", "description")),
    "cmn_schedule_condition": ("cmn_schedule", ("applies_to", "condition")),
    "cmn_schedule_blackout": ("cmn_schedule_condition", ()),
    "cmn_schedule_maintenance": ("cmn_schedule_condition", ()),
    "cmn_schedule_span": (
        None,
        (
            "schedule",
            "name",
            "start_date_time",
            "end_date_time",
            "type",
            "all_day",
            "repeat_type",
            "repeat_count",
            "days_of_week",
            "repeat_until",
        ),
    ),
    "sys_journal_field": (None, ("element_id", "element", "name", "value")),
    "conflict": (None, ("change", "type", "configuration_item", "conflicting_change", "schedule", "description")),
    "sys_attachment": (
        None,
        ("file_name", "content_type", "size_bytes", "size_compressed", "table_name", "table_sys_id", "hash"),
    ),
}

REFERENCE_COLUMNS = {
    "assignment_group": "sys_user_group",
    "assigned_to": "sys_user",
    "cmdb_ci": "cmdb_ci",
    "parent": "cmdb_ci",
    "child": "cmdb_ci",
    "type": "cmdb_rel_type",
    "approver": "sys_user",
    "sysapproval": "task",
    "document_id": "task",
    "task": "task",
    "ci_item": "cmdb_ci",
    "std_change_producer_version": "std_change_producer_version",
    "std_change_producer": "std_change_record_producer",
    "current_version": "std_change_producer_version",
    "change_request": "change_request",
    "schedule": "cmn_schedule",
    "requested_by": "sys_user",
    "opened_by": "sys_user",
    "configuration_item": "cmdb_ci",
    "conflicting_change": "change_request",
    "change": "change_request",
    "caller_id": "sys_user",
    "business_service": "cmdb_ci_service",
    "caused_by": "change_request",
    "resolved_by": "sys_user",
    "manager": "sys_user",
    "support_group": "sys_user_group",
}
# Columns whose reference only applies on some tables.
REFERENCE_EXCEPTIONS = {("cmdb_rel_type", "name"), ("task", "parent")}

NUMBER_PREFIX = {"change_request": "CHG", "change_task": "CTASK", "incident": "INC"}

# Change request states (ServiceNow docs, "State model and transitions" for change management).
CHANGE_STATES = {
    "-5": "New",
    "-4": "Assess",
    "-3": "Authorize",
    "-2": "Scheduled",
    "-1": "Implement",
    "0": "Review",
    "3": "Closed",
    "4": "Canceled",
}
CHANGE_TRANSITIONS: Dict[str, Dict[str, List[str]]] = {
    "normal": {"-5": ["-4"], "-4": ["-3", "-5"], "-3": ["-2", "-5"], "-2": ["-1"], "-1": ["0"], "0": ["3"]},
    "emergency": {"-5": ["-3"], "-3": ["-2", "-5"], "-2": ["-1"], "-1": ["0"], "0": ["3"]},
    "standard": {"-5": ["-2"], "-2": ["-1"], "-1": ["0"], "0": ["3"]},
}
CANCELABLE = ("-5", "-4", "-3", "-2", "-1", "0")

# Incident states ("Incident [incident]" state choices) and the default priority lookup
# (impact, urgency: 1 high, 2 medium, 3 low -> priority 1 critical ... 5 planning).
INCIDENT_STATES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed", "8": "Canceled"}
INCIDENT_RESOLVED = ("6", "7")
INCIDENT_INACTIVE = ("7", "8")
PRIORITY_LOOKUP = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("1", "3"): "3",
    ("2", "1"): "2",
    ("2", "2"): "3",
    ("2", "3"): "4",
    ("3", "1"): "3",
    ("3", "2"): "4",
    ("3", "3"): "5",
}


# Choice fields and their labels, which sysparm_display_value=true|all shows: (base table, column) ->
# {value: label}. Sources: "Incident [incident] table" and "Change request table fields" (impact,
# urgency, priority, approval, type), "Configuration item [cmdb_ci] table" (install_status,
# operational_status; the same value lists as servicenow.itsm's configuration_item mapping).
IMPACT_URGENCY = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
CHOICES: Dict[Tuple[str, str], Dict[str, str]] = {
    ("change_request", "state"): CHANGE_STATES,
    ("change_request", "type"): {"standard": "Standard", "normal": "Normal", "emergency": "Emergency"},
    ("incident", "state"): INCIDENT_STATES,
    ("incident", "incident_state"): INCIDENT_STATES,
    ("task", "impact"): IMPACT_URGENCY,
    ("task", "urgency"): IMPACT_URGENCY,
    ("task", "priority"): {
        "1": "1 - Critical",
        "2": "2 - High",
        "3": "3 - Moderate",
        "4": "4 - Low",
        "5": "5 - Planning",
    },
    ("task", "approval"): {
        "not requested": "Not Yet Requested",
        "requested": "Requested",
        "approved": "Approved",
        "rejected": "Rejected",
    },
    ("cmdb_ci", "install_status"): {
        "1": "Installed",
        "2": "On Order",
        "3": "In Maintenance",
        "4": "Pending Install",
        "5": "Pending Repair",
        "6": "In Stock",
        "7": "Retired",
        "8": "Stolen",
        "100": "Absent",
    },
    ("cmdb_ci", "operational_status"): {
        "1": "Operational",
        "2": "Non-Operational",
        "3": "Repair in Progress",
        "4": "DR Standby",
        "5": "Ready",
        "6": "Retired",
    },
}

# Values a new record gets when the create leaves them out (the dictionary defaults): (base table) ->
# {column: value}; NOW and USER stand for the creation time and the creating user's sys_id.
# Sources: "Task table" (active true, opened_at now, opened_by the current user), "Change request table
# fields" (urgency 3 - Low, on_hold false).
NOW = "javascript:gs.nowDateTime()"
USER = "javascript:gs.getUserID()"
CREATE_DEFAULTS: Dict[str, Dict[str, str]] = {
    "task": {"active": "true", "opened_at": NOW, "opened_by": USER},
    "change_request": {"urgency": "3", "on_hold": "false"},
}

# Where each table's columns and each endpoint's contract come from (the ServiceNow product
# documentation unless said otherwise); the conformance suite (tests/unit/test_servicenow_conformance.py)
# drives every one of them with pysnow.
SOURCES: Dict[str, str] = {
    "task": "Task table [task] (docs: 'Task table', fields shared by incident and change_request)",
    "change_request": "'Change request table fields'; servicenow.itsm change_request module",
    "change_task": "'Change task [change_task]'",
    "incident": "'Incident [incident] table'; 'Priority lookup rules'; servicenow.itsm incident module",
    "cmdb_ci": "'Configuration item [cmdb_ci] table' (cmdb-table-property-descriptions), incl. mac_address, "
    "assigned_to; servicenow.itsm configuration_item module",
    "cmdb_ci_hardware": "'CMDB tables details': Hardware [cmdb_ci_hardware] extends cmdb_ci",
    "cmdb_ci_computer": "'CMDB tables details': Computer [cmdb_ci_computer] extends cmdb_ci_hardware",
    "cmdb_ci_server": "'CMDB tables details': Server [cmdb_ci_server] extends cmdb_ci_computer",
    "cmdb_ci_linux_server": "'CMDB tables details': Linux Server extends cmdb_ci_server",
    "cmdb_ci_win_server": "'CMDB tables details': Windows Server extends cmdb_ci_server",
    "cmdb_ci_appl": "'CMDB tables details': Application [cmdb_ci_appl]",
    "cmdb_ci_service": "'CMDB tables details': Business Service [cmdb_ci_service]",
    "cmdb_rel_ci": "'CI Relationship [cmdb_rel_ci] table'",
    "cmdb_rel_type": "'CI relationship types [cmdb_rel_type]' (name, sys_name, parent_descriptor, child_descriptor)",
    "sys_user": "'User [sys_user] table'",
    "sys_user_group": "'Group [sys_user_group] table'",
    "sysapproval_approver": "'Approval [sysapproval_approver]'",
    "task_ci": "'Task CI [task_ci]'",
    "std_change_producer_version": "'Standard change template versions [std_change_producer_version]'",
    "std_change_record_producer": "'Standard change record producer [std_change_record_producer]'",
    "cmn_schedule": "'Schedules [cmn_schedule]'",
    "cmn_schedule_condition": "'Blackout schedules' / 'Maintenance schedules' (both extend cmn_schedule_condition)",
    "cmn_schedule_blackout": "'Blackout schedules [cmn_schedule_blackout]'",
    "cmn_schedule_maintenance": "'Maintenance schedules [cmn_schedule_maintenance]'",
    "cmn_schedule_span": "'Schedule entry [cmn_schedule_span]'",
    "sys_journal_field": "'Journal entry [sys_journal_field]'",
    "conflict": "'Change Management API': GET /sn_chg_rest/change/{sys_id}/conflict result fields",
    "sys_attachment": "'Attachment API' (Attachment [sys_attachment] metadata: file_name, content_type, size_bytes, "
    "size_compressed, table_name, table_sys_id, hash, download_link)",
    "/api/now/table": "'Table API' (GET/POST/PUT/PATCH/DELETE, sysparm_*, name-value pair filters, "
    "invalid query parts ignored) and 'REST API HTTP response codes'",
    "sysparm_query": "'Encoded query strings' and 'Operators available for filters and queries'",
    "/api/now/attachment": "'Attachment API' (GET list, GET {sys_id}, GET {sys_id}/file, POST /file, "
    "POST /upload, DELETE {sys_id})",
    "/api/now/cmdb/instance": "'CMDB Instance API' (GET {className}, GET/PUT/PATCH {className}/{sys_id}, "
    "POST {className}, POST {className}/{sys_id}/relation, DELETE {className}/{sys_id}/relation/{rel_sys_id})",
    "/api/sn_chg_rest/change": "'Change Management API'",
    "/api/now/identifyreconcile": "'Identification and Reconciliation API'",
    "/oauth_token.do": "'OAuth inbound'; RFC 6749",
}


def choice_label(table: str, column: str, value: str) -> Optional[str]:
    """The display label of a choice value, or None when the column is not a choice field of the table."""
    for base in ancestry(table):
        choices = CHOICES.get((base, column))
        if choices is not None:
            return choices.get(value, value)
    return None


def create_defaults(table: str) -> Dict[str, str]:
    """The dictionary defaults a new record of the table gets, its ancestors' included."""
    found: Dict[str, str] = {}
    for base in reversed(ancestry(table)):
        found.update(CREATE_DEFAULTS.get(base, {}))
    return found


def columns(table: str) -> Tuple[str, ...]:
    """Every column of a table, its ancestors' included."""
    found: List[str] = list(SYSTEM_COLUMNS)
    current: Optional[str] = table
    while current is not None:
        parent, own = TABLES[current]
        found.extend(own)
        current = parent
    return tuple(found)


def ancestry(table: str) -> List[str]:
    chain: List[str] = []
    current: Optional[str] = table
    while current is not None:
        chain.append(current)
        current = TABLES[current][0]
    return chain


def is_a(table: str, base: str) -> bool:
    return base in ancestry(table)
