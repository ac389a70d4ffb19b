"""The audit trail's tamper matrix (issue 17, item 5) on trails the real writer (Recorder) wrote: the
writer's check before it appends, the verifier's coverage and run-end checks, checkpoint anchors in the
ledger (SQLite and PostgreSQL), and the "audit required" readiness check a gate calls."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fixtures.audit import AuditKeys
from fixtures.postgres import free_port

from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import AnchorStore, LedgerAnchors
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import line_hash
from ansible_collections.relops.release.plugins.plugin_utils.audit.readiness import (
    AUDIT_ERROR_ENV,
    AUDIT_TRAIL_ENV,
    check_audit_ready,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import Recorder, RecorderSettings
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import (
    Sealer,
    load_public_keys,
    load_signing_key,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import (
    TAMPER_EVENT,
    Head,
    Trail,
    TrailSettings,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor


def start_run(
    trail: str, keys: AuditKeys, run_id: str, ledger_url: str | None = None, checkpoint_every: int = 1000
) -> Recorder:
    settings = RecorderSettings(
        path=trail,
        hmac_key_file=keys.hmac_key_file,
        signing_key=keys.private_key,
        checkpoint_every=checkpoint_every,
    )
    anchors = LedgerAnchors(parse_ledger_url(ledger_url), "tests") if ledger_url else None
    recorder = Recorder(settings, anchors)
    recorder.begin_run(Actor(run_id=run_id, user="ops", host="controller"), "/srv/release.yml", None)
    recorder.record("playbook_start", "play", {})
    return recorder


def record_tasks(recorder: Recorder, count: int, prefix: str = "t") -> None:
    for number in range(count):
        recorder.record(
            "task_start",
            "task",
            {
                "task": "%s%d" % (prefix, number),
                "task_uuid": "%s-uuid-%d" % (prefix, number),
                "args": {},
                "no_log": False,
            },
        )


def end_run(recorder: Recorder) -> list[str]:
    recorder.record("playbook_end", "play", {"outcome": "success"})
    return recorder.end_run()


def whole_run(trail: str, keys: AuditKeys, run_id: str, ledger_url: str | None = None, tasks: int = 3) -> list[str]:
    recorder = start_run(trail, keys, run_id, ledger_url)
    record_tasks(recorder, tasks)
    return end_run(recorder) + recorder.take_warnings()


def lines_of(trail: str) -> list[bytes]:
    with open(trail, "rb") as handle:
        return handle.read().split(b"\n")[:-1]


def events_of(trail: str) -> list[dict]:
    return [json.loads(line) for line in lines_of(trail)]


def cut_after(trail: str, seq: int) -> None:
    kept = [line for line in lines_of(trail) if json.loads(line)["seq"] <= seq]
    with open(trail, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in kept))


def forge_line(trail: str, run_id: str = "intruder") -> dict:
    """Append a chain-valid line (right seq and prev) without the trail's HMAC key, as an intruder would."""
    last = lines_of(trail)[-1]
    forged = {
        "actor": {"user": "mallory"},
        "event": "runner_ok",
        "prev": line_hash(last),
        "run_id": run_id,
        "seq": json.loads(last)["seq"] + 1,
        "task": "approve change",
        "ts": "2026-12-01T00:00:00.000000Z",
    }
    with open(trail, "ab") as handle:
        handle.write(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    return forged


def reasons(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [problem.reason for problem in report.problems]


@pytest.fixture
def trail(tmp_path: Path) -> str:
    return str(tmp_path / "audit" / "audit.jsonl")


def test_forged_line_after_the_last_checkpoint_is_recorded_not_sealed(trail: str, audit_keys: AuditKeys) -> None:
    whole_run(trail, audit_keys, "run-1")
    forged = forge_line(trail)
    warnings = whole_run(trail, audit_keys, "run-2")

    events = events_of(trail)
    tamper = [event for event in events if event["event"] == TAMPER_EVENT]
    assert len(tamper) == 1 and tamper[0]["run_id"] == "run-2"
    assert tamper[0]["damage"]["kind"] == "mac"
    assert (tamper[0]["damage"]["first_seq"], tamper[0]["damage"]["last_seq"]) == (forged["seq"], forged["seq"])
    assert tamper[0]["seq"] == forged["seq"] + 1 and "mac" in tamper[0]
    assert any("tamper_detected seq %d" % tamper[0]["seq"] in warning for warning in warnings), warnings
    # No checkpoint's range vouches for the forged line.
    ranges = [(e["checkpoint"]["first_seq"], e["checkpoint"]["last_seq"]) for e in events if e["event"] == "checkpoint"]
    assert not any(low <= forged["seq"] <= high for low, high in ranges), ranges

    # An auditor with the public key only: the forged line does not pass.
    public_only = verify_trail([trail], None, load_public_keys([audit_keys.public_key]))
    assert reasons(public_only) == ["tampered"], public_only.as_dict()["problems"]
    assert public_only.problems[0].seq == tamper[0]["seq"] and "no valid MAC" in public_only.problems[0].detail
    # With the HMAC key the forged line itself is named first.
    with_mac = verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key]))
    assert reasons(with_mac) == ["edited", "tampered"] and with_mac.problems[0].seq == forged["seq"]


