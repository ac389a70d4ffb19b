# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hash-chained, locked, rotating JSON Lines file.

Every append takes an exclusive ``fcntl`` lock on ``<trail>.lock``, reads the
head (last seq and the hash of the last line) from the file itself, and writes
one line with a single ``write`` on an ``O_APPEND`` descriptor. The head lives
only in the file, so any number of ansible-playbook processes, each with its
own writer, keep one chain. Rotation renames the file to
``<trail>.<UTC time>``; the first line of the new file chains to the last line
of the rotated one.

Before it appends, a writer checks what others wrote since it last looked:
the lines after the last checkpoint (or after its own last line) must
continue the chain, carry a good MAC (with an HMAC key) and, for checkpoints
signed with the writer's key, a good signature; the file must end with a
newline; and at a run's first append the trail must still hold the newest
checkpoint the ledger anchored. When something does not hold, the writer ends
a torn line with a newline, records a ``tamper_detected`` event naming the
damage and chains on from there: the damage is on the record, sealed by the
next checkpoint, and no checkpoint's range vouches for the damaged lines.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import (
    GENESIS,
    line_hash,
    parse_line,
    plain,
    without_field,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import Sealer, check_signature, line_mac

if TYPE_CHECKING:
    from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import Anchor

ROTATED_SUFFIX = re.compile(r"\.(\d{8}T\d{12}Z)$")
_CHUNK = 65536
# What a writer records when the lines it would chain onto do not verify (docs/audit.md).
TAMPER_EVENT = "tamper_detected"


class TrailError(Exception):
    """The trail cannot be written; the message names the file and the fix."""


def trail_files(path: str) -> List[str]:
    """Return a trail's files oldest first: rotated files by their time suffix, then the live file."""
    rotated = sorted(name for name in glob.glob(glob.escape(path) + ".*") if ROTATED_SUFFIX.search(name))
    return rotated + ([path] if os.path.exists(path) else [])


@dataclass
class Head:
    seq: int
    digest: str


@dataclass
class Damage:
    """What a writer found wrong before appending: damaged lines at the tail, or a cut against the ledger."""

    kind: str  # a line: torn, not_an_event, chain, mac, checkpoint, signature; against the ledger: cut
    detail: str
    file: str
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    lines: int = 0
    cut: List["Anchor"] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "kind": self.kind,
            "detail": self.detail,
            "file": self.file,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "lines": self.lines,
        }
        if self.cut:
            data["anchors"] = [{"seq": anchor.seq, "head": anchor.head, "run_id": anchor.run_id} for anchor in self.cut]
        return data


def default_damage_record(damage: Damage) -> Dict[str, Any]:
    return {"event": TAMPER_EVENT, "actor": {}, "damage": damage.as_dict()}


@dataclass
class TrailSettings:
    path: str
    rotate_bytes: int = 0
    rotate_daily: bool = False


