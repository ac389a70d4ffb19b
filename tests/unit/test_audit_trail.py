"""The audit trail's writer and verifier: chain, seals, rotation, and every kind of tampering."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.plugin_utils.audit import links
from ansible_collections.relops.release.plugins.plugin_utils.audit import trail as trail_module
from ansible_collections.relops.release.plugins.plugin_utils.audit import verify as verify_module
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import GENESIS, line_hash
from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import Recorder, RecorderSettings
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import (
    MacChecker,
    Sealer,
    key_id,
    line_mac,
    load_public_keys,
    load_signing_key,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import (
    Head,
    Trail,
    TrailSettings,
    trail_files,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import (
    AnchorError,
    anchor_from_sink,
    verify_trail,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

SIGNING_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEYS = {key_id(SIGNING_KEY.public_key()): SIGNING_KEY.public_key()}
HMAC_KEY = b"k" * 32


def seal_checkpoint(first_seq: int):
    def fill(record: dict, head: Head) -> None:
        record["checkpoint"] = {
            "first_seq": first_seq,
            "last_seq": head.seq,
            "head": head.digest,
            "key_id": key_id(SIGNING_KEY.public_key()),
        }

    return fill


def write_runs(
    path: str, runs: int, events: int, hmac_key: bytes | None = HMAC_KEY, prefix: str = "run", **settings: int
) -> None:
    trail = Trail(TrailSettings(path=path, **settings), Sealer(hmac_key, SIGNING_KEY))
    try:
        for run in range(runs):
            first = None
            for number in range(events):
                # Each run's last event is its end, as the callback writes it.
                kind = "playbook_end" if number == events - 1 else "runner_ok"
                line = trail.append(
                    {"event": kind, "run_id": "%s-%d" % (prefix, run), "actor": {"user": "ops"}, "task": "t%d" % number}
                )
                first = first or json.loads(line)["seq"]
            trail.append(
                {"event": "checkpoint", "run_id": "%s-%d" % (prefix, run), "actor": {"user": "ops"}},
                True,
                seal_checkpoint(first),
            )
    finally:
        trail.close()


def read_lines(path: str) -> list[bytes]:
    with open(path, "rb") as handle:
        return handle.read().split(b"\n")[:-1]


def write_lines(path: str, lines: list[bytes]) -> None:
    with open(path, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))


def test_untouched_trail_verifies_with_counts_per_run(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=3, events=4)
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS)
    assert report.ok, report.as_dict()
    assert report.lines == 15 and report.first_seq == 1 and report.last_seq == 15
    assert report.checkpoints == 3 and report.sealed_through == 15
    assert {run: summary.events for run, summary in report.runs.items()} == {"run-0": 5, "run-1": 5, "run-2": 5}
    lines = read_lines(path)
    assert json.loads(lines[0])["prev"] == GENESIS
    assert all(json.loads(lines[i + 1])["prev"] == line_hash(lines[i]) for i in range(len(lines) - 1))
    assert all(line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")).encode() for line in lines)


def test_chain_continues_across_writers_and_rotation(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=2, events=30, rotate_bytes=2000)
    write_runs(path, runs=2, events=5, prefix="later", rotate_bytes=2000)
    files = trail_files(path)
    assert len(files) > 3 and files[-1] == path
    report = verify_trail(files, HMAC_KEY, PUBLIC_KEYS)
    assert report.ok, report.as_dict()
    assert report.last_seq == 2 * 31 + 2 * 6
    dropped = verify_trail(files[:1] + files[2:], HMAC_KEY, PUBLIC_KEYS)
    assert dropped.first_problem is not None and dropped.first_problem.reason == "removed"
    assert dropped.gaps and dropped.gaps[0]["first_missing"] == verify_trail(files[:1]).last_seq + 1


def test_wrong_keys_are_reported(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=1, events=3)
    other = Ed25519PrivateKey.generate().public_key()
    report = verify_trail([path], HMAC_KEY, {key_id(other): other})
    assert report.first_problem is not None and report.first_problem.reason == "bad signature"
    report = verify_trail([path], b"another key", PUBLIC_KEYS)
    assert report.first_problem is not None and report.first_problem.reason == "edited"
    assert report.first_problem.line == 1


def test_forged_checkpoint_signature_is_reported(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=1, events=2, hmac_key=None)
    lines = read_lines(path)
    event = json.loads(lines[-1])
    event["checkpoint"]["first_seq"] = 2
    lines[-1] = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    write_lines(path, lines)
    report = verify_trail([path], None, PUBLIC_KEYS)
    assert report.first_problem is not None
    assert (report.first_problem.reason, report.first_problem.line) == ("bad signature", 3)


def test_cut_mid_line_is_truncated_and_the_next_writer_records_it(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=1, events=2)
    with open(path, "rb+") as handle:
        handle.truncate(os.path.getsize(path) - 10)
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS)
    assert report.problems[0].reason == "truncated"
    write_runs(path, runs=1, events=1, prefix="next")
    lines = read_lines(path)
    tamper = json.loads(lines[3])
    assert tamper["event"] == trail_module.TAMPER_EVENT and tamper["damage"]["kind"] == "torn"
    assert tamper["prev"] == line_hash(lines[2]) and tamper["seq"] == 4
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS)
    # The torn line, and its run that lost its checkpoint with it; test_audit_anchors.py covers the callback's writer.
    assert {"edited", "tampered", "unsealed"} == {problem.reason for problem in report.problems}
    assert report.sealed_through == report.last_seq == 6


def test_anchor_catches_removal_of_whole_sealed_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=2, events=2)
    last = json.loads(read_lines(path)[-1])
    anchor = {"seq": last["checkpoint"]["last_seq"], "head": last["checkpoint"]["head"]}
    write_lines(path, read_lines(path)[:3])
    assert verify_trail([path], HMAC_KEY, PUBLIC_KEYS).ok
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS, anchor=anchor)
    assert report.first_problem is not None and report.first_problem.reason == "truncated"


def test_keys_load_from_pem_files(tmp_path: Path) -> None:
    private = tmp_path / "audit.key"
    public = tmp_path / "audit.pub"
    key = Ed25519PrivateKey.generate()
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    loaded = load_signing_key(str(private))
    assert list(load_public_keys([str(public)])) == [key_id(loaded.public_key())]
    with pytest.raises(ValueError, match="openssl genpkey"):
        load_signing_key(str(public))


MUTATIONS = st.sampled_from(["edit", "delete", "insert", "reorder", "truncate"])


def mutate(lines: list[bytes], kind: str, data: st.DataObject) -> list[bytes]:
    lines = list(lines)
    if kind == "edit":
        index = data.draw(st.integers(0, len(lines) - 1))
        event = json.loads(lines[index])
        field = data.draw(st.sampled_from(sorted(event)))
        event[field] = data.draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
        lines[index] = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    elif kind == "delete":
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    elif kind == "insert":
        source = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(data.draw(st.integers(0, len(lines))), lines[source])
    elif kind == "reorder":
        first = data.draw(st.integers(0, len(lines) - 1))
        second = data.draw(st.integers(0, len(lines) - 1))
        lines[first], lines[second] = lines[second], lines[first]
    else:
        lines = lines[: data.draw(st.integers(0, len(lines) - 1))]
    return lines


@pytest.fixture(scope="module")
def sample_trail(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = str(tmp_path_factory.mktemp("sample") / "audit.jsonl")
    write_runs(path, runs=3, events=4)
    return read_lines(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=MUTATIONS, data=st.data(), with_mac=st.booleans())
def test_any_single_tampering_is_detected(
    sample_trail: list[bytes], tmp_path: Path, kind: str, data: st.DataObject, with_mac: bool
) -> None:
    tampered = mutate(sample_trail, kind, data)
    assume(tampered != sample_trail)
    path = str(tmp_path / "tampered.jsonl")
    write_lines(path, tampered)
    last = json.loads(sample_trail[-1])
    anchor = {"seq": last["checkpoint"]["last_seq"], "head": last["checkpoint"]["head"]}
    report = verify_trail([path], HMAC_KEY if with_mac else None, PUBLIC_KEYS, anchor=anchor)
    assert not report.ok
    assert report.first_problem is not None and report.first_problem.reason in verify_module.REASONS
    write_lines(path, sample_trail)
    assert verify_trail([path], HMAC_KEY if with_mac else None, PUBLIC_KEYS, anchor=anchor).ok


@pytest.mark.parametrize("mac", ["", "x", "0" * 63, "A" * 64])
def test_malformed_mac_on_the_last_checkpoint_is_an_edit_without_the_key(
    sample_trail: list[bytes], tmp_path: Path, mac: str
) -> None:
    """The checkpoint's signature leaves its mac out and no later line covers it: its form must still hold."""
    lines = list(sample_trail)
    event = json.loads(lines[-1])
    event["mac"] = mac
    lines[-1] = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
    path = str(tmp_path / "audit.jsonl")
    write_lines(path, lines)
    report = verify_trail([path], None, PUBLIC_KEYS)
    assert report.first_problem is not None
    assert (report.first_problem.reason, report.first_problem.line) == ("edited", len(lines))
    assert "mac is not an HMAC-SHA256" in report.first_problem.detail
    write_lines(path, sample_trail)
    assert verify_trail([path], None, PUBLIC_KEYS).ok