def test_a_line_sealed_by_a_writer_that_did_not_check_it_is_unsealed(trail: str, audit_keys: AuditKeys) -> None:
    """A trail an older writer sealed: it took the forged line as its head, its checkpoint's range starts after."""
    whole_run(trail, audit_keys, "run-1")
    forged = forge_line(trail)
    old_writer = Trail(TrailSettings(trail), Sealer(audit_keys.hmac_key, load_signing_key(audit_keys.private_key)))
    old_writer._cached = (
        os.stat(trail).st_ino,
        os.path.getsize(trail),
        Head(forged["seq"], line_hash(lines_of(trail)[-1])),
    )
    old_writer._inode = os.stat(trail).st_ino
    old_writer._fd = os.open(trail, os.O_WRONLY | os.O_APPEND)
    first = json.loads(old_writer.append({"event": "playbook_start", "run_id": "run-2", "actor": {}}))["seq"]
    old_writer.append({"event": "playbook_end", "run_id": "run-2", "actor": {}})

    def old_range(record: dict, head: Head) -> None:
        record["checkpoint"] = {
            "first_seq": first,
            "last_seq": head.seq,
            "head": head.digest,
            "key_id": old_writer.sealer.key_id,
        }

    old_writer.append({"event": "checkpoint", "run_id": "run-2", "actor": {}}, True, old_range)
    old_writer.close()
    report = verify_trail([trail], None, load_public_keys([audit_keys.public_key]))
    assert reasons(report) == ["unsealed"], report.as_dict()["problems"]
    assert (report.problems[0].seq, report.problems[0].line) == (forged["seq"], forged["seq"])


def test_the_next_writer_does_not_record_the_same_damage_twice(trail: str, audit_keys: AuditKeys) -> None:
    whole_run(trail, audit_keys, "run-1")
    forge_line(trail)
    first = start_run(trail, audit_keys, "run-2")
    second = start_run(trail, audit_keys, "run-3")  # concurrent: it checks what run-2 wrote after the damage
    record_tasks(first, 2)
    record_tasks(second, 2, prefix="s")
    end_run(first)
    end_run(second)
    assert [event["run_id"] for event in events_of(trail) if event["event"] == TAMPER_EVENT] == ["run-2"]
    report = verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key]))
    assert reasons(report).count("tampered") == 1
    # Everything but the forged line is vouched for by a checkpoint range.
    assert reasons(report) == ["edited", "tampered"], report.as_dict()["problems"]


def test_torn_last_line_is_recorded_and_the_chain_goes_on(trail: str, audit_keys: AuditKeys) -> None:
    whole_run(trail, audit_keys, "run-1")
    size = os.path.getsize(trail)
    with open(trail, "rb+") as handle:
        handle.truncate(size - 40)  # the run's closing checkpoint, cut mid-write
    warnings = whole_run(trail, audit_keys, "run-2")
    assert any("torn" in warning for warning in warnings), warnings

    events_after = lines_of(trail)
    torn_index = next(index for index, line in enumerate(events_after) if not line.endswith(b"}"))
    tamper = json.loads(events_after[torn_index + 1])
    assert tamper["event"] == TAMPER_EVENT and tamper["damage"]["kind"] == "torn"
    assert tamper["prev"] == line_hash(events_after[torn_index])  # the chain goes on from the ended piece
    keys = load_public_keys([audit_keys.public_key])
    report = verify_trail([trail], audit_keys.hmac_key, keys)
    # The damage is on the record; everything after it verifies.
    assert not report.ok
    assert all(problem.seq is None or problem.seq <= tamper["seq"] for problem in report.problems), report.problems
    assert "tampered" in reasons(report)
    assert report.runs["run-2"].ended and report.sealed_through == report.last_seq
    # The run after that one starts from a tail that verifies: no new record.
    whole_run(trail, audit_keys, "run-3")
    complete = [json.loads(line) for index, line in enumerate(lines_of(trail)) if index != torn_index]
    assert [event["run_id"] for event in complete if event["event"] == TAMPER_EVENT] == ["run-2"]


