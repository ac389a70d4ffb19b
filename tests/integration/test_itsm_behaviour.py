"""The ITSM behavioural suite: the same ansible-playbook runs against the local ledger backend and the
ServiceNow stand-in, and must behave the same."""

from __future__ import annotations

import threading

from fixtures.itsm_tasks import run_task
from fixtures.playbooks import Ansible
from fixtures.servicenow import ItsmWorld


def _register_estate(ansible: Ansible, itsm: ItsmWorld) -> dict:
    host = run_task(
        ansible,
        itsm,
        "cmdb_ci",
        {
            "ci_class": "cmdb_ci_linux_server",
            "name": "web01",
            "identity": ["serial_number"],
            "attributes": {"serial_number": "VMW-1", "ip_address": "10.0.0.11"},
        },
    )
    assert host["changed"] is True and host["operation"] == "INSERT", host
    app = run_task(
        ansible,
        itsm,
        "cmdb_ci",
        {
            "ci_class": "cmdb_ci_appl",
            "name": "payments-api",
            "attributes": {"version": "1.0.0"},
            "relations": [{"type": "Runs on::Runs", "target": "web01"}],
        },
    )
    assert app["changed"] is True, app
    service = run_task(
        ansible,
        itsm,
        "cmdb_ci",
        {
            "ci_class": "cmdb_ci_service",
            "name": "Payments",
            "relations": [{"type": "Depends on::Used by", "target": "payments-api"}],
        },
    )
    assert service["changed"] is True, service
    return host


def test_change_lifecycle_is_idempotent_and_follows_the_state_model(ansible: Ansible, itsm: ItsmWorld) -> None:
    _register_estate(ansible, itsm)
    opening = {
        "correlation_id": "payments-api-1.1.0",
        "short_description": "Deploy payments-api 1.1.0",
        "configuration_items": ["web01"],
        "work_notes": "opened by the release pipeline",
    }
    # Issue 22: the CIs are resolved before the change is created, so a bad CI name creates nothing.
    refused = run_task(ansible, itsm, "change_request", dict(opening, configuration_items=["web01", "no-such-ci"]))
    assert refused["failed"] is True and "'no-such-ci' matches 0 CIs" in refused["msg"], refused
    assert itsm.change_count("payments-api-1.1.0") == 0, "a change without its CIs was left behind"
    planned = run_task(ansible, itsm, "change_request", dict(opening, state="assess"), "--check", "--diff")
    assert planned["changed"] is True and planned["created"] is True, planned
    assert itsm.change_count("payments-api-1.1.0") == 0

    created = run_task(ansible, itsm, "change_request", dict(opening, state="assess"))
    assert created["changed"] is True and created["created"] is True, created
    change = created["change"]
    assert change["state"] == "assess" and change["type"] == "normal"
    assert change["number"].startswith("CHG") and len(change["configuration_items"]) == 1
    assert created["states_passed"] == ["assess"]

    again = run_task(ansible, itsm, "change_request", dict(opening, state="assess"))
    assert again["changed"] is False and again["created"] is False, again
    assert again["change"]["number"] == change["number"]
    assert itsm.change_count("payments-api-1.1.0") == 1

    skipping = run_task(ansible, itsm, "change_request", {"number": change["number"], "state": "implement"})
    assert skipping["failed"] is True
    assert "must pass authorize" in skipping["msg"] and "wait_for" in skipping["msg"], skipping["msg"]
    info = run_task(ansible, itsm, "change_request_info", {"number": change["number"]})
    assert info["records"][0]["state"] == "assess", "a refused move must leave the change where it was"

    authorize = run_task(ansible, itsm, "change_request", {"number": change["number"], "state": "authorize"})
    assert authorize["change"]["approval"] == "requested", authorize
    approve = run_task(
        ansible,
        itsm,
        "change_request",
        {
            "number": change["number"],
            "approval": "approved",
            "approval_comments": "CAB ok",
            "wait_for": {"approval": "approved", "timeout": 10, "interval": 0.2},
        },
    )
    assert approve["changed"] is True and approve["change"]["approval"] == "approved", approve
    assert approve["change"]["state"] == "scheduled"

    closing = {"number": change["number"], "state": "closed", "close_code": "successful", "close_notes": "verified"}
    closed = run_task(ansible, itsm, "change_request", closing, "--diff")
    assert closed["states_passed"] == ["implement", "review", "closed"], closed
    assert closed["change"]["close_code"] == "successful" and closed["change"]["close_notes"] == "verified"
    assert closed["diff"]["before"]["state"] == "scheduled" and closed["diff"]["after"]["state"] == "closed"
    rerun = run_task(ansible, itsm, "change_request", closing)
    assert rerun["changed"] is False, rerun

    rerun_earlier = run_task(ansible, itsm, "change_request", {"number": change["number"], "state": "implement"})
    assert rerun_earlier["changed"] is False and rerun_earlier["change"]["state"] == "closed", rerun_earlier
    cancel_closed = run_task(ansible, itsm, "change_request", {"number": change["number"], "state": "canceled"})
    assert cancel_closed["failed"] is True, cancel_closed
    assert "cannot move from closed to canceled" in cancel_closed["msg"], cancel_closed["msg"]


