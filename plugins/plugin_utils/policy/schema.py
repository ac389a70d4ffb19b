# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON Schema every change-governance policy file must satisfy (docs/governance.md)."""

from __future__ import annotations

from typing import Any, Dict

RISK_LEVELS = ("low", "moderate", "high", "very_high")
CHANGE_TYPES = ("standard", "normal", "emergency")
ROUTES = ("automatic", "peer", "cab")
BACKEND_MODES = ("fail_closed", "fail_open")
# Facts the risk, change-type and route rules may read (risk_assess computes them).
FACTS = (
    "release_class",
    "ci_criticality",
    "blast_radius",
    "business_services",
    "change_failure_rate",
    "tests_passed",
    "test_count",
    "line_coverage",
    "files_changed",
    "migrations",
    "irreversible_migrations",
    "days_since_incident",
    "template_match",
)
# Route rules may also read what the risk and change-type rules concluded.
ROUTE_FACTS = (*FACTS, "risk", "change_type", "score")
# Gate checks an exemption may waive; segregation of duties and approvals never.
EXEMPTABLE_CHECKS = ("blackout", "stabilization", "readiness", "conflict", "maintenance_window")

_SCALAR = {"type": ["string", "number", "boolean"]}
_RANGE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"at_least": {"type": "number"}, "below": {"type": "number"}},
}
_CONDITION = {
    "type": "object",
    "propertyNames": {"enum": list(ROUTE_FACTS)},
    "additionalProperties": {"oneOf": [{"type": "array", "minItems": 1, "items": _SCALAR}, _RANGE]},
}
_RULE_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"}
_SECONDS = {"type": "integer", "minimum": 0}

POLICY_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "risk_levels", "rules"],
    "properties": {
        "version": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "risk_levels": {
            "type": "object",
            "additionalProperties": False,
            "required": list(RISK_LEVELS),
            "properties": {level: {"type": "number", "minimum": 0} for level in RISK_LEVELS},
        },
        "rules": {
            "type": "object",
            "additionalProperties": False,
            "required": ["risk", "change_type", "route"],
            "properties": {
                "risk": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "fact"],
                        "properties": {
                            "id": _RULE_ID,
                            "fact": {"enum": list(FACTS)},
                            "description": {"type": "string"},
                            "weight": {"type": "number", "minimum": 0},
                            "points": {
                                "type": "object",
                                "minProperties": 1,
                                "additionalProperties": {"type": "number"},
                            },
                            "bands": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["points"],
                                    "properties": {"below": {"type": "number"}, "points": {"type": "number"}},
                                },
                            },
                            "missing": {"type": "number"},
                        },
                        "oneOf": [{"required": ["points"]}, {"required": ["bands"]}],
                    },
                },
                "floors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "when", "at_least"],
                        "properties": {
                            "id": _RULE_ID,
                            "description": {"type": "string"},
                            "when": _CONDITION,
                            "at_least": {"enum": list(RISK_LEVELS)},
                        },
                    },
                },
                "change_type": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "type"],
                        "properties": {
                            "id": _RULE_ID,
                            "description": {"type": "string"},
                            "when": _CONDITION,
                            "type": {"enum": list(CHANGE_TYPES)},
                        },
                    },
                },
                "route": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "route"],
                        "properties": {
                            "id": _RULE_ID,
                            "description": {"type": "string"},
                            "when": _CONDITION,
                            "route": {"enum": list(ROUTES)},
                        },
                    },
                },
            },
        },
        "standard_templates": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "sys_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "description": {"type": "string"},
                    "services": {"type": "array", "items": {"type": "string"}},
                    "release_classes": {"type": "array", "items": {"type": "string"}},
                    "max_files_changed": {"type": "integer", "minimum": 0},
                    "allow_migrations": {"type": "boolean"},
                },
            },
        },
        "stabilization": {
            "type": "object",
            "additionalProperties": False,
            "properties": dict.fromkeys(RISK_LEVELS, _SECONDS),
        },
        "gate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "emergency_during_blackout": {"enum": ["allow", "exemption_required", "deny"]},
                "require_readiness": {"type": "boolean"},
                "require_maintenance_window": {"type": "boolean"},
                "lower_environments": {"type": "array", "items": {"type": "string"}},
                "change_failure_window": {"type": "integer", "minimum": 1},
                "wait_timeout": _SECONDS,
            },
        },
        "environments": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enforced": {"type": "boolean"},
                    "signatures_required": {"type": "integer", "minimum": 0},
                    "audit_required": {"type": "boolean"},
                    "quality_required": {"type": "boolean"},
                    "stabilization_required": {"type": "boolean"},
                    "segregation_of_duties": {"type": "boolean"},
                    "strategies": {"type": "array", "minItems": 1, "items": {"enum": ["blue_green", "canary"]}},
                    "permit_lifetime": _SECONDS,
                },
            },
        },
        "exemptions": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_days": {"type": "integer", "minimum": 1},
                "exemptable": {"type": "array", "items": {"enum": list(EXEMPTABLE_CHECKS)}},
            },
        },
        "backends": {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: {"enum": list(BACKEND_MODES)} for name in ("itsm", "calendar", "ledger")},
        },
        "calendars": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["ics", "yaml", "windows", "servicenow"]}},
            },
        },
    },
}