def test_cut_right_after_a_mid_run_checkpoint_is_truncated(trail: str, audit_keys: AuditKeys) -> None:
    whole_run(trail, audit_keys, "run-1")
    recorder = start_run(trail, audit_keys, "run-2", checkpoint_every=3)
    record_tasks(recorder, 4)
    end_run(recorder)
    keys = load_public_keys([audit_keys.public_key])
    assert verify_trail([trail], audit_keys.hmac_key, keys).ok
    mid = [
        event
        for event in events_of(trail)
        if event["event"] == "checkpoint" and event["run_id"] == "run-2" and event["seq"] < events_of(trail)[-1]["seq"]
    ]
    cut_after(trail, mid[0]["seq"])
    report = verify_trail([trail], audit_keys.hmac_key, keys)
    assert not report.ok
    assert report.first_problem is not None and report.first_problem.reason == "truncated"
    assert "run-2, has no playbook_end" in report.first_problem.detail


def test_events_after_their_runs_end_are_reported(trail: str, audit_keys: AuditKeys) -> None:
    whole_run(trail, audit_keys, "run-1")
    # A later writer that holds the keys (so chain, MAC and checkpoint all hold) writes in run-1's name.
    recorder = start_run(trail, audit_keys, "run-2")
    recorder.run_id = "run-1"
    recorder.record("task_start", "task", {"task": "late", "args": {}, "no_log": False})
    recorder.run_id = "run-2"
    end_run(recorder)
    report = verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key]))
    assert reasons(report) == ["after end"], report.as_dict()["problems"]
    assert "task_start event of run run-1" in report.problems[0].detail


@pytest.mark.parametrize(
    "ledger_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_tail_cut_then_a_new_run_is_caught_against_the_ledger_anchor(
    trail: str, audit_keys: AuditKeys, ledger_url: str
) -> None:
    whole_run(trail, audit_keys, "run-1", ledger_url)
    whole_run(trail, audit_keys, "run-2", ledger_url)
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = AnchorStore(ledger)
        anchored = store.of_run("run-2")
        assert [anchor.seq for anchor in anchored] == [events_of(trail)[-1]["seq"]]
        assert anchored[0].head == line_hash(lines_of(trail)[-1])
    run_1_end = max(event["seq"] for event in events_of(trail) if event["run_id"] == "run-1")
    cut_after(trail, run_1_end)  # run-2 removed whole: the file alone still verifies
    keys = load_public_keys([audit_keys.public_key])
    assert verify_trail([trail], audit_keys.hmac_key, keys).ok

    warnings = whole_run(trail, audit_keys, "run-3", ledger_url)
    assert any("cut" in warning for warning in warnings), warnings
    tamper = [event for event in events_of(trail) if event["event"] == TAMPER_EVENT]
    assert len(tamper) == 1 and tamper[0]["damage"]["kind"] == "cut"
    assert tamper[0]["damage"]["anchors"][0]["run_id"] == "run-2"

    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = AnchorStore(ledger)
        assert store.of_run("run-2")[0].cut_by_seq == tamper[0]["seq"]
        newest = store.newest(os.path.abspath(trail))
        assert newest is not None and newest.run_id == "run-3"
        report = verify_trail([trail], audit_keys.hmac_key, keys, ledger_anchors=store.of_trail(os.path.abspath(trail)))
    assert not report.ok
    cut = [problem for problem in report.problems if problem.reason == "truncated"]
    assert cut and "run run-2" in cut[0].detail and "holds another line" in cut[0].detail
    assert report.ledger_anchors is not None and report.ledger_anchors["held"] == 2  # run-1's and run-3's


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_cut_caught_by_the_verifier_when_the_writer_had_no_ledger(
    trail: str, audit_keys: AuditKeys, ledger_url: str
) -> None:
    whole_run(trail, audit_keys, "run-1", ledger_url)
    whole_run(trail, audit_keys, "run-2", ledger_url)
    cut_after(trail, max(event["seq"] for event in events_of(trail) if event["run_id"] == "run-1"))
    whole_run(trail, audit_keys, "run-3")  # a writer that does not anchor: no tamper record
    assert not [event for event in events_of(trail) if event["event"] == TAMPER_EVENT]
    keys = load_public_keys([audit_keys.public_key])
    assert verify_trail([trail], audit_keys.hmac_key, keys).ok
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        report = verify_trail(
            [trail], audit_keys.hmac_key, keys, ledger_anchors=AnchorStore(ledger).of_trail(os.path.abspath(trail))
        )
    assert [problem.reason for problem in report.problems] == ["truncated"]
    assert "run run-2" in report.problems[0].detail


# The "audit required" check a gate calls.


