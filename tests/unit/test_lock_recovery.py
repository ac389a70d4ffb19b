"""A lock whose holder's ansible-playbook died (kill -9) is taken over at once by the next run on the same host,
instead of blocking releases until its TTL runs out (issue 10: "lock recovered" after a kill mid-switch)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ansible_collections.relops.release.plugins.action.release_lock import _held_message, _try_lock
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.ledger.lock_recovery_store import (
    holder_is_dead,
    holder_survivors,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import (
    Actor,
    controller_process,
    process_alive,
    process_record,
)


def actor(run_id: str, host: str = "") -> Actor:
    return Actor(run_id=run_id, user="tester", host=host or socket.gethostname())


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def dead_process() -> dict[str, object]:
    """A process that ran on this host, killed with SIGKILL and reaped: its pid and start time."""
    child = subprocess.Popen(["sleep", "60"])
    with open("/proc/%d/stat" % child.pid, encoding="ascii") as stat:
        started = stat.read().rsplit(")", 1)[1].split()[19]
    child.kill()
    child.wait()
    return {"pid": child.pid, "started": started}


def test_a_live_process_is_alive_and_a_killed_or_reused_pid_is_not() -> None:
    mine = controller_process()
    assert process_alive(mine["pid"], mine["started"])
    gone = dead_process()
    assert not process_alive(gone["pid"], gone["started"])
    # The pid now names another process (another start time): the holder is gone all the same.
    assert not process_alive(os.getpid(), "1")


def test_a_zombie_counts_as_dead() -> None:
    child = subprocess.Popen(["sleep", "60"])
    started = controller_process_of(child.pid)
    child.kill()
    # Wait for it to die without reaping it: /proc still lists it, as state Z.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    try:
        assert not process_alive(child.pid, started)
    finally:
        child.wait()


def controller_process_of(pid: int) -> str:
    with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[19]


def test_a_dead_holders_lock_is_taken_over_before_it_expires(ledger: Ledger) -> None:
    ledger.touch_run(actor("killed"))
    ledger.touch_run(actor("finished"))
    in_flight = ledger.record_deployment(actor("killed"), "demo", "1.1.0", "local", "in_progress")
    done = ledger.record_deployment(actor("finished"), "demo", "1.0.0", "local", "in_progress")
    ledger.finish_deployment(done, "successful")
    held = ledger.try_lock("demo", actor("killed"), 1800, process=dead_process())
    assert held.lock is not None and held.lock.owner["process"]["pid"] > 0
    attempt = _try_lock(ledger, "demo", actor("rerun"), 600, controller_process())
    assert attempt.outcome == "taken_over" and attempt.lock is not None
    assert attempt.lock.owner_run_id == "rerun" and attempt.lock.owner["process"]["pid"] == os.getpid()
    assert attempt.previous is not None and attempt.previous.owner_run_id == "killed"
    latest = ledger.lock_events("demo")[0]
    assert (latest["event"], latest["run_id"], latest["previous_run_id"]) == ("taken_over", "rerun", "killed")
    dead_run = ledger.get_run("killed")
    assert dead_run is not None and dead_run["status"] == "aborted"
    assert "died while holding lock demo" in dead_run["summary"]["reason"]
    statuses = {row["id"]: row["status"] for row in ledger.list_deployments("demo", "local")}
    assert statuses == {in_flight: "failed", done: "successful"}, "only the dead run's unfinished deployment"


def test_a_live_holder_keeps_its_lock(ledger: Ledger) -> None:
    ledger.try_lock("demo", actor("alive"), 1800, process=controller_process())
    attempt = _try_lock(ledger, "demo", actor("other"), 600, controller_process())
    assert attempt.outcome == "held" and attempt.holder is not None and attempt.holder.owner_run_id == "alive"


def test_a_holder_on_another_host_or_without_a_process_waits_for_its_ttl(ledger: Ledger) -> None:
    ledger.try_lock("remote", actor("awx-job-7", host="awx-task-0"), 1800, process=dead_process())
    ledger.try_lock("old", actor("before-upgrade"), 1800)
    for name in ("remote", "old"):
        holder = ledger.get_lock(name)
        assert holder is not None and not holder_is_dead(holder)
        assert _try_lock(ledger, name, actor("next"), 600, controller_process()).outcome == "held"


def test_the_takeover_is_a_compare_and_swap_on_the_holder_it_was_shown(ledger: Ledger) -> None:
    ledger.try_lock("demo", actor("killed"), 1800, process=dead_process())
    seen = ledger.get_lock("demo")
    assert seen is not None
    # Another contender took the lock over first: the stale view must not take it from that one.
    first = ledger.take_over_dead_lock("demo", actor("first"), 600, seen)
    assert first.outcome == "taken_over"
    second = ledger.take_over_dead_lock("demo", actor("second"), 600, seen)
    assert second.outcome == "held" and second.holder is not None and second.holder.owner_run_id == "first"


# A stand-in for ansible-playbook and one task worker: the worker is a fork (same command line) that calls
# setsid(), as Ansible's WorkerProcess does, and keeps "migrating" after its parent is killed.
FORKING_RUN = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    # Only now is it out of the parent's process group: say so (the test kills that group next).
    print(os.getpid(), flush=True)
    time.sleep(120)
    os._exit(0)
time.sleep(600)
"""


def test_a_holder_whose_worker_outlives_its_killed_playbook_keeps_the_lock_until_the_worker_is_gone(
    ledger: Ledger,
) -> None:
    """Issue 22: after kill -9 of ansible-playbook's process group, a worker in its own session still ran a
    migration 11 s after the rerun took the lock. The lock now waits for the whole run."""
    run = subprocess.Popen(
        [sys.executable, "-c", FORKING_RUN, "relops-run-%d" % time.monotonic_ns()],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert run.stdout is not None
    worker = int(run.stdout.readline())
    try:
        ledger.touch_run(actor("killed"))
        held = ledger.try_lock("demo", actor("killed"), 1800, process=process_record(run.pid))
        assert held.lock is not None and held.lock.owner["process"]["cmdline"], held
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        assert not process_alive(run.pid, held.lock.owner["process"]["started"]) and process_alive(worker, "")

        attempt = _try_lock(ledger, "demo", actor("rerun"), 600, controller_process())
        assert attempt.outcome == "held", "taken over while the dead run's worker still works"
        assert attempt.holder is not None and holder_survivors(attempt.holder) == [worker]
        assert "worker process(es) %d still run" % worker in _held_message("demo", attempt.holder, 5)
        assert [event["event"] for event in ledger.lock_events("demo")] == ["acquired"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
    wait_until_gone(worker)

    taken = _try_lock(ledger, "demo", actor("rerun"), 600, controller_process())
    assert taken.outcome == "taken_over" and taken.previous is not None and taken.previous.owner_run_id == "killed"
    latest = ledger.lock_events("demo")[0]
    assert (latest["event"], latest["run_id"], latest["previous_run_id"]) == ("taken_over", "rerun", "killed")


def wait_until_gone(pid: int) -> None:
    """The orphan is reaped by init, or stays a zombie, which counts as gone."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process_alive(pid, ""):
        time.sleep(0.05)
    assert not process_alive(pid, "")
