# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Answer the blackout questions from a list of Windows.

* in a blackout now? (a blackout occurrence contains ``now``)
* which occurrences overlap the planned window ``[start, end)``?
* is the planned window (or now) outside every maintenance window? (None when no
  maintenance window applies to the scope)
* the next allowed start: the earliest instant at or after the planned start
  (or now) from which a change of the planned length overlaps no blackout and,
  when maintenance windows apply, lies inside one; searched up to ``horizon``.
"""

from __future__ import annotations

import bisect
import datetime
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .model import UTC, Answer, CalendarError, Window, WindowHit

DEFAULT_HORIZON = datetime.timedelta(days=366)
FIRST_REACH = datetime.timedelta(days=8)
Interval = Tuple[datetime.datetime, datetime.datetime]


def evaluate(
    windows: Sequence[Window],
    now: datetime.datetime,
    planned: Optional[Tuple[datetime.datetime, datetime.datetime]] = None,
    scope: Optional[Mapping[str, Any]] = None,
    horizon: datetime.timedelta = DEFAULT_HORIZON,
) -> Answer:
    now = _aware(now, "now")
    window: Optional[Interval] = None
    if planned is not None:
        window = (_aware(planned[0], "planned start"), _aware(planned[1], "planned end"))
        if window[1] <= window[0]:
            raise CalendarError("the planned window ends (%s) before it starts (%s)" % (window[1], window[0]))
    applicable = [w for w in windows if w.applies_to(scope)]
    begin = window[0] if window else now
    length = window[1] - window[0] if window else datetime.timedelta(0)
    lo = min(now, begin)
    limit = max(now, begin) + length + horizon
    # Expand a short span first and widen it only while no allowed start is found: most answers
    # need days, not the whole horizon.
    reach = min(limit, max(now, begin) + length + FIRST_REACH)
    while True:
        hits = {id(w): _hits(w, lo, reach) for w in applicable}
        blackouts = _merge([(h.start, h.end) for w in applicable if w.kind == "blackout" for h in hits[id(w)]])
        maintenance_windows = [w for w in applicable if w.kind == "maintenance"]
        maintenance = _merge([(h.start, h.end) for w in maintenance_windows for h in hits[id(w)]])
        next_start = _next_allowed(begin, length, blackouts, maintenance if maintenance_windows else None, reach)
        if next_start is not None or reach >= limit:
            break
        reach = min(limit, reach + (reach - lo))
    current = [h for w in applicable for h in hits[id(w)] if h.start <= now < h.end]
    overlapping = [h for w in applicable for h in hits[id(w)] if window and h.start < window[1] and h.end > window[0]]
    outside: Optional[bool] = None
    if maintenance_windows:
        outside = not _contains(maintenance, begin, begin + length)
    return Answer(
        now=now,
        planned=window,
        current=sorted(current, key=_order),
        overlapping=sorted(overlapping, key=_order),
        outside_maintenance=outside,
        next_allowed_start=next_start,
        windows_considered=[w.name for w in applicable],
    )


def _aware(moment: datetime.datetime, what: str) -> datetime.datetime:
    if not isinstance(moment, datetime.datetime) or moment.tzinfo is None:
        raise CalendarError("%s must be a date-time with a time zone, not %r" % (what, moment))
    return moment.astimezone(UTC)


def _hits(window: Window, lo: datetime.datetime, hi: datetime.datetime) -> List[WindowHit]:
    return [
        WindowHit(name=name, kind=window.kind, source=window.source, start=start, end=end, scope=window.scope)
        for name, start, end in window.spans(lo, hi)
        if end > start
    ]


def _order(hit: WindowHit) -> Tuple[datetime.datetime, str]:
    return hit.start, hit.name


def _merge(intervals: List[Interval]) -> List[Interval]:
    """Sorted, non-overlapping union; touching intervals join."""
    merged: List[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _overlaps(merged: List[Interval], start: datetime.datetime, end: datetime.datetime) -> bool:
    """Whether [start, end) meets any interval; a zero-length window at ``start`` asks about that instant."""
    index = bisect.bisect_right(merged, (start, datetime.datetime.max.replace(tzinfo=UTC))) - 1
    if index >= 0 and merged[index][1] > start:
        return True
    following = index + 1
    return following < len(merged) and merged[following][0] < end


def _contains(merged: List[Interval], start: datetime.datetime, end: datetime.datetime) -> bool:
    index = bisect.bisect_right(merged, (start, datetime.datetime.max.replace(tzinfo=UTC))) - 1
    return index >= 0 and merged[index][0] <= start and merged[index][1] >= max(end, start + _TICK)


_TICK = datetime.timedelta(microseconds=1)


def _next_allowed(
    begin: datetime.datetime,
    length: datetime.timedelta,
    blackouts: List[Interval],
    maintenance: Optional[List[Interval]],
    limit: datetime.datetime,
) -> Optional[datetime.datetime]:
    """Earliest candidate start that is allowed: ``begin``, a blackout's end or a maintenance window's start."""
    candidates = {begin}
    candidates.update(end for _start, end in blackouts if end > begin)
    if maintenance is not None:
        candidates.update(start for start, _end in maintenance if start > begin)
    for candidate in sorted(candidates):
        if candidate + length > limit:
            break
        if _overlaps(blackouts, candidate, candidate + length):
            continue
        if maintenance is not None and not _contains(maintenance, candidate, candidate + length):
            continue
        return candidate
    return None
