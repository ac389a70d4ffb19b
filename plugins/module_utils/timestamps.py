# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where relops.release formats and parses timestamps.

Every record the collection writes (ledger rows, audit events, decision
records) carries UTC timestamps in one fixed RFC 3339 form with microseconds
and a ``Z`` suffix. A fixed width means that text order equals time order, so
SQLite and PostgreSQL can compare and index them as plain text.
Target-safe: standard library only.
"""

from __future__ import annotations

import datetime

RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime.datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.datetime.now(datetime.timezone.utc)


def format_timestamp(moment: datetime.datetime) -> str:
    """Format an aware datetime as fixed-width RFC 3339 UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError(
            "timestamp %s has no time zone; pass an aware datetime (e.g. datetime.now(timezone.utc))"
            % moment.isoformat()
        )
    return moment.astimezone(datetime.timezone.utc).strftime(RFC3339_FORMAT)


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse an RFC 3339 timestamp (any offset) into an aware UTC datetime."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError("timestamp %r is not RFC 3339; use a form like 2026-11-26T09:30:00.000000Z" % text) from None
    if moment.tzinfo is None:
        raise ValueError("timestamp %r has no UTC offset; add 'Z' or an offset such as +01:00" % text)
    return moment.astimezone(datetime.timezone.utc)


def now_timestamp() -> str:
    """Return the current UTC time in the collection's timestamp form."""
    return format_timestamp(utc_now())
