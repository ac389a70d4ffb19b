"""Retention policy (relops.release.archive): decisions, protected releases, the archive index (V18)
on SQLite and PostgreSQL, archive files with sha256, and audit segments verified across the archive."""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import pytest

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.plugin_utils.archive_files import (
    extract_checked,
    plan_moves,
    remove_originals,
    write_archives,
)
from ansible_collections.relops.release.plugins.plugin_utils.archived_audit import apply, gather
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import Sealer
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import Trail, TrailSettings, trail_files
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.retention import (
    RetentionError,
    RetentionRefused,
    evaluate,
    find_artifacts,
    find_audit_segments,
    find_reports,
    parse_package_name,
    parse_policy,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

ACTOR = Actor(run_id="run-retention", user="tester", host="ctl")
NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.timezone.utc)
OLD = (NOW - datetime.timedelta(days=400)).timestamp()


def make_packages(directory: Path, names: list[str], mtime: float = OLD) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        for path in (directory / name, directory / (name + ".intoto.json")):
            path.write_bytes(os.urandom(64))
            os.utime(path, (mtime, mtime))


def decisions_by_path(plan) -> dict[str, tuple[str, str]]:
    return {os.path.basename(d.candidate.path): (d.action, d.reason) for d in plan.decisions}


def test_package_names_split_service_and_version() -> None:
    assert parse_package_name("pay-svc-2-1.2.3.tar.gz") == ("pay-svc-2", "1.2.3")
    assert parse_package_name("app-1.2.3-rc.1.tar.zst") == ("app", "1.2.3-rc.1")
    assert parse_package_name("app-1.2.3.tar.gz.intoto.json") is None
    assert parse_package_name("notes.txt") is None
    assert parse_package_name("app-latest.tar.gz") is None


