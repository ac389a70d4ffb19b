# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pre-deployment readiness review: a checklist with pass/fail per item.

Items: a rollback plan, a rehearsed rollback (the ledger shows this version
rolled back in a lower environment) unless the release declares why none is
needed, a communication schedule, an on-call roster covering the whole
planned window, a runbook reference, and declared dependencies already
deployed in the target environment.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError

from .times import parse_moment

# libyaml when PyYAML has it: rosters list hundreds of shifts.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

READINESS_KEYS = ("rollback", "communication", "roster", "runbook", "dependencies")
Window = Tuple[datetime.datetime, datetime.datetime]
# The readiness options readiness_check takes and change_gate takes under readiness.
READINESS_OPTIONS: Dict[str, Dict[str, Any]] = {
    "manifest": {"type": "path"},
    "rollback": {
        "type": "dict",
        "options": {"plan": {"type": "str"}, "not_needed": {"type": "str"}},
    },
    "communication": {"type": "list", "elements": "dict"},
    "roster": {"type": "path"},
    "runbook": {"type": "str"},
    "dependencies": {"type": "list", "elements": "dict"},
}


def merge_manifest(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """Task options over the ``readiness`` section of a release manifest file (YAML or JSON)."""
    merged: Dict[str, Any] = {}
    path = spec.get("manifest")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                document = yaml.load(handle, Loader=SafeLoader) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LedgerError(
                "cannot read the release manifest %s (%s); fix the path or the file" % (path, exc)
            ) from None
        section = document.get("readiness") if isinstance(document, dict) else None
        if section is not None and not isinstance(section, dict):
            raise LedgerError("%s: readiness must be a mapping of %s" % (path, ", ".join(READINESS_KEYS)))
        merged.update(section or {})
        base = os.path.dirname(os.path.abspath(path))
        if isinstance(merged.get("roster"), str) and not os.path.isabs(merged["roster"]):
            merged["roster"] = os.path.join(base, merged["roster"])
    for key in READINESS_KEYS:
        if spec.get(key) not in (None, [], {}):
            merged[key] = spec[key]
    return merged


def review(
    spec: Mapping[str, Any],
    ledger: Optional[Ledger],
    window: Optional[Window],
    lower_environments: Sequence[str],
) -> List[Dict[str, Any]]:
    """Return the checklist: one ``{item, passed, detail}`` per readiness item."""
    declared = merge_manifest(spec)
    rollback = declared.get("rollback") or {}
    checklist = _rollback_items(spec, rollback, ledger, lower_environments)
    checklist.append(_communication(declared.get("communication"), window))
    checklist.append(_on_call(declared.get("roster"), window))
    runbook = declared.get("runbook")
    checklist.append(
        _item("runbook", bool(runbook), "runbook %s" % runbook if runbook else "no runbook reference declared")
    )
    checklist.append(_dependencies(declared.get("dependencies") or [], ledger, spec["environment"]))
    return checklist


def _item(name: str, passed: bool, detail: str, **extra: Any) -> Dict[str, Any]:
    return {"item": name, "passed": passed, "detail": detail, **extra}


def _rollback_items(
    spec: Mapping[str, Any], rollback: Mapping[str, Any], ledger: Optional[Ledger], lower: Sequence[str]
) -> List[Dict[str, Any]]:
    not_needed = rollback.get("not_needed")
    if not_needed:
        why = "no rollback needed: %s" % not_needed
        return [_item("rollback_plan", True, why), _item("rollback_rehearsed", True, why)]
    plan = rollback.get("plan")
    items = [_item("rollback_plan", bool(plan), "plan %s" % plan if plan else "no rollback plan declared")]
    rehearsals = ledger.rollback_rehearsals(spec["service"], spec["version"], lower) if ledger else []
    if rehearsals:
        newest = rehearsals[0]
        items.append(
            _item(
                "rollback_rehearsed",
                True,
                "version %s was rolled back in %s at %s"
                % (spec["version"], newest["environment"], newest["finished_at"] or newest["started_at"]),
            )
        )
    else:
        items.append(
            _item(
                "rollback_rehearsed",
                False,
                "the ledger shows no rollback of %s %s in %s; rehearse one there, or declare rollback.not_needed"
                % (spec["service"], spec["version"], ", ".join(lower) or "a lower environment"),
            )
        )
    return items


def _communication(schedule: Any, window: Optional[Window]) -> Dict[str, Any]:
    if not schedule:
        return _item("communication", False, "no communication schedule declared (communication: [{at, channel}])")
    if not isinstance(schedule, list):
        return _item("communication", False, "communication must be a list of {at, channel, audience}")
    missing = [index for index, entry in enumerate(schedule) if not (isinstance(entry, dict) and entry.get("channel"))]
    if missing:
        return _item("communication", False, "communication[%d] has no channel" % missing[0])
    if window is not None:
        before = [entry for entry in schedule if entry.get("at") and parse_moment(str(entry["at"])) <= window[0]]
        if not before:
            return _item(
                "communication",
                False,
                "no announcement is scheduled before the planned start %s" % format_timestamp(window[0]),
            )
    channels = sorted({str(entry["channel"]) for entry in schedule})
    return _item("communication", True, "%d announcement(s) on %s" % (len(schedule), ", ".join(channels)))


def _on_call(roster: Any, window: Optional[Window]) -> Dict[str, Any]:
    if not roster:
        return _item("on_call", False, "no on-call roster declared (roster: path to a roster file)", gaps=[])
    if window is None:
        return _item("on_call", False, "no planned window to check the roster against", gaps=[])
    shifts = load_roster(str(roster))
    gaps = roster_gaps(shifts, window)
    if gaps:
        shown = ", ".join("%s to %s" % (gap["start"], gap["end"]) for gap in gaps)
        return _item("on_call", False, "roster %s leaves the window uncovered: %s" % (roster, shown), gaps=gaps)
    people = sorted({shift[2] for shift in shifts if shift[0] < window[1] and shift[1] > window[0]})
    return _item("on_call", True, "roster covers the whole window (%s)" % ", ".join(people), gaps=[])


def load_roster(path: str) -> List[Tuple[datetime.datetime, datetime.datetime, str]]:
    """Shifts from a roster file: ``shifts: [{who, start, end}]`` with RFC 3339 times."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=SafeLoader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LedgerError("cannot read the on-call roster %s (%s); fix the path or the YAML" % (path, exc)) from None
    entries = document.get("shifts") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise LedgerError("roster %s needs a list under shifts: [{who, start, end}]" % path)
    shifts = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(entry.get(key) for key in ("who", "start", "end")):
            raise LedgerError("roster %s: shifts[%d] needs who, start and end" % (path, index))
        try:
            start, end = parse_moment(str(entry["start"])), parse_moment(str(entry["end"]))
        except ValueError as exc:
            raise LedgerError("roster %s: shifts[%d]: %s" % (path, index, exc)) from None
        if end <= start:
            raise LedgerError("roster %s: shifts[%d] ends before it starts" % (path, index))
        shifts.append((start, end, str(entry["who"])))
    return shifts


def roster_gaps(
    shifts: Sequence[Tuple[datetime.datetime, datetime.datetime, str]], window: Window
) -> List[Dict[str, str]]:
    """The parts of the window no shift covers."""
    gaps: List[Dict[str, str]] = []
    covered_until = window[0]
    for start, end, _who in sorted(shifts):
        if end <= covered_until:
            continue
        if start > covered_until:
            gap_end = min(start, window[1])
            gaps.append({"start": format_timestamp(covered_until), "end": format_timestamp(gap_end)})
        covered_until = max(covered_until, end)
        if covered_until >= window[1]:
            break
    if covered_until < window[1]:
        gaps.append({"start": format_timestamp(covered_until), "end": format_timestamp(window[1])})
    return [gap for gap in gaps if gap["start"] < gap["end"]]


def _dependencies(declared: Any, ledger: Optional[Ledger], environment: str) -> Dict[str, Any]:
    if not isinstance(declared, list):
        return _item("dependencies", False, "dependencies must be a list of {service, version}")
    if not declared:
        return _item("dependencies", True, "no dependencies declared")
    missing: List[str] = []
    for entry in declared:
        if not isinstance(entry, dict) or not entry.get("service"):
            return _item("dependencies", False, "each dependency needs a service (and optionally a minimum version)")
        deployed = ledger.deployed_versions(str(entry["service"]), environment) if ledger else []
        wanted = entry.get("version")
        if not deployed:
            missing.append("%s is not deployed in %s" % (entry["service"], environment))
        elif wanted and not _at_least(deployed[0], str(wanted)):
            missing.append(
                "%s %s is deployed in %s, %s or later is needed" % (entry["service"], deployed[0], environment, wanted)
            )
    if missing:
        return _item("dependencies", False, "; ".join(missing))
    return _item("dependencies", True, "%d dependenc(ies) deployed in %s" % (len(declared), environment))


def _at_least(deployed: str, wanted: str) -> bool:
    # Imported here: only declared dependencies with a version need semver, and every collection module is
    # compiled from source on import (Ansible's collection loader keeps no byte-code).
    from ansible_collections.relops.release.plugins.module_utils.versions import VersionError  # noqa: PLC0415
    from ansible_collections.relops.release.plugins.plugin_utils.artifacts import versioning  # noqa: PLC0415

    try:
        return versioning.compare(deployed, wanted, "semver") >= 0
    except VersionError:
        return deployed == wanted
