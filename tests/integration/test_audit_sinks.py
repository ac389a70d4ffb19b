"""The audit callback's remote sinks through real ansible-playbook runs: a real rsyslog over
TCP that is stopped mid-run, and an HTTP receiver speaking Splunk HEC and webhook."""

from __future__ import annotations

import json
import os
import time

from fixtures.audit import AuditKeys, Receiver, Rsyslog, audit_environment, read_events
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import load_public_keys
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail

PAUSING = """
- name: Work while the receiver comes and goes
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Before the outage
      ansible.builtin.debug:
        msg: before
    - name: Tell the test to stop the receiver
      ansible.builtin.file:
        path: "{{ signal_dir }}/stop"
        state: touch
        mode: "0600"
    - name: Wait until it is stopped
      ansible.builtin.wait_for:
        path: "{{ signal_dir }}/stopped"
        timeout: 120
    - name: During the outage
      ansible.builtin.debug:
        msg: "during {{ item }}"
      loop: [1, 2, 3]
    - name: Tell the test to start the receiver again
      ansible.builtin.file:
        path: "{{ signal_dir }}/start"
        state: touch
        mode: "0600"
    - name: Wait until it is back
      ansible.builtin.wait_for:
        path: "{{ signal_dir }}/started"
        timeout: 120
    - name: After the outage
      ansible.builtin.debug:
        msg: after
"""


TINY = """
- name: Tiny
  hosts: localhost
  gather_facts: false
  tasks:
    - name: One task
      ansible.builtin.debug:
        msg: hello
"""


def _wait_for(path: str, process: "object") -> None:
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        assert process.poll() is None, "the playbook ended before %s appeared" % path  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.1)


def _touch(path: str) -> None:
    with open(path, "w", encoding="utf-8"):
        pass


def test_rsyslog_stopped_mid_run_loses_nothing(ansible: Ansible, audit_keys: AuditKeys, rsyslog: Rsyslog) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    signals = os.path.join(ansible.workdir, "signals")
    os.makedirs(signals)
    playbook = ansible.write_playbook(PAUSING, "pausing.yml")
    env = audit_environment(trail, audit_keys, syslog_url=rsyslog.url, sink_retry_interval="0", sink_timeout="2")
    process = ansible.start_playbook(playbook, "-e", "signal_dir=%s" % signals, env=env)
    _wait_for(os.path.join(signals, "stop"), process)
    # Stop rsyslog only once it holds the start of the task that waits (nothing more is sent until the test
    # answers): a line written while the receiver is exiting is lost without trace (TCP syslog has no
    # acknowledgements; docs/audit.md), and this test is about the outage, not about that race.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        event["event"] == "task_start" and "Wait until it is stopped" in str(event.get("task"))
        for event in rsyslog.received()
    ):
        time.sleep(0.1)
    rsyslog.stop()
    _touch(os.path.join(signals, "stopped"))
    _wait_for(os.path.join(signals, "start"), process)
    rsyslog.start()
    _touch(os.path.join(signals, "started"))
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err

    events = read_events(trail)
    assert verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key])).ok
    kinds = [event["event"] for event in events]
    assert "sink_outage" in kinds and "sink_restored" in kinds
    assert kinds.index("sink_outage") < kinds.index("sink_restored")
    restored = next(event for event in events if event["event"] == "sink_restored")
    assert restored["delivered"] > 0 and restored["sink"] == "syslog %s" % rsyslog.url

    deadline = time.monotonic() + 30
    while len(rsyslog.received()) < len(events) and time.monotonic() < deadline:
        time.sleep(0.2)
    received = rsyslog.received()
    assert [event["seq"] for event in received] == [event["seq"] for event in events]
    assert received == events


