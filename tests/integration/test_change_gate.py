"""relops.release.risk_assess, readiness_check, exemption and change_gate through real ansible-playbook runs,
on the local backend and against the ServiceNow stand-in (the ``itsm`` fixture runs each test on both)."""

from __future__ import annotations

import datetime
import os
import socket
import time

import yaml
from fixtures.governance import finish_tasks, run_tasks, start_tasks, write_cobertura, write_junit, write_yaml
from fixtures.playbooks import Ansible
from fixtures.servicenow import ItsmWorld

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

SN_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_POLICY = os.path.join(
    os.path.dirname(__file__), "..", "..", "plugins", "plugin_utils", "policy", "default_policy.yml"
)


def _sn_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(SN_FORMAT)


def _estate_tasks() -> list[dict]:
    """A host, the application on it, and a business service (most critical) that uses the application."""
    return [
        {
            "id": "host",
            "module": "cmdb_ci",
            "args": {"ci_class": "cmdb_ci_linux_server", "name": "web01", "attributes": {"ip_address": "10.0.0.11"}},
        },
        {
            "id": "app",
            "module": "cmdb_ci",
            "args": {
                "ci_class": "cmdb_ci_appl",
                "name": "payments-api",
                "relations": [{"type": "Runs on::Runs", "target": "web01"}],
            },
        },
        {
            "id": "service",
            "module": "cmdb_ci",
            "args": {
                "ci_class": "cmdb_ci_service",
                "name": "Payments",
                "attributes": {"busines_criticality": "1 - most critical"},
                "relations": [{"type": "Depends on::Used by", "target": "payments-api"}],
            },
        },
    ]


def _seed_ledger(ledger_url: str, failed: int, succeeded: int) -> None:
    actor = current_actor(environ={"RELOPS_RUN_ID": "history"})
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        for index in range(succeeded):
            ledger.record_deployment(actor, "payments-api", "1.%d.0" % index, "production", "successful")
        for index in range(failed):
            ledger.record_deployment(actor, "payments-api", "0.%d.0" % index, "production", "failed")


def _readiness(ansible: Ansible, start: datetime.datetime, end: datetime.datetime, gap: bool = False) -> dict:
    middle = start + (end - start) / 2
    shifts = [
        {
            "who": "alice",
            "start": format_timestamp(start - datetime.timedelta(hours=1)),
            "end": format_timestamp(middle),
        },
        {
            "who": "bob",
            "start": format_timestamp(middle + datetime.timedelta(minutes=30 if gap else 0)),
            "end": format_timestamp(end + datetime.timedelta(hours=1)),
        },
    ]
    roster = write_yaml(os.path.join(ansible.workdir, "roster-%d.yml" % time.monotonic_ns()), {"shifts": shifts})
    return {
        "rollback": {"not_needed": "additive change behind a feature flag"},
        "communication": [
            {"at": format_timestamp(start - datetime.timedelta(hours=2)), "channel": "#payments", "audience": "support"}
        ],
        "roster": roster,
        "runbook": "https://runbooks.example.com/payments",
    }


