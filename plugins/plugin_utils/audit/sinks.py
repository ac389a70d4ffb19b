# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remote copies of the trail: RFC 5424 syslog over TCP or TLS, and HTTP (Splunk HEC, webhook).

The local file is the record; sinks get copies. Every line is first appended
to the sink's disk spool (under the trail's lock, so the spool is in chain
order), then the spool is delivered from its saved offset. A sink that is down
leaves lines in the spool; they go out, in order, the next time delivery
succeeds, in this run or a later one. Delivery is at least once: a process
killed between sending and saving the offset sends those lines again, and
receivers can drop repeats by ``seq``.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import socket
import ssl
import time
import urllib.parse
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp, parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import canonical_line, parse_line

# Only the HTTP sink needs requests.
try:
    import requests
except ImportError:
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

FACILITIES = {"user": 1, "daemon": 3, "auth": 4, "authpriv": 10, **{"local%d" % n: 16 + n for n in range(8)}}
# Failures are warnings to syslog, everything else is informational.
_SEVERITY = {"failed": 4, "unreachable": 4, "async_failed": 4, "aborted": 4}
_BATCH = 200


class SinkError(Exception):
    """A sink refused or could not take delivery."""


class Sink:
    name = "sink"

    def send(self, lines: List[bytes]) -> None:
        raise SinkError("%s cannot send" % self.name)

    def close(self) -> None:
        """Release the connection, if any."""


