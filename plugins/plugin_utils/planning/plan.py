# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release plan: its JSON Schema, validation with paths in the errors, and the parsed model.

A plan is YAML (or any mapping); YAML's own date values are turned back into ISO text first, so a
date written with or without quotes means the same thing. Dates are ``YYYY-MM-DD`` (midnight UTC)
or RFC 3339 times; a window's ``end`` date is inclusive (the release runs through that day).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:  # reported when a plan is validated
    HAS_JSONSCHEMA = False

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp

CLASSES = ("strategic", "operational", "emergency")
UTC = datetime.timezone.utc
DAY = datetime.timedelta(days=1)

_DATE_RE = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$"
_DATE = {"type": "string", "title": "date", "pattern": _DATE_RE}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}

_GOVERNANCE_CLASS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "approvals": _NAMES,
        "stakeholders": _NAMES,
        "required_milestones": _NAMES,
        "min_lead_days": {"type": "integer", "minimum": 0},
    },
}

PLAN_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "relops.release release plan",
    "type": "object",
    "additionalProperties": False,
    "required": ["releases"],
    "properties": {
        "name": {"type": "string"},
        "buffer_days": {"type": "integer", "minimum": 0},
        "related_depth": {"type": "integer", "minimum": 0, "maximum": 5},
        "default_tz": {"type": "string"},
        "calendars": {"type": "array", "items": {"type": "object"}},
        "governance": {
            "type": "object",
            "additionalProperties": False,
            "properties": dict.fromkeys(CLASSES, _GOVERNANCE_CLASS),
        },
        "releases": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "class", "quarter", "start"],
                "properties": {
                    "id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"},
                    "title": {"type": "string"},
                    "class": {"enum": list(CLASSES)},
                    "quarter": {"type": "string", "pattern": r"^\d{4}-Q[1-4]$"},
                    "business_unit": {"type": "string"},
                    "service": {"type": "string"},
                    "environment": {"type": "string"},
                    "start": _DATE,
                    "end": _DATE,
                    "milestones": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "date"],
                            "properties": {"name": {"type": "string", "minLength": 1}, "date": _DATE},
                        },
                    },
                    "scope": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["id", "type"],
                            "properties": {
                                "id": {"type": "string", "minLength": 1},
                                "type": {"enum": ["feature", "compliance"]},
                                "title": {"type": "string"},
                                "deadline": _DATE,
                            },
                            "if": {"properties": {"type": {"const": "compliance"}}},
                            "then": {"required": ["deadline"]},
                        },
                    },
                    "vendors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["vendor", "date"],
                            "properties": {
                                "vendor": {"type": "string", "minLength": 1},
                                "delivery": {"type": "string"},
                                "date": _DATE,
                                "buffer_days": {"type": "integer", "minimum": 0},
                            },
                        },
                    },
                    "depends_on": _NAMES,
                    "cis": _NAMES,
                },
            },
        },
    },
}


class PlanError(Exception):
    """The plan cannot be analysed; the message names the place in the plan and the fix."""


@dataclass(frozen=True)
class Milestone:
    name: str
    at: datetime.datetime


@dataclass(frozen=True)
class ScopeItem:
    """A feature or compliance item; a compliance item must be delivered before ``limit``."""

    id: str
    type: str
    title: str
    deadline: Optional[str]
    limit: Optional[datetime.datetime]


@dataclass(frozen=True)
class VendorDelivery:
    vendor: str
    delivery: str
    at: datetime.datetime
    buffer_days: int


@dataclass
class Release:
    """One release; ``start`` inclusive and ``end`` exclusive, aware UTC."""

    id: str
    title: str
    klass: str
    quarter: str
    business_unit: str
    start: datetime.datetime
    end: datetime.datetime
    service: Optional[str] = None
    environment: Optional[str] = None
    milestones: List[Milestone] = field(default_factory=list)
    scope: List[ScopeItem] = field(default_factory=list)
    vendors: List[VendorDelivery] = field(default_factory=list)
    depends_on: List[str] = field(default_factory=list)
    cis: List[str] = field(default_factory=list)


@dataclass
class Plan:
    name: str
    buffer_days: int
    related_depth: int
    default_tz: str
    calendars: List[Dict[str, Any]]
    governance: Dict[str, Dict[str, Any]]
    releases: List[Release]

    def by_id(self) -> Dict[str, Release]:
        return {release.id: release for release in self.releases}