def test_risk_assessment_routes_by_policy_and_lists_contributions(ansible: Ansible, itsm: ItsmWorld) -> None:
    _seed_ledger(itsm.ledger_url, failed=1, succeeded=9)
    good = write_junit(os.path.join(ansible.workdir, "unit.xml"), tests=40)
    bad = write_junit(os.path.join(ansible.workdir, "failing.xml"), tests=10, failures=2)
    coverage = write_cobertura(os.path.join(ansible.workdir, "coverage.xml"), covered=90, valid=100)
    base = {"service": "payments-api", "release_class": "operational", "coverage": [coverage]}
    tasks = [
        *_estate_tasks(),
        {"id": "small", "module": "risk_assess", "args": dict(base, junit=[good], files_changed=3)},
        {
            "id": "big",
            "module": "risk_assess",
            "args": dict(
                base,
                release_class="strategic",
                cis=["payments-api"],
                junit=[bad],
                files_changed=400,
                migrations=2,
                irreversible_migrations=1,
            ),
        },
        {
            "id": "template",
            "module": "risk_assess",
            "args": dict(base, junit=[good], files_changed=3, template="config-only"),
        },
        {
            "id": "misfit",
            "module": "risk_assess",
            "args": dict(base, junit=[good], files_changed=30, template="config-only"),
        },
    ]
    results, run = run_tasks(ansible, tasks, env=itsm.env)
    small, big = results["small"], results["big"]
    assert not small.get("failed"), run.report
    assert small["facts"]["change_failure_rate"] == 10.0 and small["facts"]["tests_passed"] is True
    assert small["facts"]["line_coverage"] == 90.0
    assert {item["rule"] for item in small["contributions"]} >= {"release-class", "change-failure-rate", "tests"}
    rate = next(item for item in small["contributions"] if item["rule"] == "change-failure-rate")
    assert rate["value"] == 10.0 and rate["points"] == 10.0, rate
    assert small["score"] == sum(item["points"] for item in small["contributions"])
    assert small["policy_version"].startswith("2026.4@sha256:") and small["policy"]["name"] == "relops-default"

    assert not big.get("failed"), big
    assert big["facts"]["ci_criticality"] == "1" and big["facts"]["business_services"] == 1, big["evidence"]
    assert big["evidence"]["cmdb"]["business_services"] == ["Payments"]
    assert big["risk"] == "very_high" and big["route"] == "cab" and big["route_rule"] == "very-high-to-cab"
    assert big["stabilization_seconds"] == 86400

    assert results["template"]["change_type"] == "standard" and results["template"]["template"]["match"] is True
    assert results["template"]["route"] == "automatic"
    assert results["misfit"]["template"]["match"] is False and "exceeds 20" in results["misfit"]["template"]["detail"]
    assert results["misfit"]["change_type"] == "normal"


def _open_change(ansible: Ansible, itsm: ItsmWorld, correlation: str, cis: list, start: str, end: str) -> str:
    """A normal change on the CIs, approved by the CAB outside the play, moved to implement; return its number."""
    opened, run = run_tasks(
        ansible,
        [
            *_estate_tasks(),
            {
                "id": "open",
                "module": "change_request",
                "args": {
                    "correlation_id": correlation,
                    "short_description": "Deploy payments-api",
                    "configuration_items": cis,
                    "start_date": start,
                    "end_date": end,
                    "state": "authorize",
                },
            },
        ],
        env=itsm.env,
    )
    assert not opened["open"].get("failed"), run.report
    number = str(opened["open"]["change"]["number"])
    itsm.decide(number, "approved", "go")
    moved, run = run_tasks(
        ansible,
        [{"id": "implement", "module": "change_request", "args": {"number": number, "state": "implement"}}],
        env=itsm.env,
    )
    assert moved["implement"]["change"]["state"] == "implement", run.report
    return number


