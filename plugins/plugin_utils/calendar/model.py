# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Windows, hits and answers of the blackout calendar evaluator.

Every instant inside the evaluator is an aware UTC datetime; a window's own
time zone matters only while its occurrences are computed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp

KINDS = ("blackout", "maintenance")
SCOPE_KEYS = ("service", "ci", "environment", "business_unit")

UTC = datetime.timezone.utc

# (name, start, end) of one occurrence, start inclusive, end exclusive, both aware UTC.
Span = Tuple[str, datetime.datetime, datetime.datetime]
ScopeValue = Union[str, List[str]]


class CalendarError(Exception):
    """A calendar source cannot be read; the message names the source and the fix."""


@dataclass
class Window:
    """A named source of blackout or maintenance occurrences.

    ``spans(lo, hi)`` returns every occurrence overlapping ``[lo, hi)``.
    One iCalendar file is one Window whose spans carry each event's summary.
    """

    name: str
    kind: str
    source: str
    scope: Dict[str, List[str]]
    spans: Callable[[datetime.datetime, datetime.datetime], List[Span]]

    def applies_to(self, scope: Optional[Mapping[str, Any]]) -> bool:
        """Whether the window covers a change with this scope.

        A window limited to some values of a key applies unless the request
        names another value for that key: a request that does not say its
        environment is still held by an environment's freeze (fail closed).
        """
        asked = scope or {}
        for key, allowed in self.scope.items():
            value = asked.get(key)
            if value is None or value == "":
                continue
            values = value if isinstance(value, (list, tuple)) else [value]
            if not any(str(v) in allowed for v in values):
                return False
        return True


@dataclass(frozen=True)
class WindowHit:
    """One occurrence of a window that matters to the question asked."""

    name: str
    kind: str
    source: str
    start: datetime.datetime
    end: datetime.datetime
    scope: Dict[str, List[str]] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "start": format_timestamp(self.start),
            "end": format_timestamp(self.end),
            "scope": {k: list(v) for k, v in self.scope.items()},
        }


@dataclass
class Answer:
    """What the calendars say about now and the planned window."""

    now: datetime.datetime
    planned: Optional[Tuple[datetime.datetime, datetime.datetime]]
    current: List[WindowHit]
    overlapping: List[WindowHit]
    outside_maintenance: Optional[bool]
    next_allowed_start: Optional[datetime.datetime]
    windows_considered: Sequence[str] = ()

    @property
    def in_blackout(self) -> bool:
        return any(hit.kind == "blackout" for hit in self.current)

    @property
    def planned_overlaps_blackout(self) -> bool:
        return any(hit.kind == "blackout" for hit in self.overlapping)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "now": format_timestamp(self.now),
            "planned": (
                {"start": format_timestamp(self.planned[0]), "end": format_timestamp(self.planned[1])}
                if self.planned
                else None
            ),
            "in_blackout": self.in_blackout,
            "planned_overlaps_blackout": self.planned_overlaps_blackout,
            "current": [hit.as_dict() for hit in self.current],
            "overlapping": [hit.as_dict() for hit in self.overlapping],
            "outside_maintenance": self.outside_maintenance,
            "next_allowed_start": format_timestamp(self.next_allowed_start) if self.next_allowed_start else None,
            "windows_considered": list(self.windows_considered),
        }
