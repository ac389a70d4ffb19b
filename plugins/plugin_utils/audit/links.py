# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few fields of a trail line the verifier reads for every line: its link.

Checking the chain needs ``seq`` and ``prev``, the MAC needs ``mac``, the
per-run counts need ``event``, ``run_id``, ``ts`` and ``outcome``; the rest of
the line (actor, args, result, ...) only has to be hashed. With msgspec the
verifier decodes a line into a ``Link`` struct: msgspec checks the whole
line's JSON syntax but builds Python objects for these fields only, and skips
the rest, which measured 2.5 times faster than building the whole event with
orjson (docs/audit.md). Without msgspec, ``decode_link`` builds the event with
the trail's JSON parser and picks the fields from it.

A line whose link does not decode (a field of another type than the writer
writes) or does not continue the chain is parsed in full by the verifier,
which judges it as before, so the fast path never decides a problem on its
own. A unit test holds the reports of both decoders equal for any tampering.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import parse_line

try:
    import msgspec
except ImportError:  # msgspec only makes verification faster
    HAS_MSGSPEC = False
else:
    HAS_MSGSPEC = True


class _PlainLink:
    """A line's link fields, built from a parsed event (no msgspec, or a line the fast decoder refused)."""

    __slots__ = ("event", "mac", "outcome", "prev", "run_id", "seq", "ts")

    def __init__(self, event: Mapping[str, Any]) -> None:
        self.seq: Any = event["seq"]
        self.prev: Any = event["prev"]
        self.mac: Any = event.get("mac")
        self.event: Any = event.get("event")
        self.run_id: Any = event.get("run_id")
        self.ts: Any = event.get("ts", "")
        self.outcome: Any = event.get("outcome")


def decode_plain(line: bytes) -> Any:
    """The link of a line through the trail's JSON parser (the whole event); the fallback without msgspec."""
    # KeyError and TypeError (not an object, no seq/prev) tell the caller the same as a JSON error.
    return _PlainLink(parse_line(line))


link_of: Callable[[Mapping[str, Any]], Any] = _PlainLink
decode_link: Callable[[bytes], Any] = decode_plain

if HAS_MSGSPEC:
    # Strict types: only the shapes the writer produces decode here, into the values orjson gives
    # too. Anything else (a number where a string belongs, an integer orjson reads as a float)
    # fails to decode, and the verifier parses that line in full. gc=False: a link holds only
    # strings and an int, which never form a reference cycle.
    class _Link(msgspec.Struct, gc=False):
        seq: int
        prev: str
        mac: Optional[str] = None
        event: Optional[str] = None
        run_id: Optional[str] = None
        ts: Optional[str] = ""
        outcome: Optional[str] = None

    decode_link = msgspec.json.Decoder(_Link).decode