def test_gate_decides_every_path_on_the_backend(ansible: Ansible, itsm: ItsmWorld) -> None:
    now = utc_now()
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=2)
    number = _open_change(ansible, itsm, "payments-2.0.0", ["payments-api"], _sn_time(start), _sn_time(end))
    readiness = _readiness(ansible, start, end)
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.0.0",
        "route": "cab",
        "change": number,
        "readiness": readiness,
        "requested_by": "dev.one",
        "fail_on_deny": False,
    }
    tasks = [
        {"id": "allowed", "module": "change_gate", "args": gate},
        {"id": "checked", "module": "change_gate", "args": dict(gate, subject="check-mode"), "check_mode": True},
        {"id": "no-readiness", "module": "change_gate", "args": {k: v for k, v in gate.items() if k != "readiness"}},
        {
            "id": "roster-gap",
            "module": "change_gate",
            "args": dict(gate, readiness=_readiness(ansible, start, end, gap=True)),
        },
        {
            "id": "not-yet",
            "module": "change_gate",
            "args": dict(
                gate,
                change=None,
                route="peer",
                peer_approver="dev.two",
                planned_start=format_timestamp(now + datetime.timedelta(hours=1)),
                planned_end=format_timestamp(now + datetime.timedelta(hours=3)),
                readiness=_readiness(ansible, now + datetime.timedelta(hours=1), now + datetime.timedelta(hours=3)),
            ),
        },
        {
            "id": "own-approval",
            "module": "change_gate",
            "args": dict(
                gate,
                change=None,
                route="peer",
                peer_approver="dev.one",
                planned_start=format_timestamp(start),
                planned_end=format_timestamp(end),
            ),
        },
        {"id": "cab-without-change", "module": "change_gate", "args": dict(gate, change=None)},
        {"id": "fails", "module": "change_gate", "args": dict(gate, readiness=None, fail_on_deny=True)},
    ]
    results, run = run_tasks(ansible, tasks, env=itsm.env)
    allowed = results["allowed"]
    assert allowed["decision"] == "allow", "\n".join(allowed.get("reasons") or [run.output])
    assert allowed["recorded"] is True and allowed["subject"] == number
    assert allowed["policy_version"].startswith("2026.4@sha256:") and allowed["inputs_digest"]
    assert {check["check"] for check in allowed["checks"]} == {
        "approval",
        "window",
        "blackout",
        "conflict",
        "stabilization",
        "readiness",
        "lock",
        "segregation_of_duties",
        # The route came from the caller: staging is not enforced, and the gate says so.
        "evidence",
    }
    checked = results["checked"]
    assert checked["decision"] == "allow" and checked["recorded"] is False
    assert checked["inputs_digest"] != allowed["inputs_digest"]  # the subject is an input

    assert results["no-readiness"]["decision"] == "deny"
    assert results["no-readiness"]["reasons"][0].startswith("readiness deny: no readiness review")
    gap = results["roster-gap"]
    assert gap["decision"] == "deny" and "on_call" in gap["reasons"][0] and "uncovered" in gap["reasons"][0], gap
    assert results["not-yet"]["decision"] == "wait" and "has not started" in results["not-yet"]["reasons"][0]
    own = results["own-approval"]
    assert own["decision"] == "deny" and "approved their own change" in " ".join(own["reasons"]), own
    assert results["cab-without-change"]["decision"] == "deny"
    assert "cab route needs an approved change" in results["cab-without-change"]["reasons"][0]
    assert results["fails"]["failed"] is True and results["fails"]["decision"] == "deny"

    with open_ledger(parse_ledger_url(itsm.ledger_url)) as ledger:
        decisions = ledger.list_decisions(limit=50)
    stored = {(row["subject"], row["decision"]) for row in decisions if row["gate"] == "change_gate"}
    assert (number, "allow") in stored and not any(subject == "check-mode" for subject, _d in stored)
    assert all(row["policy_version"] == allowed["policy_version"] for row in decisions if row["gate"] == "change_gate")


