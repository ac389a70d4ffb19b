# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifies an audit trail: the chain, the MACs, the checkpoint signatures.

A trail is one or more files read in order (rotated files first). Each line
must carry ``seq`` one above the previous line's and ``prev`` equal to the
SHA-256 of the previous line's bytes; the first line of the trail has seq 1
and the all-zero ``prev``. The trail must end with a checkpoint: events after
the last checkpoint are unsealed, which is what a truncation (or a forged
appended line) leaves behind. An anchor (a seq and head hash kept elsewhere,
normally the last checkpoint a remote sink received, see ``anchor_from_sink``)
also catches removal of whole sealed runs at the end.

Beyond the chain: every line must lie in some checkpoint's range (first_seq
to last_seq: what the writer that sealed it had checked), or it is
``unsealed``; a ``tamper_detected`` line (a writer found damage instead of
sealing it) is reported as ``tampered``; a run's events after its
``playbook_end`` are ``after end``; and the last run of the trail must have
ended, so a cut right after a mid-run checkpoint is ``truncated``. With the
ledger's anchors (``anchors.py``), every anchored checkpoint must still be in
the trail, byte for byte, which catches a cut tail even after later runs
appended to it.

The files are streamed in blocks: memory stays flat whatever the trail's
size. Explaining a broken sequence (removed, inserted or reordered) needs to
know where else a seq or a line occurs, so the first pass only notes such
places and, when there are any, a second pass over the files answers them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from hashlib import sha256
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import (
    GENESIS,
    canonical_line,
    line_hash,
    parse_line,
    without_field,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.links import decode_link, link_of
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import MacChecker, check_signature
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import TAMPER_EVENT

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import Anchor

REASONS = (
    "edited",
    "removed",
    "inserted",
    "reordered",
    "truncated",
    "bad signature",
    "unsealed",
    "tampered",
    "after end",
)
# What a run's writer may still write after its playbook_end (its closing checkpoints and sink records), and
# playbook_start: one run id may span several ansible-playbook commands run one after another.
_AFTER_END = frozenset(
    (
        "checkpoint",
        "sink_outage",
        "sink_restored",
        "sink_spool_full",
        "sink_spool_dropped",
        TAMPER_EVENT,
        "playbook_start",
    )
)
# Small blocks: a block's lines and the events parsed from them stay in the CPU cache, which measured
# faster than reading megabytes at a time (and the memory used stays flat).
BLOCK = 64 * 1024


# What scan_file unpacks for a trail without an HMAC key: no MAC states.
_NO_MAC: Tuple[Any, Any] = (None, None)


class AnchorError(ValueError):
    """An anchor source that holds no usable checkpoint; the message names the file and the fix."""


@dataclass
class Problem:
    reason: str
    file: str
    line: int
    seq: Optional[int]
    detail: str
    position: int = field(default=0, repr=False)

    def as_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        del data["position"]
        return data


@dataclass
class RunSummary:
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_ts: str = ""
    last_ts: str = ""
    ended: bool = False
    outcome: Optional[str] = None


@dataclass
class Report:
    ok: bool = True
    files: List[str] = field(default_factory=list)
    lines: int = 0
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    head: str = GENESIS
    checkpoints: int = 0
    sealed_through: Optional[int] = None
    macs_checked: bool = False
    signatures_checked: bool = False
    anchor: Optional[Dict[str, Any]] = None
    ledger_anchors: Optional[Dict[str, Any]] = None
    runs: Dict[str, RunSummary] = field(default_factory=dict)
    gaps: List[Dict[str, int]] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)

    @property
    def first_problem(self) -> Optional[Problem]:
        return min(self.problems, key=lambda problem: problem.position) if self.problems else None

    def as_dict(self) -> Dict[str, Any]:
        first = self.first_problem
        return {
            "ok": self.ok,
            "files": self.files,
            "lines": self.lines,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head,
            "checkpoints": self.checkpoints,
            "sealed_through": self.sealed_through,
            "macs_checked": self.macs_checked,
            "signatures_checked": self.signatures_checked,
            "anchor": self.anchor,
            "ledger_anchors": self.ledger_anchors,
            "runs": {run_id: asdict(summary) for run_id, summary in self.runs.items()},
            "gaps": self.gaps,
            "first_problem": first.as_dict() if first else None,
            "problems": [problem.as_dict() for problem in sorted(self.problems, key=lambda item: item.position)],
        }


