"""The release playbook run the way AWX / Automation Controller runs it: through
ansible-runner, with the extra variables AWX passes to every job. The ledger
and the audit trail must say which AWX user and job did the release."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import ansible_runner
import pytest
from fixtures.audit import AuditKeys, audit_environment, read_events
from fixtures.demo_site import Site
from fixtures.playbooks import REPO

# The tests of this module build on each other (one release after another on one site), so they
# run in one xdist worker, in order (`--dist loadgroup` in the Makefile).
pytestmark = pytest.mark.xdist_group("awx_runner")

# What AWX puts into every job's extra variables (see AWX's "Extra Variables" docs).
AWX_EXTRA_VARS = {
    "awx_job_id": 4711,
    "awx_job_launch_type": "manual",
    "awx_job_template_id": 12,
    "awx_job_template_name": "relops release",
    "awx_user_email": "ada@example.com",
    "awx_user_first_name": "Ada",
    "awx_user_id": 7,
    "awx_user_last_name": "Lovelace",
    "awx_user_name": "ada",
    "awx_inventory_id": 3,
    "awx_inventory_name": "local",
    "awx_project_revision": "0123456789abcdef",
    "tower_job_id": 4711,
    "tower_user_name": "ada",
}


def release_vars(site: Site, version: str) -> dict:
    """The release of one of the demo site's signed packages."""
    with open(os.path.join(site.demo, "artifacts", "releases.json"), encoding="utf-8") as handle:
        path, digest = json.load(handle)[version]
    return {"release_artifact": path, "release_checksum": digest, "release_envelope": path + ".intoto.json"}


def run_like_awx(ansible, tmp_path, extravars: dict, env: dict) -> ansible_runner.Runner:
    """ansible-runner with a private data dir, as AWX lays one out for a job."""
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    # The whole inventory, group_vars included, as an AWX inventory source from the project would be.
    shutil.copytree(os.path.join(REPO, "inventories", "local"), private / "inventory")
    environment = ansible.environment(env)
    environment.pop("ANSIBLE_INVENTORY", None)
    return ansible_runner.run(
        private_data_dir=str(private),
        playbook=os.path.join(REPO, "playbooks", "release.yml"),
        inventory=str(private / "inventory" / "hosts.yml"),
        # The job's one identity approves its own change, as in the other tests (tests/fixtures/one_identity).
        extravars={"release_change_approval": "approved", **extravars},
        envvars=environment,
        quiet=True,
        timeout=600,
    )


def test_release_under_ansible_runner_records_the_awx_user_and_job(
    ansible, tmp_path, audit_keys: AuditKeys, demo_site: Site
) -> None:
    trail = str(tmp_path / "audit.jsonl")
    ledger = str(tmp_path / "ledger.db")
    extravars = dict(
        AWX_EXTRA_VARS,
        release_service="demo-app",
        release_environment="staging",
        relops_ledger_url="sqlite:///" + ledger,
        **release_vars(demo_site, "1.0.0"),
    )

    runner = run_like_awx(ansible, tmp_path, extravars, {**demo_site.env, **audit_environment(trail, audit_keys)})

    assert runner.status == "successful", runner.stdout.read()
    assert runner.rc == 0
    events = read_events(trail)
    run_ids = {event["run_id"] for event in events}
    assert run_ids == {"awx-job-4711"}
    assert all(event["actor"]["awx_user_name"] == "ada" for event in events)
    assert all(event["actor"]["awx_job_id"] == "4711" for event in events)
    assert {event["actor"]["awx_job_template_name"] for event in events} == {"relops release"}
    assert [event["outcome"] for event in events if event["event"] == "playbook_end"] == ["success"]

    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT run_id, actor, status FROM runs").fetchall()
        lock_events = db.execute("SELECT event, run_id, actor FROM lock_events ORDER BY id").fetchall()
    assert len(rows) == 1
    run_id, actor, status = rows[0]
    assert run_id == "awx-job-4711"
    assert status == "successful"
    assert "ada" in actor
    assert [event for event, _run, _actor in lock_events] == ["acquired", "released"]
    assert demo_site.get("/")[1]["version"] == "1.0.0"
    assert all(run == "awx-job-4711" and "ada" in who for _event, run, who in lock_events)


def test_two_awx_jobs_are_two_runs_in_the_ledger(ansible, tmp_path, demo_site: Site) -> None:
    ledger = str(tmp_path / "ledger.db")
    for job in (100, 101):
        extravars = dict(
            AWX_EXTRA_VARS,
            awx_job_id=job,
            tower_job_id=job,
            relops_ledger_url="sqlite:///" + ledger,
            release_service="demo-app",
            release_environment="staging",
            **release_vars(demo_site, "1.0.0"),
        )
        runner = run_like_awx(ansible, tmp_path / str(job), extravars, demo_site.env)
        assert runner.status == "successful", runner.stdout.read()

    with sqlite3.connect(ledger) as db:
        run_ids = [row[0] for row in db.execute("SELECT run_id FROM runs ORDER BY started_at")]
    assert run_ids == ["awx-job-100", "awx-job-101"]
