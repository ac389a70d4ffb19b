"""relops.release.release_lock through real ansible-playbook runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time

from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

LOCK_PLAY = """
- name: Lock
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the lock
      relops.release.release_lock:
        name: "{{ lock_name | default('payments') }}"
        state: "{{ lock_state | default('acquired') }}"
        wait_timeout: "{{ wait | default(0) | int }}"
        ttl: "{{ ttl | default(600) | int }}"
        force: "{{ force | default(false) | bool }}"
      register: outcome
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

HOLD_PLAY = """
- name: Hold the lock until told to let go
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Take the lock
      relops.release.release_lock:
        name: payments
        ttl: 600
    - name: Tell the test we hold it
      ansible.builtin.file:
        path: "{{ holding_file }}"
        state: touch
        mode: "0600"
    - name: Wait for the test to let go
      ansible.builtin.wait_for:
        path: "{{ release_file }}"
        timeout: 120
    - name: Release the lock
      relops.release.release_lock:
        name: payments
        state: released
"""


def _run_lock(ansible: Ansible, ledger_url: str, *extra: str) -> tuple[int, dict, str]:
    playbook = ansible.write_playbook(LOCK_PLAY, "lock.yml")
    result_file = os.path.join(ansible.workdir, "result-%d.json" % time.monotonic_ns())
    run = ansible.playbook(
        playbook, "-e", "result_file=%s" % result_file, *extra, env={"RELOPS_LEDGER_URL": ledger_url}
    )
    result = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    return run.returncode, result, run.output


def test_acquire_then_release_across_runs(ansible: Ansible, ledger_url: str) -> None:
    code, taken, output = _run_lock(ansible, ledger_url, "-e", "ttl=120")
    assert code == 0, output
    assert taken["changed"] is True and taken["outcome"] == "acquired"
    assert taken["lock"]["ttl_seconds"] == 120 and taken["lock"]["owner_run_id"] == taken["run_id"]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        lock = ledger.get_lock("payments")
        assert lock is not None and lock.owner_run_id == taken["run_id"]
        run = ledger.get_run(taken["run_id"])
        assert run is not None and run["playbook"].endswith("lock.yml")

    code, _result, output = _run_lock(ansible, ledger_url)
    assert code != 0
    assert "lock 'payments' is held by run %s" % taken["run_id"] in output
    assert "expires at %s" % taken["lock"]["expires_at"] in output

    code, _result, output = _run_lock(ansible, ledger_url, "-e", "lock_state=released")
    assert code != 0 and "release it with force: true" in output, "release by another run needs force"

    code, forced, output = _run_lock(ansible, ledger_url, "-e", "lock_state=released", "-e", "force=true")
    assert code == 0, output
    assert forced["outcome"] == "released" and forced["previous_holder"]["owner_run_id"] == taken["run_id"]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert ledger.get_lock("payments") is None
        assert ledger.lock_events("payments")[0]["event"] == "force_released"


def test_same_run_renews_instead_of_deadlocking(ansible: Ansible, ledger_url: str) -> None:
    playbook = ansible.write_playbook(
        """
        - name: Twice
          hosts: localhost
          gather_facts: false
          tasks:
            - name: First
              relops.release.release_lock: {name: payments, ttl: 60}
            - name: Second
              relops.release.release_lock: {name: payments, ttl: 90}
              register: second
            - name: Release
              relops.release.release_lock: {name: payments, state: released}
              register: released
            - name: Release again
              relops.release.release_lock: {name: payments, state: released}
              register: again
            - name: Check
              ansible.builtin.assert:
                that:
                  - second is not changed
                  - second.outcome == 'renewed'
                  - second.lock.ttl_seconds == 90
                  - released is changed
                  - again is not changed
                  - again.outcome == 'not_held'
        """
    )
    run = ansible.playbook(playbook, env={"RELOPS_LEDGER_URL": ledger_url})
    assert run.returncode == 0, run.report


def test_check_mode_writes_nothing_and_diff_shows_the_holder(ansible: Ansible, tmp_path: "os.PathLike[str]") -> None:
    ledger_file = os.path.join(str(tmp_path), "never", "ledger.db")
    url = "sqlite:///" + ledger_file.lstrip("/")
    code, predicted, output = _run_lock(ansible, url, "--check", "--diff")
    assert code == 0, output
    assert predicted["changed"] is True and predicted["outcome"] == "acquired"
    assert predicted["lock"]["owner_run_id"] == predicted["run_id"]
    assert not os.path.exists(os.path.dirname(ledger_file)), "check mode created the ledger"
    assert "-free" in output and "+held by run %s" % predicted["run_id"] in output

    code, taken, output = _run_lock(ansible, url)
    assert code == 0, output
    code, predicted, output = _run_lock(
        ansible, url, "--check", "--diff", "-e", "lock_state=released", "-e", "force=true"
    )
    assert code == 0, output
    assert predicted["changed"] is True and predicted["outcome"] == "released"
    assert predicted["previous_holder"]["owner_run_id"] == taken["run_id"]
    assert "-held by run %s" % taken["run_id"] in output and "+free" in output
    with open_ledger(parse_ledger_url(url)) as ledger:
        lock = ledger.get_lock("payments")
        assert lock is not None and lock.owner_run_id == taken["run_id"], "check mode released the lock"