@dataclass
class _Place:
    """Where a line is: its index in the whole trail, its file and its 1-based line number there."""

    index: int
    file: str
    line: int


@dataclass
class _Cursor:
    """The chain's state between files: what the next line must continue."""

    last_seq: int = 0
    last_hash: str = GENESIS
    index: int = -1
    sealed_seq: Optional[int] = None
    sealed_index: int = -1
    # The place of the previous file's last line: where a broken link at a file's first line points.
    end_of_previous: _Place = field(default_factory=lambda: _Place(-1, "", 0))
    current_run: Any = field(default_factory=object)  # matches no run id, not even None
    summary: RunSummary = field(default_factory=RunSummary)
    stretch_start: int = 0
    last_link: Any = None  # the link (links.py) of the last event line read


@dataclass
class _Pending:
    """A seq that is not one above the previous line's; explained after the second pass."""

    place: _Place
    seq: int
    expected: int
    digest: str


def read_blocks(path: str, torn: List[Tuple[str, int, int]], first_line: int = 1) -> Iterator[List[bytes]]:
    """Yield the complete lines of a file in lists, one list per block read.

    A file that does not end with a newline was cut mid-line: the piece is
    not yielded, and ``(path, its line number, its length)`` goes to ``torn``.
    """
    rest = b""
    count = first_line - 1
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BLOCK)
            if not block:
                break
            lines = (rest + block).split(b"\n") if rest else block.split(b"\n")
            rest = lines.pop()
            count += len(lines)
            yield lines
    if rest:
        torn.append((path, count + 1, len(rest)))


def _event_of(line: bytes) -> Optional[Dict[str, Any]]:
    try:
        event = parse_line(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("prev"), str) or not _is_seq(event.get("seq")):
        return None
    return event