def test_keep_last_follows_semver_precedence_not_file_order(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_packages(
        store,
        ["app-1.9.0.tar.gz", "app-1.10.0.tar.gz", "app-1.10.0-rc.1.tar.gz", "app-1.2.0.tar.gz", "db-0.1.0.tar.gz"],
    )
    candidates = find_artifacts(str(store))
    assert {len(c.files) for c in candidates} == {2}  # each package travels with its envelope
    plan = evaluate(candidates, parse_policy({"keep_last": 2, "keep_days": 30}), [], NOW)
    found = decisions_by_path(plan)
    assert found["app-1.10.0.tar.gz"][0] == "keep" and "release #1 of app" in found["app-1.10.0.tar.gz"][1]
    assert found["app-1.10.0-rc.1.tar.gz"][0] == "keep"  # a pre-release precedes its release: #2
    assert found["app-1.9.0.tar.gz"] == (
        "archive",
        "older than 30 days and not among the newest 2 releases of app",
    )
    assert found["app-1.2.0.tar.gz"][0] == "archive"
    assert found["db-0.1.0.tar.gz"][0] == "keep"  # the only release of its service


def test_keep_days_keeps_recent_files_whatever_their_rank(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_packages(store, ["app-1.0.0.tar.gz"])
    make_packages(store, ["app-2.0.0.tar.gz"], mtime=(NOW - datetime.timedelta(days=400)).timestamp())
    make_packages(store, ["app-0.9.0.tar.gz"], mtime=(NOW - datetime.timedelta(days=3)).timestamp())
    plan = evaluate(find_artifacts(str(store)), parse_policy({"keep_last": 1, "keep_days": 7}), [], NOW)
    found = decisions_by_path(plan)
    assert found["app-0.9.0.tar.gz"] == ("keep", "newer than 7 days (keep_days)")
    assert found["app-1.0.0.tar.gz"][0] == "archive"
    assert found["app-2.0.0.tar.gz"][0] == "keep"


def test_legal_holds_by_service_version_and_path_glob(tmp_path: Path) -> None:
    store, reports = tmp_path / "store", tmp_path / "reports"
    make_packages(
        store, ["app-1.0.0.tar.gz", "app-1.1.0.tar.gz", "app-2.0.0.tar.gz", "web-1.0.0.tar.gz", "web-2.0.0.tar.gz"]
    )
    (reports / "2025-q1").mkdir(parents=True)
    (reports / "2025-q2").mkdir(parents=True)
    for quarter in ("2025-q1", "2025-q2"):
        report = reports / quarter / "dora.html"
        report.write_text(quarter)
        os.utime(report, (OLD, OLD))
    policy = parse_policy(
        {
            "keep_last": 1,
            "keep_days": 0,
            "holds": [
                {"service": "app", "version": "1.0.0", "reason": "case 42"},
                {"service": "web", "reason": "audit of web"},
                {"path": "*/2025-q1/*", "reason": "regulator asked"},
            ],
        }
    )
    plan = evaluate(find_artifacts(str(store)) + find_reports(str(reports)), policy, [], NOW)
    held = {os.path.relpath(d.candidate.path, tmp_path): d.reason for d in plan.of("hold")}
    assert held == {
        "store/app-1.0.0.tar.gz": "legal hold (service app, version 1.0.0): case 42",
        "store/web-1.0.0.tar.gz": "legal hold (service web): audit of web",
        "store/web-2.0.0.tar.gz": "legal hold (service web): audit of web",
        "reports/2025-q1/dora.html": "legal hold (path */2025-q1/*): regulator asked",
    }
    assert [os.path.basename(d.candidate.path) for d in plan.of("archive")] == ["app-1.1.0.tar.gz"]
    kept = [os.path.relpath(d.candidate.path, tmp_path) for d in plan.of("keep")]
    assert sorted(kept) == ["reports/2025-q2/dora.html", "store/app-2.0.0.tar.gz"]


def test_bad_policies_are_refused_with_the_fix() -> None:
    with pytest.raises(RetentionError, match="keep_last 0 must be at least 1"):
        parse_policy({"keep_last": 0, "keep_days": 1})
    with pytest.raises(RetentionError, match=r"holds\[0\] names nothing to hold"):
        parse_policy({"holds": [{"reason": "x"}]})
    with pytest.raises(RetentionError, match=r"holds\[0\] has no reason"):
        parse_policy({"holds": [{"service": "app", "reason": " "}]})


def test_protected_releases_per_environment(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        for version, environment, status in (
            ("1.0.0", "production", "successful"),
            ("1.1.0", "production", "successful"),
            ("1.1.0", "production", "successful"),  # a redeploy of the same version is no rollback target
            ("1.2.0", "production", "failed"),
            ("1.2.0", "staging", "successful"),
        ):
            ledger.record_deployment(ACTOR, "app", version, environment, status)
            time.sleep(0.002)
        ledger.record_deployment(ACTOR, "other", "9.0.0", "production", "successful")
        protected = ledger.protected_releases(["app"])
    shown = [(entry["version"], entry["environment"], entry["role"]) for entry in protected]
    assert shown == [
        ("1.1.0", "production", "deployed"),
        ("1.0.0", "production", "rollback target"),
        ("1.2.0", "staging", "deployed"),
    ]


def test_a_policy_selecting_a_deployed_release_is_refused_whole(ledger_url: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_packages(store, ["app-1.0.0.tar.gz", "app-1.1.0.tar.gz", "app-1.2.0.tar.gz", "app-1.3.0.tar.gz"])
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.record_deployment(ACTOR, "app", "1.0.0", "production", "successful")
        time.sleep(0.002)
        ledger.record_deployment(ACTOR, "app", "1.1.0", "production", "successful")
        protected = ledger.protected_releases(["app"])
    with pytest.raises(RetentionRefused) as refused:
        evaluate(find_artifacts(str(store)), parse_policy({"keep_last": 1, "keep_days": 0}), protected, NOW)
    message = str(refused.value)
    assert "app 1.1.0" in message and "deployed in production" in message
    assert "app 1.0.0" in message and "rollback target in production" in message
    assert "raise policy.keep_last to 4 (from 1)" in message
    assert "{service: app, version: 1.0.0, reason: ...}" in message
    assert sorted(entry["version"] for entry in refused.value.refused) == ["1.0.0", "1.1.0"]
    assert all(os.path.exists(store / name) for name in os.listdir(store))
    # Holding both protected releases lets the rest go.
    held = parse_policy(
        {
            "keep_last": 1,
            "keep_days": 0,
            "holds": [{"service": "app", "version": v, "reason": "in service"} for v in ("1.0.0", "1.1.0")],
        }
    )
    plan = evaluate(find_artifacts(str(store)), held, protected, NOW)
    assert [os.path.basename(d.candidate.path) for d in plan.of("archive")] == ["app-1.2.0.tar.gz"]
    assert {d.candidate.version: d.protected for d in plan.of("hold")} == {
        "1.0.0": ["rollback target in production"],
        "1.1.0": ["deployed in production"],
    }


def test_archive_index_records_and_restores_items(ledger_url: str) -> None:
    row = {
        "archive_id": "arc-1",
        "kind": "artifact",
        "original_path": "/srv/store/app-1.0.0.tar.gz",
        "archive_path": "/arch/artifact/store/app-1.0.0.tar.gz.tar.gz",
        "member": "app-1.0.0.tar.gz",
        "sha256": "a" * 64,
        "size": 5_000_000_000,
        "service": "app",
        "version": "1.0.0",
        "reason": "older than 30 days",
        "details": {"mtime": 1.5},
    }
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        stored = ledger.record_archived(ACTOR, [row, {**row, "original_path": row["original_path"] + ".intoto.json"}])
        assert [item["size"] for item in stored] == [5_000_000_000] * 2
        assert stored[0]["status"] == "archived" and stored[0]["details"] == {"mtime": 1.5}
        with pytest.raises(LedgerError):
            ledger.record_archived(ACTOR, [{**row, "archive_id": "arc-2"}])  # one archived copy per original path
        assert len(ledger.archived_items(kind="artifact")) == 2
        assert len(ledger.archived_items(original_paths=[row["original_path"]])) == 1
        assert ledger.mark_restored(ACTOR, ["arc-1"]) == 2
        assert ledger.mark_restored(ACTOR, ["arc-1"]) == 0
        assert ledger.archived_items() == []
        assert {item["status"] for item in ledger.archived_items(status=None)} == {"restored"}


@pytest.mark.parametrize("compression", ["none", "tar.gz", "tar.zst"])
def test_archive_files_round_trip_with_sha256(tmp_path: Path, compression: str) -> None:
    store, dest = tmp_path / "store", tmp_path / "archive"
    make_packages(store, ["app-1.0.0.tar.gz", "app-2.0.0.tar.gz"])
    originals = {str(store / name): file_digest(str(store / name))[0] for name in os.listdir(store)}
    plan = evaluate(find_artifacts(str(store)), parse_policy({"keep_last": 1, "keep_days": 0}), [], NOW)
    moves = plan_moves(plan.of("archive"), str(dest), compression)
    write_archives(moves, compression)
    remove_originals(moves)
    rows = [dict(row, id=index) for index, row in enumerate(r for move in moves for r in move.index_rows())]
    assert sorted(os.listdir(store)) == ["app-2.0.0.tar.gz", "app-2.0.0.tar.gz.intoto.json"]
    assert {row["original_path"]: row["sha256"] for row in rows} == {
        path: digest for path, digest in originals.items() if "1.0.0" in path
    }
    temporaries = extract_checked(rows)
    assert {file_digest(temporaries[row["id"]])[0] for row in rows} == {row["sha256"] for row in rows}
    for path in temporaries.values():
        os.unlink(path)
    with pytest.raises(RetentionError, match="already exists"):
        plan_moves(plan.of("archive"), str(dest), compression)


def test_a_changed_archive_file_is_not_restored(tmp_path: Path) -> None:
    store, dest = tmp_path / "store", tmp_path / "archive"
    make_packages(store, ["app-1.0.0.tar.gz", "app-2.0.0.tar.gz"])
    plan = evaluate(find_artifacts(str(store)), parse_policy({"keep_last": 1, "keep_days": 0}), [], NOW)
    moves = plan_moves(plan.of("archive"), str(dest), "none")
    write_archives(moves, "none")
    remove_originals(moves)
    rows = [dict(row, id=index) for index, row in enumerate(r for move in moves for r in move.index_rows())]
    with open(rows[1]["archive_path"], "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(RetentionError, match=r"app-1\.0\.0\.tar\.gz\.intoto\.json .* has sha256 .* recorded"):
        extract_checked(rows)
    assert not [name for name in os.listdir(store) if name.startswith(".relops-restore")]


def write_trail(path: str, runs: int, rotate_bytes: int) -> None:
    trail = Trail(TrailSettings(path=path, rotate_bytes=rotate_bytes), Sealer(None, None))
    try:
        for run in range(runs):
            for number in range(5):
                kind = "playbook_end" if number == 4 else "runner_ok"  # runs end, as the callback's do
                trail.append({"event": kind, "run_id": "run-%d" % run, "task": "t%d" % number})
            trail.append({"event": "checkpoint", "run_id": "run-%d" % run}, True, seal(trail))
    finally:
        trail.close()


def seal(trail: Trail):
    def fill(record: dict, head) -> None:
        record["checkpoint"] = {"first_seq": 1, "last_seq": head.seq, "head": head.digest}

    return fill


@pytest.mark.parametrize("compression", ["none", "tar.zst"])
def test_audit_chain_verifies_across_archived_segments(tmp_path: Path, compression: str) -> None:
    trail = str(tmp_path / "audit" / "audit.jsonl")
    write_trail(trail, runs=6, rotate_bytes=600)
    rotated = [name for name in trail_files(trail) if name != trail]
    assert len(rotated) >= 3
    for name in rotated:
        os.utime(name, (OLD, OLD))
    candidates, stays = find_audit_segments(trail)
    assert stays == [] and [c.path for c in candidates] == rotated
    assert candidates[0].first_seq == 1 and candidates[1].first_seq == candidates[0].last_seq + 1
    # A segment's age is the time of its last event, which the trail wrote just now.
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    plan = evaluate(candidates[:-1], parse_policy({"keep_days": 1}), [], later)
    moves = plan_moves(plan.of("archive"), str(tmp_path / "archive"), compression)
    assert len(moves) == len(rotated) - 1
    write_archives(moves, compression)
    remove_originals(moves)
    rows = [dict(row, id=index) for index, row in enumerate(r for move in moves for r in move.index_rows())]
    assert not verify_trail(trail_files(trail)).ok  # the live files alone no longer start at seq 1
    work = tmp_path / "work"
    work.mkdir()
    gathered = gather(trail, rows, str(work))
    report = verify_trail(gathered.paths)
    extra = apply(report, gathered)
    assert report.ok, report.as_dict()["problems"]
    assert report.first_seq == 1 and [s["sha256_ok"] for s in extra["archived_segments"]] == [True] * len(moves)
    assert all(name.startswith(str(tmp_path / "archive")) for name in report.files[: len(moves)])
    # Tamper with the second archived segment: verification names it.
    tampered = rows[1]
    if compression == "none":
        lines = Path(tampered["archive_path"]).read_bytes().split(b"\n")
        event = json.loads(lines[0])
        event["task"] = "forged"
        lines[0] = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        Path(tampered["archive_path"]).write_bytes(b"\n".join(lines))
    else:
        Path(tampered["archive_path"]).write_bytes(b"not zstd any more")
    work2 = tmp_path / "work2"
    work2.mkdir()
    gathered = gather(trail, rows, str(work2))
    report = verify_trail(gathered.paths)
    apply(report, gathered)
    assert not report.ok
    first = report.first_problem
    assert first is not None and first.file.startswith(tampered["archive_path"])


def test_the_newest_segment_stays_when_the_live_file_is_gone(tmp_path: Path) -> None:
    trail = str(tmp_path / "audit.jsonl")
    write_trail(trail, runs=3, rotate_bytes=600)
    os.unlink(trail)
    candidates, stays = find_audit_segments(trail)
    rotated = trail_files(trail)
    assert [c.path for c in candidates] == rotated[:-1]
    assert stays[0]["path"] == rotated[-1] and "holds the chain head" in stays[0]["reason"]
