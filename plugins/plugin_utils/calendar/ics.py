# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iCalendar (RFC 5545) windows through icalendar and recurring-ical-events.

recurring-ical-events expands RRULE, RDATE, EXDATE and RECURRENCE-ID
overrides; this module decides each occurrence's end:

* ``DTEND`` on a recurring event: every instance gets the *exact* duration
  of the first (RFC 5545 section 3.8.5.3), so a Saturday 22:00 to Sunday
  06:00 freeze lasts eight elapsed hours on the night clocks change too
  (ending 07:00 after spring-forward, 05:00 after fall-back).
  ``dtend: wall_clock`` on the source reads DTEND as a wall-clock reading instead.
* ``DURATION``: days and weeks are nominal (wall clock), hours, minutes
  and seconds exact (RFC 5545 section 3.3.6). ``DURATION:P1D`` on a
  midnight start always ends at the next midnight.
* All-day (DATE) and floating events are read in the source's time zone.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Set, Tuple

from .model import UTC, CalendarError, Span
from .zones import add_nominal_days, to_utc

DTEND_MODES = ("exact", "wall_clock")
# An occurrence's end can differ from the library's by the DST shift; widen the query so none is missed.
_MARGIN = datetime.timedelta(days=2)
_CHUNK = datetime.timedelta(days=31)


def _libraries() -> Tuple[Any, Any]:
    """icalendar and recurring_ical_events, imported on first use.

    Imported here, not at the top: the two take about a tenth of a second to load, and a gate whose calendar
    is answered from the expansion cache (calendar/cache.py) or that has no iCalendar source never needs them.
    """
    try:
        import icalendar  # noqa: PLC0415
        import recurring_ical_events  # noqa: PLC0415
    except ImportError:  # pragma: no cover - both are in requirements.txt
        raise CalendarError(
            "iCalendar sources need the icalendar and recurring-ical-events libraries on the controller; "
            "pip install icalendar recurring-ical-events"
        ) from None
    return icalendar, recurring_ical_events