def test_emergency_and_cancel(ansible: Ansible, itsm: ItsmWorld) -> None:
    emergency = run_task(
        ansible,
        itsm,
        "change_request",
        {
            "correlation_id": "hotfix-7",
            "type": "emergency",
            "short_description": "Hotfix",
            "state": "authorize",
        },
    )
    assert emergency["states_passed"] == ["authorize"], emergency
    info = run_task(ansible, itsm, "change_request_info", {"correlation_id": "hotfix-7"})
    assert set(info["records"][0]["next_states"]) == {"new", "canceled"}, info
    assess = run_task(ansible, itsm, "change_request", {"correlation_id": "hotfix-7", "state": "scheduled"})
    assert assess["failed"] is True and "must pass authorize" in assess["msg"], assess
    canceled = run_task(ansible, itsm, "change_request", {"correlation_id": "hotfix-7", "state": "canceled"})
    assert canceled["change"]["state"] == "canceled", canceled


def test_rejection_while_waiting_fails_with_the_approver_comment(ansible: Ansible, itsm: ItsmWorld) -> None:
    opened = run_task(
        ansible,
        itsm,
        "change_request",
        {
            "correlation_id": "risky-1",
            "short_description": "Risky",
            "state": "authorize",
        },
    )
    number = opened["change"]["number"]
    rejecter = threading.Timer(2.0, itsm.decide, (number, "rejected", "no backout plan"))
    rejecter.start()
    try:
        waited = run_task(
            ansible,
            itsm,
            "change_request",
            {
                "number": number,
                "wait_for": {"approval": "approved", "timeout": 60, "interval": 0.3},
            },
        )
    finally:
        rejecter.join()
    assert waited["failed"] is True
    assert "rejected" in waited["msg"] and "no backout plan" in waited["msg"], waited["msg"]


def test_wait_for_times_out_naming_the_state(ansible: Ansible, itsm: ItsmWorld) -> None:
    run_task(
        ansible, itsm, "change_request", {"correlation_id": "slow-cab", "short_description": "x", "state": "authorize"}
    )
    waited = run_task(
        ansible,
        itsm,
        "change_request",
        {
            "correlation_id": "slow-cab",
            "wait_for": {"approval": "approved", "timeout": 1.5, "interval": 0.3},
        },
    )
    assert waited["failed"] is True
    assert "did not reach approval approved within 1.5s" in waited["msg"], waited["msg"]