def _wait_for_file(path: str, process: "object", seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "holder never took the lock"
        time.sleep(0.1)


def _wait_until_refused_once(ledger_url: str, known_runs: set, waiter: "object", seconds: float = 120) -> None:
    """Wait until the waiter's run has tried the lock at least once while it was held.

    Opening the ledger records the run (started_at == last_seen_at); every
    attempt to take the lock refreshes last_seen_at, so a later last_seen_at
    proves an attempt was made, and refused, since the holder still holds it.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert waiter.poll() is None, waiter.communicate()  # type: ignore[attr-defined]
        with open_ledger(parse_ledger_url(ledger_url)) as ledger:
            runs = [run for run in ledger.list_runs(limit=20) if run["run_id"] not in known_runs]
        if runs and runs[0]["last_seen_at"] > runs[0]["started_at"]:
            return
        time.sleep(0.2)
    raise AssertionError("the waiting run never tried the lock")


def test_a_second_run_waits_for_the_lock_then_proceeds(ansible: Ansible, ledger_url: str) -> None:
    holding, release = os.path.join(ansible.workdir, "holding"), os.path.join(ansible.workdir, "release")
    holder = ansible.start_playbook(
        ansible.write_playbook(HOLD_PLAY, "hold.yml"),
        "-e",
        "holding_file=%s" % holding,
        "-e",
        "release_file=%s" % release,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    _wait_for_file(holding, holder)
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        holder_runs = {run["run_id"] for run in ledger.list_runs()}
    result_file = os.path.join(ansible.workdir, "waiter.json")
    waiter = ansible.start_playbook(
        ansible.write_playbook(LOCK_PLAY, "lock.yml"),
        "-e",
        "wait=120",
        "-e",
        "result_file=%s" % result_file,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    _wait_until_refused_once(ledger_url, holder_runs, waiter)
    with open(release, "w", encoding="utf-8"):
        pass
    holder_out = holder.communicate(timeout=120)
    assert holder.returncode == 0, holder_out
    waiter_out = waiter.communicate(timeout=180)
    assert waiter.returncode == 0, waiter_out
    with open(result_file, encoding="utf-8") as handle:
        outcome = json.load(handle)
    assert outcome["outcome"] == "acquired"
    assert outcome["waited"] > 0 and outcome["attempts"] >= 2
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        events = list(reversed(ledger.lock_events("payments")))
    assert [event["event"] for event in events] == ["acquired", "released", "acquired"]
    assert events[2]["run_id"] == outcome["run_id"] and events[2]["at"] >= events[1]["at"]


def test_a_second_run_times_out_naming_the_holder(ansible: Ansible, ledger_url: str) -> None:
    holding, release = os.path.join(ansible.workdir, "holding"), os.path.join(ansible.workdir, "release")
    holder = ansible.start_playbook(
        ansible.write_playbook(HOLD_PLAY, "hold.yml"),
        "-e",
        "holding_file=%s" % holding,
        "-e",
        "release_file=%s" % release,
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    try:
        _wait_for_file(holding, holder)
        code, _result, output = _run_lock(ansible, ledger_url, "-e", "wait=2")
        assert code != 0
        assert "lock 'payments' is held by run" in output
        assert "waited 2s" in output and "expires at" in output
    finally:
        with open(release, "w", encoding="utf-8"):
            pass
        holder.communicate(timeout=120)
    assert holder.returncode == 0


def test_status_and_releasing_a_free_lock_leave_no_trace(ansible: Ansible, tmp_path: os.PathLike[str]) -> None:
    ledger_file = os.path.join(str(tmp_path), "quiet", "ledger.db")
    url = "sqlite:///" + ledger_file.lstrip("/")
    code, status, output = _run_lock(ansible, url, "-e", "lock_state=status")
    assert code == 0, output
    assert (status["changed"], status["outcome"]) == (False, "free")
    code, released, output = _run_lock(ansible, url, "-e", "lock_state=released")
    assert code == 0, output
    assert (released["changed"], released["outcome"]) == (False, "not_held")
    assert not os.path.exists(os.path.dirname(ledger_file)), "reading a lock created the ledger"

    code, taken, output = _run_lock(ansible, url)
    assert code == 0, output
    code, status, output = _run_lock(ansible, url, "-e", "lock_state=status")
    assert code == 0, output
    assert status["outcome"] == "held" and status["lock"]["owner_run_id"] == taken["run_id"]
    with open_ledger(parse_ledger_url(url)) as ledger:
        assert [run["run_id"] for run in ledger.list_runs()] == [taken["run_id"]], "status recorded a run"