class IcsCalendar:
    """One parsed calendar; ``spans`` answers which events overlap a range."""

    def __init__(self, data: bytes, where: str, floating: datetime.tzinfo, dtend: str = "exact") -> None:
        icalendar, recurring_ical_events = _libraries()
        if dtend not in DTEND_MODES:
            raise CalendarError("%s: dtend must be one of %s, not %r" % (where, ", ".join(DTEND_MODES), dtend))
        self.where = where
        self.floating = floating
        self.dtend = dtend
        self.calendar = _parse(icalendar, data, where)
        self.masters: Dict[str, Any] = {}
        self.overrides: Set[Tuple[str, datetime.datetime]] = set()
        for event in self.calendar.walk("VEVENT"):
            _check_event(event, where)
            uid = str(event.get("UID", ""))
            if "RECURRENCE-ID" in event:
                self.overrides.add((uid, to_utc(event.decoded("RECURRENCE-ID"), floating)))
            else:
                self.masters.setdefault(uid, event)
        try:
            self.expander = recurring_ical_events.of(self.calendar)
        except Exception as exc:  # the library rejects what it cannot expand
            raise CalendarError("%s: the calendar cannot be expanded (%s)" % (where, _short(exc))) from None

    def spans(self, lo: datetime.datetime, hi: datetime.datetime) -> List[Span]:
        try:
            occurrences = self.expander.between(lo - _MARGIN, hi + _MARGIN)
        except Exception as exc:  # the libraries raise many types for bad rules
            raise CalendarError(
                "%s: the calendar's recurrences cannot be expanded (%s); fix the RRULE/RDATE/EXDATE it names"
                % (self.where, exc)
            ) from None
        found: List[Span] = []
        for occurrence in occurrences:
            span = self._span(occurrence)
            if span[1] < hi and span[2] > lo:
                found.append(span)
        return found

    def spans_within(self, lo: datetime.datetime, hi: datetime.datetime, limit: int) -> Optional[List[Span]]:
        """Every span overlapping [lo, hi), or None when there are more than ``limit`` or they cannot be expanded.

        Expands month by month, each occurrence counted in the month its span starts, so a rule firing every
        few minutes stops after a month or so instead of expanding the whole range.
        """
        found: List[Span] = []
        chunk = lo
        try:
            while chunk < hi:
                following = min(chunk + _CHUNK, hi)
                for occurrence in self.expander.between(chunk - _MARGIN, following + _MARGIN):
                    span = self._span(occurrence)
                    first = chunk == lo or span[1] >= chunk
                    if first and span[1] < following and span[2] > lo:
                        found.append(span)
                if len(found) > limit:
                    return None
                chunk = following
        except Exception:  # the same rules fail again, with their message, when a query reaches them
            return None
        found.sort(key=lambda span: (span[1], span[0]))
        return found

    def _span(self, occurrence: Any) -> Span:
        name = str(occurrence.get("SUMMARY") or occurrence.get("UID") or "event")
        begin = occurrence.decoded("DTSTART")
        start = to_utc(begin, self.floating)
        library_end = occurrence.decoded("DTEND") if "DTEND" in occurrence else None
        master = self.masters.get(str(occurrence.get("UID", "")))
        recurrence = occurrence.get("RECURRENCE-ID")
        overridden = (
            recurrence is not None
            and (str(occurrence.get("UID", "")), to_utc(recurrence.dt, self.floating)) in self.overrides
        )
        if master is None or overridden or self.dtend == "wall_clock":
            return name, start, _own_end(occurrence, begin, library_end, start, self.floating)
        if "DURATION" in master:
            return name, start, _duration_end(begin, master.decoded("DURATION"), self.floating)
        if "DTEND" in master:
            first_start = master.decoded("DTSTART")
            first_end = master.decoded("DTEND")
            nominal = first_end - first_start if type(first_start) is type(first_end) else None
            if library_end is not None and nominal is not None and library_end != begin + nominal:
                # An RDATE period or other explicit end the library resolved: keep it.
                return name, start, to_utc(library_end, self.floating)
            if not isinstance(begin, datetime.datetime):
                return name, start, add_nominal_days(begin, (first_end - first_start).days, self.floating)
            exact = to_utc(first_end, self.floating) - to_utc(first_start, self.floating)
            return name, start, start + exact
        return name, start, _default_end(begin, start, self.floating)


def _own_end(
    occurrence: Any,
    begin: Any,
    library_end: Any,
    start: datetime.datetime,
    floating: datetime.tzinfo,
) -> datetime.datetime:
    if "DURATION" in occurrence and library_end is None:
        return _duration_end(begin, occurrence.decoded("DURATION"), floating)
    if library_end is not None:
        return to_utc(library_end, floating)
    return _default_end(begin, start, floating)


def _duration_end(begin: Any, duration: datetime.timedelta, floating: datetime.tzinfo) -> datetime.datetime:
    """Days of a DURATION are nominal (wall clock), the rest exact (RFC 5545 section 3.3.6)."""
    exact = datetime.timedelta(seconds=duration.seconds, microseconds=duration.microseconds)
    return add_nominal_days(begin, duration.days, floating) + exact


def _default_end(begin: Any, start: datetime.datetime, floating: datetime.tzinfo) -> datetime.datetime:
    """An event without DTEND or DURATION lasts one day when all-day, no time otherwise (RFC 5545 3.6.1)."""
    if isinstance(begin, datetime.datetime):
        return start
    return add_nominal_days(begin, 1, floating)


def _parse(icalendar: Any, data: bytes, where: str) -> Any:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # icalendar raises ValueError and its own types
        raise CalendarError(
            "%s: malformed iCalendar data (%s); the file must be one RFC 5545 VCALENDAR" % (where, _short(exc))
        ) from None
    if getattr(calendar, "name", "") != "VCALENDAR":
        raise CalendarError("%s: the data is a %s, not a VCALENDAR" % (where, getattr(calendar, "name", "?")))
    return calendar