class _Verifier:
    def __init__(
        self,
        paths: List[str],
        report: Report,
        hmac_key: Optional[bytes],
        public_keys: Mapping[str, Ed25519PublicKey],
        anchor: Optional[Mapping[str, Any]],
        max_problems: int,
        ledger_anchors: Optional[List["Anchor"]] = None,
    ) -> None:
        self.paths = paths
        self.report = report
        self.macs = MacChecker(hmac_key) if hmac_key is not None else None
        self.public_keys = public_keys
        self.anchor = anchor
        self.max_problems = max_problems
        self.pending: List[_Pending] = []
        self.torn: List[Tuple[str, int, int]] = []
        self.anchor_found: Optional[Tuple[_Place, str]] = None
        self.last_place = _Place(-1, ", ".join(paths), 0)
        # Checkpoint ranges that held, checkpoint seqs, and the ranges writers recorded as damaged.
        self.ranges: List[Tuple[int, int]] = []
        self.checkpoint_seqs: List[int] = []
        self.damaged: List[Tuple[int, int]] = []
        self.ledger_anchors = {anchor.seq: anchor for anchor in ledger_anchors or []}
        self.anchored: Dict[int, Tuple[_Place, str]] = {}

    def full(self) -> bool:
        return len(self.report.problems) + len(self.pending) >= self.max_problems

    def problem(self, reason: str, place: _Place, seq: Optional[int], detail: str) -> None:
        if not self.full():
            self.report.problems.append(Problem(reason, place.file, place.line, seq, detail, position=place.index))

    def run(self) -> None:
        """The first pass: every check that needs only the line and the one before it."""
        cursor = _Cursor()
        for path in self.paths:
            torn = len(self.torn)
            self.scan_file(path, cursor)
            for torn_path, torn_number, length in self.torn[torn:]:
                # A torn line sits after the file's complete lines.
                self.problem(
                    "truncated",
                    _Place(cursor.index + 1, torn_path, torn_number),
                    None,
                    "the file ends in the middle of a line (%d bytes without a newline)" % length,
                )
        _settle(cursor.summary, cursor.index + 1 - cursor.stretch_start, cursor.last_link)
        self.last_link = cursor.last_link
        self.last_summary = cursor.summary
        report = self.report
        self.last_place = cursor.end_of_previous
        report.lines = cursor.index + 1
        report.first_seq = self.first_seq()
        report.last_seq = cursor.last_seq if cursor.index >= 0 else None
        report.head = cursor.last_hash
        report.sealed_through = cursor.sealed_seq
        self.finish(cursor.index, cursor.last_seq, cursor.sealed_index)

    def scan_file(self, path: str, cursor: _Cursor) -> None:  # noqa: PLR0912, PLR0915 - one inlined loop, for speed
        """Check one file's lines, carrying the chain on from ``cursor``.

        This loop runs once per line of the trail, so it is written for speed
        (measured, see docs/audit.md): state and bound methods in local names
        (stored back at the end); a line's index computed from its number;
        the usual line, one that continues the chain, takes one branch, and
        only a line that does not falls through to the checks that explain it;
        places built only when something is wrong; run counts kept per
        stretch of one run's lines; the HMAC inlined (``MacChecker.check``).
        """
        runs, decode, hash_of, compare = self.report.runs, decode_link, sha256, compare_digest
        inner_copy, outer_copy = self.macs.states() if self.macs is not None else _NO_MAC
        anchor_seq = self.anchor.get("seq") if self.anchor is not None else None
        last_seq, last_hash, base, number = cursor.last_seq, cursor.last_hash, cursor.index, 0
        summary, current_run, stretch_start, last_link = (
            cursor.summary,
            cursor.current_run,
            cursor.stretch_start,
            cursor.last_link,
        )
        ended = summary.ended
        for lines in read_blocks(path, self.torn):
            first = number + 1
            for number, line in enumerate(lines, first):
                digest = hash_of(line).hexdigest()
                try:
                    link = decode(line)
                    seq, prev = link.seq, link.prev
                except (ValueError, KeyError, TypeError):
                    # Not JSON (ValueError), not an object (TypeError), or no seq/prev (KeyError).
                    seq = prev = None
                # The usual line: prev is the previous line's hash (so a str) and seq is one above
                # (an int: True == 1 and 2.0 == 2 in Python, hence the exact class test).
                if prev != last_hash or seq != last_seq + 1 or seq.__class__ is not int:
                    link = self.odd_line(line, _Place(base + number, path, number), last_seq, last_hash, cursor)
                    if link is None:
                        last_seq, last_hash = last_seq + 1, digest
                        stretch_start += 1  # not an event: it counts for no run
                        continue
                    seq = link.seq
                mac_ok = True
                if inner_copy is not None:
                    mac = link.mac
                    try:
                        inner = inner_copy()
                        inner.update(line.replace(b',"mac":"' + mac.encode("utf-8", "replace") + b'"', b"", 1))
                        outer = outer_copy()
                        outer.update(inner.digest())
                        mac_ok = compare(outer.hexdigest(), mac)
                    except (AttributeError, TypeError):  # no mac (None), not a str, or not ASCII
                        mac_ok = False
                    if not mac_ok:
                        self.bad_mac(_Place(base + number, path, number), seq)
                kind = link.event
                if kind == "checkpoint":
                    if mac_ok:
                        self.seal(_Place(base + number, path, number), line, cursor)
                elif kind == "tamper_detected":  # TAMPER_EVENT, as a literal: no global look-up per line
                    self.tampered(_Place(base + number, path, number), line)
                if seq == anchor_seq and self.anchor_found is None:
                    self.anchor_found = (_Place(base + number, path, number), digest)
                last_seq, last_hash = seq, digest
                if link.run_id != current_run:
                    # Lines of one run come in stretches: settle the last stretch, look the next run up once.
                    summary = _next_stretch(runs, summary, base + number - stretch_start, last_link, link)
                    current_run, stretch_start, ended = link.run_id, base + number, summary.ended
                if ended:
                    if kind not in _AFTER_END:
                        self.after_end(_Place(base + number, path, number), seq, link)
                    elif kind == "playbook_start":
                        summary.ended = ended = False
                if kind == "playbook_end":
                    summary.ended, summary.outcome, ended = True, link.outcome, True
                last_link = link
        cursor.last_seq, cursor.last_hash, cursor.index = last_seq, last_hash, base + number
        cursor.summary, cursor.current_run, cursor.stretch_start, cursor.last_link = (
            summary,
            current_run,
            stretch_start,
            last_link,
        )
        cursor.end_of_previous = _Place(base + number, path, number) if number else cursor.end_of_previous

    def odd_line(self, line: bytes, place: _Place, last_seq: int, last_hash: str, cursor: _Cursor) -> Any:
        """A line that does not simply continue the chain, judged on its whole event.

        Returns its link, or None when it is not an event at all. Only the
        trail's JSON parser decides what a line holds here, so the reasons
        reported never depend on which decoder read the usual lines.
        """
        event = _event_of(line)
        if event is None:
            self.not_an_event(place)
            return None
        seq = event["seq"]
        if seq != last_seq + 1:
            self.note_seq(place, seq, last_seq + 1, line_hash(line))
        elif event["prev"] != last_hash:
            self.broken_link(place.index, place.file, place.line, seq, cursor.end_of_previous)
        return link_of(event)

    def not_an_event(self, place: _Place) -> None:
        self.problem("edited", place, None, "the line is not an audit event (damaged JSON or missing seq/prev)")

    def note_seq(self, place: _Place, seq: int, expected: int, digest: str) -> None:
        """A seq out of place: explained after the second pass (removed, inserted or reordered)."""
        if not self.full():
            self.pending.append(_Pending(place, seq, expected, digest))

    def broken_link(self, index: int, path: str, number: int, seq: int, end_of_previous: _Place) -> None:
        """The line's prev is not the previous line's hash: the previous line was edited."""
        if not index:
            where = _Place(index, path, number)
        else:
            where = _Place(index - 1, path, number - 1) if number > 1 else end_of_previous
        self.problem(
            "edited",
            where,
            seq - 1 if index else seq,
            "the line's SHA-256 no longer matches the prev recorded by seq %d" % seq,
        )

    def bad_mac(self, place: _Place, seq: int) -> None:
        self.problem("edited", place, seq, "MAC does not match (changed, or written without the trail's key)")

    def first_seq(self) -> Optional[int]:
        for path in self.paths:
            for lines in read_blocks(path, []):
                if lines:
                    event = _event_of(lines[0])
                    return event["seq"] if event is not None else None
        return None

    def finish(self, last_index: int, last_seq: int, sealed_index: int) -> None:
        if last_index >= 0 and sealed_index != last_index:
            self.problem(
                "truncated",
                self.last_place,
                last_seq,
                "the last %d line(s) are not covered by a checkpoint: the trail was cut after them, a line was "
                "appended by someone else, or the run that wrote them was killed before its end"
                % (last_index - sealed_index),
            )
        elif last_index >= 0 and self.last_link is not None and not self.last_summary.ended:
            self.problem(
                "truncated",
                self.last_place,
                last_seq,
                "the last run, %s, has no playbook_end: the trail was cut right after one of its checkpoints (or "
                "the run is still going)" % self.last_link.run_id,
            )

    def tampered(self, place: _Place, line: bytes) -> None:
        """A writer's record of damage it found instead of sealing it: the damaged range is vouched by nobody."""
        event: Dict[str, Any] = _event_of(line) or {}
        recorded = event.get("damage")
        damage: Dict[str, Any] = recorded if isinstance(recorded, dict) else {}
        first, last = damage.get("first_seq"), damage.get("last_seq")
        if isinstance(first, int) and isinstance(last, int) and _is_seq(first) and _is_seq(last):
            self.damaged.append((first, last))
        self.problem(
            "tampered",
            place,
            event.get("seq"),
            "the writer found the trail damaged before it appended (%s%s: %s) and recorded it instead of sealing it"
            % (damage.get("kind"), " at seq %s..%s" % (first, last) if _is_seq(first) else "", damage.get("detail")),
        )

    def after_end(self, place: _Place, seq: int, link: Any) -> None:
        self.problem(
            "after end",
            place,
            seq,
            "a %s event of run %s after that run's playbook_end: a line was appended in the run's name"
            % (link.event, link.run_id),
        )

    def check_coverage(self) -> None:
        """Lines up to the last checkpoint that held must lie in some checkpoint's range (or be checkpoints)."""
        report = self.report
        if report.first_seq is None or report.sealed_through is None:
            return
        holes = [(report.first_seq, report.sealed_through)]
        taken = sorted(
            [*self.ranges, *self.damaged, *((seq, seq) for seq in self.checkpoint_seqs)]
            + [(gap["first_missing"], gap["last_missing"]) for gap in report.gaps]
        )
        for low, high in taken:
            holes = _subtract(holes, low, high)
        if not holes:
            return
        places = self.locate([low for low, _high in holes])
        for low, high in holes:
            self.problem(
                "unsealed",
                places.get(low, self.last_place),
                low,
                "seq %d..%d lie in no checkpoint's range: no writer checked them before sealing (a line appended by "
                "someone else, sealed by an older writer), or their run was killed and nobody checked them since"
                % (low, high),
            )

    def locate(self, seqs: List[int]) -> Dict[int, _Place]:
        wanted = set(seqs)
        found: Dict[int, _Place] = {}
        index = -1
        for path in self.paths:
            number = 0
            for lines in read_blocks(path, []):
                for line in lines:
                    index += 1
                    number += 1
                    event = _event_of(line)
                    if event is not None and event["seq"] in wanted and event["seq"] not in found:
                        found[event["seq"]] = _Place(index, path, number)
        return found

    def check_ledger_anchors(self) -> None:
        """Every checkpoint the ledger anchored for this trail must still be in it, byte for byte."""
        if not self.ledger_anchors:
            return
        report = self.report
        first, last = report.first_seq, report.last_seq
        checked = held = 0
        for seq, anchor in sorted(self.ledger_anchors.items()):
            if first is not None and seq < first:
                continue  # in files not given to this verification
            checked += 1
            found = self.anchored.get(seq)
            if found is not None and found[1] == anchor.head:
                held += 1
                continue
            noted = " (recorded by tamper_detected seq %d)" % anchor.cut_by_seq if anchor.cut_by_seq else ""
            if found is not None or (last is not None and seq <= last):
                self.problem(
                    "truncated",
                    found[0] if found is not None else self.last_place,
                    seq,
                    "the ledger anchors checkpoint seq %d of run %s with head %s, but the trail holds another line "
                    "there: it was cut and written on%s" % (seq, anchor.run_id, anchor.head, noted),
                )
            else:
                self.problem(
                    "truncated",
                    self.last_place,
                    last,
                    "the ledger anchors checkpoint seq %d of run %s, which the trail no longer holds (it ends at seq "
                    "%s): lines were removed from its end%s" % (seq, anchor.run_id, last, noted),
                )
        newest = max(self.ledger_anchors)
        report.ledger_anchors = {
            "anchors": len(self.ledger_anchors),
            "checked": checked,
            "held": held,
            "newest_seq": newest,
        }

    def checkpoint_problem(self, event: Mapping[str, Any], line: bytes) -> Optional[Tuple[str, str]]:
        """What is wrong with a checkpoint (reason, detail), or None."""
        checkpoint = event.get("checkpoint")
        seq = event["seq"]
        if (
            not isinstance(checkpoint, dict)
            or checkpoint.get("last_seq") != seq - 1
            or checkpoint.get("head") != event["prev"]
        ):
            return "edited", "checkpoint does not describe the line before it"
        if self.macs is None and "mac" in event and not _is_mac(event["mac"]):
            # The signature leaves the mac out and, on the trail's last line, no later prev covers it:
            # without the key, its form is all that can be checked.
            return "edited", "mac is not an HMAC-SHA256 (64 lowercase hex digits)"
        if self.public_keys:
            why = check_signature(self.public_keys, _without_mac(line, event), event)
            if why is not None:
                return "bad signature", why
        return None

    def seal(self, place: _Place, line: bytes, cursor: _Cursor) -> None:
        """A checkpoint line (its MAC, if any, checked): when it holds, the trail is sealed up to it."""
        event = _event_of(line)
        if event is None:
            # The link decoded but the whole line is not JSON the trail's parser reads: it was changed.
            self.not_an_event(place)
        else:
            if event["seq"] in self.ledger_anchors:
                self.anchored[event["seq"]] = (place, line_hash(line))
            if self.checkpoint_holds(place, event, line):
                cursor.sealed_seq, cursor.sealed_index = event["seq"], place.index
                checkpoint = event["checkpoint"]
                first = checkpoint.get("first_seq")
                self.ranges.append((first if _is_seq(first) else event["seq"], checkpoint["last_seq"]))
                self.checkpoint_seqs.append(event["seq"])

    def checkpoint_holds(self, place: _Place, event: Mapping[str, Any], line: bytes) -> bool:
        self.report.checkpoints += 1
        found = self.checkpoint_problem(event, line)
        if found is not None:
            self.problem(found[0], place, event["seq"], found[1])
            return False
        return True

    def check_anchor(self) -> None:
        """The trail must still hold, unchanged, the line the anchor names."""
        if self.anchor is None:
            return
        seq, head = self.anchor.get("seq"), self.anchor.get("head")
        self.report.anchor = {"seq": seq, "head": head, "found": self.anchor_found is not None}
        if "source" in self.anchor:
            self.report.anchor["source"] = self.anchor["source"]
        if self.anchor_found is not None:
            place, digest = self.anchor_found
            if digest != head:
                self.problem("edited", place, seq, "the line differs from the anchor's head hash %s" % head)
            return
        if self.report.lines:
            self.problem(
                "truncated",
                self.last_place,
                self.report.last_seq,
                "the anchor names seq %s, which the trail no longer holds (it ends at seq %s): lines were removed "
                "from its end" % (seq, self.report.last_seq),
            )

    def explain(self) -> None:
        """The second pass: say why each noted seq is not one above the previous (removed, inserted, moved)."""
        if not self.pending:
            return
        digests = {pending.digest: 0 for pending in self.pending}
        wanted = {pending.seq for pending in self.pending} | {pending.expected for pending in self.pending}
        places: Dict[int, List[_Place]] = {}
        index = -1
        for path in self.paths:
            number = 0
            for lines in read_blocks(path, []):
                for line in lines:
                    index += 1
                    number += 1
                    if digests:
                        digest = sha256(line).hexdigest()
                        if digest in digests:
                            digests[digest] += 1
                    event = _event_of(line)
                    if event is not None and event["seq"] in wanted:
                        places.setdefault(event["seq"], []).append(_Place(index, path, number))
        pending, self.pending = self.pending, []
        for each in pending:
            self._explain_one(each, digests, places)

    def _explain_one(self, pending: _Pending, digests: Dict[str, int], places: Dict[int, List[_Place]]) -> None:
        place, seq, expected = pending.place, pending.seq, pending.expected
        if digests[pending.digest] > 1:
            self.problem("inserted", place, seq, "the line is a copy of another line of the trail")
            return
        if seq > expected:
            later = [other for other in places.get(expected, []) if other.index > place.index]
            if later:
                self.problem(
                    "reordered",
                    place,
                    seq,
                    "expected seq %d here; it appears later (%s line %d)" % (expected, later[0].file, later[0].line),
                )
                return
            self.report.gaps.append({"after_seq": expected - 1, "first_missing": expected, "last_missing": seq - 1})
            self.problem("removed", place, seq, "seq %d..%d missing before this line" % (expected, seq - 1))
            return
        if len(places.get(seq, [])) > 1:
            self.problem("inserted", place, seq, "seq %d appears more than once; expected %d here" % (seq, expected))
        else:
            self.problem("reordered", place, seq, "seq %d appears after seq %d" % (seq, expected - 1))


