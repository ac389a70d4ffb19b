# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time zone lookup and local-time arithmetic shared by every calendar source."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Union

from .model import UTC, CalendarError


def resolve_zone(name: object, where: str) -> zoneinfo.ZoneInfo:
    """Return the IANA zone ``name``; fail naming ``where`` it was written."""
    if not isinstance(name, str) or not name.strip():
        raise CalendarError("%s: time zone %r is not a name; use an IANA name such as Europe/Berlin" % (where, name))
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CalendarError(
            "%s: unknown time zone %r; use an IANA name such as Europe/Berlin or America/New_York" % (where, name)
        ) from None


def localize(naive: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    """Attach ``zone`` to a wall-clock time and return it in UTC.

    A time inside a spring-forward gap takes the offset before the gap (fold=0),
    as RFC 5545 section 3.3.5 prescribes (02:30 on the change day means 03:30);
    an ambiguous autumn time takes its first occurrence.
    """
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def to_utc(value: Union[datetime.date, datetime.datetime], floating: datetime.tzinfo) -> datetime.datetime:
    """An iCalendar DATE or DATE-TIME as aware UTC; floating and date values are read in ``floating``."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return localize(value, floating)
        return value.astimezone(UTC)
    return localize(datetime.datetime.combine(value, datetime.time()), floating)


def add_nominal_days(
    value: Union[datetime.date, datetime.datetime], days: int, floating: datetime.tzinfo
) -> datetime.datetime:
    """Add whole days on the wall clock (RFC 5545 nominal days) and return the result in UTC."""
    if isinstance(value, datetime.datetime):
        zone = value.tzinfo or floating
        return localize(value.replace(tzinfo=None) + datetime.timedelta(days=days), zone)
    return localize(datetime.datetime.combine(value + datetime.timedelta(days=days), datetime.time()), floating)