def _check_event(event: Any, where: str) -> None:
    label = "%s: event %r" % (where, str(event.get("SUMMARY") or event.get("UID") or "?"))
    if "DTSTART" not in event:
        raise CalendarError("%s has no DTSTART; every event needs one" % label)
    start = _decoded(event, "DTSTART", label)
    for key in ("DTEND", "RECURRENCE-ID"):
        if key in event:
            _decoded(event, key, label)
    _check_zone(event, "DTSTART", start, label)
    if "DTEND" in event:
        end = event.decoded("DTEND")
        _check_zone(event, "DTEND", end, label)
        if type(end) is not type(start):
            raise CalendarError("%s: DTSTART and DTEND must both be dates or both date-times" % label)
        if to_utc(end, UTC) < to_utc(start, UTC):
            raise CalendarError("%s ends before it starts; fix DTEND" % label)
    if "DURATION" in event:
        duration = _decoded(event, "DURATION", label)
        if not isinstance(duration, datetime.timedelta) or duration < datetime.timedelta(0):
            raise CalendarError("%s: DURATION %r must be a positive duration such as PT8H or P1D" % (label, duration))
    if "RRULE" in event:
        _check_until(event, start, label)


def _decoded(event: Any, key: str, label: str) -> Any:
    expected = (datetime.timedelta,) if key == "DURATION" else (datetime.date,)
    try:
        value = event.decoded(key)
    except Exception as exc:
        raise CalendarError("%s: %s cannot be read (%s); fix its value" % (label, key, _short(exc))) from None
    if not isinstance(value, expected):
        raise CalendarError(
            "%s: %s cannot be read (%r is not a %s); fix its value"
            % (
                label,
                key,
                str(event.get(key).to_ical(), "utf-8", "replace"),
                "duration" if key == "DURATION" else "date or date-time",
            )
        )
    return value


def _check_zone(event: Any, key: str, value: Any, label: str) -> None:
    """A TZID that neither zoneinfo nor a VTIMEZONE in the file knows leaves the time naive: refuse it."""
    prop = event.get(key)
    zone = getattr(prop, "params", {}).get("TZID") if prop is not None else None
    if zone and isinstance(value, datetime.datetime) and value.tzinfo is None:
        raise CalendarError(
            "%s: %s names unknown time zone %r; use an IANA name (e.g. Europe/Berlin) or add its VTIMEZONE"
            % (label, key, zone)
        )


def _check_until(event: Any, start: Any, label: str) -> None:
    """RFC 5545 3.3.10: UNTIL has DTSTART's value type; UTC when DTSTART has a zone, floating when it is floating."""
    rules = event.get("RRULE")
    for rule in rules if isinstance(rules, list) else [rules]:
        for until in rule.get("UNTIL", []):
            problem: Optional[str] = None
            if isinstance(start, datetime.datetime) != isinstance(until, datetime.datetime):
                problem = "UNTIL is a %s but DTSTART is a %s" % (_kind(until), _kind(start))
            elif isinstance(start, datetime.datetime) and start.tzinfo is not None and until.tzinfo is None:
                problem = "UNTIL is a floating date-time but DTSTART has a time zone"
            elif isinstance(start, datetime.datetime) and start.tzinfo is None and until.tzinfo is not None:
                problem = "UNTIL is in UTC but DTSTART is floating"
            if problem:
                raise CalendarError(
                    "%s: RRULE %s (RFC 5545 3.3.10); write UNTIL as %s" % (label, problem, _until_hint(start))
                )


def _kind(value: Any) -> str:
    return "date-time" if isinstance(value, datetime.datetime) else "date"


def _until_hint(start: Any) -> str:
    if not isinstance(start, datetime.datetime):
        return "a date (UNTIL=20261231)"
    if start.tzinfo is None:
        return "a floating date-time (UNTIL=20261231T235959)"
    return "a UTC date-time (UNTIL=20261231T225959Z)"


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