class Trail:
    """Appends events to one trail; safe across threads of one process when the caller serialises calls."""

    def __init__(self, settings: TrailSettings, sealer: Sealer) -> None:
        self.settings = settings
        self.sealer = sealer
        self.path = os.path.abspath(os.path.expanduser(settings.path))
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise TrailError(
                "audit trail %s cannot be opened (%s); point the callback's path option at a writable file"
                % (self.path, exc.strerror)
            ) from None
        self._fd = -1
        self._inode = -1
        # (inode, size) -> head: what this writer last wrote or checked; only lines after it need checking.
        self._cached: Optional[Tuple[int, int, Head]] = None
        self._first_day: Optional[Tuple[int, str]] = None
        self.last_seq = 0
        # Checked at the next full look at the tail (a run's first append): the ledger's standing anchors.
        self.expected_anchors: Optional[List["Anchor"]] = None
        # The first seq after the last checkpoint that this writer checked or wrote: its next checkpoint's range.
        self.checked_from: Optional[int] = None
        # Damage found, with the seq of the tamper_detected line recorded for it, for the caller to report.
        self.found: List[Tuple[Damage, int]] = []
        self.damage_record: Callable[[Damage], Dict[str, Any]] = default_damage_record
        # The last checkpoint a full check started from (its event and line hash): what a run may anchor.
        self.tail_checkpoint: Optional[Tuple[Dict[str, Any], str]] = None
        signing = sealer.signing_key
        self._own_keys = {sealer.key_id: signing.public_key()} if signing is not None and sealer.key_id else {}

    def append(
        self,
        event: Dict[str, Any],
        sync: bool = False,
        before_seal: Optional[Callable[[Dict[str, Any], Head], None]] = None,
        after_write: Optional[Callable[[bytes], None]] = None,
    ) -> bytes:
        """Check the tail, then chain, seal and write one event; return its line.

        ``before_seal`` sees the event and the head under the lock (checkpoints
        fill in what they cover); ``after_write`` runs still under the lock, so
        whatever it records (the sinks' spool) is in chain order.
        """
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._open_live_file()
            head = self._checked_head(after_write)
            head = self._rotate_if_due(head)
            return self._write(event, head, sync, before_seal, after_write)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def sync(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    def _write(
        self,
        event: Dict[str, Any],
        head: Head,
        sync: bool,
        before_seal: Optional[Callable[[Dict[str, Any], Head], None]],
        after_write: Optional[Callable[[bytes], None]],
    ) -> bytes:
        record = plain(event)
        record.update(seq=head.seq + 1, prev=head.digest, ts=format_timestamp(utc_now()))
        if before_seal is not None:
            before_seal(record, head)
        line = self.sealer.seal(record)
        data = line + b"\n"
        written = os.write(self._fd, data)
        if written != len(data):
            # A short write (a full disk) leaves a torn line; the next append records it as damage.
            raise TrailError(
                "audit trail %s: only %d of %d bytes of seq %d were written; is the disk full?"
                % (self.path, written, len(data), head.seq + 1)
            )
        if sync:
            os.fsync(self._fd)
        self._cached = (self._inode, os.fstat(self._fd).st_size, Head(head.seq + 1, line_hash(line)))
        self.last_seq = head.seq + 1
        if record.get("event") == "checkpoint":
            self.checked_from = None
        if after_write is not None:
            after_write(line)
        return line

    def _open_live_file(self) -> None:
        """(Re)open the live file when another process rotated it away from under our descriptor."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = -1
        if self._fd >= 0 and current == self._inode:
            return
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._inode = os.fstat(self._fd).st_ino

    def _rotate_if_due(self, head: Head) -> Head:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return head
        due = bool(self.settings.rotate_bytes and size >= self.settings.rotate_bytes)
        if not due and self.settings.rotate_daily:
            due = self._first_line_day() != utc_now().strftime("%Y-%m-%d")
        if not due:
            return head
        os.fsync(self._fd)
        rotated = "%s.%s" % (self.path, utc_now().strftime("%Y%m%dT%H%M%S%fZ"))
        os.rename(self.path, rotated)
        os.close(self._fd)
        self._fd = -1
        self._open_live_file()
        self._cached = (self._inode, 0, head)
        return head

    def _first_line_day(self) -> str:
        if self._first_day is not None and self._first_day[0] == self._inode:
            return self._first_day[1]
        with open(self.path, "rb") as handle:
            first = handle.readline().rstrip(b"\n")
        event = event_of(first)
        day = str(event.get("ts", ""))[:10] if event is not None else ""
        self._first_day = (self._inode, day)
        return day

    def _checked_head(self, after_write: Optional[Callable[[bytes], None]]) -> Head:
        """The head to chain onto, after checking what was written since this writer last looked.

        Damage found is recorded, one ``tamper_detected`` line per finding, and
        the head returned follows those lines.
        """
        size = os.fstat(self._fd).st_size
        cached = self._cached
        if cached is not None and cached[0] == self._inode and cached[1] == size:
            return cached[2]
        damages: List[Damage] = []
        if cached is not None and cached[0] == self._inode and cached[1] < size:
            # Others appended since our last line: check only their lines, chained onto ours.
            head, damage = self._scan(cached[1], cached[2], size)
        else:
            start, head = self._tail_start(size)
            head, damage = self._scan(start, head, size)
            if self.expected_anchors is not None:
                anchors, self.expected_anchors = self.expected_anchors, None
                cut = self._check_anchors(anchors, head)
                if cut is not None:
                    damages.append(cut)
        if damage is not None:
            damages.insert(0, damage)
        for found in damages:
            line = self._write(self.damage_record(found), head, True, None, after_write)
            head = Head(self.last_seq, line_hash(line))
            if self.checked_from is None:
                self.checked_from = head.seq
            self.found.append((found, head.seq))
        return head

    def _tail_start(self, size: int) -> Tuple[int, Head]:
        """Where a full check starts: the live file's last checkpoint (chained onto its prev), else its start."""
        if size:
            for offset, line in lines_backwards(self.path, size):
                event = event_of(line)
                if event is not None and event.get("event") == "checkpoint":
                    self.tail_checkpoint = (event, line_hash(line))
                    return offset, Head(event["seq"] - 1, event["prev"])
        return 0, self._head_of_rotated()

    def _scan(self, start: int, head: Head, size: int) -> Tuple[Head, Optional[Damage]]:
        """Check the live file's lines from byte ``start`` (chained onto ``head``); end a torn last line."""
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
        lines = data.split(b"\n")
        piece = lines.pop()
        seq, digest = head.seq, head.digest
        damage: Optional[Damage] = None
        for line in lines:
            event = event_of(line)
            problem = self._line_problem(line, event, seq, digest)
            seq = event["seq"] if event is not None else seq + 1
            digest = line_hash(line)
            if problem is None and event is not None and event.get("event") == TAMPER_EVENT:
                damage = None  # another writer has recorded the damage before this line
            elif problem is not None and damage is None:
                damage = Damage(problem[0], problem[1], self.path, seq, seq)
            if damage is not None:
                damage.last_seq, damage.lines = seq, damage.lines + 1
            elif self.checked_from is None and event is not None and event.get("event") != "checkpoint":
                # The next checkpoint's range starts at the first good line this writer checked.
                self.checked_from = seq
        if piece:
            # A write cut mid-line (a crash, a full disk): end it, so that it is a line the chain goes on from.
            os.write(self._fd, b"\n")
            seq, digest = seq + 1, line_hash(piece)
            if damage is None:
                damage = Damage(
                    "torn",
                    "the file ended in the middle of a line (%d bytes without a newline); the writer ended that line"
                    % len(piece),
                    self.path,
                    seq,
                    seq,
                )
            damage.last_seq, damage.lines = seq, damage.lines + 1
        return Head(seq, digest), damage

    def _line_problem(
        self, line: bytes, event: Optional[Dict[str, Any]], seq: int, digest: str
    ) -> Optional[Tuple[str, str]]:
        """Why a line does not continue the chain as a writer would have written it, or None."""
        if event is None:
            return "not_an_event", "a line is not an audit event (damaged JSON or missing seq/prev)"
        if event["seq"] != seq + 1 or event["prev"] != digest:
            return "chain", "seq %s does not follow seq %d (its seq or prev do not link)" % (event["seq"], seq)
        key = self.sealer.hmac_key
        mac = event.get("mac")
        if key is not None and not (
            isinstance(mac, str) and compare_digest(line_mac(key, without_field(line, "mac", mac)), mac)
        ):
            return "mac", "seq %d has no valid MAC: it was not written with the trail's HMAC key" % event["seq"]
        if event.get("event") != "checkpoint":
            return None
        checkpoint = event.get("checkpoint")
        if not isinstance(checkpoint, dict) or checkpoint.get("last_seq") != seq or checkpoint.get("head") != digest:
            return "checkpoint", "checkpoint seq %d does not describe the line before it" % event["seq"]
        if checkpoint.get("key_id") in self._own_keys:
            body = without_field(line, "mac", mac) if isinstance(mac, str) else line
            why = check_signature(self._own_keys, body, event)
            if why is not None:
                return "signature", "checkpoint seq %d: %s" % (event["seq"], why)
        return None

    def _check_anchors(self, anchors: List["Anchor"], head: Head) -> Optional[Damage]:
        """None when the trail holds the newest anchored checkpoint; else the damage naming the anchors cut off.

        Anchors come newest first; the trail is read backwards once, down to
        the newest anchor it still holds unchanged.
        """
        lines = seqs_backwards(trail_files(self.path))
        current = next(lines, None)
        cut: List["Anchor"] = []
        for anchor in anchors:
            while current is not None and current[0] > anchor.seq:
                current = next(lines, None)
            if current is not None and current == (anchor.seq, anchor.head):
                break
            cut.append(anchor)
        if not cut:
            return None
        newest = cut[0]
        held = "holds another line at seq %d" % newest.seq if newest.seq <= head.seq else "ends at seq %d" % head.seq
        return Damage(
            "cut",
            "the ledger anchors checkpoint seq %d of run %s (head %s), but the trail %s: lines were removed from "
            "its end%s" % (newest.seq, newest.run_id, newest.head, held, _and_older(len(cut) - 1)),
            self.path,
            cut=cut,
        )

    def _head_of_rotated(self) -> Head:
        rotated = [name for name in trail_files(self.path) if name != self.path]
        for name in reversed(rotated):
            for _offset, line in lines_backwards(name, os.path.getsize(name)):
                event = event_of(line)
                if event is None:
                    raise TrailError(
                        "the last line of rotated audit trail file %s is not an audit event; run "
                        "relops.release.audit_verify on the trail" % name
                    )
                return Head(event["seq"], line_hash(line))
        return Head(0, GENESIS)


def lines_backwards(path: str, size: int) -> Iterator[Tuple[int, bytes]]:
    """The complete lines of a file's first ``size`` bytes, last first, with their offsets (a torn end skipped)."""
    with open(path, "rb") as handle:
        end, rest, skipping = size, b"", True
        while end > 0:
            start = max(0, end - _CHUNK)
            handle.seek(start)
            # The block always ends where a newline follows in the file (after the skipped torn end).
            block = handle.read(end - start) + rest
            end = start
            if skipping:
                cut = block.rfind(b"\n")
                if cut < 0:
                    continue
                block, skipping = block[:cut], False
            parts = block.split(b"\n")
            starts = []
            position = start
            for part in parts:
                starts.append(position)
                position += len(part) + 1
            lowest = 1 if start > 0 else 0
            for index in range(len(parts) - 1, lowest - 1, -1):
                yield starts[index], parts[index]
            rest = parts[0] if start > 0 else b""


def seqs_backwards(paths: List[str]) -> Iterator[Tuple[int, str]]:
    """(seq, line hash) of every event line of a trail's files, last first."""
    for path in reversed(paths):
        for _offset, line in lines_backwards(path, os.path.getsize(path)):
            event = event_of(line)
            if event is not None:
                yield event["seq"], line_hash(line)


def event_of(line: bytes) -> Optional[Dict[str, Any]]:
    """The event a line holds, or None when it is not one (not JSON, not an object, no int seq or str prev)."""
    try:
        event = parse_line(line)
    except ValueError:
        return None
    seq = event.get("seq") if isinstance(event, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(event.get("prev"), str):
        return None
    found: Dict[str, Any] = event
    return found


def _and_older(count: int) -> str:
    return " (and %d older anchored checkpoint(s) with them)" % count if count else ""
