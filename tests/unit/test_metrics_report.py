"""Release reports built from a generated ledger and audit trail: each report's data against
hand-computed answers, and the three renderings (HTML with inline SVG, Markdown, JSON) agreeing."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.metrics_data import ACTOR, seed_week, ts
from test_metrics_dora import request

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.render import render
from ansible_collections.relops.release.plugins.plugin_utils.metrics.report import ReportInputs, build
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


def event(run_id: str, at: str, name: str, task: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "ts": ts(at), "event": name, "task": task, **extra}


def write_trail(path: str, events: list[dict[str, Any]]) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for item in events:
            handle.write(json.dumps(item, sort_keys=True) + "\n")
    return path


def test_post_implementation_review_of_a_rolled_back_deployment(ledger: Ledger, tmp_path: Any) -> None:
    run = Actor(run_id="run-rollback", user="tester", host="ctl")
    ledger.import_deployments(
        run,
        [
            {
                "service": "api",
                "version": "2.0.0",
                "environment": "production",
                "status": "rolled_back",
                "started_at": ts("03-03 09:30"),
                "finished_at": ts("03-03 10:00"),
                "artifact_digest": "sha256:aa",
            }
        ],
    )
    ledger.record_decision(run, "health_gate", "api@2.0.0", "deny", ["error ratio 0.2 above 0.05"])
    trail = write_trail(
        str(tmp_path / "audit.jsonl"),
        [
            event("run-rollback", "03-03 09:30", "playbook_start", ""),
            event(
                "run-rollback",
                "03-03 09:31",
                "runner_changed",
                "Deploy",
                action="copy",
                outcome="changed",
                duration=400.0,
                result={},
            ),
            event(
                "run-rollback",
                "03-03 09:40",
                "runner_failed",
                "Health gate",
                action="relops.release.health_gate",
                outcome="failed",
                duration=30.0,
                result={"msg": "error ratio", "verdict": "fail", "attempts": 3},
            ),
            event(
                "run-rollback",
                "03-03 09:59",
                "runner_changed",
                "Roll back",
                action="copy",
                outcome="changed",
                duration=5.0,
                result={},
            ),
            event("other-run", "03-03 09:45", "runner_ok", "Unrelated", action="debug", outcome="ok", duration=1.0),
        ],
    )
    report = build(ledger, "pir", ReportInputs(request("2026-03-01", "2026-03-07"), audit_path=trail))
    (review,) = report.data["reviews"]
    assert review["rollback"] is True
    assert [entry["task"] for entry in review["timeline"]] == ["", "Deploy", "Health gate", "Roll back"]
    assert [d["reasons"] for d in review["decisions"]] == [["error ratio 0.2 above 0.05"]]
    kinds = sorted((a["task"], a["kind"]) for a in review["anomalies"])
    assert kinds == [("Deploy", "slow"), ("Health gate", "failed"), ("Health gate", "retried")]
    assert review["health"] == [
        {"task": "Health gate", "action": "relops.release.health_gate", "outcome": "failed", "verdict": "fail"}
    ]
    headings = [section.heading for section in report.sections]
    assert "Team feedback" in headings and "Follow-up actions" in headings


def test_automation_coverage_ranks_interventions(tmp_path: Any) -> None:
    trail = write_trail(
        str(tmp_path / "audit.jsonl"),
        [
            event(
                "r1",
                "03-01 10:00",
                "runner_ok",
                "Wait for approval",
                action="ansible.builtin.pause",
                outcome="ok",
                duration=600.0,
                args={"prompt": "go?"},
            ),
            event(
                "r2",
                "03-02 10:00",
                "runner_ok",
                "Wait for approval",
                action="ansible.builtin.pause",
                outcome="ok",
                duration=300.0,
                args={"prompt": "go?"},
            ),
            event("r2", "03-02 10:10", "runner_rescued", "Deploy", action="copy", outcome="rescued", duration=2.0),
            event(
                "r2",
                "03-02 10:20",
                "runner_ok",
                "Fetch",
                action="get_url",
                outcome="ok",
                duration=9.0,
                result={"attempts": 2},
            ),
            event("r2", "03-02 10:30", "runner_ok", "Plain", action="debug", outcome="ok", duration=1.0),
        ],
    )
    report = build(None, "automation", ReportInputs(request("2026-03-01", "2026-03-07"), audit_path=trail))  # type: ignore[arg-type]
    assert [(p["kind"], p["task"], p["count"], p["held_seconds"]) for p in report.data["points"]] == [
        ("prompt", "Wait for approval", 2, 900.0),
        ("retry", "Fetch", 1, 9.0),
        ("rescue", "Deploy", 1, 2.0),
    ]


def test_pipeline_efficiency_finds_a_suite_rerun_on_the_same_artifact(ledger: Ledger, tmp_path: Any) -> None:
    for run_id in ("p1", "p2", "p3"):
        ledger.import_deployments(
            Actor(run_id=run_id, user="t", host="c"),
            [
                {
                    "service": "api",
                    "version": "1.0.0",
                    "environment": "staging",
                    "status": "successful",
                    "started_at": ts("03-01 10:00"),
                    "finished_at": ts("03-01 10:05"),
                    "artifact_digest": "sha256:bb" if run_id != "p3" else "sha256:cc",
                }
            ],
        )
    gate = {"action": "relops.release.quality_gate", "outcome": "ok", "result": {"suites": {"unit": {}, "api": {}}}}
    trail = write_trail(
        str(tmp_path / "audit.jsonl"),
        [
            event(run_id, "03-01 10:01", "runner_ok", "Quality gate", duration=d, **gate)
            for run_id, d in (("p1", 10.0), ("p2", 20.0), ("p3", 30.0))
        ],
    )
    report = build(ledger, "pipeline", ReportInputs(request("2026-03-01", "2026-03-07"), audit_path=trail))
    assert report.data["stages"] == [
        {"stage": "Quality gate", "runs": 3, "median_seconds": 20.0, "max_seconds": 30.0, "total_seconds": 60.0}
    ]
    assert [(r["suite"], r["artifact_digest"], r["times"]) for r in report.data["redundant"]] == [
        ("api", "sha256:bb", 2),
        ("unit", "sha256:bb", 2),
    ]


def test_runbook_compliance_over_deployments_wants_an_update_after_them(ledger: Ledger, tmp_path: Any) -> None:
    repo = tmp_path / "runbooks"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "api.md").write_text("v1\n")
    subprocess.run([*git, "add", "api.md"], check=True)
    env = dict(os.environ, GIT_COMMITTER_DATE="2026-03-03T00:00:00Z", GIT_AUTHOR_DATE="2026-03-03T00:00:00Z")
    subprocess.run([*git, "commit", "-qm", "runbook"], check=True, env=env)
    (tmp_path / "web.md").write_text("web\n")
    old = datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc).timestamp()
    os.utime(tmp_path / "web.md", (old, old))
    ledger.import_deployments(
        ACTOR,
        [
            {
                "service": "api",
                "version": "1",
                "environment": "production",
                "status": "successful",
                "started_at": ts("03-02 10:00"),
                "finished_at": ts("03-02 10:05"),
                "runbook": str(repo / "api.md"),
            },
            {
                "service": "api",
                "version": "2",
                "environment": "production",
                "status": "successful",
                "started_at": ts("03-05 10:00"),
                "finished_at": ts("03-05 10:05"),
                "runbook": str(repo / "api.md"),
            },
            {
                "service": "web",
                "version": "1",
                "environment": "production",
                "status": "successful",
                "started_at": ts("03-02 10:00"),
                "finished_at": ts("03-02 10:05"),
                "runbook": "web.md",
            },
            {
                "service": "db",
                "version": "1",
                "environment": "production",
                "status": "successful",
                "started_at": ts("03-02 10:00"),
                "finished_at": ts("03-02 10:05"),
            },
        ],
    )
    inputs = ReportInputs(request("2026-03-01", "2026-03-07"), runbook_root=str(tmp_path))
    verdicts = {
        (d["service"], d["version"]): (d["verdict"], d["method"])
        for d in build(ledger, "runbook", inputs).data["deployments"]
    }
    assert verdicts == {
        ("api", "1"): ("compliant", "git"),  # committed 14 hours after the deployment finished
        ("api", "2"): ("not updated", "git"),  # only 58 hours before it
        ("web", "1"): ("not updated", "mtime"),
        ("db", "1"): ("no runbook", "none"),
    }


def test_calibration_counts_routes_denials_and_later_deployments(ledger: Ledger) -> None:
    run = Actor(run_id="gate-run", user="t", host="c")
    ledger.record_decision(run, "change_gate", "api@2.0.0", "deny", ["blackout window"])
    ledger.record_decision(run, "change_gate", "api@2.0.0", "allow", [])
    ledger.record_decision(run, "change_gate", "web@1.0.0", "deny", ["blackout window", "risk high"])
    later = format_timestamp(utc_now() + datetime.timedelta(minutes=5))
    ledger.import_deployments(
        run,
        [
            {
                "service": "api",
                "version": "2.0.0",
                "environment": "production",
                "status": "successful",
                "started_at": later,
                "finished_at": later,
            }
        ],
    )
    today = utc_now().date()
    quarter_start = datetime.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    inputs = ReportInputs(
        request(quarter_start.isoformat(), (today + datetime.timedelta(days=1)).isoformat()),
        exemptions=[{"id": "EX1", "used_at": format_timestamp(utc_now())}],
    )
    quarters = build(ledger, "calibration", inputs).data["quarters"]
    (entry,) = quarters.values()
    assert entry["routes"] == {"change_gate: allow": 1, "change_gate: deny": 2}
    assert entry["denials"] == {"change_gate: blackout window": 2, "change_gate: risk high": 1}
    assert (entry["denied"], entry["later_deployed"], entry["exemptions"]) == (2, 1, 1)


def test_dashboard_and_cfr_render_consistently_in_every_format(ledger: Ledger) -> None:
    seed_week(ledger)
    inputs = ReportInputs(request("2026-03-01", "2026-03-07"))
    cfr = build(ledger, "cfr", inputs)
    assert cfr.data["team"]["trend"]["series"]["blue"][1] == 1.0
    assert {name: g["change_failure_rate"]["rate"] for name, g in cfr.data["service"]["groups"].items()} == {
        "api": 0.5,
        "web": 0.0,
        "worker": 1.0,
    }
    causes = {(row["service"], row["component"]): row["incidents"] for row in cfr.data["root_causes"]}
    assert causes == {("api", "api"): 3, ("web", "db"): 1, ("worker", "db"): 1}
    document = build(ledger, "dashboard", inputs).as_dict("covering a test week")
    charts = sum(1 for section in document["sections"] if section.get("chart"))
    tables = sum(1 for section in document["sections"] if section.get("table"))
    page = render(document, "html")
    assert page.count('<figure class="chart"') == charts == 3
    assert page.count("<svg") == charts
    assert page.count('<table class="report-table">') == tables == 3
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', ""
    )
    assert render(document, "html") == page
    text = render(document, "md")
    assert "| change failure rate | 50.0% (3 of 6) | low |" in text
    assert json.loads(render(document, "json"))["data"]["metrics"]["summary"]["change_failure_rate"]["rate"] == 0.5