def test_rsyslog_over_tls_receives_every_event(ansible: Ansible, audit_keys: AuditKeys, rsyslog_tls: Rsyslog) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    assert rsyslog_tls.ca_file is not None
    env = audit_environment(trail, audit_keys, syslog_url=rsyslog_tls.url, syslog_ca_file=rsyslog_tls.ca_file)
    run = ansible.playbook(playbook, env=env)
    assert run.returncode == 0, run.report
    events = read_events(trail)
    deadline = time.monotonic() + 30
    while len(rsyslog_tls.received()) < len(events) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rsyslog_tls.received() == events
    assert "sink_outage" not in {event["event"] for event in events}


def test_tls_receiver_with_an_untrusted_certificate_counts_as_down(
    ansible: Ansible, audit_keys: AuditKeys, rsyslog_tls: Rsyslog
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    run = ansible.playbook(playbook, env=audit_environment(trail, audit_keys, syslog_url=rsyslog_tls.url))
    assert run.returncode == 0, run.report
    outage = [event for event in read_events(trail) if event["event"] == "sink_outage"]
    assert len(outage) == 1 and "CERTIFICATE_VERIFY_FAILED" in outage[0]["error"]
    assert rsyslog_tls.received() == []


def test_http_sinks_spool_while_refused_and_deliver_in_order(
    ansible: Ansible, audit_keys: AuditKeys, http_receiver: Receiver
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    signals = os.path.join(ansible.workdir, "signals")
    os.makedirs(signals)
    playbook = ansible.write_playbook(PAUSING, "pausing.yml")
    env = audit_environment(
        trail, audit_keys, http_url=http_receiver.url, http_token="hec-token", sink_retry_interval="0"
    )
    process = ansible.start_playbook(playbook, "-e", "signal_dir=%s" % signals, env=env)
    _wait_for(os.path.join(signals, "stop"), process)
    http_receiver.status = 503
    _touch(os.path.join(signals, "stopped"))
    _wait_for(os.path.join(signals, "start"), process)
    http_receiver.status = 200
    _touch(os.path.join(signals, "started"))
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err

    events = read_events(trail)
    assert {"sink_outage", "sink_restored"} <= {event["event"] for event in events}
    assert all(request["headers"]["Authorization"] == "Splunk hec-token" for request in http_receiver.requests)
    envelopes = [
        json.loads(line) for request in http_receiver.requests for line in request["body"].decode().splitlines()
    ]
    assert all(
        envelope["source"] == "relops.release.audit" and envelope["sourcetype"] == "_json" for envelope in envelopes
    )
    assert all(isinstance(envelope["time"], float) for envelope in envelopes)
    assert [envelope["event"] for envelope in envelopes] == events


def test_webhook_down_for_a_whole_run_gets_it_on_the_next(
    ansible: Ansible, audit_keys: AuditKeys, http_receiver: Receiver
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    env = audit_environment(
        trail, audit_keys, http_url=http_receiver.url, http_format="webhook", http_token="hook", sink_retry_interval="0"
    )
    http_receiver.status = 500
    first = ansible.playbook(playbook, env=env)
    assert first.returncode == 0, first.report
    assert "wait in" in first.output and not http_receiver.requests
    http_receiver.status = 200
    second = ansible.playbook(playbook, env=env)
    assert second.returncode == 0, second.report
    assert http_receiver.requests[0]["headers"]["Authorization"] == "Bearer hook"
    delivered = [event for request in http_receiver.requests for event in json.loads(request["body"])]
    assert delivered == read_events(trail)


VERIFY_AGAINST_SINK = """
- name: Verify against the sink
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify the trail against the last checkpoint the syslog receiver got
      relops.release.audit_verify:
        path: "{{ trail }}"
        hmac_key_file: "{{ hmac_key_file }}"
        public_keys: ["{{ public_key }}"]
        anchor_from: ["{{ received }}"]
        fail_on_problem: false
      register: audit
    - name: Keep the report for the test
      ansible.builtin.copy:
        content: "{{ audit | to_nice_json }}"
        dest: "{{ report_file }}"
        mode: "0600"
"""


def test_checkpoints_forwarded_to_syslog_anchor_the_trail_against_tail_removal(
    ansible: Ansible, audit_keys: AuditKeys, rsyslog: Rsyslog
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(TINY, "tiny.yml")
    env = audit_environment(trail, audit_keys, syslog_url=rsyslog.url)
    for _run in range(2):
        run = ansible.playbook(playbook, env=env)
        assert run.returncode == 0, run.report
    events = read_events(trail)
    deadline = time.monotonic() + 30
    while len(rsyslog.received()) < len(events) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rsyslog.received()[-1]["event"] == "checkpoint"
    verify = ansible.write_playbook(VERIFY_AGAINST_SINK, "verify.yml")
    report_file = os.path.join(ansible.workdir, "report.json")
    extra = {
        "trail": trail,
        "hmac_key_file": audit_keys.hmac_key_file,
        "public_key": audit_keys.public_key,
        "received": rsyslog.output,
        "report_file": report_file,
    }

    def verified() -> dict:
        # Without the callback, so the verification adds nothing to the trail it checks.
        run = ansible.playbook(verify, "-e", json.dumps(extra))
        assert run.returncode == 0, run.report
        with open(report_file, encoding="utf-8") as handle:
            return json.load(handle)

    report = verified()
    assert report["ok"], report
    assert report["anchor"]["seq"] == events[-1]["seq"] and report["anchor"]["found"]

    # Remove the whole second run: what is left still ends with a valid signed checkpoint.
    second_run = events[-1]["run_id"]
    with open(trail, encoding="utf-8") as handle:
        kept = [line for line in handle if json.loads(line)["run_id"] != second_run]
    with open(trail, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    assert verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key])).ok
    report = verified()
    assert not report["ok"]
    assert report["first_problem"]["reason"] == "truncated"
    assert "the anchor names seq %d" % events[-1]["seq"] in report["first_problem"]["detail"]


def test_a_full_spool_is_capped_and_its_gap_recorded_and_forwarded(
    ansible: Ansible, audit_keys: AuditKeys, http_receiver: Receiver
) -> None:
    trail = os.path.join(ansible.workdir, "audit", "audit.jsonl")
    playbook = ansible.write_playbook(PAUSING.replace("{{ signal_dir }}", "{{ playbook_dir }}"), "long.yml")
    for name in ("stopped", "started"):
        _touch(os.path.join(os.path.dirname(playbook), name))
    env = audit_environment(
        trail,
        audit_keys,
        http_url=http_receiver.url,
        http_format="webhook",
        sink_retry_interval="0",
        spool_max_size="4000",
    )
    http_receiver.status = 500
    first = ansible.playbook(playbook, env=env)
    assert first.returncode == 0, first.report
    full = [event for event in read_events(trail) if event["event"] == "sink_spool_full"]
    assert len(full) == 1 and full[0]["limit"] == 4000
    spool_files = [os.path.join(root, name) for root, _dirs, names in os.walk(trail + ".spool") for name in names]
    assert all(os.path.getsize(name) <= 4000 for name in spool_files if name.endswith("queue.jsonl"))

    http_receiver.status = 200
    second = ansible.playbook(playbook, env=env)
    assert second.returncode == 0, second.report
    events = read_events(trail)
    assert verify_trail([trail], audit_keys.hmac_key, load_public_keys([audit_keys.public_key])).ok
    dropped = [event for event in events if event["event"] == "sink_spool_dropped"]
    assert len(dropped) == 1
    gap = set(range(dropped[0]["first_seq"], dropped[0]["last_seq"] + 1))
    assert dropped[0]["lines"] == len(gap) > 0
    delivered = [event["seq"] for request in http_receiver.requests for event in json.loads(request["body"])]
    assert dropped[0]["seq"] in delivered and gap.isdisjoint(delivered)
    # Every line the trail holds reached the receiver, except exactly the recorded gap (and the last run's tail
    # still spooled for the next run, if any).
    assert set(delivered) | gap >= {event["seq"] for event in events if event["seq"] <= dropped[0]["seq"]}
