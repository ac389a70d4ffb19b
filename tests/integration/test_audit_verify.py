"""relops.release.audit_verify and playbooks/audit_verify.yml on trails the callback wrote."""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fixtures.audit import AuditKeys, audit_environment
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import line_hash

TINY = """
- name: Tiny
  hosts: localhost
  gather_facts: false
  tasks:
    - name: One task
      ansible.builtin.debug:
        msg: hello
    - name: Another task
      ansible.builtin.command: echo hi
"""

VERIFY = """
- name: Verify
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify the trail
      relops.release.audit_verify:
        path: "{{ trail }}"
        hmac_key_file: "{{ hmac_key_file }}"
        public_keys: "{{ public_keys }}"
        fail_on_problem: false
      register: audit
    - name: Keep the report for the test
      ansible.builtin.copy:
        content: "{{ audit | to_nice_json }}"
        dest: "{{ report_file }}"
        mode: "0600"
"""


def _write_trail(ansible: Ansible, keys: AuditKeys, runs: int = 2) -> str:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    for _run in range(runs):
        run = ansible.playbook(playbook, env=audit_environment(trail, keys))
        assert run.returncode == 0, run.report
    return trail


def _verify(ansible: Ansible, keys: AuditKeys, trail: str, public_key: str) -> dict:
    playbook = ansible.write_playbook(VERIFY, "verify.yml")
    report_file = os.path.join(ansible.workdir, "report.json")
    run = ansible.playbook(
        playbook,
        "-e",
        json.dumps(
            {
                "trail": trail,
                "hmac_key_file": keys.hmac_key_file,
                "public_keys": [public_key],
                "report_file": report_file,
            }
        ),
    )
    assert run.returncode == 0, run.report
    with open(report_file, encoding="utf-8") as handle:
        return json.load(handle)


def _rewrite(trail: str, change) -> None:  # type: ignore[no-untyped-def]
    with open(trail, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    with open(trail, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in change(lines)))


