"""A sink's disk spool: lines wait while the sink fails and go out in order when it is back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import Recorder, RecorderSettings
from ansible_collections.relops.release.plugins.plugin_utils.audit.sinks import Relay, Sink, SinkError, Spool
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor


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


def test_a_full_spool_leaves_new_lines_out_and_records_the_range(tmp_path: Path) -> None:
    sink = FlakySink()
    sink.down = True
    line = b'{"seq":%d,"pad":"' + b"x" * 80 + b'"}'
    spool = Spool(str(tmp_path / "spool"), max_bytes=5 * (len(line % 1) + 1))
    started = [spool.append(line % seq) for seq in range(1, 10)]
    # Five lines fit; the sixth starts the drop record, the rest only extend it.
    assert started[:5] == [None] * 5
    assert started[5] is not None and started[5]["first_seq"] == 6 and started[5]["limit"] == spool.max_bytes
    assert started[6:] == [None] * 3
    # A short line that would fit is left out too: the gap stays one range until the queue drains.
    assert spool.append(b'{"seq":10}') is None and spool.pending_lines() == 5
    assert spool.pending_lines() == 5
    assert spool.take_dropped() is None  # not before the queue has drained
    sink.down = False
    assert spool.deliver(sink) == (5, None)
    assert sink.received == [line % seq for seq in range(1, 6)]
    dropped = spool.take_dropped()
    assert dropped is not None
    assert (dropped["first_seq"], dropped["last_seq"], dropped["lines"]) == (6, 10, 5)
    assert dropped["bytes"] == 4 * (len(line % 6) + 1) + len(b'{"seq":10}') + 1
    assert spool.take_dropped() is None
    assert spool.append(line % 11) is None and spool.pending_lines() == 1


def test_a_negative_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="spool_max_size -1 must be 0"):
        Spool(str(tmp_path / "spool"), max_bytes=-1)


def _run_tasks(recorder: Recorder, run_id: str, tasks: int) -> None:
    recorder.begin_run(Actor(run_id=run_id, user="u", host="h"), "/p.yml", None)
    recorder.record("play_start", "play", {"play": "p"})
    for number in range(tasks):
        recorder.record_result(
            {"task": "t%d" % number, "host": "h", "outcome": "ok", "changed": False},
            {"changed": False},
            {},
            False,
            False,
        )


def test_recorder_puts_a_full_spool_and_the_dropped_range_on_the_record(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    settings = RecorderSettings(path=path, syslog_url="tcp://127.0.0.1:9", spool_max_size=4000, sink_retry_interval=0)
    sink = FlakySink()
    sink.down = True
    first = Recorder(settings)
    first.relays[0].sink = sink
    _run_tasks(first, "run-1", 40)
    first.record("playbook_end", "play", {"outcome": "success"})
    first.end_run()
    events = [json.loads(line) for line in Path(path).read_bytes().splitlines()]
    full = [event for event in events if event["event"] == "sink_spool_full"]
    assert len(full) == 1 and full[0]["sink"] == "flaky" and full[0]["limit"] == 4000
    assert verify_trail([path]).ok  # the spool event is sealed like any other
    sink.down = False
    second = Recorder(settings)
    second.relays[0].sink = sink
    _run_tasks(second, "run-2", 1)
    second.record("playbook_end", "play", {"outcome": "success"})
    second.end_run()
    events = [json.loads(line) for line in Path(path).read_bytes().splitlines()]
    dropped = [event for event in events if event["event"] == "sink_spool_dropped"]
    assert len(dropped) == 1
    received = [json.loads(line)["seq"] for line in sink.received]
    record = dropped[0]
    gap = set(range(record["first_seq"], record["last_seq"] + 1))
    # The sink got every seq up to the record exactly once, except the recorded range, and the record itself.
    assert len(received) == len(set(received)) and gap.isdisjoint(received)
    assert set(received) | gap >= set(range(1, record["seq"] + 1))
    assert verify_trail([path]).ok
