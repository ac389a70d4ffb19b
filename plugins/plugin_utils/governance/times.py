# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moments as governance inputs give them: RFC 3339, or ServiceNow's ``YYYY-MM-DD HH:MM:SS`` (UTC)."""

from __future__ import annotations

import datetime
from typing import Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp

SERVICENOW_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_moment(text: str) -> datetime.datetime:
    """An aware UTC datetime; ServiceNow's Table API returns date-times in UTC without an offset."""
    value = text.strip()
    try:
        return datetime.datetime.strptime(value, SERVICENOW_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return parse_timestamp(value)


def servicenow_moment(text: str, what: str) -> str:
    """A date-time option as ServiceNow stores it (UTC ``YYYY-MM-DD HH:MM:SS``), refusing what does not parse.

    Accepts that form or RFC 3339 with an offset, so ``'next tuesday'`` fails here instead of being
    stored as text that no window check can read.
    """
    try:
        moment = parse_moment(str(text))
    except ValueError:
        raise ValueError(
            "%s %r is not a date-time; write it in UTC as YYYY-MM-DD HH:MM:SS (ServiceNow's form, e.g."
            " 2026-12-01 22:00:00) or as RFC 3339 with an offset (2026-12-01T23:00:00+01:00)" % (what, text)
        ) from None
    return moment.strftime(SERVICENOW_FORMAT)


def optional_moment(text: Optional[str], what: str) -> Optional[datetime.datetime]:
    if not text:
        return None
    try:
        return parse_moment(str(text))
    except ValueError as exc:
        raise ValueError("%s: %s" % (what, exc)) from None
