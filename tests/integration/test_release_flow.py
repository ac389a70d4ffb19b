"""The governed release flow (roles/release, playbooks/release.yml) on the local inventory, end to end:
real ansible-playbook, the SQLite ledger and local ITSM, nginx and supervisord on loopback.

The tests share one site (fixture demo_site) and run in file order: a successful release of 1.0.0,
then three failures against it (at the gate, at the smoke tests, during a migration), each of which
must leave 1.0.0 serving with schema version 1.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import pytest
from fixtures.demo_site import Site

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import MetricsRequest, resolve_window
from ansible_collections.relops.release.plugins.plugin_utils.metrics.patterns import failure_patterns
from ansible_collections.relops.release.plugins.plugin_utils.metrics.release_store import ReleaseMetricsStore
from ansible_collections.relops.release.plugins.plugin_utils.metrics.report import ReportInputs, build
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore

# The tests of this module build on each other (one release after another on one site), so they
# run in one xdist worker, in order (`--dist loadgroup` in the Makefile).
pytestmark = pytest.mark.xdist_group("release_flow")


def last_run(site: Site) -> dict[str, Any]:
    with site.ledger() as ledger:
        run: dict[str, Any] = ledger.list_runs(limit=1)[0]
    return run


def change_of(site: Site, number: str) -> dict[str, Any]:
    with site.ledger() as ledger:
        change: dict[str, Any] = ledger.itsm_get_change(number=number)
    # The local ITSM keeps the ServiceNow-style fields (close_code, ...) in a JSON column.
    return {**(change.get("fields") or {}), **change}


def record_of(site: Site, release_id: str) -> dict[str, Any]:
    with site.ledger() as ledger:
        record = ReleaseRecordStore(ledger).get_record(release_id)
    assert record is not None, "release %s has no record" % release_id
    return record


def test_a_release_goes_through_every_step(demo_site: Site) -> None:
    site = demo_site
    run = site.release("1.0.0")
    assert run.returncode == 0, run.report
    assert site.get("/api/items") == (
        200,
        {"version": "1.0.0", "items": [{"id": 1, "name": "teapot"}, {"id": 2, "name": "kettle"}]},
    )
    assert site.schema_version() == "1"
    assert site.temporary_leftovers() == [], "the package unpacked for the migrations is removed"
    summary = last_run(site)["summary"]
    assert last_run(site)["status"] == "successful"
    assert summary["outcome"] == "successful" and summary["gate"] == "allow" and summary["strategy"] == "blue_green"
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "successful"
    with site.ledger() as ledger:
        deployments = ledger.list_deployments("demo-app", "local")
        assert [(d["version"], d["status"], d["change_id"]) for d in deployments] == [
            ("1.0.0", "successful", summary["change"])
        ], "one deployment record, carrying the change (the CMDB update must not add a second)"
        decisions = ledger.list_decisions(subject=summary["change"])
        assert {d["gate"] for d in decisions} >= {"change_gate"}
        assert ledger.get_lock("demo-app") is None
        assert [event["event"] for event in ledger.lock_events("demo-app")][:2] == ["released", "acquired"]
        # The CMDB holds the service's CI in this environment at the version deployed, running on the host.
        apps = {row["name"]: row for row in ledger.itsm_find_cis(["cmdb_ci_appl"])}
        assert list(apps) == ["demo-app (local)"], apps
        app = apps["demo-app (local)"]
        assert (app["attributes"]["version"], app["attributes"]["environment"]) == ("1.0.0", "local")
        runs_on = [r["child"] for r in ledger.itsm_relations(parent=app["sys_id"]) if r["type"] == "Runs on::Runs"]
        assert [host["name"] for host in ledger.itsm_find_cis(["cmdb_ci_server"], sys_ids=runs_on)] == ["localhost"]
    # The release record holds what each stage of release.yml saw, written by the modules that checked.
    record = record_of(site, summary["release_id"])
    assert summary["release_id"].startswith("demo-app@1.0.0/local/")
    assert (record["outcome"], record["change_number"], record["strategy"]) == (
        "successful",
        summary["change"],
        "blue_green",
    )
    assert record["team"] and record["owner"] and record["source_revision"], "the manifest's facts are kept"
    stages = record["stages"]
    assert stages["verification"]["checked"] == ["checksum", "signatures"] and stages["verification"]["policy_met"]
    assert summary["signers"] == stages["verification"]["signers"] and len(summary["signers"]) == 1
    # The local environment is enforced (examples/policies/local.yml): the gate issued a permit, and the
    # site's changes ran under it.
    assert (
        summary["permit"] == record["permit_id"] == stages["permit"]["permit_id"] == stages["deployment"]["permit_id"]
    )
    assert stages["permit"]["digest"] == record["digest"].split(":")[1] and stages["permit"]["hosts"] == ["localhost"]
    assert stages["risk"]["route"] == summary["route"] and stages["risk"]["risk"] == summary["risk"]
    assert stages["gate"]["decision"] == "allow" and stages["gate"]["caller_claims"] == {}
    assert stages["deployment"]["hosts"] and stages["smoke"]["passed"] is True
    assert [entry["stage"] for entry in record["history"]][:3] == ["verification", "risk", "change"]


def test_a_gate_denial_deploys_nothing_and_leaves_the_change(demo_site: Site) -> None:
    site = demo_site
    calendar = site.write_freeze("test freeze")
    run = site.release("1.1.0", "-e", json.dumps({"release_calendars": [{"type": "yaml", "path": calendar}]}))
    assert run.returncode != 0
    assert "test freeze" in run.output, run.report
    # The final message is text, not a Python dict (issue 21).
    assert "release of demo-app 1.1.0 to local failed at stage" in run.output, run.report
    assert '(task "Gate the release")' in run.output, run.report
    assert "{'service':" not in run.output
    summary = last_run(site)["summary"]
    assert summary["outcome"] == "failed" and summary["failed_task"] == "Gate the release"
    assert summary["application"] == "not needed" and summary["change_closed"] == "left as it was"
    record = record_of(site, summary["release_id"])
    assert record["outcome"] == "aborted" and record["stages"]["gate"]["decision"] == "deny", record["stages"]
    assert "deployment" not in record["stages"] and record["permit_id"] is None
    assert change_of(site, summary["change"])["state"] == "implement", "the change is not touched after the gate"
    assert site.get("/")[1]["version"] == "1.0.0" and site.schema_version() == "1"
    with site.ledger() as ledger:
        assert [d["version"] for d in ledger.list_deployments("demo-app", "local")] == ["1.0.0"]
        assert ledger.list_incidents(service="demo-app") == []
        assert ledger.get_lock("demo-app") is None
    # The operator withdraws the blocked change; an open change on the CI would conflict with the next.
    site.cancel_change(summary["change"], "withdrawn during the freeze")


def test_a_failed_smoke_test_rolls_back_app_and_schema(demo_site: Site) -> None:
    site = demo_site
    run = site.release("1.2.0")
    assert run.returncode != 0
    assert "items API answers" in run.output, run.report
    summary = last_run(site)["summary"]
    assert summary["failed_stage"] == "smoke" and summary["application"] == "rolled back to 1.0.0"
    assert summary["schema"] == "schema 3 -> 1", "1.0.0 reads schema 1: V3 and V2 are undone"
    assert site.get("/api/items")[0] == 200 and site.get("/")[1]["version"] == "1.0.0"
    assert site.schema_version() == "1"
    assert site.temporary_leftovers() == [], "the unpacked package is removed after the rollback used it"
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "unsuccessful"
    with site.ledger() as ledger:
        statuses = [(d["version"], d["status"]) for d in ledger.list_deployments("demo-app", "local")]
        assert ("1.2.0", "rolled_back") in statuses and statuses[0] == ("1.0.0", "successful")
        incidents = ledger.list_incidents(service="demo-app")
        assert len(incidents) == 1 and incidents[0]["details"]["change"] == summary["change"]
        assert ledger.get_lock("demo-app") is None
    record = record_of(site, summary["release_id"])
    assert (record["outcome"], record["rolled_back_to"]) == ("rolled_back", "1.0.0")
    rollback = record["stages"]["rollback"]
    assert rollback["failed_stage"] == "smoke"
    # The incident is the local ITSM's (the ledger row is its record), linked to the change, the service's
    # CI (as the cmdb task registered it) and the release record; opened at detection, resolved at restore.
    (incident,) = incidents
    assert (incident["caused_by"], incident["ci"]) == (summary["change"], "demo-app (local)")
    assert incident["correlation_id"] == "relops-release-" + summary["release_id"]
    assert incident["details"]["release_id"] == summary["release_id"]
    assert (incident["status"], incident["opened_at"], incident["resolved_at"]) == (
        "resolved",
        rollback["detected_at"],
        rollback["restored_at"],
    )
    assert incident["details"]["close_code"] == "Workaround provided"
    assert "Application: rolled back to 1.0.0. Schema: schema 3 -> 1." in incident["details"]["close_notes"]
    stage = record["stages"]["incident"]
    assert stage["id"] == incident["id"] and stage["itsm"] == "local"
    assert stage["number"] == "INC%07d" % (10000 + incident["id"]) and stage["change"] == summary["change"]
    assert stage["resolved_at"] == rollback["restored_at"]


def test_a_failed_migration_keeps_the_previous_schema_and_app(demo_site: Site) -> None:
    site = demo_site

    package = site.build_broken_migration_variant()
    run = site.release("1.1.1", package=package)
    assert run.returncode != 0
    assert "no_such_table" in run.output
    summary = last_run(site)["summary"]
    assert summary["failed_stage"] == "migrate expand" and summary["application"] == "not needed"
    assert summary["schema"] == "schema 2 -> 1", "V2 applied in this run is undone, the failed V3 never took"
    assert site.schema_version() == "1"
    assert site.temporary_leftovers() == [], "a failed migration removes the unpacked package too"
    assert site.get("/api/items")[0] == 200 and site.get("/")[1]["version"] == "1.0.0"
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "unsuccessful"
    with site.ledger() as ledger:
        assert "1.1.1" not in [d["version"] for d in ledger.list_deployments("demo-app", "local")]
        assert len(ledger.list_incidents(service="demo-app")) == 2
        assert ledger.get_lock("demo-app") is None


DORA_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: DORA over what the releases above recorded
      relops.release.dora_metrics:
        environment: local
        window: 7d
        granularity: day
        group_by: team
        ledger_url: %s
      register: dora
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ dora.metrics | to_nice_json }}"
        dest: %s
        mode: "0600"
"""


