"""relops.release.archive through real ansible-playbook runs: the refused policy, check mode and diff,
idempotence, legal holds, restore with sha256 verification, and the audit chain across archived segments."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import tarfile
import time
from typing import Any, Optional

from fixtures.audit import AuditKeys, audit_environment
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import compressing
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

ACTOR = Actor(run_id="run-archive-setup", user="tester", host="ctl")
OLD = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)).timestamp()

ARCHIVE_PLAY = """
- name: Archive
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Archive by policy
      relops.release.archive: "{{ archive_args }}"
      register: outcome
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

VERIFY_PLAY = """
- name: Verify
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify the trail
      relops.release.audit_verify: "{{ verify_args }}"
      register: outcome
      ignore_errors: true
    - name: Keep the report for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""

TINY = """
- name: Something audited
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Say something long enough to fill segments
      ansible.builtin.debug:
        msg: "{{ 'x' * 300 }}"
      loop: [1, 2, 3]
"""


def run_play(
    ansible: Ansible,
    play: str,
    variable: str,
    args: dict[str, Any],
    ledger_url: str,
    *extra: str,
    env: Optional[dict[str, str]] = None,
) -> tuple[int, dict[str, Any], str]:
    playbook = ansible.write_playbook(play, "play-%d.yml" % time.monotonic_ns())
    result_file = os.path.join(ansible.workdir, "result-%d.json" % time.monotonic_ns())
    run = ansible.playbook(
        playbook,
        "-e",
        json.dumps({variable: args, "result_file": result_file}),
        *extra,
        env={"RELOPS_LEDGER_URL": ledger_url, **(env or {})},
    )
    with open(result_file, encoding="utf-8") as handle:
        return run.returncode, json.load(handle), run.output


def archive(ansible: Ansible, ledger_url: str, args: dict[str, Any], *extra: str, **kw: Any) -> tuple[dict, str]:
    code, result, output = run_play(ansible, ARCHIVE_PLAY, "archive_args", args, ledger_url, *extra, **kw)
    assert code == 0, output
    return result, output


def make_store(root: str, names: list[str]) -> str:
    store = os.path.join(root, "store")
    os.makedirs(store, exist_ok=True)
    for name in names:
        for path in (os.path.join(store, name), os.path.join(store, name + ".intoto.json")):
            with open(path, "wb") as handle:
                handle.write(os.urandom(256))
            os.utime(path, (OLD, OLD))
    return store


def deploy(ledger_url: str, *deployments: tuple[str, str, str]) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        for version, environment, status in deployments:
            ledger.record_deployment(ACTOR, "app", version, environment, status)
            time.sleep(0.002)


def index_rows(ledger_url: str, **filters: Any) -> list[dict[str, Any]]:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        return ledger.archived_items(**filters)


VERSIONS = ["app-1.0.0.tar.gz", "app-1.1.0.tar.gz", "app-1.2.0.tar.gz", "app-1.10.0.tar.gz"]


def test_a_policy_that_would_archive_a_deployed_release_is_refused_naming_it(ansible: Ansible, ledger_url: str) -> None:
    store = make_store(ansible.workdir, VERSIONS)
    deploy(ledger_url, ("1.1.0", "production", "successful"), ("1.2.0", "production", "successful"))
    before = sorted(os.listdir(store))
    args = {
        "dest": os.path.join(ansible.workdir, "archive"),
        "artifact_dirs": [store],
        "policy": {"keep_last": 1, "keep_days": 0},
    }
    result, _output = archive(ansible, ledger_url, args)
    assert result["failed"] is True and result["changed"] is False
    message = result["msg"]
    assert "app 1.2.0" in message and "1.2.0.tar.gz), deployed in production" in message
    assert "app 1.1.0" in message and "1.1.0.tar.gz), rollback target in production" in message
    assert "raise policy.keep_last to 3 (from 1)" in message and "add a hold" in message
    assert {(entry["version"], tuple(entry["protected"])) for entry in result["refused"]} == {
        ("1.2.0", ("deployed in production",)),
        ("1.1.0", ("rollback target in production",)),
    }
    assert sorted(os.listdir(store)) == before
    assert not os.path.exists(os.path.join(ansible.workdir, "archive"))
    assert index_rows(ledger_url, status=None) == []


def test_check_mode_plans_then_archives_then_is_idempotent(ansible: Ansible, ledger_url: str) -> None:
    store = make_store(ansible.workdir, VERSIONS)
    deploy(ledger_url, ("1.2.0", "staging", "successful"), ("1.10.0", "staging", "successful"))
    digests = {name: file_digest(os.path.join(store, name))[0] for name in os.listdir(store)}
    dest = os.path.join(ansible.workdir, "archive")
    args = {"dest": dest, "artifact_dirs": [store], "policy": {"keep_last": 2, "keep_days": 30}}

    planned, output = archive(ansible, ledger_url, args, "--check", "--diff")
    assert planned["changed"] is True and not planned.get("failed")
    assert [item["version"] for item in planned["archived"]] == ["1.0.0", "1.1.0"]
    assert planned["archived"][0]["reason"] == "older than 30 days and not among the newest 2 releases of app"
    kept = {item["version"]: item for item in planned["kept"]}
    assert kept["1.10.0"]["reason"] == "release #1 of app by version precedence (keep_last 2)"
    assert kept["1.10.0"]["protected"] == ["deployed in staging"]
    assert kept["1.2.0"]["protected"] == ["rollback target in staging"]
    assert os.path.join(store, "app-1.0.0.tar.gz") in output
    assert os.path.join(dest, "artifact", "store", "app-1.0.0.tar.gz") in output
    assert sorted(os.listdir(store)) == sorted(digests) and not os.path.exists(dest)
    assert index_rows(ledger_url, status=None) == []

    done, _output = archive(ansible, ledger_url, args)
    assert done["changed"] is True and [item["version"] for item in done["archived"]] == ["1.0.0", "1.1.0"]
    assert sorted(os.listdir(store)) == [
        "app-1.10.0.tar.gz",
        "app-1.10.0.tar.gz.intoto.json",
        "app-1.2.0.tar.gz",
        "app-1.2.0.tar.gz.intoto.json",
    ]
    rows = index_rows(ledger_url, kind="artifact")
    assert {os.path.basename(row["original_path"]): row["sha256"] for row in rows} == {
        name: digest for name, digest in digests.items() if "-1.0.0." in name or "-1.1.0." in name
    }
    for row in rows:
        assert file_digest(row["archive_path"])[0] == row["sha256"]
        assert row["run_id"] and row["reason"].startswith("older than 30 days")

    again, _output = archive(ansible, ledger_url, args)
    assert again["changed"] is False and again["archived"] == []
    assert len(index_rows(ledger_url, kind="artifact")) == len(rows)


def test_legal_hold_keeps_an_item_and_says_so(ansible: Ansible, ledger_url: str) -> None:
    store = make_store(ansible.workdir, VERSIONS)
    reports = os.path.join(ansible.workdir, "reports")
    for age, quarter in enumerate(("2025-q2", "2025-q1", "2024-q4")):
        os.makedirs(os.path.join(reports, quarter))
        path = os.path.join(reports, quarter, "dora.html")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(quarter)
        os.utime(path, (OLD - age * 86400, OLD - age * 86400))
    args = {
        "dest": os.path.join(ansible.workdir, "archive"),
        "compression": "tar.gz",
        "artifact_dirs": [store],
        "report_dirs": [reports],
        "policy": {
            "keep_last": 1,
            "keep_days": 0,
            "holds": [
                {"service": "app", "version": "1.0.0", "reason": "legal case 2026-114"},
                {"path": "*/2025-q1/*", "reason": "annual audit"},
            ],
        },
    }
    result, _output = archive(ansible, ledger_url, args)
    held = {os.path.relpath(item["path"], ansible.workdir): item["reason"] for item in result["held"]}
    assert held == {
        "store/app-1.0.0.tar.gz": "legal hold (service app, version 1.0.0): legal case 2026-114",
        "reports/2025-q1/dora.html": "legal hold (path */2025-q1/*): annual audit",
    }
    archived = sorted(os.path.relpath(item["path"], ansible.workdir) for item in result["archived"])
    assert archived == ["reports/2024-q4/dora.html", "store/app-1.1.0.tar.gz", "store/app-1.2.0.tar.gz"]
    assert os.path.exists(os.path.join(store, "app-1.0.0.tar.gz"))
    assert os.path.exists(os.path.join(reports, "2025-q1", "dora.html"))
    assert os.path.exists(os.path.join(reports, "2025-q2", "dora.html"))  # the newest edition of its report
    assert not os.path.exists(os.path.join(reports, "2024-q4", "dora.html"))
    report_row = index_rows(ledger_url, kind="report")[0]
    assert report_row["original_path"] == os.path.join(reports, "2024-q4", "dora.html")
    assert report_row["member"] == "dora.html" and report_row["archive_path"].endswith("dora.html.tar.gz")
    inside = dict(args, dest=os.path.join(reports, "archive"))
    refused, _output = archive(ansible, ledger_url, inside)
    assert refused["failed"] is True and "lies inside the source %s" % reports in refused["msg"]
    assert not os.path.exists(os.path.join(reports, "archive"))
    assert all(item["archive_path"].endswith(".tar.gz") for item in result["archived"])


def test_restore_verifies_sha256_and_refuses_a_changed_archive(ansible: Ansible, ledger_url: str) -> None:
    store = make_store(ansible.workdir, ["app-1.0.0.tar.gz", "app-2.0.0.tar.gz", "app-3.0.0.tar.gz"])
    digests = {name: file_digest(os.path.join(store, name))[0] for name in os.listdir(store)}
    dest = os.path.join(ansible.workdir, "archive")
    args = {
        "dest": dest,
        "artifact_dirs": [store],
        "compression": "tar.zst",
        "policy": {"keep_last": 1, "keep_days": 0},
    }
    result, _output = archive(ansible, ledger_url, args)
    by_version = {item["version"]: item for item in result["archived"]}
    assert sorted(by_version) == ["1.0.0", "2.0.0"]

    wanted = os.path.join(store, "app-2.0.0.tar.gz")
    restore = {"state": "restored", "restore": [wanted]}  # the index knows where things are
    planned, _output = archive(ansible, ledger_url, restore, "--check")
    assert planned["changed"] is True and not os.path.exists(wanted)
    restored, _output = archive(ansible, ledger_url, restore)
    assert restored["changed"] is True
    assert sorted(os.path.basename(item["original_path"]) for item in restored["restored"]) == [
        "app-2.0.0.tar.gz",
        "app-2.0.0.tar.gz.intoto.json",
    ]
    for name in ("app-2.0.0.tar.gz", "app-2.0.0.tar.gz.intoto.json"):
        assert file_digest(os.path.join(store, name))[0] == digests[name]
    assert abs(os.stat(wanted).st_mtime - OLD) < 1  # the original modification time comes back too
    assert not os.path.exists(by_version["2.0.0"]["archive_path"])
    assert {
        row["status"] for row in index_rows(ledger_url, status=None, archive_ids=[by_version["2.0.0"]["archive_id"]])
    } == {"restored"}
    again, _output = archive(ansible, ledger_url, restore)
    assert again["changed"] is False and again["already_restored"] == [wanted]

    # Damage the other archived item: restoring it fails, naming the file, and puts nothing back.
    damaged = by_version["1.0.0"]["archive_path"]
    with open(damaged, "r+b") as handle:
        handle.seek(40)
        handle.write(b"\x00" * 16)
    code, refused, _output = run_play(
        ansible,
        ARCHIVE_PLAY,
        "archive_args",
        {"dest": dest, "state": "restored", "restore": [by_version["1.0.0"]["archive_id"]]},
        ledger_url,
    )
    assert code == 0 and refused["failed"] is True
    assert damaged in refused["msg"] and "damaged" in refused["msg"] and "nothing was restored" in refused["msg"]
    # A well-formed archive whose member differs from the index is refused by its sha256.
    forged = os.path.join(ansible.workdir, "forged.bin")
    with open(forged, "wb") as handle:
        handle.write(b"not the release that was archived")
    with (
        open(damaged, "wb") as raw,
        compressing(raw, "tar.zst") as stream,
        tarfile.open(fileobj=stream, mode="w|") as tar,
    ):
        for member in ("app-1.0.0.tar.gz", "app-1.0.0.tar.gz.intoto.json"):
            tar.add(forged, arcname=member)
    code, refused, _output = run_play(
        ansible,
        ARCHIVE_PLAY,
        "archive_args",
        {"dest": dest, "state": "restored", "restore": [by_version["1.0.0"]["archive_id"]]},
        ledger_url,
    )
    assert code == 0 and refused["failed"] is True
    assert "%s member app-1.0.0.tar.gz" % damaged in refused["msg"]
    assert "but the archive index recorded %s" % digests["app-1.0.0.tar.gz"] in refused["msg"]
    assert not os.path.exists(os.path.join(store, "app-1.0.0.tar.gz"))
    assert not [name for name in os.listdir(store) if name.startswith(".")]
    assert {
        row["status"] for row in index_rows(ledger_url, status=None, archive_ids=[by_version["1.0.0"]["archive_id"]])
    } == {"archived"}


def _verify(ansible: Ansible, ledger_url: str, keys: AuditKeys, trail: str, archived: bool) -> dict[str, Any]:
    args = {
        "path": trail,
        "hmac_key_file": keys.hmac_key_file,
        "public_keys": [keys.public_key],
        "archived": archived,
        "fail_on_problem": False,
    }
    code, result, output = run_play(ansible, VERIFY_PLAY, "verify_args", args, ledger_url)
    assert code == 0, output
    return result


def test_audit_chain_verifies_across_archived_segments(
    ansible: Ansible, ledger_url: str, audit_keys: AuditKeys
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    env = audit_environment(trail, audit_keys, rotate_size="3000")
    tiny = ansible.write_playbook(TINY, "tiny.yml")
    for _run in range(4):
        run = ansible.playbook(tiny, env=env)
        assert run.returncode == 0, run.report
    segments = [name for name in os.listdir(os.path.dirname(trail)) if name.startswith("audit.jsonl.2")]
    assert len(segments) >= 2

    dest = os.path.join(ansible.workdir, "archive")
    args = {"dest": dest, "audit_trails": [trail], "policy": {"keep_days": 0}}
    result, _output = archive(ansible, ledger_url, args, env=env)
    archived = result["archived"]
    assert len(archived) >= 2 and all(item["kind"] == "audit" for item in archived)
    assert archived[0]["first_seq"] == 1
    assert all(later["first_seq"] == earlier["last_seq"] + 1 for earlier, later in itertools.pairwise(archived))
    assert os.path.exists(trail) and not [
        name
        for name in os.listdir(os.path.dirname(trail))
        if name in {os.path.basename(item["path"]) for item in archived}
    ]
    rows = index_rows(ledger_url, kind="audit")
    assert [(row["first_seq"], row["last_seq"], row["last_hash"]) for row in rows] == [
        (item["first_seq"], item["last_seq"], item["last_hash"]) for item in archived
    ]
    # The archive run itself is in the audit trail.
    remaining = ""
    for name in sorted(os.listdir(os.path.dirname(trail))):
        if name.startswith("audit.jsonl") and not name.endswith(".lock"):
            with open(os.path.join(os.path.dirname(trail), name), encoding="utf-8") as handle:
                remaining += handle.read()
    assert '"archive_run"' in remaining

    alone = _verify(ansible, ledger_url, audit_keys, trail, archived=False)
    assert alone["ok"] is False and alone["first_problem"]["reason"] == "removed"
    whole = _verify(ansible, ledger_url, audit_keys, trail, archived=True)
    assert whole["ok"] is True, whole["problems"]
    assert whole["first_seq"] == 1 and whole["macs_checked"] and whole["signatures_checked"]
    assert [segment["sha256_ok"] for segment in whole["archived_segments"]] == [True] * len(archived)
    assert whole["files"][0] == archived[0]["archive_path"]

    # Tamper with an archived segment: verification fails and names it.
    target = archived[1]["archive_path"]
    with open(target, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    event = json.loads(lines[1])
    event["ts"] = "2020-01-01T00:00:00.000000Z"
    lines[1] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    with open(target, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    broken = _verify(ansible, ledger_url, audit_keys, trail, archived=True)
    assert broken["ok"] is False
    assert broken["first_problem"]["file"] == target and "sha256" in broken["first_problem"]["detail"]
    assert any(problem["file"] == target and problem["line"] == 2 for problem in broken["problems"])