def test_gate_denies_conflicts_on_related_cis_and_waits_for_stabilization(ansible: Ansible, itsm: ItsmWorld) -> None:
    now = utc_now()
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=2)
    mine = _open_change(ansible, itsm, "payments-2.1.0", ["payments-api"], _sn_time(start), _sn_time(end))
    # Another change on the host the application runs on (its child CI), overlapping the window.
    other, run = run_tasks(
        ansible,
        [
            {
                "id": "other",
                "module": "change_request",
                "args": {
                    "correlation_id": "web01-patching",
                    "short_description": "Patch web01",
                    "configuration_items": ["web01"],
                    "start_date": _sn_time(now + datetime.timedelta(minutes=30)),
                    "end_date": _sn_time(now + datetime.timedelta(hours=3)),
                    "state": "assess",
                },
            }
        ],
        env=itsm.env,
    )
    assert not other["other"].get("failed"), run.report
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.1.0",
        "route": "cab",
        "change": mine,
        "readiness": _readiness(ansible, start, end),
        "requested_by": "dev.one",
        "fail_on_deny": False,
    }
    with open_ledger(parse_ledger_url(itsm.ledger_url)) as ledger:
        ledger.start_stabilization(
            current_actor(environ={"RELOPS_RUN_ID": "earlier"}), "payments-api", "staging", "2.0.0", 3600
        )
    results, run = run_tasks(
        ansible,
        [
            {"id": "conflict", "module": "change_gate", "args": gate},
            {"id": "emergency", "module": "change_gate", "args": dict(gate, change_type="emergency")},
        ],
        env=itsm.env,
    )
    conflict = results["conflict"]
    assert conflict["decision"] == "deny", run.report
    reason = next(r for r in conflict["reasons"] if r.startswith("conflict deny"))
    assert other["other"]["change"]["number"] in reason and "parent or child CI" in reason
    stabilizing = next(c for c in conflict["checks"] if c["check"] == "stabilization")
    assert stabilizing["outcome"] == "wait" and "only emergency changes pass" in stabilizing["reason"]
    emergency = next(c for c in results["emergency"]["checks"] if c["check"] == "stabilization")
    assert emergency["outcome"] == "pass" and "emergency changes pass" in emergency["reason"]


def test_gate_waits_with_backoff_until_the_lock_is_released(ansible: Ansible) -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    holder = current_actor(environ={"RELOPS_RUN_ID": "other-release"})
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert ledger.try_lock("payments-api", holder, 600).obtained
    now = utc_now()
    start, end = now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1)
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.2.0",
        "route": "peer",
        "peer_approver": "dev.two",
        "requested_by": "dev.one",
        "planned_start": format_timestamp(start),
        "planned_end": format_timestamp(end),
        "readiness": _readiness(ansible, start, end),
        "wait_timeout": 300,
    }
    process, result_file = start_tasks(
        ansible, [{"id": "waited", "module": "change_gate", "args": gate}], env={"RELOPS_LEDGER_URL": ledger_url}
    )
    # The gate notes its run in the ledger as its first attempt opens it, just before it reads the lock.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        with open_ledger(parse_ledger_url(ledger_url)) as ledger:
            if any(run["run_id"] != "other-release" for run in ledger.list_runs(10)):
                break
        time.sleep(0.5)
    time.sleep(2)
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.release_lock("payments-api", holder)
    results, run = finish_tasks(process, result_file)
    waited = results["waited"]
    assert waited["decision"] == "allow" and waited["attempts"] > 1, run.report
    assert any(r.startswith("lock pass") for r in waited["reasons"])