def test_dora_metrics_count_the_releases_as_recorded(demo_site: Site) -> None:
    """The four releases above, one unit each: 1.0.0 successful, 1.1.0 aborted at the gate (not a
    deployment), 1.2.0 rolled back, 1.1.1 failed in its migration (schema put back). Deployed 3, failed 2;
    the rollback is recovery, not a deployment."""
    site = demo_site
    url = site.ledger_url or "sqlite:///" + os.path.join(site.state, "relops", "ledger.db").lstrip("/")
    result = os.path.join(site.ansible.workdir, "dora.json")
    run = site.ansible.playbook(site.ansible.write_playbook(DORA_PLAY % (url, result), "dora.yml"), env=site.env)
    assert run.returncode == 0, run.report
    with open(result, encoding="utf-8") as handle:
        metrics = json.load(handle)
    with site.ledger() as ledger:
        records = {r["version"]: r for r in ReleaseRecordStore(ledger).list_records("demo-app", "local")}
        rollbacks = [ReleaseRecordStore(ledger).get_record(records[v]["release_id"]) for v in ("1.2.0", "1.1.1")]
    assert {v: r["outcome"] for v, r in records.items()} == {
        "1.0.0": "successful",
        "1.1.0": "aborted",
        "1.2.0": "rolled_back",
        "1.1.1": "failed",
    }
    summary = metrics["summary"]
    assert metrics["window"]["source"] == "releases"
    assert summary["deployment_frequency"]["deployments"] == 1
    assert summary["change_failure_rate"] == {
        "deployments": 3,
        "failures": 2,
        "rollbacks": 1,
        "with_incident": 2,
        "rate": 0.6667,
        "tier": "low",
    }
    # Lead time: the manifest's commit time of 1.0.0 (playbooks/demo_build.yml) to the release's finish.
    lead = (parse_timestamp(records["1.0.0"]["finished_at"]) - parse_timestamp("2026-11-30T09:00:00Z")).total_seconds()
    assert summary["lead_time"]["samples"] == 1 and summary["lead_time"]["median_seconds"] == round(lead, 3)
    # Recovery: from the failure's detection to the rollbacks done, as the release role noted them.
    spans = [
        (
            parse_timestamp(record["stages"]["rollback"]["restored_at"])
            - parse_timestamp(record["stages"]["rollback"]["detected_at"])
        ).total_seconds()
        for record in rollbacks
        if record is not None
    ]
    assert len(spans) == 2 and all(0 < span < 600 for span in spans), spans
    assert summary["recovery_time"]["recovered"] == 2 and summary["recovery_time"]["unrecovered"] == 0
    assert summary["recovery_time"]["median_seconds"] == round((round(spans[0], 3) + round(spans[1], 3)) / 2, 3)
    # 1.1.1 follows the rolled-back 1.2.0 (docs/metrics.md, rework rate).
    assert summary["rework_rate"] == {"deployments": 3, "rework": 1, "rate": 0.3333}
    assert sorted(metrics["groups"]) == ["payments"], "the team is the manifest's"
    # Which releases fail (no further run): the gate's denial of 1.1.0 is found through its record,
    # only the checks that denied are counted, and every attribute splits the same 3 deployed, 2 failed.
    start, end = resolve_window("7d", None, None, "UTC")
    request = MetricsRequest("local", start, end, "UTC", "day", 86400)
    with site.ledger() as ledger:
        denials = [d for d in ledger.decisions_between("2000", "9999") if d["decision"] == "deny"]
        gated = ReleaseMetricsStore(ledger).gated_releases("2000", "9999")
        calibration = build(ledger, "calibration", ReportInputs(request)).data["quarters"]
        patterns = failure_patterns(ledger, request)
        denied_record = ReleaseRecordStore(ledger).get_record(records["1.1.0"]["release_id"])
    assert [gated[str(d["inputs_digest"])]["release_id"] for d in denials] == [records["1.1.0"]["release_id"]]
    assert denied_record is not None
    failing = {
        "change_gate: " + c["check"] for c in denied_record["stages"]["gate"]["checks"] if c["outcome"] == "deny"
    }
    (quarter,) = calibration.values()
    assert failing and set(quarter["denials"]) == failing, (quarter["denials"], failing)
    assert (quarter["denied"], quarter["later_deployed"]) == (1, 0)
    for name, rows in patterns.items():
        assert (sum(r["deployments"] for r in rows), sum(r["failures"] for r in rows)) == (3, 2), (name, rows)


