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
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import (
    GENESIS,
    line_hash,
    parse_line,
    plain,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import Sealer

ROTATED_SUFFIX = re.compile(r"\.(\d{8}T\d{12}Z)$")
_CHUNK = 65536


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
        # (inode, size) -> head: skips re-reading the tail when nobody else wrote since our last append.
        self._cached: Optional[Tuple[int, int, Head]] = None
        self._first_day: Optional[Tuple[int, str]] = None
        self.last_seq = 0

    def append(
        self,
        event: Dict[str, Any],
        sync: bool = False,
        before_seal: Optional[Callable[[Dict[str, Any], Head], None]] = None,
        after_write: Optional[Callable[[bytes], None]] = None,
    ) -> bytes:
        """Chain, seal and write one event; return its line.

        ``before_seal`` sees the event and the head under the lock (checkpoints
        fill in what they cover); ``after_write`` runs still under the lock, so
        whatever it records (the sinks' spool) is in chain order.
        """
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._open_live_file()
            self._rotate_if_due()
            head = self._read_head()
            record = plain(event)
            record.update(seq=head.seq + 1, prev=head.digest, ts=format_timestamp(utc_now()))
            if before_seal is not None:
                before_seal(record, head)
            line = self.sealer.seal(record)
            os.write(self._fd, line + b"\n")
            if sync:
                os.fsync(self._fd)
            self._cached = (self._inode, os.fstat(self._fd).st_size, Head(head.seq + 1, line_hash(line)))
            self.last_seq = head.seq + 1
            if after_write is not None:
                after_write(line)
            return line
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

    def _rotate_if_due(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        due = bool(self.settings.rotate_bytes and size >= self.settings.rotate_bytes)
        if not due and self.settings.rotate_daily:
            due = self._first_line_day() != utc_now().strftime("%Y-%m-%d")
        if not due:
            return
        head = self._read_head()
        os.fsync(self._fd)
        rotated = "%s.%s" % (self.path, utc_now().strftime("%Y%m%dT%H%M%S%fZ"))
        os.rename(self.path, rotated)
        os.close(self._fd)
        self._fd = -1
        self._open_live_file()
        self._cached = (self._inode, 0, head)

    def _first_line_day(self) -> str:
        if self._first_day is not None and self._first_day[0] == self._inode:
            return self._first_day[1]
        with open(self.path, "rb") as handle:
            first = handle.readline().rstrip(b"\n")
        day = str(parse_line(first).get("ts", ""))[:10]
        self._first_day = (self._inode, day)
        return day

    def _read_head(self) -> Head:
        size = os.fstat(self._fd).st_size
        if self._cached is not None and self._cached[:2] == (self._inode, size):
            return self._cached[2]
        if size == 0:
            return self._head_of_rotated()
        last = _last_line(self.path, size)
        return Head(_seq_of(last, self.path), line_hash(last))

    def _head_of_rotated(self) -> Head:
        rotated = [name for name in trail_files(self.path) if name != self.path]
        for name in reversed(rotated):
            size = os.path.getsize(name)
            if size:
                last = _last_line(name, size)
                return Head(_seq_of(last, name), line_hash(last))
        return Head(0, GENESIS)


def _last_line(path: str, size: int) -> bytes:
    """Read a file's last complete line, however long, reading backwards in chunks."""
    with open(path, "rb") as handle:
        end = size
        tail = b""
        while True:
            start = max(0, end - _CHUNK)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            body = tail[:-1] if tail.endswith(b"\n") else tail
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                if not tail.endswith(b"\n"):
                    raise TrailError(
                        "audit trail %s ends with an incomplete line (a write was cut short); "
                        "run relops.release.audit_verify on it, move the file aside and start a new trail" % path
                    )
                return body[cut + 1 :]
            end = start


def _seq_of(line: bytes, path: str) -> int:
    try:
        seq = parse_line(line)["seq"]
    except (ValueError, KeyError, TypeError):
        seq = None
    if not isinstance(seq, int):
        raise TrailError(
            "the last line of audit trail %s is not an audit event; run relops.release.audit_verify on it, "
            "move the file aside and start a new trail" % path
        )
    return seq