def test_unreachable_backends_deny_unless_the_policy_fails_open(ansible: Ansible) -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy_path = os.path.join(
        os.path.dirname(__file__), "..", "..", "plugins", "plugin_utils", "policy", "default_policy.yml"
    )
    with open(policy_path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    document["backends"]["itsm"] = "fail_open"
    document["backends"]["calendar"] = "fail_open"
    open_policy = write_yaml(os.path.join(ansible.workdir, "open.yml"), document)
    now = utc_now()
    unreachable = {"type": "ics", "url": "http://127.0.0.1:%d/freezes.ics" % port, "kind": "blackout", "timeout": 2}
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.3.0",
        "route": "automatic",
        "cis": ["payments-api"],
        "readiness": _readiness(ansible, now, now + datetime.timedelta(hours=1)),
        "backend": "servicenow",
        "instance": {
            "host": "http://127.0.0.1:%d" % port,
            "username": "admin",
            "password": "x",
            "max_retries": 1,
            "max_retry_time": 2,
        },
        "fail_on_deny": False,
    }
    results, run = run_tasks(
        ansible,
        [
            {"id": "closed", "module": "change_gate", "args": gate},
            {"id": "open", "module": "change_gate", "args": dict(gate, policy=open_policy)},
            {"id": "calendar-closed", "module": "change_gate", "args": dict(gate, cis=[], calendars=[unreachable])},
            {
                "id": "ledger-closed",
                "module": "change_gate",
                "args": dict(gate, cis=[], ledger_url="postgresql://relops@127.0.0.1:%d/ledger" % port),
            },
            {
                "id": "calendar-open",
                "module": "change_gate",
                "args": dict(gate, cis=[], calendars=[unreachable], policy=open_policy),
            },
        ],
        env={"RELOPS_LEDGER_URL": ledger_url},
    )
    closed = results["closed"]
    assert closed["decision"] == "deny", run.report
    assert "itsm backend unreachable" in closed["reasons"][0] and "fail_closed" in closed["reasons"][0]
    opened = results["open"]
    assert opened["decision"] == "allow", opened["reasons"]
    assert any("skipped: policy says fail_open" in reason for reason in opened["reasons"])
    calendar_closed = results["calendar-closed"]
    assert calendar_closed["decision"] == "deny", calendar_closed["reasons"]
    assert calendar_closed["reasons"][0].startswith("blackout deny: calendar backend unreachable")
    assert "127.0.0.1:%d" % port in calendar_closed["reasons"][0]
    ledger_closed = results["ledger-closed"]
    assert ledger_closed["decision"] == "deny" and ledger_closed["recorded"] is False, ledger_closed
    assert ledger_closed["reasons"][0].startswith("ledger deny: ledger backend unreachable")
    assert any(r.startswith("lock deny: ledger backend unreachable") for r in ledger_closed["reasons"])
    calendar_open = results["calendar-open"]
    assert calendar_open["decision"] == "allow", calendar_open["reasons"]
    assert any(r.startswith("blackout skipped: calendar backend unreachable") for r in calendar_open["reasons"])