def ready(trail: str, keys: AuditKeys, ledger_url: str, run_id: str, task_uuid: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    environ = kwargs.pop("environ", {AUDIT_TRAIL_ENV: os.path.abspath(trail)})
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        return check_audit_ready(
            run_id,
            kwargs.pop("hmac_key", keys.hmac_key),
            kwargs.pop("public_keys", load_public_keys([keys.public_key])),
            ledger,
            task_uuid=task_uuid,
            environ=environ,
            **kwargs,
        )


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_audit_ready_while_the_callback_writes_this_run(trail: str, audit_keys: AuditKeys, ledger_url: str) -> None:
    whole_run(trail, audit_keys, "run-1", ledger_url)
    recorder = start_run(trail, audit_keys, "run-2", ledger_url)
    record_tasks(recorder, 2)
    answer = ready(trail, audit_keys, ledger_url, "run-2", task_uuid="t-uuid-1")
    assert answer.ready, answer.reason
    assert "is written for run run-2 and its tail verifies" in answer.reason
    assert answer.checked["macs_checked"] and answer.checked["signatures_checked"]

    not_mine = ready(trail, audit_keys, ledger_url, "run-9")
    assert not not_mine.ready and "holds no playbook_start of run run-9" in not_mine.reason
    other_task = ready(trail, audit_keys, ledger_url, "run-2", task_uuid="never-started")
    assert not other_task.ready and "no task_start of this task (never-started)" in other_task.reason
    end_run(recorder)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_audit_not_ready_names_what_is_wrong_and_the_fix(trail: str, audit_keys: AuditKeys, ledger_url: str) -> None:
    whole_run(trail, audit_keys, "run-1", ledger_url)
    recorder = start_run(trail, audit_keys, "run-2", ledger_url)
    off = ready(trail, audit_keys, ledger_url, "run-2", environ={})
    assert not off.ready
    assert off.reason.startswith(
        "audit callback relops.release.audit is not enabled for this run: set callbacks_enabled"
    )
    broken = ready(trail, audit_keys, ledger_url, "run-2", environ={AUDIT_ERROR_ENV: "disk full"})
    assert not broken.ready and "enabled but does not write the trail: disk full" in broken.reason
    elsewhere = ready(trail, audit_keys, ledger_url, "run-2", trail_path="/var/log/relops/audit.jsonl")
    assert not elsewhere.ready and "set [relops_audit] path" in elsewhere.reason
    chain_only = ready(trail, audit_keys, ledger_url, "run-2", hmac_key=None)
    assert not chain_only.ready and "only be checked as a chain, which is not verified" in chain_only.reason
    with open_ledger(
        parse_ledger_url("sqlite:///" + os.path.join(os.path.dirname(trail), "other.db").lstrip("/"))
    ) as other:
        unanchored = check_audit_ready(
            "run-2",
            audit_keys.hmac_key,
            load_public_keys([audit_keys.public_key]),
            other,
            environ={AUDIT_TRAIL_ENV: os.path.abspath(trail)},
        )
    assert not unanchored.ready and "is not anchored in the SQLite ledger" in unanchored.reason
    forge_line(trail, "run-2")
    forged = ready(trail, audit_keys, ledger_url, "run-2")
    assert not forged.ready and "has no valid MAC" in forged.reason
    recorder.trail.close()


@pytest.mark.parametrize(
    "ledger_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_audit_not_ready_after_a_tail_cut_or_on_a_damaged_start(
    trail: str, audit_keys: AuditKeys, ledger_url: str
) -> None:
    whole_run(trail, audit_keys, "run-1", ledger_url)
    whole_run(trail, audit_keys, "run-2", ledger_url)
    cut_after(trail, max(event["seq"] for event in events_of(trail) if event["run_id"] == "run-1"))
    recorder = start_run(trail, audit_keys, "run-3", ledger_url)
    answer = ready(trail, audit_keys, ledger_url, "run-3")
    assert not answer.ready
    assert "found the trail" in answer.reason and "removed from its end" in answer.reason
    end_run(recorder)
    # The next run starts from a tail that verifies, and the cut stays on the record for the verifier.
    recorder = start_run(trail, audit_keys, "run-4", ledger_url)
    assert ready(trail, audit_keys, ledger_url, "run-4").ready
    end_run(recorder)


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_checkpoint_the_ledger_missed_is_anchored_at_the_next_start(
    trail: str, audit_keys: AuditKeys, ledger_url: str
) -> None:
    """A trail from before anchoring (or a ledger down at a run's end): the next run anchors its tail checkpoint."""
    whole_run(trail, audit_keys, "run-1")
    recorder = start_run(trail, audit_keys, "run-2", ledger_url)
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert [anchor.seq for anchor in AnchorStore(ledger).of_run("run-1")] == [events_of(trail)[5]["seq"]]
    assert ready(trail, audit_keys, ledger_url, "run-2").ready
    end_run(recorder)


def test_an_unreachable_ledger_is_a_warning_not_a_lost_trail(trail: str, audit_keys: AuditKeys) -> None:
    url = "postgresql://relops@127.0.0.1:%d/relops" % free_port()
    warnings = whole_run(trail, audit_keys, "run-1", url)
    assert any("were not read" in warning for warning in warnings), warnings
    assert any("was not anchored in the ledger" in warning for warning in warnings), warnings
    assert verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key])).ok
