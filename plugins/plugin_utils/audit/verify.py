# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifies an audit trail: the chain, the MACs, the checkpoint signatures.

A trail is one or more files read in order (rotated files first). Each line
must carry ``seq`` one above the previous line's and ``prev`` equal to the
SHA-256 of the previous line's bytes; the first line of the trail has seq 1
and the all-zero ``prev``. The trail must end with a checkpoint: events after
the last checkpoint are unsealed, which is what a truncation (or a forged
appended line) leaves behind. An anchor (a seq and head hash kept elsewhere,
e.g. the last checkpoint a remote sink received) also catches removal of
whole sealed runs at the end.
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import (
    GENESIS,
    line_hash,
    parse_line,
    without_field,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import MacChecker, check_signature

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

REASONS = ("edited", "removed", "inserted", "reordered", "truncated", "bad signature")


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
            "runs": {run_id: asdict(summary) for run_id, summary in self.runs.items()},
            "gaps": self.gaps,
            "first_problem": first.as_dict() if first else None,
            "problems": [problem.as_dict() for problem in sorted(self.problems, key=lambda item: item.position)],
        }


class Lines:
    """Every line of every file, in order, and where each file starts (for file and line numbers)."""

    def __init__(self) -> None:
        self.lines: List[bytes] = []
        self._starts: List[int] = []
        self._paths: List[str] = []

    def add_file(self, path: str, lines: List[bytes]) -> None:
        self._starts.append(len(self.lines))
        self._paths.append(path)
        self.lines.extend(lines)

    def locate(self, index: int) -> Tuple[str, int]:
        """The file and 1-based line number of the line at ``index``."""
        file_index = bisect.bisect_right(self._starts, index) - 1
        return self._paths[file_index], index - self._starts[file_index] + 1


def read_lines(paths: List[str], report: Report) -> Lines:
    """Read every line of every file in order; a file not ending in a newline was cut mid-line."""
    entries = Lines()
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        torn = lines.pop()
        entries.add_file(path, lines)
        if torn:
            report.problems.append(
                Problem(
                    "truncated",
                    path,
                    len(lines) + 1,
                    None,
                    "the file ends in the middle of a line (%d bytes without a newline)" % len(torn),
                    position=len(entries.lines),
                )
            )
    return entries