def test_daily_rotation_starts_a_new_file_on_a_new_utc_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "audit.jsonl")
    yesterday = datetime.datetime(2026, 11, 25, 23, 59, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(trail_module, "utc_now", lambda: yesterday)
    write_runs(path, runs=1, events=3, rotate_daily=True)
    monkeypatch.setattr(trail_module, "utc_now", lambda: yesterday + datetime.timedelta(minutes=2))
    write_runs(path, runs=1, events=3, prefix="today", rotate_daily=True)
    files = trail_files(path)
    assert files == [path + ".20261126T000100000000Z", path]
    assert json.loads(read_lines(files[0])[0])["ts"].startswith("2026-11-25")
    assert json.loads(read_lines(path)[0])["ts"].startswith("2026-11-26")
    assert verify_trail(files, HMAC_KEY, PUBLIC_KEYS).ok


@pytest.mark.parametrize(("policy", "syncs"), [("event", 6), ("task", 4), ("play", 3)])
def test_fsync_policy_decides_which_lines_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, syncs: int
) -> None:
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    recorder = Recorder(RecorderSettings(path=str(tmp_path / "audit.jsonl"), fsync=policy))
    recorder.begin_run(Actor(run_id="r", user="u", host="h"), "/p.yml", None)
    recorder.record("play_start", "play", {"play": "p"})
    recorder.record("task_start", "task", {"task": "t", "args": {}, "no_log": False})
    result_fields = {"task": "t", "host": "h", "outcome": "ok", "changed": False}
    recorder.record_result(result_fields, {"changed": False}, {}, False, False)
    recorder.record_result(result_fields, {"changed": False}, {}, False, False)
    recorder.record("stats", "play", {"outcome": "ok"})
    recorder.end_run()
    # play_start, stats and the closing checkpoint always; task adds task_start; event adds both results.
    assert len(calls) == syncs


