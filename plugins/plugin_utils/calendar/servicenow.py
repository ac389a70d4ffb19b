# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ServiceNow blackout and maintenance schedules as iCalendar events.

A schedule (``cmn_schedule_blackout`` or ``cmn_schedule_maintenance``) has a
time zone; its entries (``cmn_schedule_span``) have local start and end
date-times, an all-day flag and a repetition (``repeat_type`` daily,
weekdays, weekends, weekly on ``days_of_week``, monthly, yearly; every
``repeat_count``; ``repeat_until``). Each entry becomes one VEVENT with the
matching RRULE, so ServiceNow schedules get the same DST handling as ICS files.
A ``floating`` (or empty) schedule time zone is read in the source's time zone.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, List, Mapping, Optional

from .model import CalendarError
from .zones import localize, resolve_zone

REPEATS = {
    "": None,
    "daily": "FREQ=DAILY",
    "weekdays": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    "weekends": "FREQ=WEEKLY;BYDAY=SA,SU",
    "weekly": "FREQ=WEEKLY",
    "monthly": "FREQ=MONTHLY",
    "yearly": "FREQ=YEARLY",
}
# ServiceNow numbers days of the week 1 (Monday) to 7 (Sunday).
WEEKDAYS = {"1": "MO", "2": "TU", "3": "WE", "4": "TH", "5": "FR", "6": "SA", "7": "SU"}
_SCHEDULE_TIME = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):?(\d{2}):?(\d{2}))?$")


def schedule_to_ics(schedule: Mapping[str, Any], where: str) -> bytes:
    """Render a schedule record (with its ``spans``) as a VCALENDAR."""
    zone = str(schedule.get("time_zone") or "").strip()
    floating = zone == "" or zone.lower() == "floating"
    if not floating:
        resolve_zone(zone, "%s: schedule time_zone" % where)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//relops.release//servicenow schedule//EN"]
    for index, span in enumerate(schedule.get("spans", [])):
        lines.extend(_event(span, index, None if floating else zone, "%s entry %d" % (where, index + 1)))
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _event(span: Mapping[str, Any], index: int, zone: Optional[str], where: str) -> List[str]:
    name = str(span.get("name") or "entry %d" % (index + 1))
    start = _schedule_time(span.get("start_date_time"), where, "start_date_time")
    end = _schedule_time(span.get("end_date_time"), where, "end_date_time")
    all_day = str(span.get("all_day", "")).lower() == "true"
    lines = ["BEGIN:VEVENT", "UID:%s" % (span.get("sys_id") or "span-%d" % index), "SUMMARY:%s" % _escape(name)]
    if all_day:
        # An all-day entry covers whole days from its start date through its end date.
        midnight_after = end.time() == datetime.time() and end.date() > start.date()
        last = end.date() if midnight_after else end.date() + datetime.timedelta(days=1)
        lines.append("DTSTART;VALUE=DATE:%s" % start.strftime("%Y%m%d"))
        lines.append("DTEND;VALUE=DATE:%s" % last.strftime("%Y%m%d"))
    else:
        if end <= start:
            raise CalendarError("%s: end_date_time is not after start_date_time; fix the schedule entry" % where)
        prefix = ";TZID=%s" % zone if zone else ""
        lines.append("DTSTART%s:%s" % (prefix, start.strftime("%Y%m%dT%H%M%S")))
        lines.append("DTEND%s:%s" % (prefix, end.strftime("%Y%m%dT%H%M%S")))
    rule = _rule(span, where, all_day, zone)
    if rule:
        lines.append("RRULE:%s" % rule)
    lines.append("END:VEVENT")
    return lines


def _rule(span: Mapping[str, Any], where: str, all_day: bool, zone: Optional[str]) -> Optional[str]:
    repeat = str(span.get("repeat_type") or "").strip()
    if repeat not in REPEATS:
        raise CalendarError(
            "%s: repeat_type %r is not supported; use one of %s" % (where, repeat, ", ".join(r for r in REPEATS if r))
        )
    base = REPEATS[repeat]
    if base is None:
        return None
    parts = [base]
    count = str(span.get("repeat_count") or "1").strip()
    if not count.isdigit() or int(count) < 1:
        raise CalendarError("%s: repeat_count %r must be a positive whole number" % (where, count))
    if int(count) > 1:
        parts.append("INTERVAL=%s" % count)
    days = str(span.get("days_of_week") or "").strip()
    if repeat == "weekly" and days:
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown:
            raise CalendarError("%s: days_of_week %r must be digits 1 (Monday) to 7 (Sunday)" % (where, days))
        parts.append("BYDAY=%s" % ",".join(WEEKDAYS[d] for d in sorted(set(days))))
    until = str(span.get("repeat_until") or "").strip()
    if until:
        moment = _schedule_time(until, where, "repeat_until")
        # Inclusive end date; UNTIL keeps DTSTART's value type (RFC 5545 3.3.10).
        parts.append("UNTIL=%s" % _until(moment, all_day, zone, where))
    return ";".join(parts)


def _until(moment: datetime.datetime, all_day: bool, zone: Optional[str], where: str) -> str:
    if all_day:
        return moment.strftime("%Y%m%d")
    last = datetime.datetime.combine(moment.date(), datetime.time(23, 59, 59))
    if zone is None:
        return last.strftime("%Y%m%dT%H%M%S")
    return localize(last, resolve_zone(zone, where)).strftime("%Y%m%dT%H%M%SZ")


def _schedule_time(value: Any, where: str, field: str) -> datetime.datetime:
    """Schedule date-times come as 20261224T000000 (internal) or 2026-12-24 00:00:00 (display)."""
    match = _SCHEDULE_TIME.match(str(value or "").strip())
    if not match:
        raise CalendarError("%s: %s %r is not a schedule date-time such as 20261224T000000" % (where, field, value))
    parts = [int(p) if p else 0 for p in match.groups()]
    try:
        return datetime.datetime(*parts)  # type: ignore[arg-type]
    except ValueError as exc:
        raise CalendarError("%s: %s %r is not a valid date-time (%s)" % (where, field, value, exc)) from None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def schedule_summary(schedule: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: schedule.get(k) for k in ("sys_id", "name", "kind", "time_zone")}