def test_bad_change_inputs(ansible: Ansible, itsm: ItsmWorld) -> None:
    missing = run_task(ansible, itsm, "change_request", {"number": "CHG0999999", "state": "implement"})
    assert missing["failed"] is True and "CHG0999999 does not exist" in missing["msg"], missing
    unknown_state = run_task(ansible, itsm, "change_request", {"correlation_id": "x-1", "state": "deployed"})
    assert unknown_state["failed"] is True and "deployed" in unknown_state["msg"], unknown_state
    no_close_code = run_task(ansible, itsm, "change_request", {"correlation_id": "x-2", "state": "closed"})
    assert no_close_code["failed"] is True and "close_code" in no_close_code["msg"], no_close_code
    assert itsm.change_count("x-2") == 0


def test_cmdb_upsert_diff_relations_and_impact(ansible: Ansible, itsm: ItsmWorld) -> None:
    _register_estate(ansible, itsm)
    same = run_task(
        ansible,
        itsm,
        "cmdb_ci",
        {
            "ci_class": "cmdb_ci_linux_server",
            "name": "web01",
            "identity": ["serial_number"],
            "attributes": {"serial_number": "VMW-1", "ip_address": "10.0.0.11"},
        },
    )
    assert same["changed"] is False and same["operation"] == "NO_CHANGE", same
    moved = {
        "ci_class": "cmdb_ci_linux_server",
        "name": "web01",
        "identity": ["serial_number"],
        "attributes": {"serial_number": "VMW-1", "ip_address": "10.0.0.12"},
    }
    planned = run_task(ansible, itsm, "cmdb_ci", moved, "--check", "--diff")
    assert planned["changed"] is True and planned["diff"] == {
        "before": {"ip_address": "10.0.0.11"},
        "after": {"ip_address": "10.0.0.12"},
    }, planned
    updated = run_task(ansible, itsm, "cmdb_ci", moved)
    assert updated["changed"] is True and updated["operation"] == "UPDATE", updated
    assert itsm.ci_count("web01") == 1

    found = run_task(ansible, itsm, "cmdb_ci_info", {"ci_class": "cmdb_ci_server", "name": "web01"})
    assert [r["ip_address"] for r in found["records"]] == ["10.0.0.12"], found

    impact = run_task(ansible, itsm, "cmdb_impact", {"cis": ["web01"], "direction": "upstream", "depth": 3})
    assert [(ci["name"], ci["depth"]) for ci in impact["affected"]] == [("payments-api", 1), ("Payments", 2)], impact
    assert [s["name"] for s in impact["business_services"]] == ["Payments"]
    shallow = run_task(ansible, itsm, "cmdb_impact", {"cis": ["web01"], "depth": 1})
    assert [ci["name"] for ci in shallow["affected"]] == ["payments-api"] and shallow["business_services"] == []


def test_bad_cmdb_inputs(ansible: Ansible, itsm: ItsmWorld) -> None:
    unknown = run_task(ansible, itsm, "cmdb_ci", {"ci_class": "cmdb_ci_toaster", "name": "t1"})
    assert unknown["failed"] is True and "cmdb_ci_toaster" in unknown["msg"] and "unknown" in unknown["msg"], unknown
    relation = run_task(
        ansible,
        itsm,
        "cmdb_ci",
        {
            "ci_class": "cmdb_ci_appl",
            "name": "a1",
            "relations": [{"type": "Eats::Eaten by", "target": "a1"}],
        },
    )
    assert relation["failed"] is True and "Eats::Eaten by" in relation["msg"] and "Runs on::Runs" in relation["msg"]


def test_deployment_is_recorded_once(ansible: Ansible, itsm: ItsmWorld) -> None:
    _register_estate(ansible, itsm)
    change = run_task(ansible, itsm, "change_request", {"correlation_id": "rel-9", "short_description": "Deploy"})
    args = {
        "service": "payments-api",
        "version": "1.2.0",
        "environment": "production",
        "hosts": ["web01"],
        "change": change["change"]["number"],
    }
    first = run_task(ansible, itsm, "cmdb_deployment", args)
    assert first["changed"] is True and isinstance(first["deployment_id"], int), first
    assert first["app"]["version"] == "1.2.0"
    second = run_task(ansible, itsm, "cmdb_deployment", args)
    assert second["changed"] is False and second["deployment_id"] is None, second
    info = run_task(ansible, itsm, "change_request_info", {"number": change["change"]["number"]})
    assert len(info["records"][0]["configuration_items"]) == 2, info
    ledger = run_task(ansible, itsm, "ledger_info", {"service": "payments-api"})
    assert [(d["version"], d["change_id"]) for d in ledger["deployments"]] == [("1.2.0", change["change"]["number"])]


