# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canonical JSON lines and their hashes.

A trail line is the UTF-8 JSON of one event with sorted keys and no
whitespace, so the same event always gives the same bytes and the same hash.
The chain hashes the raw bytes of each line (without its newline): a verifier
never re-serialises, which keeps it fast and independent of JSON libraries.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from typing import Any, Callable, Mapping

GENESIS = "0" * 64

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # orjson only makes verification faster
    _loads = json.loads


def plain(value: Any) -> Any:
    """Return ``value`` as JSON-native data: str keys, lists, and scalars JSON can hold exactly."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        # Ansible's unsafe and tagged strings are str subclasses; keep plain text only.
        return str(value)
    if isinstance(value, int):
        # Beyond 64 bits JSON parsers disagree (orjson reads them as floats), so keep them as text.
        return int(value) if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def canonical_line(event: Mapping[str, Any]) -> bytes:
    """Serialise an event (already plain) as one canonical JSON line, without the newline."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def line_hash(line: bytes) -> str:
    """Return the hex SHA-256 of a line's bytes: what the next line's ``prev`` holds."""
    return hashlib.sha256(line).hexdigest()


def parse_line(line: bytes) -> Any:
    """Parse one trail line (any JSON value; callers check it is an object)."""
    return _loads(line)


def without_field(line: bytes, name: str, value: str) -> bytes:
    """Return a canonical line with one top-level string field removed, byte for byte.

    Sealed fields (``mac``, ``sig``) sort after ``actor`` and ``event``, which
    every event has, so they are never first and always follow a comma.
    """
    # MACs are hex and signatures base64, which JSON never escapes; a forged value that would need
    # escaping is simply not found, and the check then fails as it should.
    field = b',"' + name.encode("ascii") + b'":"' + value.encode("utf-8", "replace") + b'"'
    return line.replace(field, b"", 1)
