# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ITSM vocabulary both backends share: change states, transitions, close codes, CI classes.

State values and transitions follow ServiceNow's change management state
model (New -5, Assess -4, Authorize -3, Scheduled -2, Implement -1, Review 0,
Closed 3, Canceled 4; normal changes pass Assess and Authorize, emergency
changes skip Assess, standard changes are pre-approved and start at
Scheduled's door). The local backend enforces the same rules; the ServiceNow
backend asks the instance for its allowed next states.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .errors import ITSMError

STATE_VALUES: Dict[str, str] = {
    "new": "-5",
    "assess": "-4",
    "authorize": "-3",
    "scheduled": "-2",
    "implement": "-1",
    "review": "0",
    "closed": "3",
    "canceled": "4",
}
STATE_NAMES: Dict[str, str] = {value: name for name, value in STATE_VALUES.items()}
# The order a change moves forward through; canceled is reachable from every open state.
STATE_ORDER: Tuple[str, ...] = ("new", "assess", "authorize", "scheduled", "implement", "review", "closed")
CHANGE_TYPES = ("normal", "emergency", "standard")
TRANSITIONS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "normal": {
        "new": ("assess",),
        "assess": ("authorize", "new"),
        "authorize": ("scheduled", "new"),
        "scheduled": ("implement",),
        "implement": ("review",),
        "review": ("closed",),
    },
    "emergency": {
        "new": ("authorize",),
        "authorize": ("scheduled", "new"),
        "scheduled": ("implement",),
        "implement": ("review",),
        "review": ("closed",),
    },
    "standard": {
        "new": ("scheduled",),
        "scheduled": ("implement",),
        "implement": ("review",),
        "review": ("closed",),
    },
}
OPEN_STATES = ("new", "assess", "authorize", "scheduled", "implement", "review")
CLOSE_CODES = ("successful", "successful_issues", "unsuccessful")
APPROVALS = ("not requested", "requested", "approved", "rejected")

# CI classes both backends know, each with its parent (the ServiceNow CMDB hierarchy).
CI_CLASSES: Dict[str, Optional[str]] = {
    "cmdb_ci": None,
    "cmdb_ci_hardware": "cmdb_ci",
    "cmdb_ci_computer": "cmdb_ci_hardware",
    "cmdb_ci_server": "cmdb_ci_computer",
    "cmdb_ci_linux_server": "cmdb_ci_server",
    "cmdb_ci_win_server": "cmdb_ci_server",
    "cmdb_ci_appl": "cmdb_ci",
    "cmdb_ci_service": "cmdb_ci",
}
BUSINESS_SERVICE_CLASSES = ("cmdb_ci_service",)
# Relation types seeded in every ServiceNow instance (cmdb_rel_type), "parent descriptor::child descriptor".
RELATION_TYPES = (
    "Runs on::Runs",
    "Depends on::Used by",
    "Hosted on::Hosts",
    "Contains::Contained by",
    "Connects to::Connected by",
)


def state_value(name: str) -> str:
    """Return the ServiceNow value of a state name, failing with the valid names."""
    if name not in STATE_VALUES:
        raise ITSMError("state %r is not a change state; use one of %s" % (name, ", ".join(STATE_VALUES)))
    return STATE_VALUES[name]


def state_name(value: str) -> str:
    return STATE_NAMES.get(str(value), str(value))


def allowed_next_states(change_type: str, state: str, approval: str) -> List[str]:
    """The local state machine: forward moves, Authorize → Scheduled only once approved, cancel while open."""
    allowed = list(TRANSITIONS.get(change_type, TRANSITIONS["normal"]).get(state, ()))
    if state == "authorize" and approval != "approved":
        allowed = [name for name in allowed if name != "scheduled"]
    if state in OPEN_STATES:
        allowed.append("canceled")
    return allowed


def next_step(current: str, target: str, allowed: List[str]) -> Optional[str]:
    """Choose the allowed move that goes furthest towards ``target`` without passing it."""
    if target in allowed:
        return target
    if target == "canceled" or target not in STATE_ORDER or current not in STATE_ORDER:
        return None
    goal = STATE_ORDER.index(target)
    forward = [s for s in allowed if s in STATE_ORDER and STATE_ORDER.index(current) < STATE_ORDER.index(s) <= goal]
    return max(forward, key=STATE_ORDER.index) if forward else None


def class_lineage(ci_class: str) -> List[str]:
    check_ci_class(ci_class)
    chain: List[str] = []
    current: Optional[str] = ci_class
    while current is not None:
        chain.append(current)
        current = CI_CLASSES[current]
    return chain


def class_with_descendants(ci_class: str) -> List[str]:
    check_ci_class(ci_class)
    return [name for name in CI_CLASSES if ci_class in class_lineage(name)]


def check_ci_class(ci_class: str) -> str:
    if ci_class not in CI_CLASSES:
        raise ITSMError("CI class %r is unknown; use one of %s" % (ci_class, ", ".join(sorted(CI_CLASSES))))
    return ci_class


def check_relation_type(name: str, known: Optional[List[str]] = None) -> str:
    names = list(known if known is not None else RELATION_TYPES)
    if name not in names:
        raise ITSMError("relation type %r is unknown; use one of %s" % (name, ", ".join(names)))
    return name


# Incidents (ServiceNow "Incident [incident]" table, state choices): New 1, In Progress 2, On Hold 3,
# Resolved 6, Closed 7, Canceled 8.
INCIDENT_STATE_VALUES: Dict[str, str] = {
    "new": "1",
    "in_progress": "2",
    "on_hold": "3",
    "resolved": "6",
    "closed": "7",
    "canceled": "8",
}
INCIDENT_STATE_NAMES: Dict[str, str] = {value: name for name, value in INCIDENT_STATE_VALUES.items()}
# States in which service is restored: an incident there is not resolved again.
INCIDENT_RESOLVED_STATES = ("resolved", "closed")
# The ledger's incident severities are ServiceNow's priority labels (1 - Critical, 2 - High, 3 - Moderate,
# 4 - Low, 5 - Planning). An instance computes priority from impact and urgency (1 high, 2 medium, 3 low)
# through its default priority lookup, so a severity is sent as the impact/urgency pair that yields it.
INCIDENT_SEVERITIES = ("critical", "high", "moderate", "low")
SEVERITY_IMPACT_URGENCY: Dict[str, Tuple[str, str]] = {
    "critical": ("1", "1"),
    "high": ("1", "2"),
    "moderate": ("2", "2"),
    "low": ("2", "3"),
}
PRIORITY_LOOKUP: Dict[Tuple[str, str], str] = {
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
PRIORITY_SEVERITY: Dict[str, str] = {"1": "critical", "2": "high", "3": "moderate", "4": "low", "5": "low"}


def incident_state_value(name: str) -> str:
    if name not in INCIDENT_STATE_VALUES:
        raise ITSMError("incident state %r is unknown; use one of %s" % (name, ", ".join(INCIDENT_STATE_VALUES)))
    return INCIDENT_STATE_VALUES[name]


def incident_state_name(value: str) -> str:
    return INCIDENT_STATE_NAMES.get(str(value), str(value))


def check_severity(severity: str) -> Tuple[str, str]:
    """Return the (impact, urgency) that gives a severity, failing with the valid names."""
    if severity not in SEVERITY_IMPACT_URGENCY:
        raise ITSMError("incident severity %r is unknown; use one of %s" % (severity, ", ".join(INCIDENT_SEVERITIES)))
    return SEVERITY_IMPACT_URGENCY[severity]
