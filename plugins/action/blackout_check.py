# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.blackout_check (documentation in plugins/modules/blackout_check.py)."""

from __future__ import annotations

import contextlib
import datetime
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.calendar import (
    Answer,
    CalendarError,
    CalendarUnavailable,
    Window,
    evaluate,
    load_windows,
)
from ansible_collections.relops.release.plugins.plugin_utils.calendar.zones import localize, resolve_zone
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "calendars": {"type": "list", "elements": "dict", "required": True},
    "timezone": {"type": "str", "default": "UTC"},
    "now": {"type": "str"},
    "planned_start": {"type": "str"},
    "planned_end": {"type": "str"},
    "service": {"type": "str"},
    "ci": {"type": "list", "elements": "str"},
    "environment": {"type": "str"},
    "business_unit": {"type": "str"},
    "horizon_days": {"type": "int", "default": 366},
    "fail_on_deny": {"type": "bool", "default": False},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return self._check(args)
        except (CalendarError, ITSMError) as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}

    def _check(self, args: Dict[str, Any]) -> Dict[str, Any]:
        zone = resolve_zone(args["timezone"], "timezone")
        if args["horizon_days"] < 1:
            raise CalendarError("horizon_days %r must be at least 1" % args["horizon_days"])
        now = _moment(args["now"], zone, "now") if args.get("now") else utc_now()
        planned = _planned(args, zone)
        scope = {k: args[k] for k in ("service", "ci", "environment", "business_unit") if args.get(k)}
        windows, unavailable = self._load(args)
        answer = evaluate(
            windows, now=now, planned=planned, scope=scope, horizon=datetime.timedelta(days=args["horizon_days"])
        )
        decision, reasons = _decide(answer, unavailable)
        result: Dict[str, Any] = dict(
            answer.as_dict(), changed=False, decision=decision, reasons=reasons, unavailable=unavailable
        )
        self.audit("blackout_check", decision=decision, reasons=reasons, scope=scope, planned=result["planned"])
        if decision == "deny" and args["fail_on_deny"]:
            result.update(failed=True, msg="blackout_check denies: " + "; ".join(reasons))
        return result

    def _load(self, args: Dict[str, Any]) -> Tuple[List[Window], List[str]]:
        """Load each calendar; one that cannot be fetched is reported, not fatal (the answer fails closed)."""
        windows: List[Window] = []
        unavailable: List[str] = []
        base_dir = self.playbook_dir()
        with self._backend_for(args) as backend:
            for source in args["calendars"]:
                try:
                    windows.extend(load_windows([source], args["timezone"], base_dir, backend))
                except CalendarUnavailable as exc:
                    unavailable.append(str(exc))
        return windows, unavailable

    @contextlib.contextmanager
    def _backend_for(self, args: Dict[str, Any]) -> Iterator[Optional[ItsmBackend]]:
        """Open the ITSM backend only when a ServiceNow schedule is asked for."""
        if not any(isinstance(s, dict) and s.get("type") == "servicenow" for s in args["calendars"]):
            yield None
            return
        with self.itsm_backend(args, write=False) as backend:
            yield backend


def _moment(text: str, zone: datetime.tzinfo, what: str) -> datetime.datetime:
    """An RFC 3339 time; without an offset it is read on the wall clock of ``timezone``."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(candidate)
    except ValueError:
        raise CalendarError(
            "%s %r is not a date-time; use RFC 3339 such as 2026-12-24T18:00:00+01:00 or a local 2026-12-24T18:00"
            % (what, text)
        ) from None
    if moment.tzinfo is None:
        return localize(moment, zone)
    return moment.astimezone(datetime.timezone.utc)


def _planned(args: Dict[str, Any], zone: datetime.tzinfo) -> Optional[Tuple[datetime.datetime, datetime.datetime]]:
    start, end = args.get("planned_start"), args.get("planned_end")
    if bool(start) != bool(end):
        raise CalendarError("give both planned_start and planned_end, or neither")
    if not start or not end:
        return None
    return _moment(start, zone, "planned_start"), _moment(end, zone, "planned_end")


def _decide(answer: Answer, unavailable: List[str]) -> Tuple[str, List[str]]:
    """deny when a calendar is unreachable (fail closed), the window meets a blackout, or misses maintenance."""
    reasons = ["calendar unavailable, failing closed: %s" % message for message in unavailable]
    if answer.planned:
        reasons.extend(
            "planned window overlaps blackout %r (%s to %s, %s)"
            % (hit.name, hit.as_dict()["start"], hit.as_dict()["end"], hit.source)
            for hit in answer.overlapping
            if hit.kind == "blackout"
        )
    else:
        reasons.extend(
            "in blackout %r now (%s to %s, %s)" % (hit.name, hit.as_dict()["start"], hit.as_dict()["end"], hit.source)
            for hit in answer.current
            if hit.kind == "blackout"
        )
    if answer.outside_maintenance:
        reasons.append(
            "the %s is outside every maintenance window" % ("planned window" if answer.planned else "current time")
        )
    return ("deny" if reasons else "allow"), reasons
