"""dora_metrics, incident and release_report through real ansible-playbook runs, against generated
ledgers on SQLite and PostgreSQL, incidents imported from the ServiceNow stand-in, and the HTML
reports opened in a real headless Chromium (every chart and table must render; a screenshot of
each report is kept under build/test-artifacts/metrics/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
from fixtures.metrics_data import seed_week, ts
from fixtures.playbooks import REPO, Ansible
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

ARTIFACTS = os.path.join(REPO, "build", "test-artifacts", "metrics")

METRICS_PLAY = """
- name: Metrics
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Compute
      relops.release.dora_metrics:
        start: "2026-03-01"
        end: "2026-03-07"
        granularity: day
        group_by: team
      register: dora
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ dora | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

INCIDENT_PLAY = """
- name: Incident
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Act on the incident
      relops.release.incident: "{{ incident_args }}"
      register: outcome
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""

REPORT_PLAY = """
- name: Reports
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the reports
      relops.release.release_report:
        dest: "{{ report_dest }}"
        start: "2026-03-01"
        end: "2026-03-07"
        granularity: day
        audit_path: "{{ audit_path }}"
        deployment_ids: "{{ review_ids }}"
        runbook_root: "{{ runbook_root }}"
      register: written
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ written | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _run(ansible: Ansible, play: str, env: dict[str, str], extra: dict[str, Any], *flags: str) -> dict[str, Any]:
    playbook = ansible.write_playbook(play)
    result_file = os.path.join(ansible.workdir, "result.json")
    variables = json.dumps({"result_file": result_file, **extra})
    run = ansible.playbook(playbook, "-e", variables, *flags, env=env)
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        return dict(json.load(handle))


def _failing(ansible: Ansible, play: str, env: dict[str, str], extra: dict[str, Any]) -> str:
    playbook = ansible.write_playbook(play)
    variables = json.dumps({"result_file": os.path.join(ansible.workdir, "result.json"), **extra})
    run = ansible.playbook(playbook, "-e", variables, env=env)
    assert run.returncode != 0
    return run.output