def _blackout_source(itsm: ItsmWorld, start: datetime.datetime, end: datetime.datetime) -> dict:
    """A blackout from now on: a ServiceNow blackout schedule on the stand-in, inline YAML windows locally."""
    if itsm.standin is not None:
        schedule = itsm.standin.insert(
            "cmn_schedule_blackout", {"name": "Year-end freeze", "type": "blackout", "time_zone": "UTC"}
        )
        itsm.standin.insert(
            "cmn_schedule_span",
            {
                "schedule": schedule["sys_id"],
                "name": "Year-end freeze",
                "start_date_time": start.strftime("%Y%m%dT%H%M%S"),
                "end_date_time": end.strftime("%Y%m%dT%H%M%S"),
            },
        )
        return {"type": "servicenow", "schedule": "Year-end freeze"}
    window = {
        "name": "Year-end freeze",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return {"type": "windows", "kind": "blackout", "timezone": "UTC", "windows": [window]}


def test_emergency_change_during_blackout_needs_an_active_exemption(ansible: Ansible, itsm: ItsmWorld) -> None:
    now = utc_now().replace(microsecond=0)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1)
    freeze = _blackout_source(itsm, now - datetime.timedelta(minutes=10), now + datetime.timedelta(hours=3))
    with open_ledger(parse_ledger_url(itsm.ledger_url)) as ledger:
        ledger.create_exemption(
            current_actor(environ={"RELOPS_RUN_ID": "last-month"}),
            {
                "name": "old-freeze-pass",
                "service": "payments-api",
                "rule": "blackout",
                "approver": "head.of.ops",
                "reason": "last month's hotfix",
                "requested_by": "dev.one",
                "expires_at": format_timestamp(now - datetime.timedelta(days=1)),
            },
        )
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.0.1",
        "route": "peer",
        "change_type": "emergency",
        "peer_approver": "dev.two",
        "requested_by": "dev.one",
        "planned_start": format_timestamp(start),
        "planned_end": format_timestamp(end),
        "calendars": [freeze],
        "readiness": _readiness(ansible, start, end),
        "fail_on_deny": False,
    }
    exemption = {
        "name": "payments-freeze-hotfix",
        "service": "payments-api",
        "rule": "blackout",
        "approver": "head.of.ops",
        "reason": "INC4711 card payments failing",
        "requested_by": "dev.one",
        "expires_at": format_timestamp(now + datetime.timedelta(days=1)),
    }
    longer = now + datetime.timedelta(hours=5)
    longer_readiness = _readiness(ansible, start, longer)
    with open(DEFAULT_POLICY, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    document["gate"]["emergency_during_blackout"] = "allow"
    allowing = write_yaml(os.path.join(ansible.workdir, "allowing.yml"), document)
    tasks = [
        {"id": "normal", "module": "change_gate", "args": dict(gate, change_type="normal")},
        {
            "id": "normal-longer",
            "module": "change_gate",
            "args": dict(gate, change_type="normal", planned_end=format_timestamp(longer), readiness=longer_readiness),
        },
        {"id": "emergency-allowed", "module": "change_gate", "args": dict(gate, policy=allowing)},
        {"id": "without", "module": "change_gate", "args": gate},
        {"id": "planned-exemption", "module": "exemption", "args": exemption, "check_mode": True, "diff": True},
        {"id": "exempt", "module": "exemption", "args": exemption},
        {"id": "exempt-again", "module": "exemption", "args": exemption},
        {"id": "with", "module": "change_gate", "args": gate},
        {"id": "listed", "module": "exemption", "args": {"state": "list", "service": "payments-api"}},
        {
            "id": "revoke",
            "module": "exemption",
            "args": {"name": "payments-freeze-hotfix", "state": "revoked", "reason": "deployed"},
        },
        {"id": "after-revoke", "module": "change_gate", "args": gate},
        {
            "id": "listed-all",
            "module": "exemption",
            "args": {"state": "list", "service": "payments-api", "include_inactive": True},
        },
    ]
    results, run = run_tasks(ansible, tasks, env=itsm.env)
    normal = results["normal"]
    assert normal["decision"] == "deny", run.report
    assert normal["reasons"][0].startswith("blackout deny: the planned window overlaps blackout Year-end freeze")
    longer_window = results["normal-longer"]
    assert longer_window["decision"] == "wait", longer_window["reasons"]
    assert longer_window["reasons"][0].startswith("blackout wait: in blackout Year-end freeze")
    assert format_timestamp(now + datetime.timedelta(hours=3)) in longer_window["reasons"][0]
    allowed_by_policy = next(c for c in results["emergency-allowed"]["checks"] if c["check"] == "blackout")
    assert allowed_by_policy["outcome"] == "pass" and "the emergency policy allows it" in allowed_by_policy["reason"]
    assert results["emergency-allowed"]["decision"] == "allow" and results["emergency-allowed"]["exemptions_used"] == []
    without = results["without"]
    assert without["decision"] == "deny" and "needs an active exemption" in without["reasons"][0], without["reasons"]
    assert "exemption old-freeze-pass expired at" in without["reasons"][0] and "ignored" in without["reasons"][0]
    assert (
        results["planned-exemption"]["changed"] is True and "absent" in results["planned-exemption"]["diff"]["before"]
    )
    assert results["exempt"]["changed"] is True and results["exempt"]["exemption"]["status"] == "active"
    assert results["exempt-again"]["changed"] is False
    allowed = results["with"]
    assert allowed["decision"] == "allow", allowed["reasons"]
    assert allowed["exemptions_used"] == ["payments-freeze-hotfix"]
    audited = {record["kind"]: record for record in allowed["relops_audit"]}
    assert audited["decision"]["decision"] == "allow"
    assert audited["exemption_used"]["exemption"] == "payments-freeze-hotfix"
    assert audited["exemption_used"]["approver"] == "head.of.ops"
    blackout = next(check for check in allowed["checks"] if check["check"] == "blackout")
    assert blackout["outcome"] == "waived" and blackout["exemption"] == "payments-freeze-hotfix"
    listed = results["listed"]["exemptions"]
    assert [item["name"] for item in listed] == ["payments-freeze-hotfix"] and listed[0]["uses"] == 1
    assert results["revoke"]["changed"] is True and results["revoke"]["exemption"]["status"] == "revoked"
    assert results["after-revoke"]["decision"] == "deny"
    statuses = {item["name"]: item["status"] for item in results["listed-all"]["exemptions"]}
    assert statuses == {"payments-freeze-hotfix": "revoked", "old-freeze-pass": "expired"}


def test_bad_policies_and_exemptions_are_refused_with_the_fix(ansible: Ansible, tmp_path: "os.PathLike[str]") -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    default = os.path.join(
        os.path.dirname(__file__), "..", "..", "plugins", "plugin_utils", "policy", "default_policy.yml"
    )
    with open(default, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    bad_weight = yaml.safe_load(yaml.safe_dump(document))
    bad_weight["rules"]["risk"][2]["weight"] = "heavy"
    contradictory = yaml.safe_load(yaml.safe_dump(document))
    contradictory["rules"]["route"].insert(
        0, {"id": "everything-peer", "when": {"risk": ["low", "moderate", "high"]}, "route": "peer"}
    )
    contradictory["rules"]["route"].insert(
        1, {"id": "high-automatic", "when": {"risk": ["high"]}, "route": "automatic"}
    )
    base = {"service": "payments-api", "release_class": "operational"}
    future = format_timestamp(utc_now() + datetime.timedelta(days=2))
    exemption = {
        "name": "x",
        "service": "payments-api",
        "rule": "blackout",
        "approver": "boss",
        "reason": "r",
        "expires_at": future,
    }
    tasks = [
        {
            "id": "weight",
            "module": "risk_assess",
            "args": dict(base, policy=write_yaml(os.path.join(ansible.workdir, "w.yml"), bad_weight)),
        },
        {
            "id": "contradiction",
            "module": "risk_assess",
            "args": dict(base, policy=write_yaml(os.path.join(ansible.workdir, "c.yml"), contradictory)),
        },
        {"id": "no-expiry", "module": "exemption", "args": {k: v for k, v in exemption.items() if k != "expires_at"}},
        {"id": "no-approver", "module": "exemption", "args": {k: v for k, v in exemption.items() if k != "approver"}},
        {
            "id": "self-approved",
            "module": "exemption",
            "args": dict(exemption, approver="dev.one", requested_by="dev.one"),
        },
        {
            "id": "too-long",
            "module": "exemption",
            "args": dict(exemption, expires_at=format_timestamp(utc_now() + datetime.timedelta(days=60))),
        },
    ]
    results, run = run_tasks(ansible, tasks, env={"RELOPS_LEDGER_URL": ledger_url})
    assert results["weight"]["failed"] is True, run.report
    assert "rules.risk[2].weight: 'heavy' is not of type 'number'" in results["weight"]["msg"]
    contradiction = results["contradiction"]["msg"]
    assert "contradictory rules" in contradiction
    assert (
        "rules.route[1] (high-automatic: automatic) never applies: rules.route[0] (everything-peer: peer)"
        in contradiction
    )
    assert results["no-expiry"]["failed"] is True and "needs expires_at" in results["no-expiry"]["msg"]
    assert results["no-approver"]["failed"] is True and "needs approver" in results["no-approver"]["msg"]
    assert "someone else must approve" in results["self-approved"]["msg"]
    assert "more than 14 days away" in results["too-long"]["msg"]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert ledger.list_exemptions() == []


def _standard_templates(itsm: ItsmWorld) -> dict[str, str]:
    """On the stand-in, the Standard Change Catalog: templates (std_change_record_producer) and their versions.

    Returns each template's record producer sys_id by name; the local backend keeps templates by name only.
    """
    if itsm.standin is None:
        return {}
    producers: dict[str, str] = {}
    for name, retired in (("config-only", "false"), ("db-hotfix", "false"), ("web-restart", "false"), ("old", "true")):
        producer = itsm.standin.insert(
            "std_change_record_producer", {"name": name, "active": "true", "retired": retired}
        )
        itsm.standin.insert(
            "std_change_producer_version",
            {"name": "%s - 1" % name, "version": "1", "std_change_producer": producer["sys_id"]},
        )
        current = itsm.standin.insert(
            "std_change_producer_version",
            {
                "name": "%s - 2" % name,
                "version": "2",
                "std_change_producer": producer["sys_id"],
                "template_value": "short_description=%s^implementation_plan=rolling" % name,
            },
        )
        itsm.standin.update("std_change_record_producer", producer["sys_id"], {"current_version": current["sys_id"]})
        producers[name] = producer["sys_id"]
    return producers


def test_gate_pre_approves_standard_changes_only_from_templates_the_policy_lists(
    ansible: Ansible, itsm: ItsmWorld
) -> None:
    """A standard change's std_change_producer_version leads to its template; the policy lists templates."""
    producers = _standard_templates(itsm)
    now = utc_now()
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=2)
    window = {"start_date": _sn_time(start), "end_date": _sn_time(end)}
    names = ["config-only", "db-hotfix", "config-only-new"] + (["web-restart", "old"] if producers else [])
    opened, run = run_tasks(
        ansible,
        [
            {
                "id": name,
                "module": "change_request",
                "args": dict(
                    window,
                    correlation_id="std-%s" % name,
                    type="standard",
                    template=name.replace("-new", ""),
                    # One change stays in new to show the gate waits for scheduled.
                    **({} if name.endswith("-new") else {"state": "scheduled"}),
                ),
            }
            for name in names
        ],
        env=itsm.env,
    )
    numbers = {}
    for name in names:
        assert not opened[name].get("failed"), opened[name].get("msg") or run.output
        numbers[name] = opened[name]["change"]["number"]
        assert opened[name]["change"]["type"] == "standard"
    with open(DEFAULT_POLICY, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if producers:
        # Listed by sys_id under a local name, and a retired template the policy still lists.
        document["standard_templates"].append({"name": "restart", "sys_id": producers["web-restart"]})
        document["standard_templates"].append({"name": "old"})
    policy = write_yaml(os.path.join(ansible.workdir, "standard.yml"), document)
    gate = {
        "service": "payments-api",
        # Not an enforced environment: these tests give the gate route and risk themselves.
        "environment": "staging",
        "version": "2.0.0",
        "route": "automatic",
        "change_type": "standard",
        "readiness": _readiness(ansible, start, end),
        "policy": policy,
        "fail_on_deny": False,
    }
    results, run = run_tasks(
        ansible,
        [{"id": name, "module": "change_gate", "args": dict(gate, change=numbers[name])} for name in names],
        env=itsm.env,
    )

    def approval(name: str) -> dict:
        return next(check for check in results[name]["checks"] if check["check"] == "approval")

    listed = results["config-only"]
    assert listed["decision"] == "allow", listed.get("reasons") or run.output
    assert "from pre-approved template config-only" in approval("config-only")["reason"]
    if producers:
        assert "version 2" in approval("config-only")["reason"]
    unlisted = results["db-hotfix"]
    assert unlisted["decision"] == "deny"
    assert "template db-hotfix is not pre-approved in policy" in approval("db-hotfix")["reason"]
    assert "config-only, dependency-patch" in approval("db-hotfix")["reason"]
    waiting = results["config-only-new"]
    assert waiting["decision"] == "wait" and approval("config-only-new")["outcome"] == "wait"
    assert "waiting for scheduled or implement" in approval("config-only-new")["reason"]
    # The template read is an input of the decision: a different template is a different digest.
    assert listed["inputs_digest"] != unlisted["inputs_digest"]
    if producers:
        assert results["web-restart"]["decision"] == "allow", results["web-restart"].get("reasons")
        assert "pre-approved template web-restart" in approval("web-restart")["reason"]
        retired = results["old"]
        assert retired["decision"] == "deny" and "template old is retired" in approval("old")["reason"]
