"""The demo release playbook on the local inventory, as `make demo` runs it."""

from __future__ import annotations

import os

from fixtures.playbooks import REPO, Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor


def test_release_playbook_records_the_run_and_frees_the_lock(ansible: Ansible) -> None:
    playbook = os.path.join(REPO, "playbooks", "release.yml")
    run = ansible.playbook(playbook, "-i", os.path.join(REPO, "inventories", "local", "hosts.yml"))
    assert run.returncode == 0, run.output
    assert "holds the lock demo-app (acquired" in run.output
    assert "lock demo-app: acquired, then released" in run.output
    default_ledger = os.path.join(ansible.workdir, "state", "relops", "ledger.db")
    with open_ledger(parse_ledger_url("sqlite:///" + default_ledger.lstrip("/"))) as ledger:
        runs = ledger.list_runs()
        assert [entry["status"] for entry in runs] == ["successful"]
        assert runs[0]["summary"]["service"] == "demo-app"
        assert ledger.get_lock("demo-app") is None
        assert [event["event"] for event in ledger.lock_events("demo-app")] == ["released", "acquired"]

    status = ansible.playbook(os.path.join(REPO, "playbooks", "ledger_status.yml"))
    assert status.returncode == 0, status.output
    assert runs[0]["run_id"] in status.output


def test_release_playbook_fails_cleanly_while_another_run_holds_the_lock(ansible: Ansible) -> None:
    default_ledger = os.path.join(ansible.workdir, "state", "relops", "ledger.db")
    with open_ledger(parse_ledger_url("sqlite:///" + default_ledger.lstrip("/"))) as ledger:
        ledger.try_lock("demo-app", Actor(run_id="earlier-run", user="bob", host="ctl9"), 600)
    run = ansible.playbook(os.path.join(REPO, "playbooks", "release.yml"), "-e", "release_lock_wait=1")
    assert run.returncode != 0
    assert "release of demo-app failed at 'Take the release lock for demo-app'" in run.output
    assert "held by run earlier-run (bob@ctl9)" in run.output
    assert "failed=1" in run.output, "only the lock task fails; the lock of the other run is left alone"
    assert "not by this run" not in run.output
    with open_ledger(parse_ledger_url("sqlite:///" + default_ledger.lstrip("/"))) as ledger:
        latest = ledger.list_runs()[0]
        assert latest["status"] == "failed" and latest["summary"]["failed_task"] == "Take the release lock for demo-app"
        lock = ledger.get_lock("demo-app")
        assert lock is not None and lock.owner_run_id == "earlier-run", "the other run's lock must stay"


def test_release_playbook_in_check_mode_writes_nothing(ansible: Ansible) -> None:
    run = ansible.playbook(os.path.join(REPO, "playbooks", "release.yml"), "--check", "--diff")
    assert run.returncode == 0, run.output
    assert "holds the lock demo-app (acquired, waited 0.0s)" in run.output
    assert not os.path.exists(os.path.join(ansible.workdir, "state", "relops")), "check mode created the ledger"