class _Verifier:
    def __init__(
        self,
        entries: Lines,
        report: Report,
        hmac_key: Optional[bytes],
        public_keys: Mapping[str, Ed25519PublicKey],
        max_problems: int,
    ) -> None:
        self.entries = entries
        self.lines = entries.lines
        self.report = report
        self.hmac_key = hmac_key
        self.public_keys = public_keys
        self.max_problems = max_problems
        self._duplicates: Optional[collections.Counter[bytes]] = None
        self._positions: Optional[Dict[int, List[int]]] = None

    def problem(self, reason: str, index: int, seq: Optional[int], detail: str) -> None:
        if len(self.report.problems) >= self.max_problems:
            return
        path, number = self.entries.locate(index)
        self.report.problems.append(Problem(reason, path, number, seq, detail, position=index))

    def run(self) -> None:
        last_seq, last_hash, sealed_index = 0, GENESIS, -1
        runs = self.report.runs
        macs = MacChecker(self.hmac_key) if self.hmac_key is not None else None
        # Lines of one run come in stretches; look its summary up once per stretch.
        current_run: Any = object()
        summary = RunSummary()
        for index, line in enumerate(self.lines):
            event = _event_of(line)
            digest = sha256(line).hexdigest()
            if event is None:
                self.problem("edited", index, None, "the line is not an audit event (damaged JSON or missing seq/prev)")
                last_seq, last_hash = last_seq + 1, digest
                continue
            seq = event["seq"]
            if seq != last_seq + 1:
                self.explain_seq(index, seq, last_seq)
            elif event["prev"] != last_hash:
                self.problem(
                    "edited",
                    index - 1 if index else index,
                    seq - 1 if index else seq,
                    "the line's SHA-256 no longer matches the prev recorded by seq %d" % seq,
                )
            mac_ok = macs is None or macs.check(line, event)
            if not mac_ok:
                self.problem("edited", index, seq, "MAC does not match (changed, or written without the trail's key)")
            kind = event.get("event")
            if kind == "checkpoint" and mac_ok and self.checkpoint_holds(index, event, line):
                sealed_index = index
            last_seq, last_hash = seq, digest
            run_id = event.get("run_id")
            if run_id != current_run:
                current_run = run_id
                summary = runs.setdefault(str(run_id), RunSummary(first_seq=seq, first_ts=str(event.get("ts", ""))))
            summary.events += 1
            summary.last_seq = seq
            summary.last_ts = event.get("ts", "")
            if kind == "playbook_end":
                summary.ended = True
                summary.outcome = event.get("outcome")
        self.finish(last_seq, last_hash, sealed_index)

    def finish(self, last_seq: int, last_hash: str, sealed_index: int) -> None:
        report = self.report
        lines = self.lines
        report.lines = len(lines)
        report.last_seq = last_seq if lines else None
        report.head = last_hash
        if lines:
            report.first_seq = _event_seq(lines[0])
            if sealed_index >= 0:
                report.sealed_through = _event_seq(lines[sealed_index])
        if sealed_index != len(lines) - 1:
            unsealed = len(lines) - 1 - sealed_index
            self.problem(
                "truncated",
                len(lines) - 1,
                last_seq,
                "the last %d line(s) are not covered by a checkpoint: the trail was cut after them, a line was "
                "appended by someone else, or the run that wrote them was killed before its end" % unsealed,
            )

    def checkpoint_holds(self, index: int, event: Mapping[str, Any], body: bytes) -> bool:
        self.report.checkpoints += 1
        checkpoint = event.get("checkpoint")
        seq = event["seq"]
        if (
            not isinstance(checkpoint, dict)
            or checkpoint.get("last_seq") != seq - 1
            or checkpoint.get("head") != event["prev"]
        ):
            self.problem("edited", index, seq, "checkpoint does not describe the line before it")
            return False
        if self.public_keys:
            why = check_signature(self.public_keys, _without_mac(body, event), event)
            if why is not None:
                self.problem("bad signature", index, seq, why)
                return False
        return True

    def explain_seq(self, index: int, seq: int, last_seq: int) -> None:
        """Say why seq is not last_seq + 1: a line removed, inserted, or moved."""
        if len(self.report.problems) >= self.max_problems:
            return
        expected = last_seq + 1
        line = self.lines[index]
        if self.duplicates()[line] > 1:
            self.problem("inserted", index, seq, "the line is a copy of another line of the trail")
            return
        if seq > expected:
            later = [position for position in self.positions().get(expected, []) if position > index]
            if later:
                path, number = self.entries.locate(later[0])
                self.problem(
                    "reordered",
                    index,
                    seq,
                    "expected seq %d here; it appears later (%s line %d)" % (expected, path, number),
                )
                return
            self.report.gaps.append({"after_seq": last_seq, "first_missing": expected, "last_missing": seq - 1})
            self.problem("removed", index, seq, "seq %d..%d missing before this line" % (expected, seq - 1))
            return
        if len(self.positions().get(seq, [])) > 1:
            self.problem("inserted", index, seq, "seq %d appears more than once; expected %d here" % (seq, expected))
        else:
            self.problem("reordered", index, seq, "seq %d appears after seq %d" % (seq, last_seq))

    def duplicates(self) -> "collections.Counter[bytes]":
        """How often each exact line occurs (built once, on the first anomaly)."""
        if self._duplicates is None:
            self._duplicates = collections.Counter(self.lines)
        return self._duplicates

    def positions(self) -> Dict[int, List[int]]:
        """Where each seq occurs (built once, on the first anomaly)."""
        if self._positions is None:
            self._positions = {}
            for index, line in enumerate(self.lines):
                seq = _event_seq(line)
                if seq is not None:
                    self._positions.setdefault(seq, []).append(index)
        return self._positions


def _event_of(line: bytes) -> Optional[Dict[str, Any]]:
    try:
        event = parse_line(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("prev"), str):
        return None
    seq = event.get("seq")
    # bool is an int to Python, never a sequence number.
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    return event


def _without_mac(line: bytes, event: Mapping[str, Any]) -> bytes:
    mac = event.get("mac")
    return without_field(line, "mac", mac) if isinstance(mac, str) else line


def _event_seq(line: bytes) -> Optional[int]:
    event = _event_of(line)
    return event["seq"] if event is not None else None


def check_anchor(lines: List[bytes], anchor: Mapping[str, Any], report: Report, verifier: _Verifier) -> None:
    """The trail must still hold the line an anchor (seq + head hash kept elsewhere) names."""
    seq, head = anchor.get("seq"), anchor.get("head")
    for index, line in enumerate(lines):
        if _event_seq(line) == seq:
            if line_hash(line) != head:
                verifier.problem("edited", index, seq, "the line differs from the anchor's head hash %s" % head)
            return
    if lines:
        verifier.problem(
            "truncated",
            len(lines) - 1,
            report.last_seq,
            "the anchor names seq %s, which the trail no longer holds (it ends at seq %s)" % (seq, report.last_seq),
        )


def verify_trail(
    paths: List[str],
    hmac_key: Optional[bytes] = None,
    public_keys: Optional[Mapping[str, Ed25519PublicKey]] = None,
    anchor: Optional[Mapping[str, Any]] = None,
    max_problems: int = 100,
) -> Report:
    """Verify the trail made of ``paths`` (oldest first) and return what was found."""
    report = Report(files=list(paths), macs_checked=hmac_key is not None, signatures_checked=bool(public_keys))
    entries = read_lines(list(paths), report)
    verifier = _Verifier(entries, report, hmac_key, public_keys or {}, max_problems)
    verifier.run()
    if anchor is not None:
        check_anchor(entries.lines, anchor, report, verifier)
    if not entries.lines:
        verifier.report.problems.append(Problem("truncated", ", ".join(paths), 0, None, "the trail is empty"))
    report.ok = not report.problems
    return report