def _subtract(intervals: List[Tuple[int, int]], low: int, high: int) -> List[Tuple[int, int]]:
    """Remove [low, high] from a list of closed intervals."""
    kept: List[Tuple[int, int]] = []
    for start, end in intervals:
        if high < start or low > end:
            kept.append((start, end))
            continue
        if start < low:
            kept.append((start, low - 1))
        if high < end:
            kept.append((high + 1, end))
    return kept


def _is_mac(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(char in "0123456789abcdef" for char in value)


def _is_seq(value: Any) -> bool:
    # bool is an int to Python, never a sequence number.
    return isinstance(value, int) and not isinstance(value, bool)


def _next_stretch(
    runs: Dict[str, RunSummary], summary: RunSummary, events: int, last_link: Any, link: Any
) -> RunSummary:
    """Settle the stretch of ``events`` lines ending with ``last_link``; return the summary of ``link``'s run."""
    _settle(summary, events, last_link)
    return runs.setdefault(str(link.run_id), RunSummary(first_seq=link.seq, first_ts=str(link.ts)))


def _settle(summary: RunSummary, events: int, last_link: Any) -> None:
    """Add a stretch of ``events`` lines of one run, ending with ``last_link``'s line, to the run's summary."""
    if last_link is None or not events:
        return
    summary.events += events
    summary.last_seq = last_link.seq
    summary.last_ts = last_link.ts


def _without_mac(line: bytes, event: Mapping[str, Any]) -> bytes:
    mac = event.get("mac")
    return without_field(line, "mac", mac) if isinstance(mac, str) else line


def _forwarded_events(text: str) -> Iterator[Any]:
    """The events in one line of a sink's export: a syslog message, a HEC envelope, a webhook body, a trail line."""
    start = min((at for at in (text.find("{"), text.find("[")) if at >= 0), default=-1)
    if start < 0:
        return
    try:
        value = parse_line(text[start:].encode("utf-8"))
    except ValueError:
        return
    for item in value if isinstance(value, list) else [value]:
        # A Splunk HEC envelope holds the event under "event"; the others are the event itself.
        event = item["event"] if isinstance(item, dict) and isinstance(item.get("event"), dict) else item
        if isinstance(event, dict):
            yield event


def anchor_from_sink(paths: List[str], public_keys: Optional[Mapping[str, Ed25519PublicKey]] = None) -> Dict[str, Any]:
    """The last checkpoint a remote sink received, as an anchor: its seq and the hash of its line.

    ``paths`` are what the sink kept, in any mix of the forms the callback sends:
    a syslog receiver's log (one message per line; the JSON after the header is
    the trail line), Splunk HEC envelopes, webhook bodies (JSON arrays), or
    trail lines. The checkpoint's line is rebuilt canonically (the trail's own
    bytes) and, with ``public_keys``, its signature must verify. Checking the
    trail against it proves that the trail still holds that checkpoint,
    unchanged, and everything before it, so removing whole sealed runs from the
    end of the trail is caught.
    """
    best: Optional[Dict[str, Any]] = None
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for text in handle:
                    for event in _forwarded_events(text):
                        seq = event.get("seq")
                        if event.get("event") != "checkpoint" or not _is_seq(seq):
                            continue
                        if best is None or seq > best["seq"]:
                            best = event
        except OSError as exc:
            raise AnchorError("anchor file %s cannot be read (%s)" % (path, exc.strerror)) from None
    if best is None:
        raise AnchorError(
            "no audit checkpoint found in %s; give the file(s) the syslog or HTTP sink wrote (the receiver's log "
            "or export), which hold the checkpoint lines the callback forwards" % ", ".join(paths)
        )
    line = canonical_line(best)
    if public_keys:
        why = check_signature(public_keys, _without_mac(line, best), best)
        if why is not None:
            raise AnchorError(
                "the last checkpoint in %s (seq %d) does not verify: %s; an anchor must come from the trail's "
                "signer" % (", ".join(paths), best["seq"], why)
            )
    return {"seq": best["seq"], "head": line_hash(line), "source": list(paths), "sealed_through": best["seq"] - 1}


def verify_trail(
    paths: List[str],
    hmac_key: Optional[bytes] = None,
    public_keys: Optional[Mapping[str, Ed25519PublicKey]] = None,
    anchor: Optional[Mapping[str, Any]] = None,
    max_problems: int = 100,
    ledger_anchors: Optional[List["Anchor"]] = None,
) -> Report:
    """Verify the trail made of ``paths`` (oldest first) and return what was found.

    ``ledger_anchors`` are the trail's anchors from the ledger (``AnchorStore.of_trail``).
    """
    report = Report(files=list(paths), macs_checked=hmac_key is not None, signatures_checked=bool(public_keys))
    verifier = _Verifier(list(paths), report, hmac_key, public_keys or {}, anchor, max_problems, ledger_anchors)
    verifier.run()
    verifier.explain()
    verifier.check_coverage()
    verifier.check_anchor()
    verifier.check_ledger_anchors()
    if not report.lines:
        report.problems.append(Problem("truncated", ", ".join(paths), 0, None, "the trail is empty"))
    report.problems.sort(key=lambda problem: problem.position)
    del report.problems[max_problems:]
    report.ok = not report.problems
    return report