def test_dora_metrics_through_a_playbook(ansible: Ansible, ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        seed_week(ledger)
    env = {"RELOPS_LEDGER_URL": ledger_url}
    for flags in ((), ("--check",)):
        result = _run(ansible, METRICS_PLAY, env, {}, *flags)
        summary = result["metrics"]["summary"]
        assert result["changed"] is False
        assert summary["change_failure_rate"]["rate"] == 0.5
        assert summary["deployment_frequency"]["deployments"] == 5
        assert summary["lead_time"]["median_seconds"] == 10800
        assert summary["recovery_time"]["median_seconds"] == 3600
        assert sorted(result["metrics"]["groups"]) == ["blue", "red"]
        assert len(result["metrics"]["series"]) == 7


def test_incident_lifecycle_through_a_playbook(ansible: Ansible, ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ids = seed_week(ledger)
    env = {"RELOPS_LEDGER_URL": ledger_url}
    present = {
        "service": "api",
        "ci": "api-ci",
        "title": "latency",
        "opened_at": "2026-03-04T11:00:00Z",
        "external_id": "PD-1",
        "source": "pagerduty",
        "deployment_ids": [ids["d1"]],
    }
    checked = _run(ansible, INCIDENT_PLAY, env, {"incident_args": present}, "--check")
    assert checked["changed"] is True
    added = _run(ansible, INCIDENT_PLAY, env, {"incident_args": present})
    assert added["changed"] is True and added["incident"]["status"] == "open"
    again = _run(ansible, INCIDENT_PLAY, env, {"incident_args": present})
    assert again["changed"] is False and again["incident"]["id"] == added["incident"]["id"]
    resolve = {
        "state": "resolved",
        "source": "pagerduty",
        "external_id": "PD-1",
        "resolved_at": "2026-03-04T12:30:00Z",
        "root_cause": "pool exhausted",
        "component": "db",
    }
    assert _run(ansible, INCIDENT_PLAY, env, {"incident_args": resolve}, "--check")["changed"] is True
    resolved = _run(ansible, INCIDENT_PLAY, env, {"incident_args": resolve}, "--diff")
    assert resolved["changed"] is True
    assert (resolved["incident"]["status"], resolved["incident"]["root_cause"]) == ("resolved", "pool exhausted")
    assert _run(ansible, INCIDENT_PLAY, env, {"incident_args": resolve})["changed"] is False
    listed = _run(ansible, INCIDENT_PLAY, env, {"incident_args": {"state": "list", "service": "api"}})
    mine = [i for i in listed["incidents"] if i.get("external_id") == "PD-1"]
    assert mine[0]["deployment_ids"] == [ids["d1"]]
    causes = {(row["service"], row["component"], row["root_cause"]): row for row in listed["statistics"]}
    assert causes[("api", "db", "pool exhausted")]["incidents"] == 1
    assert causes[("api", "db", "pool exhausted")]["resolution_seconds"] == 1.5 * 3600
    missing = _failing(
        ansible, INCIDENT_PLAY, env, {"incident_args": {"service": "api", "opened_at": "2026-03-04T11:00:00Z"}}
    )
    assert "state=present needs title" in missing


def test_incidents_imported_from_servicenow(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    service = servicenow.insert("cmdb_ci_service", {"name": "api"})
    ci = servicenow.insert("cmdb_ci_appl", {"name": "api-cluster"})
    change = servicenow.insert("change_request", {"short_description": "api 2.0.0", "type": "normal"})
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.import_deployments(
            Actor(run_id="release-run", user="t", host="c"),
            [
                {
                    "service": "api",
                    "version": "2.0.0",
                    "environment": "production",
                    "status": "successful",
                    "started_at": ts("03-02 09:00"),
                    "finished_at": ts("03-02 09:10"),
                    "change_id": change["number"],
                }
            ],
        )
    incident = servicenow.insert(
        "incident",
        {
            "short_description": "api errors",
            "business_service": service["sys_id"],
            "cmdb_ci": ci["sys_id"],
            "caused_by": change["sys_id"],
            "impact": "1",
            "urgency": "1",
            "priority": "1",
            "state": "2",
            "opened_at": "2026-03-02 12:00:00",
            "close_code": "",
        },
    )
    env = {
        "RELOPS_LEDGER_URL": ledger_url,
        "SN_HOST": servicenow.url,
        "SN_USERNAME": "admin",
        "SN_PASSWORD": "admin-secret",
    }
    args = {"state": "imported", "backend": "servicenow"}
    first = _run(ansible, INCIDENT_PLAY, env, {"incident_args": args})
    assert first["changed"] is True
    assert first["imported"] == [{"number": incident["number"], "outcome": "added"}]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        (stored,) = ledger.list_incident_records(service="api")
    assert (stored["source"], stored["external_id"], stored["ci"], stored["severity"]) == (
        "servicenow",
        incident["number"],
        "api-cluster",
        "critical",
    )
    assert stored["opened_at"] == ts("03-02 12:00")
    assert len(stored["deployment_ids"]) == 1
    assert _run(ansible, INCIDENT_PLAY, env, {"incident_args": args})["changed"] is False
    with servicenow.instance.lock:
        record = servicenow.instance.tables["incident"][incident["sys_id"]]
        record.update(resolved_at="2026-03-02 13:15:00", state="6", close_code="Solved (Permanently)")
    resolved = _run(ansible, INCIDENT_PLAY, env, {"incident_args": args})
    assert resolved["imported"] == [{"number": incident["number"], "outcome": "resolved"}]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        (stored,) = ledger.list_incident_records(service="api")
    assert (stored["status"], stored["resolved_at"]) == ("resolved", ts("03-02 13:15"))

    # An incident naming neither business_service nor cmdb_ci fails the whole import: the one read before
    # it is not written either. With unassigned_service both are imported.
    later = servicenow.insert(
        "incident",
        {"short_description": "api slow", "business_service": service["sys_id"], "opened_at": "2026-03-03 10:00:00"},
    )
    orphan = servicenow.insert(
        "incident", {"short_description": "someone complained", "opened_at": "2026-03-03 09:00:00"}
    )
    refused = _failing(ansible, INCIDENT_PLAY, env, {"incident_args": args})
    assert (
        "incident %s names neither business_service nor cmdb_ci; set unassigned_service" % orphan["number"] in refused
    )
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert len(ledger.list_incident_records()) == 1
    taken = _run(ansible, INCIDENT_PLAY, env, {"incident_args": dict(args, unassigned_service="unassigned")})
    assert [item["number"] for item in taken["imported"] if item["outcome"] == "added"] == [
        later["number"],
        orphan["number"],
    ]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert [r["service"] for r in ledger.list_incident_records(service="unassigned")] == ["unassigned"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is missing; run tests/setup/system_packages.sh test (installs the Debian package)"
    return found


def _browser(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    home = os.path.join(cwd, "chromium-home")
    os.makedirs(home, exist_ok=True)
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--user-data-dir=" + home,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
        env=dict(os.environ, HOME=home),
    )


def test_reports_render_in_a_real_browser(ansible: Ansible, tmp_path: Any) -> None:
    ledger_url = "sqlite:///" + str(tmp_path / "ledger.db").lstrip("/")
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ids = seed_week(ledger)
    audit = tmp_path / "audit.jsonl"
    audit.write_text(
        "".join(
            json.dumps(
                {
                    "run_id": "metrics-run",
                    "ts": ts(at),
                    "event": name,
                    "task": task,
                    "action": action,
                    "outcome": outcome,
                    "duration": duration,
                    "result": {},
                }
            )
            + "\n"
            for at, name, task, action, outcome, duration in (
                ("03-02 09:58", "runner_changed", "Deploy", "copy", "changed", 40.0),
                ("03-02 09:59", "runner_ok", "Smoke checks", "relops.release.smoke_check", "ok", 4.0),
                ("03-02 10:00", "runner_ok", "Wait for go", "ansible.builtin.pause", "ok", 120.0),
            )
        )
    )
    dest = str(tmp_path / "reports")
    env = {"RELOPS_LEDGER_URL": ledger_url}
    extra = {
        "report_dest": dest,
        "audit_path": str(audit),
        "review_ids": [ids["d2"], ids["d6"]],
        "runbook_root": str(tmp_path),
    }
    first = _run(ansible, REPORT_PLAY, env, extra)
    assert first["changed"] is True and len(first["written"]) == 21
    assert _run(ansible, REPORT_PLAY, env, extra)["changed"] is False
    os.makedirs(ARTIFACTS, exist_ok=True)
    for name, counts in first["reports"].items():
        page = os.path.join(dest, name + ".html")
        dom = _browser("--dump-dom", "file://" + page, cwd=str(tmp_path))
        assert dom.returncode == 0, dom.stderr
        rendered = dom.stdout
        assert "<h1>" in rendered, "%s did not render: %s" % (name, rendered[:300])
        figures = re.findall(r'<figure class="chart"[^>]*>\s*<svg[^>]*class="pygal-chart"', rendered)
        assert len(figures) == counts["charts"], name
        assert rendered.count('<table class="report-table">') == counts["tables"], name
        # Each chart drew its series: pygal's plot group holds at least one drawn element per chart.
        assert rendered.count('class="plot"') >= counts["charts"], name
        with open(os.path.join(dest, name + ".json"), encoding="utf-8") as handle:
            document = json.load(handle)
        assert len(document["sections"]) == counts["sections"]
        shot = os.path.join(ARTIFACTS, name + ".png")
        if os.path.exists(shot):
            os.unlink(shot)
        taken = _browser(
            "--screenshot=" + shot, "--window-size=1280,2400", "--hide-scrollbars", "file://" + page, cwd=str(tmp_path)
        )
        assert taken.returncode == 0 and os.path.getsize(shot) > 10000, taken.stderr
    dashboard = json.loads((tmp_path / "reports" / "dashboard.json").read_text())
    assert dashboard["data"]["metrics"]["summary"]["change_failure_rate"]["rate"] == 0.5
    assert first["reports"]["dashboard"]["charts"] == 3
    assert first["reports"]["pir"]["charts"] >= 1


def test_report_playbook_runs_on_an_empty_window(ansible: Ansible, tmp_path: Any) -> None:
    ledger_url = "sqlite:///" + str(tmp_path / "ledger.db").lstrip("/")
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        seed_week(ledger)
    dest = str(tmp_path / "out")
    run = ansible.playbook(
        os.path.join(REPO, "playbooks", "report.yml"),
        "-e",
        json.dumps({"report_dest": dest}),
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    assert run.returncode == 0, run.report
    assert sorted(os.listdir(dest)) == sorted(
        "%s.%s" % (name, fmt)
        for name in ("dashboard", "cfr", "pir", "runbook", "automation", "pipeline", "calibration")
        for fmt in ("html", "md", "json")
    )
    assert "deployments 0" in run.stdout


def test_report_playbook_writes_to_the_state_directory_not_the_collection(ansible: Ansible) -> None:
    """relops.release.report without report_dest: the state directory; a relative one is refused (issue 21)."""
    default_ledger = os.path.join(ansible.workdir, "state", "relops", "ledger.db")
    open_ledger(parse_ledger_url("sqlite:///" + default_ledger.lstrip("/"))).close()
    run = ansible.playbook(
        "relops.release.report", "-e", json.dumps({"report_reports": ["cfr"], "report_formats": ["md"]})
    )
    assert run.returncode == 0, run.report
    assert os.listdir(os.path.join(ansible.workdir, "state", "relops", "reports")) == ["cfr.md"]
    playbooks = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release", "playbooks")
    assert not os.path.exists(os.path.join(playbooks, "reports"))
    run = ansible.playbook("relops.release.report", "-e", "report_dest=out")
    assert run.returncode != 0 and "report_dest out is relative" in run.output, run.report


@pytest.mark.parametrize("name", ["dora_metrics", "incident", "release_report"])
def test_module_documentation_renders(ansible: Ansible, name: str) -> None:
    shown = ansible.doc("relops.release." + name)
    assert shown.returncode == 0, shown.report
    assert "relops.release." + name in shown.stdout
    assert "ledger_url" in shown.stdout
