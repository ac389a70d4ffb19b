# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML windows: GitLab-style cron start/end pairs and one-off date ranges, each with its own time zone.

Cron times are read on the window's wall clock: ``0 22 * * 5`` is 22:00 local
every Friday whatever the UTC offset that week. A time that falls in a
spring-forward gap takes the offset before the gap (RFC 5545 3.3.5 reading).
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional

from .model import KINDS, SCOPE_KEYS, UTC, CalendarError, Span, Window
from .zones import localize, resolve_zone

WINDOW_KEYS = ("name", "kind", "scope", "timezone", "cron_start", "cron_end", "start", "end", "description")
# GitLab deploy freeze field names, accepted so a freeze period can be pasted as it is.
ALIASES = {"freeze_start": "cron_start", "freeze_end": "cron_end", "cron_timezone": "timezone"}
# Bound the work one window may cause: a cron firing every minute over a long horizon.
MAX_CRON_STEPS = 20000


def normalize_scope(raw: Any, where: str) -> Dict[str, List[str]]:
    """Scope as {key: [values]}; keys are service, ci, environment, business_unit."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise CalendarError("%s: scope must be a mapping of %s to a value or list" % (where, ", ".join(SCOPE_KEYS)))
    scope: Dict[str, List[str]] = {}
    for key, value in raw.items():
        if key not in SCOPE_KEYS:
            raise CalendarError("%s: unknown scope key %r; use %s" % (where, key, ", ".join(SCOPE_KEYS)))
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or any(v is None or str(v) == "" for v in values):
            raise CalendarError("%s: scope %s needs at least one non-empty value" % (where, key))
        scope[key] = [str(v) for v in values]
    return scope


def normalize_kind(raw: Any, where: str) -> str:
    if raw not in KINDS:
        raise CalendarError("%s: kind must be blackout or maintenance, not %r" % (where, raw))
    return str(raw)


def build_window(
    entry: Any,
    index: int,
    source: str,
    default_tz: str,
    default_kind: str,
    default_scope: Dict[str, List[str]],
) -> Window:
    """One YAML window entry as a Window."""
    where = "%s: window %d" % (source, index + 1)
    if not isinstance(entry, Mapping):
        raise CalendarError("%s must be a mapping with name and cron_start/cron_end or start/end" % where)
    item: Dict[str, Any] = {ALIASES.get(str(k), str(k)): v for k, v in entry.items()}
    unknown = sorted(set(item) - set(WINDOW_KEYS))
    if unknown:
        raise CalendarError("%s: unknown keys %s; allowed: %s" % (where, ", ".join(unknown), ", ".join(WINDOW_KEYS)))
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise CalendarError("%s has no name; give every window a name so answers can cite it" % where)
    where = "%s: window %r" % (source, name)
    kind = normalize_kind(item.get("kind", default_kind), where)
    scope = normalize_scope(item["scope"], where) if "scope" in item else dict(default_scope)
    zone = resolve_zone(item.get("timezone", default_tz), where)
    is_cron = "cron_start" in item or "cron_end" in item
    is_range = "start" in item or "end" in item
    if is_cron == is_range:
        raise CalendarError("%s needs either cron_start and cron_end, or start and end" % where)
    spans = _cron_spans(item, zone, name, where) if is_cron else _range_spans(item, zone, name, where)
    return Window(name=name, kind=kind, source=source, scope=scope, spans=spans)


def _cron_spans(
    item: Mapping[str, Any], zone: datetime.tzinfo, name: str, where: str
) -> Callable[[datetime.datetime, datetime.datetime], List[Span]]:
    croniter = _croniter()
    start_expr = _cron(item, "cron_start", where)
    end_expr = _cron(item, "cron_end", where)

    def spans(lo: datetime.datetime, hi: datetime.datetime) -> List[Span]:
        lo_local = lo.astimezone(zone).replace(tzinfo=None)
        hi_local = hi.astimezone(zone).replace(tzinfo=None)
        # The latest start at or before lo may still be running at lo.
        starts = croniter(start_expr, lo_local + datetime.timedelta(seconds=1))
        begin = starts.get_prev(datetime.datetime)
        found: List[Span] = []
        for _step in range(MAX_CRON_STEPS):
            if begin >= hi_local:
                break
            finish = croniter(end_expr, begin).get_next(datetime.datetime)
            span = (name, localize(begin, zone), localize(finish, zone))
            if span[2] > lo and span[1] < hi:
                found.append(span)
            begin = starts.get_next(datetime.datetime)
        return found

    return spans


def _croniter() -> Any:
    """The croniter class, imported on first use.

    Imported here, not at the top: only cron windows need croniter, and a gate with an iCalendar or no
    calendar should not pay for loading it on every ansible-playbook run.
    """
    try:
        from croniter import croniter  # noqa: PLC0415
    except ImportError:  # pragma: no cover - croniter is in requirements.txt
        raise CalendarError("cron windows need the croniter library on the controller; pip install croniter") from None
    return croniter


def _cron(item: Mapping[str, Any], key: str, where: str) -> str:
    expr = item.get(key)
    if not isinstance(expr, str) or len(expr.split()) != 5 or not _croniter().is_valid(expr):
        raise CalendarError(
            "%s: %s %r is not a five-field cron expression (minute hour day month weekday), e.g. '0 22 * * 5'"
            % (where, key, expr)
        )
    return expr


def _range_spans(
    item: Mapping[str, Any], zone: datetime.tzinfo, name: str, where: str
) -> Callable[[datetime.datetime, datetime.datetime], List[Span]]:
    if "start" not in item or "end" not in item:
        raise CalendarError("%s needs both start and end" % where)
    start = _moment(item["start"], zone, where, "start", end_of_day=False)
    end = _moment(item["end"], zone, where, "end", end_of_day=True)
    if end <= start:
        raise CalendarError("%s ends (%s) before it starts (%s); fix end" % (where, item["end"], item["start"]))

    def spans(lo: datetime.datetime, hi: datetime.datetime) -> List[Span]:
        return [(name, start, end)] if end > lo and start < hi else []

    return spans


def _moment(value: Any, zone: datetime.tzinfo, where: str, key: str, end_of_day: bool) -> datetime.datetime:
    """A local date or date-time; a date-only end is inclusive (the window ends at the following midnight)."""
    parsed: Optional[datetime.date] = None
    if isinstance(value, (datetime.date, datetime.datetime)):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = (
                datetime.date.fromisoformat(value.strip())
                if len(value.strip()) == 10
                else datetime.datetime.fromisoformat(value.strip())
            )
        except ValueError:
            parsed = None
    if parsed is None:
        raise CalendarError(
            "%s: %s %r is not a date (2026-12-24) or local date-time (2026-12-24T18:00)" % (where, key, value)
        )
    if isinstance(parsed, datetime.datetime):
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return localize(parsed, zone)
    day = parsed + datetime.timedelta(days=1) if end_of_day else parsed
    return localize(datetime.datetime.combine(day, datetime.time()), zone)
