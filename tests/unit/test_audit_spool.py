"""A sink's disk spool: lines wait while the sink fails and go out in order when it is back."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.relops.release.plugins.plugin_utils.audit.sinks import Relay, Sink, SinkError, Spool


class FlakySink(Sink):
    """Takes delivery into a list, or refuses while ``down``."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = False
        self.received: list[bytes] = []

    def send(self, lines: list[bytes]) -> None:
        if self.down:
            raise SinkError("flaky: connection refused")
        self.received.extend(lines)


def test_lines_wait_in_order_and_the_outage_is_reported_once(tmp_path: Path) -> None:
    sink = FlakySink()
    relay = Relay(sink, Spool(str(tmp_path / "spool")), retry_interval=0)
    relay.spool.append(b'{"seq":1}')
    assert relay.flush() is None and sink.received == [b'{"seq":1}']
    sink.down = True
    changes = []
    for seq in range(2, 6):
        relay.spool.append(b'{"seq":%d}' % seq)
        changes.append(relay.flush())
    assert changes[0] is not None and changes[0][0] == "sink_outage" and "connection refused" in changes[0][1]["error"]
    assert changes[1:] == [None, None, None]
    assert relay.spool.pending_lines() == 4
    sink.down = False
    change = relay.flush()
    assert change is not None and change[0] == "sink_restored" and change[1]["delivered"] == 4
    assert sink.received == [b'{"seq":%d}' % seq for seq in range(1, 6)]
    assert relay.spool.pending_lines() == 0 and (tmp_path / "spool" / "queue.jsonl").stat().st_size == 0


def test_a_new_process_delivers_what_an_earlier_one_left(tmp_path: Path) -> None:
    first = Spool(str(tmp_path / "spool"))
    for seq in range(3):
        first.append(b'{"seq":%d}' % seq)
    first.close()
    sink = FlakySink()
    delivered, error = Spool(str(tmp_path / "spool")).deliver(sink)
    assert (delivered, error) == (3, None) and len(sink.received) == 3


def test_retry_waits_for_the_interval_unless_forced(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    relay = Relay(sink, Spool(str(tmp_path / "spool")), retry_interval=3600)
    relay.spool.append(b'{"seq":1}')
    assert relay.flush() is not None
    sink.down = False
    assert relay.flush() is None and sink.received == []
    change = relay.flush(force=True)
    assert change is not None and change[0] == "sink_restored" and sink.received == [b'{"seq":1}']