def test_report_counts_runs_and_names_the_first_bad_line(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = _write_trail(ansible, audit_keys)
    report = _verify(ansible, audit_keys, trail, audit_keys.public_key)
    assert report["ok"] is True and report["changed"] is False and report["first_problem"] is None
    assert report["macs_checked"] and report["signatures_checked"]
    assert len(report["runs"]) == 2 and all(run["ended"] for run in report["runs"].values())
    assert sum(run["events"] for run in report["runs"].values()) == report["lines"] == report["last_seq"]
    assert report["msg"].startswith("audit trail verified: %d line(s) in 1 file(s)" % report["lines"])

    _rewrite(trail, lambda lines: lines[:4] + lines[5:])
    report = _verify(ansible, audit_keys, trail, audit_keys.public_key)
    assert report["ok"] is False
    assert report["first_problem"]["reason"] == "removed" and report["first_problem"]["line"] == 5
    assert report["gaps"] == [{"after_seq": 4, "first_missing": 5, "last_missing": 5}]


def test_reordered_lines_and_an_untrusted_key_are_reported(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = _write_trail(ansible, audit_keys, runs=1)
    _rewrite(trail, lambda lines: [lines[0], lines[2], lines[1], *lines[3:]])
    report = _verify(ansible, audit_keys, trail, audit_keys.public_key)
    assert report["first_problem"]["reason"] == "reordered" and report["first_problem"]["line"] == 2
    _rewrite(trail, lambda lines: [lines[0], lines[2], lines[1], *lines[3:]])
    assert _verify(ansible, audit_keys, trail, audit_keys.public_key)["ok"] is True
    stranger = os.path.join(ansible.workdir, "stranger.pub")
    with open(stranger, "wb") as handle:
        handle.write(
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    report = _verify(ansible, audit_keys, trail, stranger)
    assert report["first_problem"]["reason"] == "bad signature"
    assert "not among the trusted public keys" in report["first_problem"]["detail"]


def test_the_collection_playbook_passes_a_good_trail_and_fails_an_edited_one(
    ansible: Ansible, audit_keys: AuditKeys
) -> None:
    trail = _write_trail(ansible, audit_keys, runs=1)
    extra = json.dumps(
        {
            "audit_trail": trail,
            "audit_public_keys": [audit_keys.public_key],
            "audit_hmac_key_file": audit_keys.hmac_key_file,
        }
    )
    good = ansible.playbook("relops.release.audit_verify", "-e", extra)
    assert good.returncode == 0, good.report
    assert "audit trail verified" in good.output and "1 ledger anchor(s) held" in good.output
    assert "verified with keys" in good.output
    keyless = ansible.playbook("relops.release.audit_verify", "-e", json.dumps({"audit_trail": trail}))
    assert keyless.returncode == 0, keyless.report
    assert "audit trail chain only, not verified" in keyless.output and "audit trail verified" not in keyless.output
    assert "chain only, not verified: pass audit_public_keys" in keyless.output
    _rewrite(trail, lambda lines: [lines[0].replace('"playbook_start"', '"playbook_begin"'), *lines[1:]])
    bad = ansible.playbook("relops.release.audit_verify", "-e", extra)
    assert bad.returncode == 2, bad.report
    assert "audit trail does NOT verify: edited at %s line 1 (seq 1)" % trail in bad.output


def test_missing_trail_and_bad_key_file_fail_with_the_fix(ansible: Ansible) -> None:
    playbook = ansible.write_playbook(
        """
        - name: Verify nothing
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Verify a directory as the trail
              relops.release.audit_verify:
                path: "{{ playbook_dir }}"
              ignore_errors: true
            - name: Verify a directory among the files
              relops.release.audit_verify:
                files: ["{{ playbook_dir }}"]
              ignore_errors: true
            - name: Verify a trail that is not there
              relops.release.audit_verify:
                path: "{{ playbook_dir }}/nowhere.jsonl"
        """,
        "nothing.yml",
    )
    run = ansible.playbook(playbook)
    assert run.returncode == 2
    # Issue 22: a directory is named as one, not reported missing.
    assert "path %s is a directory, not an audit trail" % ansible.workdir in run.output, run.output
    assert "%s in files is a directory, not a trail file" % ansible.workdir in run.output
    assert "%s do not exist" % ansible.workdir not in run.output
    assert "no audit trail at %s/nowhere.jsonl" % ansible.workdir in run.output
    assert "set path to the callback's trail" in run.output


def test_audit_required_names_a_callback_that_cannot_write(ansible: Ansible, audit_keys: AuditKeys) -> None:
    """The callback is enabled but its trail cannot be opened: the tasks' check names that cause."""
    playbook = ansible.write_playbook(
        """
        - name: Ask for the audit trail
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Is the audit trail written for this run?
              relops.release.audit_verify:
                current_run: true
                hmac_key_file: "{{ hmac_key_file }}"
                public_keys: ["{{ public_key }}"]
        """,
        "ask.yml",
    )
    blocker = os.path.join(ansible.workdir, "not-a-directory")
    with open(blocker, "w", encoding="utf-8") as handle:
        handle.write("a file where the trail's directory should be\n")
    run = ansible.playbook(
        playbook,
        "-e",
        json.dumps({"hmac_key_file": audit_keys.hmac_key_file, "public_key": audit_keys.public_key}),
        env=audit_environment(os.path.join(blocker, "audit.jsonl"), audit_keys),
    )
    assert run.returncode == 2, run.report
    assert "audit callback relops.release.audit is enabled but does not write the trail: audit trail" in run.output
    assert "cannot be opened" in run.output


def test_anchor_and_anchor_from_together_are_refused(ansible: Ansible, audit_keys: AuditKeys) -> None:
    trail = _write_trail(ansible, audit_keys, runs=1)
    playbook = ansible.write_playbook(
        """
        - name: Verify with two anchors
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Verify against a kept anchor and a sink export at once
              relops.release.audit_verify:
                path: "%s"
                anchor: {seq: 1, head: "%s"}
                anchor_from: ["{{ playbook_dir }}/export.jsonl"]
        """
        % (trail, "0" * 64),
        "two-anchors.yml",
    )
    run = ansible.playbook(playbook)
    assert run.returncode == 2, run.report
    assert "anchor and anchor_from both given; give one" in run.output


def test_ansible_doc_renders_the_module_and_the_callback(ansible: Ansible) -> None:
    module = ansible.doc("relops.release.audit_verify")
    assert module.returncode == 0, module.report
    assert "EXAMPLES:" in module.stdout and "RETURN VALUES:" in module.stdout and "first_problem" in module.stdout
    callback = json.loads(ansible.doc("-t", "callback", "--json", "relops.release.audit").stdout)
    options = callback["relops.release.audit"]["doc"]["options"]
    assert options["fsync"]["choices"] == ["event", "task", "play"]
    assert options["path"]["env"] == [{"name": "RELOPS_AUDIT_PATH"}]
    assert options["signing_key"]["ini"] == [{"section": "relops_audit", "key": "signing_key"}]


RELEASE_LIKE = """
- name: A run that asks the gates' audit-required check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Is the audit trail written for this run and task, and does its tail verify?
      relops.release.audit_verify:
        current_run: true
        hmac_key_file: "{{ hmac_key_file }}"
        public_keys: "{{ public_keys }}"
        fail_on_problem: false
      register: ready
    - name: Verify the whole trail, against the ledger's anchors
      relops.release.audit_verify:
        path: "{{ trail }}"
        hmac_key_file: "{{ hmac_key_file }}"
        public_keys: "{{ public_keys }}"
        fail_on_problem: false
      register: audit
      when: verify | default(false)
    - name: Keep the answers for the test
      ansible.builtin.copy:
        content: "{{ {'ready': ready, 'audit': audit} | to_nice_json }}"
        dest: "{{ answer_file }}"
        mode: "0600"
"""


def test_forged_tail_and_cut_tail_are_recorded_by_the_next_run(ansible: Ansible, audit_keys: AuditKeys) -> None:
    """The writer checks the tail before it appends (a forged line, then a cut caught against the ledger
    anchor), and the audit-required check answers inside real runs (the callback-off answer: unit tests)."""
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(RELEASE_LIKE, "release_like.yml")
    answer_file = os.path.join(ansible.workdir, "answer.json")
    extra = json.dumps(
        {
            "trail": trail,
            "hmac_key_file": audit_keys.hmac_key_file,
            "public_keys": [audit_keys.public_key],
            "answer_file": answer_file,
        }
    )

    def run(**more: object) -> tuple[str, dict]:
        done = ansible.playbook(playbook, "-e", extra, "-e", json.dumps(more), env=audit_environment(trail, audit_keys))
        assert done.returncode == 0, done.report
        with open(answer_file, encoding="utf-8") as handle:
            return done.output, json.load(handle)

    _output, answer = run()
    assert answer["ready"]["ok"] is True, answer["ready"]["msg"]
    assert "is written for run" in answer["ready"]["msg"]

    with open(trail, encoding="utf-8") as handle:
        last = handle.read().splitlines()[-1]
    forged = {"actor": {"user": "mallory"}, "event": "runner_ok", "prev": line_hash(last.encode()), "run_id": "x"}
    forged["seq"] = json.loads(last)["seq"] + 1
    with open(trail, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n")
    output, answer = run()
    assert "the audit trail's tail did not verify (mac:" in output
    assert answer["ready"]["ok"] is False
    assert "seq %d has no valid MAC" % forged["seq"] in answer["ready"]["msg"]
    events = [json.loads(line) for line in open(trail, encoding="utf-8")]  # noqa: SIM115
    tamper = [event for event in events if event["event"] == "tamper_detected"]
    assert len(tamper) == 1 and tamper[0]["damage"]["first_seq"] == forged["seq"]
    end_of_that_run = events[-1]["seq"]

    # Cut that whole run off the end: the file alone verifies, the next run finds the cut in the ledger, and the
    # verifier (in the same run) holds the cut against the ledger's anchor.
    _rewrite(trail, lambda lines: [line for line in lines if json.loads(line)["seq"] <= tamper[0]["seq"] - 2])
    output, answer = run(verify=True)
    assert "lines were removed from its end" in output
    assert answer["ready"]["ok"] is False and "removed from its end" in answer["ready"]["msg"]
    events = [json.loads(line) for line in open(trail, encoding="utf-8")]  # noqa: SIM115
    assert [event["damage"]["kind"] for event in events if event["event"] == "tamper_detected"] == ["cut"]
    report = answer["audit"]
    assert report["ok"] is False and report["verified"] is False
    assert any(
        problem["reason"] == "truncated" and "seq %d of run" % end_of_that_run in problem["detail"]
        for problem in report["problems"]
    ), report["problems"]
