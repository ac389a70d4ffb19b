"""relops.release.readiness_check through real ansible-playbook runs: each checklist item passing and failing."""

from __future__ import annotations

import datetime
import os

from fixtures.governance import run_tasks, write_yaml
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor


def test_readiness_checklist_reads_the_ledger_roster_and_manifest(ansible: Ansible) -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    actor = current_actor(environ={"RELOPS_RUN_ID": "history"})
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.record_deployment(actor, "payments-api", "2.0.0", "staging", "rolled_back")
        ledger.record_deployment(actor, "ledger-api", "3.1.0", "production", "successful")
        ledger.record_deployment(actor, "fx-api", "1.0.0", "production", "successful")
    start = utc_now() + datetime.timedelta(days=1)
    end = start + datetime.timedelta(hours=2)
    write_yaml(
        os.path.join(ansible.workdir, "oncall.yml"),
        {
            "shifts": [
                {
                    "who": "alice",
                    "start": format_timestamp(start - datetime.timedelta(hours=4)),
                    "end": format_timestamp(start + datetime.timedelta(hours=1)),
                },
                {
                    "who": "bob",
                    "start": format_timestamp(start + datetime.timedelta(hours=1)),
                    "end": format_timestamp(end),
                },
            ]
        },
    )
    gappy = write_yaml(
        os.path.join(ansible.workdir, "gappy.yml"),
        {
            "shifts": [
                {
                    "who": "alice",
                    "start": format_timestamp(start + datetime.timedelta(minutes=30)),
                    "end": format_timestamp(end - datetime.timedelta(minutes=15)),
                }
            ]
        },
    )
    manifest = write_yaml(
        os.path.join(ansible.workdir, "release.yml"),
        {
            "name": "payments-api",
            "readiness": {
                "rollback": {"plan": "https://runbooks.example.com/payments/rollback"},
                "communication": [
                    {"at": format_timestamp(start - datetime.timedelta(hours=3)), "channel": "#payments"}
                ],
                "roster": "oncall.yml",
                "runbook": "https://runbooks.example.com/payments",
                "dependencies": [{"service": "ledger-api", "version": "3.0.0"}],
            },
        },
    )
    base = {
        "service": "payments-api",
        "version": "2.0.0",
        "planned_start": format_timestamp(start),
        "planned_end": format_timestamp(end),
        "fail_on_failure": False,
    }
    tasks = [
        {"id": "ready", "module": "readiness_check", "args": dict(base, manifest=manifest)},
        {
            "id": "unready",
            "module": "readiness_check",
            "args": dict(
                base,
                version="2.1.0",
                manifest=manifest,
                roster=gappy,
                communication=[{"at": format_timestamp(end), "channel": "#payments"}],
                dependencies=[{"service": "ledger-api", "version": "4.0.0"}, {"service": "risk-api"}],
            ),
        },
        {"id": "empty", "module": "readiness_check", "args": dict(base, fail_on_failure=True)},
        {
            "id": "no-rollback-needed",
            "module": "readiness_check",
            "args": dict(base, version="9.9.9", rollback={"not_needed": "config only"}),
        },
    ]
    results, run = run_tasks(ansible, tasks, env={"RELOPS_LEDGER_URL": ledger_url})
    ready = results["ready"]
    assert ready["passed"] is True, run.report
    items = {item["item"]: item for item in ready["checklist"]}
    assert list(items) == ["rollback_plan", "rollback_rehearsed", "communication", "on_call", "runbook", "dependencies"]
    assert "rolled back in staging" in items["rollback_rehearsed"]["detail"]
    assert "alice, bob" in items["on_call"]["detail"]

    unready = results["unready"]
    assert unready["passed"] is False
    assert unready["failed_items"] == ["rollback_rehearsed", "communication", "on_call", "dependencies"]
    checks = {item["item"]: item for item in unready["checklist"]}
    assert [gap["start"] for gap in checks["on_call"]["gaps"]] == [
        format_timestamp(start),
        format_timestamp(end - datetime.timedelta(minutes=15)),
    ]
    assert "ledger-api 3.1.0 is deployed in production, 4.0.0 or later is needed" in checks["dependencies"]["detail"]
    assert "risk-api is not deployed in production" in checks["dependencies"]["detail"]
    assert "no announcement is scheduled before the planned start" in checks["communication"]["detail"]

    empty = results["empty"]
    assert empty["failed"] is True and empty["failed_items"] == ["rollback_plan", "communication", "on_call", "runbook"]
    spared = {item["item"]: item["passed"] for item in results["no-rollback-needed"]["checklist"]}
    assert spared["rollback_plan"] is True and spared["rollback_rehearsed"] is True