def test_values_json_parsers_disagree_on_are_kept_as_text(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    trail = Trail(TrailSettings(path=path), Sealer())
    trail.append({"event": "runner_ok", "actor": {}, "result": {"big": 10**40, "nan": float("nan"), "raw": b"\xff"}})
    trail.close()
    result = json.loads(read_lines(path)[0])["result"]
    assert result == {"big": str(10**40), "nan": "nan", "raw": "\ufffd"}
    report = verify_trail([path])
    assert [problem.reason for problem in report.problems] == ["truncated"]


def test_problems_are_capped_and_the_first_is_the_earliest(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=4, events=10)
    lines = read_lines(path)
    write_lines(path, list(reversed(lines)))
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS, max_problems=5)
    assert len(report.problems) == 5
    assert report.first_problem is not None and report.first_problem.line == 1
    assert report.first_problem.reason in ("reordered", "edited")


@given(key=st.binary(min_size=1, max_size=200), body=st.binary(max_size=300))
def test_verifier_mac_is_rfc_2104_hmac(key: bytes, body: bytes) -> None:
    checker = MacChecker(key)
    assert checker.mac(body) == line_mac(key, body)
    # The verifier's loop computes the same MAC from the states' copies.
    inner_copy, outer_copy = checker.states()
    inner = inner_copy()
    inner.update(body)
    outer = outer_copy()
    outer.update(inner.digest())
    assert outer.hexdigest() == line_mac(key, body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=MUTATIONS, data=st.data(), with_mac=st.booleans())
def test_fast_link_decoder_reports_what_the_full_parse_reports(
    sample_trail: list[bytes], tmp_path: Path, kind: str, data: st.DataObject, with_mac: bool
) -> None:
    """The msgspec decoder reads only the chain fields; every report must equal the whole-event parser's."""
    assert links.HAS_MSGSPEC, "msgspec is in requirements.txt; the fast decoder is what this test compares"
    path = str(tmp_path / "tampered.jsonl")
    write_lines(path, mutate(sample_trail, kind, data))
    key = HMAC_KEY if with_mac else None
    fast = verify_trail([path], key, PUBLIC_KEYS).as_dict()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify_module, "decode_link", links.decode_plain)
        assert verify_trail([path], key, PUBLIC_KEYS).as_dict() == fast