class SyslogSink(Sink):
    """RFC 5424 messages with RFC 6587 octet-counting framing, over TCP or TLS (RFC 5425)."""

    def __init__(self, url: str, ca_file: Optional[str] = None, facility: str = "local0", timeout: float = 5.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("tcp", "tls") or not parsed.hostname:
            raise ValueError("syslog_url %r must look like tcp://host:514 or tls://host:6514" % url)
        if facility not in FACILITIES:
            raise ValueError("syslog_facility %r is not one of %s" % (facility, ", ".join(sorted(FACILITIES))))
        self.name = "syslog %s" % url
        self.host = parsed.hostname
        self.port = parsed.port or (6514 if parsed.scheme == "tls" else 514)
        self.tls = parsed.scheme == "tls"
        self.ca_file = ca_file
        self.facility = FACILITIES[facility]
        self.timeout = timeout
        self.hostname = socket.gethostname()
        self._socket: Optional[socket.socket] = None

    def send(self, lines: List[bytes]) -> None:
        try:
            connection = self._connection()
            connection.sendall(b"".join(self.frame(line) for line in lines))
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise SinkError("%s: %s" % (self.name, exc)) from None

    def frame(self, line: bytes) -> bytes:
        event = parse_line(line)
        severity = _SEVERITY.get(str(event.get("outcome")), 6)
        msgid = re.sub(r"[^!-~]", "_", str(event.get("event", "-")))[:32] or "-"
        header = "<%d>1 %s %s relops-audit %d %s - " % (
            self.facility * 8 + severity,
            event.get("ts", "-"),
            self.hostname,
            os.getpid(),
            msgid,
        )
        message = header.encode("utf-8") + line
        return b"%d %s" % (len(message), message)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _connection(self) -> socket.socket:
        # TCP syslog has no acknowledgements: a peer that went away is only
        # noticed by a read, so check before writing rather than lose lines
        # into a dead connection's buffer.
        if self._socket is not None and self._peer_closed(self._socket):
            self.close()
        if self._socket is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.tls:
                context = ssl.create_default_context(cafile=self.ca_file)
                raw = context.wrap_socket(raw, server_hostname=self.host)
            self._socket = raw
        return self._socket

    def _peer_closed(self, connection: socket.socket) -> bool:
        """Whether the receiver closed the connection (a TLS session ticket is not a close)."""
        if not select.select([connection], [], [], 0)[0]:
            return False
        connection.setblocking(False)
        try:
            data = connection.recv(1) if isinstance(connection, ssl.SSLSocket) else connection.recv(1, socket.MSG_PEEK)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            connection.settimeout(self.timeout)
        return data == b""


class HttpSink(Sink):
    """Splunk HTTP Event Collector (``hec``) or a generic JSON webhook (``webhook``)."""

    def __init__(
        self,
        url: str,
        kind: str = "hec",
        token: Optional[str] = None,
        validate_certs: bool = True,
        ca_file: Optional[str] = None,
        timeout: float = 5.0,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("http_url %r must be an http:// or https:// URL" % url)
        if not HAS_REQUESTS:
            raise ValueError("http_url needs the Python package requests on the controller; pip install requests")
        if kind not in ("hec", "webhook"):
            raise ValueError("http_format %r must be hec or webhook" % kind)
        self.name = "%s %s" % (kind, url)
        self.url = url
        self.kind = kind
        self.timeout = timeout
        self.hostname = socket.gethostname()
        self.session = requests.Session()
        self.session.verify = ca_file or validate_certs
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = ("Splunk %s" if kind == "hec" else "Bearer %s") % token

    def send(self, lines: List[bytes]) -> None:
        body = self.hec_body(lines) if self.kind == "hec" else b"[" + b",".join(lines) + b"]"
        try:
            response = self.session.post(self.url, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SinkError("%s: %s" % (self.name, exc)) from None
        if not 200 <= response.status_code < 300:
            raise SinkError("%s: HTTP %d %s" % (self.name, response.status_code, response.text[:200]))

    def hec_body(self, lines: List[bytes]) -> bytes:
        envelopes = []
        for line in lines:
            event = parse_line(line)
            moment = parse_timestamp(str(event.get("ts") or now_timestamp()))
            envelopes.append(
                canonical_line(
                    {
                        "time": round(moment.timestamp(), 6),
                        "host": self.hostname,
                        "source": "relops.release.audit",
                        "sourcetype": "_json",
                        "event": event,
                    }
                )
            )
        return b"\n".join(envelopes)

    def close(self) -> None:
        self.session.close()


class Spool:
    """A sink's on-disk queue: ``queue.jsonl`` plus the offset of the first undelivered byte.

    The queue is capped at ``max_bytes`` (0: no cap). When it is full, new
    lines are not queued until it has drained (the oldest, already queued,
    keep their order, and what is left out is one seq range), and
    ``queue.dropped`` records the range of seq numbers left out; the
    recorder writes ``sink_spool_full`` into the trail when that starts and
    ``sink_spool_dropped`` (with the range) once the queue has drained, so
    the gap is on the record locally and reaches the sink itself. The trail
    file still holds every line: only the remote copy has the gap.
    """

    def __init__(self, directory: str, max_bytes: int = 0) -> None:
        if max_bytes < 0:
            raise ValueError("spool_max_size %r must be 0 (no cap) or a number of bytes" % max_bytes)
        self.directory = directory
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.queue = os.path.join(directory, "queue.jsonl")
        self.offset_file = os.path.join(directory, "queue.offset")
        self.dropped_file = os.path.join(directory, "queue.dropped")
        self._lock_fd = os.open(os.path.join(directory, "spool.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self._delivery_fd = os.open(os.path.join(directory, "delivery.lock"), os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def _locked(self, fd: int, blocking: bool = True) -> Iterator[bool]:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def append(self, line: bytes) -> Optional[Dict[str, Any]]:
        """Queue a line; when the queue is full, leave it out and return the drop record if this starts one."""
        with self._locked(self._lock_fd):
            fd = os.open(self.queue, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # Once lines are left out, all are until the queue drains, so the gap is one seq range.
                if os.path.exists(self.dropped_file) or (
                    self.max_bytes and os.fstat(fd).st_size + len(line) + 1 > self.max_bytes
                ):
                    return self._note_dropped(line)
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)
        return None

    def _note_dropped(self, line: bytes) -> Optional[Dict[str, Any]]:
        """Add a line to the drop record (under the spool lock); return the record when it is new."""
        try:
            seq = parse_line(line).get("seq")
        except ValueError:
            seq = None
        record = self._read_dropped()
        started = record is None
        if record is None:
            record = {"first_seq": seq, "last_seq": seq, "lines": 0, "bytes": 0, "since": now_timestamp()}
        record.update(last_seq=seq, lines=record["lines"] + 1, bytes=record["bytes"] + len(line) + 1)
        temporary = self.dropped_file + ".tmp"
        with open(temporary, "wb") as handle:
            handle.write(canonical_line(record))
        os.replace(temporary, self.dropped_file)
        return dict(record, limit=self.max_bytes) if started else None

    def _read_dropped(self) -> Optional[Dict[str, Any]]:
        try:
            with open(self.dropped_file, "rb") as handle:
                record = parse_line(handle.read())
        except (FileNotFoundError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def take_dropped(self) -> Optional[Dict[str, Any]]:
        """Once the queue has drained, return and forget the record of lines left out while it was full."""
        with self._locked(self._lock_fd):
            record = self._read_dropped()
            if record is None:
                return None
            try:
                size = os.path.getsize(self.queue)
            except FileNotFoundError:
                size = 0
            if size:
                return None
            os.unlink(self.dropped_file)
        return dict(record, limit=self.max_bytes)

    def pending_lines(self) -> int:
        with self._locked(self._lock_fd):
            return len(self._read_pending()[1])

    def deliver(self, sink: Sink) -> Tuple[int, Optional[str]]:
        """Send what is pending, in order; return (lines delivered, error or None).

        Only one process delivers a spool at a time; another that finds it busy
        leaves the work to it.
        """
        with self._locked(self._delivery_fd, blocking=False) as mine:
            if not mine:
                return 0, None
            with self._locked(self._lock_fd):
                offset, lines = self._read_pending()
            delivered = 0
            try:
                for start in range(0, len(lines), _BATCH):
                    batch = lines[start : start + _BATCH]
                    sink.send(batch)
                    delivered += len(batch)
                    offset += sum(len(line) + 1 for line in batch)
                    self._save_offset(offset)
            except SinkError as exc:
                return delivered, str(exc)
            finally:
                self._compact()
            return delivered, None

    def _read_pending(self) -> Tuple[int, List[bytes]]:
        offset = self._offset()
        try:
            with open(self.queue, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return 0, []
        complete = data[: data.rfind(b"\n") + 1]
        return offset, complete.split(b"\n")[:-1]

    def _offset(self) -> int:
        try:
            with open(self.offset_file, encoding="ascii") as handle:
                return int(handle.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _save_offset(self, offset: int) -> None:
        temporary = self.offset_file + ".tmp"
        # Not synced: after a machine crash the worst case is lines sent twice (delivery is at least once),
        # and syncing twice per event would cost more than the sink itself.
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(str(offset))
        os.replace(temporary, self.offset_file)

    def _compact(self) -> None:
        """Empty the queue once everything in it was delivered (under the append lock, so nothing slips in)."""
        with self._locked(self._lock_fd):
            try:
                size = os.path.getsize(self.queue)
            except FileNotFoundError:
                return
            if size and self._offset() == size:
                os.truncate(self.queue, 0)
                self._save_offset(0)

    def close(self) -> None:
        for fd in (self._lock_fd, self._delivery_fd):
            os.close(fd)


class Relay:
    """One sink, its spool, and whether it was down at the last attempt (per process)."""

    def __init__(self, sink: Sink, spool: Spool, retry_interval: float) -> None:
        self.sink = sink
        self.spool = spool
        self.retry_interval = retry_interval
        self.down_since: Optional[str] = None
        self._next_try = 0.0

    def flush(self, force: bool = False) -> Optional[Tuple[str, Dict[str, Any]]]:
        """Deliver the spool; return an outage or recovery event to record, when the state changed."""
        if self.down_since is not None and not force and time.monotonic() < self._next_try:
            return None
        delivered, error = self.spool.deliver(self.sink)
        if error is not None:
            self._next_try = time.monotonic() + self.retry_interval
            if self.down_since is None:
                self.down_since = now_timestamp()
                return "sink_outage", {"sink": self.sink.name, "error": error, "delivered": delivered}
            return None
        if self.down_since is not None:
            since, self.down_since = self.down_since, None
            return "sink_restored", {"sink": self.sink.name, "down_since": since, "delivered": delivered}
        return None

    def close(self) -> None:
        self.sink.close()
        self.spool.close()


def spool_name(sink: Sink) -> str:
    """A directory name for a sink's spool, stable across runs for the same destination."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sink.name).strip("_")