def test_a_deployment_recorded_with_its_digest_is_a_rollback_target(ansible: Ansible, itsm: ItsmWorld) -> None:
    """A rerun that found its version already live (kill -9 mid-switch) records the release only through
    cmdb_deployment; with the package's digest that record is something blue_green can roll back to."""
    _register_estate(ansible, itsm)
    digest = "sha256:" + "ab" * 32
    for version, extra in (("1.0.0", {"artifact_digest": digest.upper().replace("SHA256", "sha256")}), ("1.1.0", {})):
        change = run_task(
            ansible, itsm, "change_request", {"correlation_id": "rb-" + version, "short_description": "x"}
        )
        deployed = run_task(
            ansible,
            itsm,
            "cmdb_deployment",
            {
                "service": "payments-api",
                "version": version,
                "environment": "production",
                "hosts": ["web01"],
                "change": change["change"]["number"],
                **extra,
            },
        )
        assert deployed["changed"] is True, deployed
    query = {"state": "query", "service": "payments-api", "environment": "production"}
    history = run_task(ansible, itsm, "deployment_record", {**query, "exclude_version": "1.2.0"})
    assert history["rollback_target"]["version"] == "1.0.0", "1.1.0 names no package, so 1.0.0 is the target"
    assert history["rollback_target"]["artifact_digest"] == digest, "stored lower-case, as blue_green compares it"
    live = run_task(ansible, itsm, "deployment_record", {**query, "exclude_version": "1.0.0"})
    assert live["rollback_target"] is None, live


def test_deployment_records_the_last_change_on_the_cis(ansible: Ansible, itsm: ItsmWorld) -> None:
    _register_estate(ansible, itsm)
    numbers = []
    for release in ("1.2.0", "1.3.0"):
        change = run_task(
            ansible, itsm, "change_request", {"correlation_id": "rel-" + release, "short_description": "x"}
        )
        numbers.append(change["change"]["number"])
        args = {
            "service": "payments-api",
            "version": release,
            "environment": "production",
            "hosts": ["web01"],
            "change": numbers[-1],
        }
        planned = run_task(ansible, itsm, "cmdb_deployment", args, "--check")
        assert planned["changed"] is True and planned["last_change"] == numbers[-1], planned
        deployed = run_task(ansible, itsm, "cmdb_deployment", args)
        assert deployed["changed"] is True and deployed["last_change"] == numbers[-1], deployed
        info = run_task(ansible, itsm, "change_request_info", {"number": numbers[-1]})
        assert info["records"][0]["cmdb_ci"] == deployed["app"]["sys_id"], "the app CI is the change's CI"
    cis = run_task(ansible, itsm, "cmdb_ci_info", {"ci_class": "cmdb_ci", "with_changes": True})
    by_name = {ci["name"]: ci for ci in cis["records"]}
    first, second = numbers
    app = by_name["payments-api (production)"]
    assert app["last_change"] == second and app["changes"] == [second, first], "the service's CI in production"
    assert by_name["payments-api"]["changes"] == [], "the CI named after the service alone is not written"
    assert by_name["web01"]["last_change"] == second and by_name["web01"]["changes"] == [second, first]
    assert by_name["Payments"]["last_change"] == "" and by_name["Payments"]["changes"] == []
    again = run_task(
        ansible,
        itsm,
        "cmdb_deployment",
        {
            "service": "payments-api",
            "version": "1.3.0",
            "environment": "production",
            "hosts": ["web01"],
            "change": second,
        },
    )
    assert again["changed"] is False, again