@pytest.mark.parametrize("with_mac", [True, False])
@pytest.mark.parametrize("damage", [b"\xff", b'","x":1e999,"y":"'])
def test_damage_in_a_field_the_fast_decoder_skips_is_an_edit(
    sample_trail: list[bytes], tmp_path: Path, with_mac: bool, damage: bytes
) -> None:
    """Bytes the trail's JSON parser refuses, inside a field the link decoder only skips, still break the line."""
    lines = list(sample_trail)
    assert b'"task":"t2"' in lines[2]
    lines[2] = lines[2].replace(b'"task":"t2"', b'"task":"t2' + damage + b'"')
    path = str(tmp_path / "damaged.jsonl")
    write_lines(path, lines)
    report = verify_trail([path], HMAC_KEY if with_mac else None, PUBLIC_KEYS)
    assert report.first_problem is not None
    assert (report.first_problem.reason, report.first_problem.line) == ("edited", 3)


def test_verifier_streams_lines_across_small_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=3, events=7, rotate_bytes=3000)
    files = trail_files(path)
    whole = verify_trail(files, HMAC_KEY, PUBLIC_KEYS)
    # Blocks far smaller than a line: every line is split across reads, and must come out whole.
    monkeypatch.setattr(verify_module, "BLOCK", 37)
    streamed = verify_trail(files, HMAC_KEY, PUBLIC_KEYS)
    assert streamed.ok and whole.ok
    assert streamed.as_dict() == whole.as_dict()
    lines = read_lines(files[1])
    write_lines(files[1], lines[:2] + lines[3:])
    report = verify_trail(files, HMAC_KEY, PUBLIC_KEYS)
    assert report.first_problem is not None
    assert (report.first_problem.reason, report.first_problem.file, report.first_problem.line) == (
        "removed",
        files[1],
        3,
    )


def _forwarded_forms(lines: list[bytes]) -> list[str]:
    """The trail's lines as the sinks send them: syslog messages, HEC envelopes, webhook bodies."""
    events = [json.loads(line) for line in lines]
    syslog = [
        "<134>1 %s ctl relops-audit 42 %s - %s" % (event.get("ts", "-"), event["event"], line.decode())
        for event, line in zip(events, lines, strict=True)
    ]
    hec = [json.dumps({"time": 1.0, "source": "relops.release.audit", "event": event}) for event in events]
    return syslog[: len(lines) // 2] + hec[len(lines) // 2 :] + [json.dumps(events[:3])]


def test_anchor_from_a_sink_catches_removal_of_whole_sealed_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=3, events=4)
    received = tmp_path / "received.log"
    received.write_text("\n".join(_forwarded_forms(read_lines(path))) + "\n", encoding="utf-8")
    anchor = anchor_from_sink([str(received)], PUBLIC_KEYS)
    assert anchor["seq"] == 15 and anchor["head"] == line_hash(read_lines(path)[-1])
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS, anchor=anchor)
    assert report.ok and report.anchor is not None and report.anchor["found"]
    # Cut the last sealed run: the trail still ends with a valid checkpoint, so only the anchor catches it.
    write_lines(path, read_lines(path)[:10])
    assert verify_trail([path], HMAC_KEY, PUBLIC_KEYS).ok
    report = verify_trail([path], HMAC_KEY, PUBLIC_KEYS, anchor=anchor)
    assert report.first_problem is not None and report.first_problem.reason == "truncated"
    assert "the anchor names seq 15" in report.first_problem.detail


def test_anchor_from_a_sink_refuses_a_forged_or_missing_checkpoint(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    write_runs(path, runs=1, events=2)
    last = json.loads(read_lines(path)[-1])
    last["checkpoint"]["first_seq"] = 2
    forged = tmp_path / "forged.log"
    forged.write_text(json.dumps(last) + "\n", encoding="utf-8")
    with pytest.raises(AnchorError, match="does not verify"):
        anchor_from_sink([str(forged)], PUBLIC_KEYS)
    empty = tmp_path / "empty.log"
    empty.write_text("not json\n" + read_lines(path)[0].decode() + "\n", encoding="utf-8")
    with pytest.raises(AnchorError, match="no audit checkpoint found in"):
        anchor_from_sink([str(empty)], PUBLIC_KEYS)