REVIEW_PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/relops.release.ledger:
      ledger_url: %(url)s
  vars:
    review:
      release_id: "%(release_id)s"
      feedback:
        - {author: alice, text: The smoke tests caught the faulty build before users did.}
      actions:
        - {id: rehearse, title: Rehearse the rollback in staging, owner: bob, due: "%(yesterday)s"}
        - {title: Alert on the error ratio, owner: carol, due: "%(next_week)s"}
  tasks:
    - name: Review the rolled-back release, in check mode first
      relops.release.release_review: "{{ review }}"
      check_mode: true
      diff: true
      register: planned
    - name: Review the rolled-back release
      relops.release.release_review: "{{ review }}"
      register: recorded
    - name: Review it again (nothing new)
      relops.release.release_review: "{{ review }}"
      register: again
    - name: The overdue actions
      relops.release.release_review_info:
        environment: local
        overdue: true
      register: late
    - name: The review report and the runbook rule over the same records
      relops.release.release_report:
        dest: %(dest)s
        reports: [pir, runbook]
        formats: [json, md]
        environment: local
        window: 7d
        release_ids: ["%(release_id)s"]
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'planned': planned, 'recorded': recorded, 'again': again, 'late': late} | to_nice_json }}"
        dest: %(dest)s/results.json
        mode: "0600"