def normalize(document: Any) -> Any:
    """Turn YAML's date and datetime values back into ISO text, recursively."""
    if isinstance(document, Mapping):
        return {str(key): normalize(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [normalize(value) for value in document]
    if isinstance(document, datetime.datetime):
        moment = document if document.tzinfo else document.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(document, datetime.date):
        return document.isoformat()
    return document


def require_library(available: bool, package: str, purpose: str) -> None:
    """Fail with the install command when a controller-side Python package is missing."""
    if not available:
        raise PlanError(
            "%s needs the Python package %r on the controller; install it (pip install %s, or "
            "pip install -r requirements.txt from the collection)" % (purpose, package, package)
        )


def validate(document: Any) -> List[str]:
    """Return every schema violation as ``path: message``, in document order."""
    require_library(HAS_JSONSCHEMA, "jsonschema", "validating a release plan")
    validator = jsonschema.Draft202012Validator(PLAN_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda error: [str(part) for part in error.absolute_path])
    return [describe_error(error) for error in errors]


def describe_error(error: Any) -> str:
    where = format_path(error.absolute_path)
    if error.validator == "pattern" and error.schema.get("title") == "date":
        return "%s: %r is not a date; write YYYY-MM-DD or an RFC 3339 time such as 2027-01-25T09:00:00Z" % (
            where,
            error.instance,
        )
    if error.validator == "additionalProperties":
        return "%s: %s; remove it or check its spelling" % (where, error.message)
    return "%s: %s" % (where, error.message)


def format_path(path: Sequence[Any]) -> str:
    text = "plan"
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ".%s" % part
    return text


def load_plan(document: Any) -> Plan:
    """Validate and parse a plan; raise PlanError listing every problem found."""
    document = normalize(document)
    problems = validate(document)
    if problems:
        raise PlanError("release plan is invalid:\n  " + "\n  ".join(problems))
    releases: List[Release] = []
    problems = []
    for index, item in enumerate(document["releases"]):
        try:
            releases.append(_parse_release(item, "plan.releases[%d]" % index))
        except PlanError as exc:
            problems.append(str(exc))
    problems.extend(_duplicate_ids(releases))
    if problems:
        raise PlanError("release plan is invalid:\n  " + "\n  ".join(problems))
    return Plan(
        name=document.get("name", "release plan"),
        buffer_days=int(document.get("buffer_days", 0)),
        related_depth=int(document.get("related_depth", 1)),
        default_tz=document.get("default_tz", "UTC"),
        calendars=list(document.get("calendars", [])),
        governance=document.get("governance", {}),
        releases=releases,
    )


def _parse_release(item: Mapping[str, Any], where: str) -> Release:
    start, start_is_date = parse_when(item["start"], where + ".start")
    if "end" in item:
        end, end_is_date = parse_when(item["end"], where + ".end")
        end = end + DAY if end_is_date else end
    else:
        end = start + DAY if start_is_date else start
    if end <= start:
        raise PlanError(
            "%s.end: %s ends before it starts (%s); give an end on or after the start"
            % (where, item.get("end"), item["start"])
        )
    return Release(
        id=item["id"],
        title=item.get("title", item["id"]),
        klass=item["class"],
        quarter=item["quarter"],
        business_unit=item.get("business_unit", ""),
        service=item.get("service"),
        environment=item.get("environment"),
        start=start,
        end=end,
        milestones=[
            Milestone(m["name"], parse_when(m["date"], "%s.milestones[%d].date" % (where, i))[0])
            for i, m in enumerate(item.get("milestones", []))
        ],
        scope=[_parse_scope(s, "%s.scope[%d]" % (where, i)) for i, s in enumerate(item.get("scope", []))],
        vendors=[
            VendorDelivery(
                vendor=v["vendor"],
                delivery=v.get("delivery", ""),
                at=parse_when(v["date"], "%s.vendors[%d].date" % (where, i))[0],
                buffer_days=v.get("buffer_days", -1),
            )
            for i, v in enumerate(item.get("vendors", []))
        ],
        depends_on=list(item.get("depends_on", [])),
        cis=list(item.get("cis", [])),
    )


def _parse_scope(item: Mapping[str, Any], where: str) -> ScopeItem:
    limit = None
    if "deadline" in item:
        # A bare deadline date means "by the end of that day".
        moment, is_date = parse_when(item["deadline"], where + ".deadline")
        limit = moment + DAY if is_date else moment
    return ScopeItem(item["id"], item["type"], item.get("title", item["id"]), item.get("deadline"), limit)


def parse_when(text: str, where: str) -> Tuple[datetime.datetime, bool]:
    """Parse a plan date (midnight UTC) or RFC 3339 time; return it and whether it was a bare date."""
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            day = datetime.date.fromisoformat(text)
            return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC), True
        return parse_timestamp(text), False
    except ValueError:
        raise PlanError(
            "%s: %r is not a valid date; write YYYY-MM-DD with a real day of the month" % (where, text)
        ) from None


def _duplicate_ids(releases: Sequence[Release]) -> List[str]:
    seen: Dict[str, int] = {}
    problems = []
    for index, release in enumerate(releases):
        if release.id in seen:
            problems.append(
                "plan.releases[%d].id: %r is already release %d; give each release its own id"
                % (index, release.id, seen[release.id])
            )
        seen.setdefault(release.id, index)
    return problems
