"""The ITSM backends' shared behaviour, directly through plugin_utils: local on SQLite and PostgreSQL,
ServiceNow with and without the Change Management API."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from ansible.errors import AnsibleFilterError
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.filter.cmdb import environment_ci
from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import (
    ServiceDeployment,
    environment_ci_name,
    record_service_deployment,
    resolve_ci,
    resolve_ci_ids,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import ServiceNowBackend
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "unit-run"})


@pytest.fixture(
    params=[
        "local-sqlite",
        pytest.param("local-postgresql", marks=pytest.mark.postgres),
        "servicenow",
        "servicenow-table-api",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: "os.PathLike[str]") -> Iterator[ItsmBackend]:
    if request.param.startswith("local"):
        if request.param == "local-sqlite":
            url = "sqlite:///" + os.path.join(str(tmp_path), "ledger.db").lstrip("/")
        else:
            url = str(request.getfixturevalue("postgres_database"))
        with open_ledger(parse_ledger_url(url)) as ledger:
            yield LocalBackend(ledger, ACTOR)
        return
    standin = ServiceNowStandIn().start()
    standin.instance.change_api = request.param == "servicenow"
    try:
        config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
        yield ServiceNowBackend(ServiceNowClient(config))
    finally:
        standin.stop()


def test_change_walk_approval_and_close(backend: ItsmBackend) -> None:
    change, created = backend.ensure_change("normal", {"correlation_id": "rel-1", "short_description": "x"}, None)
    assert created and change["state"] == "new" and change["approval"] == "not requested"
    again, created_again = backend.ensure_change("normal", {"correlation_id": "rel-1"}, None)
    assert not created_again and again["sys_id"] == change["sys_id"]
    change, passed = backend.move_to(change, "authorize", {})
    assert passed == ["assess", "authorize"] and change["approval"] == "requested"
    assert set(backend.next_states(change)) == {"new", "canceled"}
    change = backend.decide_approval(change, "approved", "fine")
    assert change["state"] == "scheduled" and change["approval"] == "approved"
    with pytest.raises(ITSMError, match=r"close_code|Close code"):
        backend.move_to(change, "closed", {})
    change = backend.require_change(sys_id=change["sys_id"])
    change, passed = backend.move_to(change, "closed", {"close_code": "successful", "close_notes": "ok"})
    assert change["state"] == "closed" and change["close_code"] == "successful" and passed[-1] == "closed"
    assert [a["state"] for a in backend.approvals(change)] == ["approved"]


def test_work_notes_and_cis_are_added_once(backend: ItsmBackend) -> None:
    host = backend.create_ci("cmdb_ci_linux_server", {"name": "db01"})
    change, _created = backend.ensure_change("emergency", {"correlation_id": "hot-1"}, None)
    assert not backend.has_work_note(change, "started")
    backend.add_work_note(change, "started")
    assert backend.has_work_note(change, "started")
    change = backend.require_change(sys_id=change["sys_id"])
    backend.add_change_cis(change, [host["sys_id"]])
    change = backend.require_change(sys_id=change["sys_id"])
    assert backend.change_cis(change) == [host["sys_id"]]


def test_wait_for_reports_the_rejecting_comment(backend: ItsmBackend) -> None:
    change, _created = backend.ensure_change("normal", {"correlation_id": "rej-1"}, None)
    change, _passed = backend.move_to(change, "authorize", {})
    backend.decide_approval(change, "rejected", "missing test plan")
    with pytest.raises(ITSMError, match=r"rejected by .*: missing test plan"):
        backend.wait_for(change, None, "approved", Backoff(timeout=1.0, initial=0.05), sleep=lambda _s: None)
    assert backend.require_change(sys_id=change["sys_id"])["state"] == "new"


def test_upsert_many_reads_in_batches_and_skips_unchanged(backend: ItsmBackend) -> None:
    items = [{"name": "app%03d" % i, "version": "1"} for i in range(150)]
    first = backend.upsert_many("cmdb_ci_appl", "name", items, check_mode=False)
    assert sum(changed for _ci, changed, _b, _a in first) == 150
    items[7]["version"] = "2"
    second = backend.upsert_many("cmdb_ci_appl", "name", items, check_mode=False)
    changed = [(after, before) for _ci, c, before, after in second if c]
    assert changed == [({"version": "2"}, {"version": "1"})]
    assert len(backend.find_cis("cmdb_ci_appl", {})) == 150


def test_impact_walks_relations_to_depth(backend: ItsmBackend) -> None:
    host = backend.create_ci("cmdb_ci_linux_server", {"name": "h1"})
    app = backend.create_ci("cmdb_ci_appl", {"name": "a1"})
    service = backend.create_ci("cmdb_ci_service", {"name": "s1"})
    assert backend.add_relation(app["sys_id"], host["sys_id"], "Runs on::Runs")
    assert not backend.add_relation(app["sys_id"], host["sys_id"], "Runs on::Runs")
    backend.add_relation(service["sys_id"], app["sys_id"], "Depends on::Used by")
    affected, services = backend.impact([host["sys_id"]], "upstream", 5)
    assert [(c["name"], c["depth"]) for c in affected] == [("a1", 1), ("s1", 2)]
    assert [s["name"] for s in services] == ["s1"]
    down, _services = backend.impact([service["sys_id"]], "downstream", 1)
    assert [c["name"] for c in down] == ["a1"]


def test_local_change_update_is_a_compare_and_swap(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        local = LocalBackend(ledger, ACTOR)
        change, _created = local.ensure_change("normal", {"correlation_id": "cas-1"}, None)
        local.set_state(change, "assess", {})
        with pytest.raises(LedgerError, match="moved on from state new"):
            local.set_state(change, "assess", {})
        assert [e["event"] for e in ledger.itsm_change_events(change["sys_id"])] == ["created", "state"]


def test_servicenow_standard_change_from_template_is_complete(servicenow: ServiceNowStandIn) -> None:
    servicenow.insert(
        "std_change_producer_version",
        {
            "name": "Restart web tier",
            "template_value": "short_description=Restart web^implementation_plan=rolling^risk=4",
        },
    )
    for change_api in (True, False):
        servicenow.instance.change_api = change_api
        config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
        backend = ServiceNowBackend(ServiceNowClient(config))
        change, _created = backend.ensure_change(
            "standard", {"correlation_id": "std-%s" % change_api}, "Restart web tier"
        )
        assert change["type"] == "standard" and change["approval"] == "approved"
        assert change["short_description"] == "Restart web" and change["implementation_plan"] == "rolling"
        change, passed = backend.move_to(change, "implement", {})
        assert passed == ["scheduled", "implement"]
        with pytest.raises(ITSMError, match="template 'Nope' is not on"):
            backend.ensure_change("standard", {"correlation_id": "std-x"}, "Nope")


def test_servicenow_conflicts_with_blackouts(servicenow: ServiceNowStandIn) -> None:
    schedule = servicenow.insert("cmn_schedule_blackout", {"name": "Year end freeze", "type": "blackout"})
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": schedule["sys_id"],
            "start_date_time": "2026-12-20 00:00:00",
            "end_date_time": "2027-01-03 00:00:00",
        },
    )
    config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
    backend = ServiceNowBackend(ServiceNowClient(config))
    inside, _created = backend.ensure_change(
        "normal",
        {"correlation_id": "c-1", "start_date": "2026-12-24 10:00:00", "end_date": "2026-12-24 11:00:00"},
        None,
    )
    outside, _created = backend.ensure_change(
        "normal",
        {"correlation_id": "c-2", "start_date": "2026-12-10 10:00:00", "end_date": "2026-12-10 11:00:00"},
        None,
    )
    assert [c["type"] for c in backend.conflicts(inside)] == ["blackout"]
    assert backend.conflicts(outside) == []


def test_servicenow_duplicate_correlation_ids_are_an_error_naming_every_change(
    servicenow: ServiceNowStandIn,
) -> None:
    closed = servicenow.insert("change_request", {"correlation_id": "rel-7", "state": "3", "type": "normal"})
    open_one = servicenow.insert("change_request", {"correlation_id": "rel-7", "state": "-5", "type": "normal"})
    config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
    backend = ServiceNowBackend(ServiceNowClient(config))
    numbers = "%s, %s" % (closed["number"], open_one["number"])
    with pytest.raises(ITSMError, match="2 changes on .* share correlation_id 'rel-7': %s;" % numbers):
        backend.ensure_change("normal", {"correlation_id": "rel-7", "short_description": "x"}, None)
    with pytest.raises(ITSMError, match=numbers):
        backend.get_change(correlation_id="rel-7")
    assert len(servicenow.records("change_request", "correlation_id=rel-7")) == 2
    assert backend.require_change(number=open_one["number"])["state"] == "new"


def test_servicenow_ire_inserts_then_reports_no_change(servicenow: ServiceNowStandIn) -> None:
    config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
    backend = ServiceNowBackend(ServiceNowClient(config))
    values = {"name": "web09", "serial_number": "SN-9"}
    first = backend.identify_reconcile("cmdb_ci_linux_server", values, "ServiceNow")
    second = backend.identify_reconcile("cmdb_ci_linux_server", values, "ServiceNow")
    assert (first["operation"], second["operation"]) == ("INSERT", "NO_CHANGE") and first["sysId"] == second["sysId"]
    with pytest.raises(ITSMError, match="Invalid data source"):
        backend.identify_reconcile("cmdb_ci_linux_server", values, "Spreadsheet")


def test_incidents_open_once_and_list_in_one_shape(backend: ItsmBackend) -> None:
    change, _created = backend.ensure_change("normal", {"correlation_id": "rel-inc", "short_description": "x"}, None)
    if isinstance(backend, ServiceNowBackend):
        backend.upsert_ci("cmdb_ci_service", ["name"], {"name": "payments"}, check_mode=False)
    wanted = {
        "short_description": "payments 1.4.2 breached its stabilization period",
        "description": "error ratio 0.3 above 0.01",
        "service": "payments",
        "environment": "production",
        "version": "1.4.2",
        "severity": "critical",
        "caused_by": change["number"],
        "correlation_id": "stabilization-7",
        "details": {"verdict": "fail"},
    }
    incident, opened = backend.ensure_incident(wanted)
    assert opened is True
    assert incident["number"].startswith("INC") and incident["state"] == "new"
    assert (incident["impact"], incident["urgency"], incident["priority"], incident["severity"]) == (
        "1",
        "1",
        "1",
        "critical",
    )
    assert incident["business_service"] == "payments" and incident["caused_by"] == change["number"]
    assert incident["correlation_id"] == "stabilization-7" and incident["resolved_at"] == ""
    assert "error ratio 0.3 above 0.01" in incident["description"]
    assert incident["opened_at"].endswith("Z"), incident["opened_at"]

    again, opened_again = backend.ensure_incident(dict(wanted, short_description="a retry"))
    assert opened_again is False and again["number"] == incident["number"]
    other, _opened = backend.ensure_incident(dict(wanted, correlation_id=None, severity="low", caused_by=None))
    assert (other["priority"], other["severity"], other["caused_by"]) == ("4", "low", "")

    assert [i["number"] for i in backend.list_incidents({}, None, 10)] == [other["number"], incident["number"]]
    assert [i["number"] for i in backend.list_incidents({"correlation_id": "stabilization-7"}, None, 10)] == [
        incident["number"]
    ]
    assert [i["number"] for i in backend.list_incidents({"caused_by": change["number"]}, None, 10)] == [
        incident["number"]
    ]
    assert [i["number"] for i in backend.list_incidents({"number": other["number"]}, None, 10)] == [other["number"]]
    assert len(backend.list_incidents({"business_service": "payments", "state": "new"}, None, 10)) == 2
    assert backend.list_incidents({"state": "resolved"}, None, 10) == []
    assert backend.list_incidents({"business_service": "billing"}, None, 10) == []
    with pytest.raises(ITSMError, match="incident state 'fixed' is unknown; use one of new, in_progress"):
        backend.list_incidents({"state": "fixed"}, None, 10)
    with pytest.raises(ITSMError, match="incident severity 'urgent' is unknown; use one of critical, high"):
        backend.ensure_incident(dict(wanted, severity="urgent", correlation_id="other"))


def test_servicenow_incident_references_must_exist(servicenow: ServiceNowStandIn) -> None:
    config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
    backend = ServiceNowBackend(ServiceNowClient(config))
    wanted = {"short_description": "down", "service": "payments", "environment": "prod", "caused_by": "CHG0099999"}
    with pytest.raises(ITSMError, match=r"incident caused_by 'CHG0099999' is not on .*no change_request with number"):
        backend.create_incident(wanted)
    assert servicenow.records("incident") == []
    incident = backend.create_incident(dict(wanted, caused_by=None, assignment_group="CAB Approval", caller="admin"))
    assert incident["assignment_group"] == "CAB Approval" and incident["caller_id"] == "System Administrator"
    assert incident["business_service"] == "", "no cmdb_ci_service named payments exists, so none is referenced"
    (stored,) = servicenow.records("incident")
    assert "Service payments in prod." in stored["description"]


def test_servicenow_incident_is_opened_once_through_an_ambiguous_failure(servicenow: ServiceNowStandIn) -> None:
    config = resolve_instance({"host": servicenow.url, "username": "admin", "password": "admin-secret"}, {})
    backend = ServiceNowBackend(ServiceNowClient(config))
    # The POST is handled, then the connection drops: the client cannot know the incident exists.
    servicenow.instance.faults.queue.extend(["", "", "reset_after"])
    incident, opened = backend.ensure_incident(
        {"short_description": "down", "service": "payments", "environment": "prod", "correlation_id": "brk-1"}
    )
    assert opened is True and servicenow.instance.faults.injected == {"reset_after": 1}
    assert [r["number"] for r in servicenow.records("incident")] == [incident["number"]]


def _deploy(
    backend: ItsmBackend, environment: str, version: str, hosts: list[str], check_mode: bool = False, prune: bool = True
) -> ServiceDeployment:
    found = [backend.find_cis("cmdb_ci_server", {"name": name})[0] for name in hosts]
    name = environment_ci_name("payments-api", environment)
    return record_service_deployment(backend, name, environment, version, found, "cmdb_ci_appl", prune, check_mode)


def _runs_on(backend: ItsmBackend, ci: dict[str, str]) -> list[str]:
    children = [r["child"] for r in backend.relations(ci["sys_id"], "downstream") if r["type"] == "Runs on::Runs"]
    return sorted(host["name"] for host in backend.get_cis(children))


def test_each_environment_has_its_own_service_ci(backend: ItsmBackend) -> None:
    for host in ("web01", "stg01"):
        backend.create_ci("cmdb_ci_linux_server", {"name": host})
    _deploy(backend, "production", "1.9.0", ["web01"])
    _deploy(backend, "staging", "2.0.0", ["stg01"])
    cis = {ci["name"]: ci for ci in backend.find_cis("cmdb_ci_appl", {})}
    assert sorted(cis) == ["payments-api (production)", "payments-api (staging)"]
    production, staging = cis["payments-api (production)"], cis["payments-api (staging)"]
    assert (production["version"], production["environment"]) == ("1.9.0", "production")
    assert (staging["version"], staging["environment"]) == ("2.0.0", "staging")
    assert _runs_on(backend, production) == ["web01"] and _runs_on(backend, staging) == ["stg01"]
    assert not _deploy(backend, "staging", "2.0.0", ["stg01"]).changed, "a rerun writes nothing"
    # Each CI's last change is its own: the change that deployed to staging is not production's.
    for ci, number in ((production, "prod-1"), (staging, "stg-1")):
        change, _created = backend.ensure_change("normal", {"correlation_id": number}, None)
        backend.add_change_cis(change, [ci["sys_id"]])
    assert backend.ci_changes(production["sys_id"], 5)[0]["correlation_id"] == "prod-1"
    assert backend.ci_changes(staging["sys_id"], 5)[0]["correlation_id"] == "stg-1"


def test_a_host_that_leaves_loses_its_runs_on_relation(backend: ItsmBackend) -> None:
    for host in ("web01", "web02"):
        backend.create_ci("cmdb_ci_linux_server", {"name": host})
    first = _deploy(backend, "production", "1.9.0", ["web01", "web02"])
    assert first.added == ["web01", "web02"] and first.pruned == []
    planned = _deploy(backend, "production", "1.9.1", ["web01"], check_mode=True)
    assert planned.changed and planned.pruned == ["web02"]
    assert first.app is not None and _runs_on(backend, first.app) == ["web01", "web02"], "check mode removes nothing"
    kept = _deploy(backend, "production", "1.9.1", ["web01"], prune=False)
    assert kept.pruned == [] and _runs_on(backend, first.app) == ["web01", "web02"]
    done = _deploy(backend, "production", "1.9.2", ["web01"])
    assert done.changed and done.pruned == ["web02"] and _runs_on(backend, first.app) == ["web01"]
    assert not backend.remove_relation(first.app["sys_id"], done.app["sys_id"] if done.app else "", "Runs on::Runs")
    web02 = backend.find_cis("cmdb_ci_server", {"name": "web02"})[0]
    assert backend.relations(web02["sys_id"], "upstream") == [], "nothing runs on the host that left"


def test_a_service_name_reads_its_ci_in_the_environment(backend: ItsmBackend) -> None:
    legacy = backend.create_ci("cmdb_ci_appl", {"name": "payments-api", "version": "1.0.0"})
    older = resolve_ci(backend, "payments-api", "production")
    assert older["sys_id"] == legacy["sys_id"], "a CMDB written before CIs were per environment keeps working"
    production = backend.create_ci("cmdb_ci_appl", {"name": "payments-api (production)", "environment": "production"})
    assert resolve_ci(backend, "payments-api", "production")["sys_id"] == production["sys_id"]
    assert resolve_ci(backend, "payments-api")["sys_id"] == legacy["sys_id"]
    assert resolve_ci_ids(backend, [production["sys_id"]], "staging") == [production["sys_id"]]
    with pytest.raises(ITSMError, match=r"'ledger-api' \(nor 'ledger-api \(staging\)'\) matches 0 CIs"):
        resolve_ci(backend, "ledger-api", "staging")


def test_the_environment_ci_filter_names_the_ci_cmdb_deployment_writes() -> None:
    assert environment_ci("payments-api", "staging") == environment_ci_name("payments-api", "staging")
    assert environment_ci("payments-api", "staging") == "payments-api (staging)"
    with pytest.raises(AnsibleFilterError, match=r"environment_ci: service 'payments-api' and environment ''"):
        environment_ci("payments-api", "")