"""


def test_a_review_of_a_recorded_release_lists_feedback_and_flags_the_overdue_action(demo_site: Site) -> None:
    """Feedback and follow-up actions recorded against the release that release.yml rolled back (1.2.0),
    then the post-implementation review of it and the runbook rule over the releases recorded above."""
    site = demo_site
    url = site.ledger_url or "sqlite:///" + os.path.join(site.state, "relops", "ledger.db").lstrip("/")
    with site.ledger() as ledger:
        records = {r["version"]: r for r in ReleaseRecordStore(ledger).list_records("demo-app", "local")}
    release_id = records["1.2.0"]["release_id"]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    dest = os.path.join(site.ansible.workdir, "review")
    play = REVIEW_PLAY % {
        "url": url,
        "release_id": release_id,
        "yesterday": today - datetime.timedelta(days=1),
        "next_week": today + datetime.timedelta(days=7),
        "dest": dest,
    }
    run = site.ansible.playbook(site.ansible.write_playbook(play, "review.yml"), env=site.env)
    assert run.returncode == 0, run.report
    with open(os.path.join(dest, "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    planned, recorded, again = results["planned"], results["recorded"], results["again"]
    assert planned["changed"] and planned["feedback_added"] == 1 and planned["diff"]["before"]["actions"] == {}
    assert sorted(planned["diff"]["after"]["actions"]) == ["Alert on the error ratio", "rehearse"]
    assert recorded["changed"] and recorded["overdue"] == ["rehearse"] and len(recorded["feedback"]) == 1
    assert not again["changed"] and again["actions_changed"] == [] and again["feedback_added"] == 0
    assert [(a["release_id"], a["action_id"]) for a in results["late"]["actions"]] == [(release_id, "rehearse")]
    with open(os.path.join(dest, "pir.json"), encoding="utf-8") as handle:
        pir = json.load(handle)["data"]
    (shown,) = [r for r in pir["reviews"] if r["release_id"] == release_id]
    assert shown["deployment"]["status"] == "rolled_back"
    assert [f["author"] for f in shown["feedback"]] == ["alice"]
    assert [(a["action_id"], a["overdue"]) for a in shown["actions"]] == [
        ("rehearse", True),
        ("Alert on the error ratio", False),
    ]
    with open(os.path.join(dest, "pir.md"), encoding="utf-8") as handle:
        assert "OVERDUE" in handle.read()
    with open(os.path.join(dest, "runbook.json"), encoding="utf-8") as handle:
        runbook = json.load(handle)["data"]["deployments"]
    # Over the release records: the three releases that deployed (the gate-aborted 1.1.0 did not), each at
    # the time of its deployment stage; the demo's manifests declare no runbook.
    assert sorted((d["version"], d["verdict"]) for d in runbook) == [
        ("1.0.0", "no runbook"),
        ("1.1.1", "no runbook"),
        ("1.2.0", "no runbook"),
    ]
    assert {d["deployment"] for d in runbook} == {records[v]["release_id"] for v in ("1.0.0", "1.1.1", "1.2.0")}
