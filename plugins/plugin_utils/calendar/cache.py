# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""iCalendar occurrences expanded once and kept on disk, keyed by the calendar's exact content.

Reading an iCalendar file is the change gate's largest cost: icalendar takes about a tenth of a
second to import and a quarter second to parse five years of weekly freezes, and every
ansible-playbook run is a new process, so the gate's per-process cache never helps a pipeline.
The first read of a calendar parses and validates it as before, then expands every occurrence
overlapping [now - 35 days, now + 400 days] (the evaluator looks at most 366 days ahead for the
next allowed start) and stores the spans as JSON. Later reads of the same bytes answer queries
inside that range from the file without importing icalendar; a query reaching outside it parses
the calendar, and a stored range that no longer covers the coming year is rebuilt.

The file name is the sha256 of the calendar bytes, the floating time zone, the dtend mode, this
package's iCalendar code and the installed icalendar and recurring-ical-events (path and mtime),
so an edited calendar, another reading of it or an upgraded library is a miss, never a stale
answer. Only calendars that parsed and expanded are stored, so a broken one reports the same
error on every run. Storage: plugin_utils/disk_cache.py, kind ``calendars``.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.disk_cache import (
    cache_key,
    file_digests,
    read_entry,
    write_entry,
)

from .ics import IcsCalendar
from .model import UTC, Span

SpanQuery = Callable[[datetime.datetime, datetime.datetime], List[Span]]

FORMAT = 1
KIND = "calendars"
BEFORE = datetime.timedelta(days=35)
AFTER = datetime.timedelta(days=400)
# A stored range must still reach this far ahead of now, or it is rebuilt around now.
REACH = datetime.timedelta(days=370)
# A calendar firing every few minutes would make a huge file slower to read than to expand: keep none.
MAX_SPANS = 20000


def ics_spans(
    data: bytes, where: str, zone: datetime.tzinfo, dtend: str, now: Optional[datetime.datetime] = None
) -> SpanQuery:
    """The span query of one iCalendar document, from the expansion cache when it holds these bytes."""
    now = now or datetime.datetime.now(UTC)
    key = _key(data, zone, dtend)
    stored = _read(read_entry(KIND, key), now)
    if stored is not None:
        return _Expansion(stored[0], stored[1], stored[2], lambda: IcsCalendar(data, where, zone, dtend))
    calendar = IcsCalendar(data, where, zone, dtend)
    lo, hi = now - BEFORE, now + AFTER
    spans = calendar.spans_within(lo, hi, MAX_SPANS)
    if spans is not None:
        _write(key, lo, hi, spans)
    return calendar.spans


class _Expansion:
    """Stored spans for [lo, hi); anything outside is asked of the parsed calendar."""

    def __init__(
        self,
        lo: datetime.datetime,
        hi: datetime.datetime,
        spans: List[Span],
        parse: Callable[[], IcsCalendar],
    ) -> None:
        self.lo, self.hi, self.stored, self.parse = lo, hi, spans, parse
        self.calendar: Optional[IcsCalendar] = None

    def __call__(self, lo: datetime.datetime, hi: datetime.datetime) -> List[Span]:
        if self.lo <= lo and hi <= self.hi:
            return [span for span in self.stored if span[1] < hi and span[2] > lo]
        if self.calendar is None:
            self.calendar = self.parse()
        return self.calendar.spans(lo, hi)


def _key(data: bytes, zone: datetime.tzinfo, dtend: str) -> str:
    return cache_key(
        "relops-ics-expansion/%d" % FORMAT,
        [data, getattr(zone, "key", None) or repr(zone), dtend, *_code_stamps()],
    )


def _code_stamps() -> List[str]:
    """What the expansion depends on besides the bytes: this package's code and the two libraries."""
    stamps = file_digests(os.path.dirname(os.path.abspath(__file__)), ("ics.py", "cache.py", "zones.py"))
    for library in ("icalendar", "recurring_ical_events"):
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec is not None else None
        stamps.append("%s:%s" % (origin, os.stat(origin).st_mtime_ns if origin else "missing"))
    return stamps


def _read(document: Any, now: datetime.datetime) -> Optional[Tuple[datetime.datetime, datetime.datetime, List[Span]]]:
    try:
        lo = datetime.datetime.fromisoformat(document["from"])
        hi = datetime.datetime.fromisoformat(document["to"])
        spans: List[Span] = [
            (str(name), datetime.datetime.fromisoformat(start), datetime.datetime.fromisoformat(end))
            for name, start, end in document["spans"]
        ]
    except (ValueError, KeyError, TypeError):
        return None
    if lo > now or hi < now + REACH:
        return None
    return lo, hi, spans


def _write(key: str, lo: datetime.datetime, hi: datetime.datetime, spans: List[Span]) -> None:
    document: Dict[str, Any] = {
        "from": lo.isoformat(),
        "to": hi.isoformat(),
        "spans": [[name, start.isoformat(), end.isoformat()] for name, start, end in spans],
    }
    write_entry(KIND, key, document)
