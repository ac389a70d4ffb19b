"""The ServiceNow stand-in driven by someone else's client: pysnow (PyPI), over the documented contract.

The collection's ServiceNow support is proven against tests/servicenow/; this suite proves the stand-in
itself answers a widely used third-party Table API client the way the documentation says an instance
does (tests/servicenow/schema.py names the documentation of every table and endpoint). pysnow sends
Python's ``True``/``False`` for sysparm_display_value, builds encoded queries with its QueryBuilder,
updates with GET-then-PUT and deletes with GET-then-DELETE, so a filter the stand-in ignored would make
it update or delete the wrong record (pysnow's ``one()`` refuses more than one match).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pysnow
import pytest
import requests
from servicenow.server import ServiceNowStandIn

USER, PASSWORD = "admin", "admin-secret"


@pytest.fixture
def client(servicenow: ServiceNowStandIn) -> Iterator[pysnow.Client]:
    snow = pysnow.Client(host=servicenow.url.split("://", 1)[1], user=USER, password=PASSWORD, use_ssl=False)
    try:
        yield snow
    finally:
        snow.close()


def _error(exc: pytest.ExceptionInfo[requests.HTTPError]) -> tuple[int, dict[str, Any]]:
    response = exc.value.response
    assert response is not None
    return response.status_code, response.json()


def test_change_request_crud_by_field_filter_and_encoded_query(
    client: pysnow.Client, servicenow: ServiceNowStandIn
) -> None:
    changes = client.resource(api_path="/table/change_request")
    first = changes.create({"short_description": "deploy a", "correlation_id": "conf-a"}).one()
    second = changes.create({"short_description": "deploy b", "correlation_id": "conf-b"}).one()
    # Dictionary defaults a new change gets (Task and Change request tables).
    admin = servicenow.records("sys_user", "user_name=admin")[0]["sys_id"]
    assert first["opened_at"] and first["opened_by"]["value"] == admin
    assert (first["urgency"], first["on_hold"], first["active"], first["state"]) == ("3", "false", "true", "-5")

    # A name-value pair is a filter (Table API "name-value pairs"): pysnow sends it as a plain parameter.
    by_pair = client.resource(api_path="/table/change_request")
    by_pair.parameters.add_custom({"number": second["number"]})
    assert [r["sys_id"] for r in by_pair.get().all()] == [second["sys_id"]]
    for column in ("sys_id", "correlation_id"):
        pair = client.resource(api_path="/table/change_request")
        pair.parameters.add_custom({column: first[column]})
        assert [r["number"] for r in pair.get().all()] == [first["number"]]
    assert changes.get(query={"number": first["number"]}).one()["sys_id"] == first["sys_id"]
    users = client.resource(api_path="/table/sys_user")
    users.parameters.add_custom({"user_name": "cab.manager"})
    assert [r["name"] for r in users.get().all()] == ["CAB Manager"]

    # Update and delete find their record by a filter first: they must touch only that one.
    changes.update({"number": second["number"]}, {"short_description": "deploy b, changed", "impact": "2"})
    assert servicenow.records("change_request", "number=%s" % first["number"])[0]["short_description"] == "deploy a"
    assert servicenow.records("change_request", "number=%s" % second["number"])[0]["impact"] == "2"
    query = pysnow.QueryBuilder().field("short_description").ends_with("changed")
    assert [r["number"] for r in changes.get(query=query).all()] == [second["number"]]
    changes.delete({"number": first["number"]})
    assert [r["number"] for r in servicenow.records("change_request")] == [second["number"]]


def test_encoded_query_operators_through_pysnow(client: pysnow.Client, servicenow: ServiceNowStandIn) -> None:
    servers = client.resource(api_path="/table/cmdb_ci_server")
    for index, name in enumerate(("web01", "web02", "db01", "db02"), start=1):
        servers.create({"name": name, "cpu_count": str(index * 4), "ip_address": "10.0.0.%d" % index})

    def names(query: Any) -> list[str]:
        return sorted(r["name"] for r in servers.get(query=query).all())

    field = pysnow.QueryBuilder
    assert names(field().field("name").ends_with("01")) == ["db01", "web01"]
    assert names(field().field("name").not_contains("WEB")) == ["db01", "db02"]
    assert names(field().field("cpu_count").greater_than(8)) == ["db01", "db02"]
    assert names(field().field("cpu_count").greater_than_or_equal(8)) == ["db01", "db02", "web02"]
    assert names(field().field("cpu_count").less_than(8)) == ["web01"]
    assert names(field().field("cpu_count").less_than_or_equal(8)) == ["web01", "web02"]
    assert names(field().field("cpu_count").between(5, 12)) == ["db01", "web02"]
    day = datetime.datetime.now(datetime.timezone.utc)
    window = (
        field().field("sys_created_on").between(day - datetime.timedelta(hours=1), day + datetime.timedelta(hours=1))
    )
    assert names(window) == ["db01", "db02", "web01", "web02"]
    # An unknown field's term is ignored, not a filter that matches nothing (Table API, sysparm_query).
    assert names("u_no_such_field=1^name=web02") == ["web02"]
    unknown_pair = client.resource(api_path="/table/cmdb_ci_server")
    unknown_pair.parameters.add_custom({"u_no_such_field": "x", "name": "db02"})
    assert [r["name"] for r in unknown_pair.get().all()] == ["db02"]


def test_incident_crud_and_display_values(client: pysnow.Client, servicenow: ServiceNowStandIn) -> None:
    incidents = client.resource(api_path="/table/incident")
    created = incidents.create({"short_description": "checkout down", "impact": "1", "urgency": "2"}).one()
    assert created["number"].startswith("INC") and created["priority"] == "2" and created["active"] == "true"
    # pysnow sends sysparm_display_value=True (Python's spelling); choice fields read as their labels.
    shown = incidents.get(query={"number": created["number"]}, display_value=True).one()
    assert (shown["state"], shown["impact"], shown["urgency"], shown["priority"]) == (
        "New",
        "1 - High",
        "2 - Medium",
        "2 - High",
    )
    both = incidents.get(query={"number": created["number"]}, display_value="all").one()
    assert both["priority"] == {"display_value": "2 - High", "value": "2"}
    raw = incidents.get(query={"number": created["number"]}, display_value=False).one()
    assert raw["state"] == "1"
    incidents.update(
        {"number": created["number"]}, {"state": "6", "close_code": "Solved (Permanently)", "close_notes": "pool"}
    )
    resolved = incidents.get(query={"number": created["number"]}).one()
    assert resolved["state"] == "6" and resolved["resolved_at"]
    incidents.delete({"number": created["number"]})
    assert servicenow.records("incident") == []


def test_ci_columns_relations_and_pagination(client: pysnow.Client, servicenow: ServiceNowStandIn) -> None:
    servers = client.resource(api_path="/table/cmdb_ci_server")
    admin = servicenow.records("sys_user", "user_name=admin")[0]["sys_id"]
    values = {"name": "app01", "mac_address": "52:54:00:12:34:56", "assigned_to": admin, "install_status": "1"}
    app = servers.create(values).one()
    other = servers.create({"name": "app02"}).one()
    # Documented columns are kept, so a rerun that writes the same values finds nothing to change.
    read = servers.get(query={"sys_id": app["sys_id"]}, exclude_reference_link=True).one()
    assert {key: read[key] for key in values} == values
    labelled = servers.get(query={"sys_id": app["sys_id"]}, display_value=True).one()
    assert labelled["install_status"] == "Installed" and labelled["assigned_to"] == "System Administrator"

    types = client.resource(api_path="/table/cmdb_rel_type")
    runs_on = types.get(query={"name": "Runs on::Runs"}).one()
    types.update({"sys_id": runs_on["sys_id"]}, {"sys_name": "Runs on::Runs"})
    assert types.get(query={"sys_id": runs_on["sys_id"]}).one()["sys_name"] == "Runs on::Runs"

    relations = client.resource(api_path="/table/cmdb_rel_ci")
    relation = relations.create({"parent": app["sys_id"], "child": other["sys_id"], "type": runs_on["sys_id"]}).one()
    found = relations.get(query={"parent": app["sys_id"]}, exclude_reference_link=True).one()
    assert (found["child"], found["type"]) == (other["sys_id"], runs_on["sys_id"])
    relations.delete({"sys_id": relation["sys_id"]})
    assert servicenow.records("cmdb_rel_ci") == []

    for index in range(3, 8):
        servers.create({"name": "app%02d" % index})
    pages = [
        [r["name"] for r in servers.get(query="ORDERBYname", limit=3, offset=offset).all()] for offset in (0, 3, 6)
    ]
    assert pages == [["app01", "app02", "app03"], ["app04", "app05", "app06"], ["app07"]]
    response = servers.get(query="ORDERBYname", limit=3, offset=3)
    response.all()
    assert response.headers["X-Total-Count"] == "7" and 'rel="next"' in response.headers["Link"]


def test_error_shapes(client: pysnow.Client) -> None:
    changes = client.resource(api_path="/table/change_request")
    with pytest.raises(requests.HTTPError) as bad_body:
        changes.request("POST", data="{not json", headers={"Content-Type": "application/json"}).one()
    assert _error(bad_body) == (
        400,
        {
            "error": {"message": "Exception while reading request", "detail": "The payload is not valid JSON."},
            "status": "failure",
        },
    )
    limited = client.resource(api_path="/table/change_request")
    limited.parameters.add_custom({"sysparm_limit": "ten"})
    with pytest.raises(requests.HTTPError) as bad_limit:
        limited.get().all()
    status, body = _error(bad_limit)
    assert status == 400 and body["status"] == "failure" and "sysparm_limit" in body["error"]["message"]
    with pytest.raises(requests.HTTPError) as missing:
        changes.request("GET", path_append="/" + "0" * 32).one()
    assert _error(missing)[0] == 404 and _error(missing)[1]["error"]["message"] == "No Record found"
    with pytest.raises(pysnow.exceptions.NoResults):
        changes.get(query={"number": "CHG9999999"}).one()
    with pytest.raises(requests.HTTPError) as unknown_table:
        client.resource(api_path="/table/u_no_such_table").get().all()
    assert _error(unknown_table)[0] == 400


def test_attachments(client: pysnow.Client, servicenow: ServiceNowStandIn, tmp_path: Path) -> None:
    changes = client.resource(api_path="/table/change_request")
    change = changes.create({"short_description": "with a plan"}).one()
    plan = tmp_path / "plan.txt"
    plan.write_text("1. drain\n2. deploy\n")
    uploaded = changes.attachments.upload(change["sys_id"], str(plan)).one()
    assert (uploaded["file_name"], uploaded["table_name"], uploaded["table_sys_id"]) == (
        "plan.txt",
        "change_request",
        change["sys_id"],
    )
    assert uploaded["content_type"] == "text/plain" and uploaded["size_bytes"] == str(plan.stat().st_size)
    listed = changes.attachments.get(change["sys_id"])
    assert [a["sys_id"] for a in listed] == [uploaded["sys_id"]]
    download = client.session.get(uploaded["download_link"], timeout=10)
    assert download.status_code == 200 and download.content == plan.read_bytes()
    assert download.headers["Content-Type"] == "text/plain"
    changes.attachments.delete(uploaded["sys_id"])
    assert changes.attachments.get(change["sys_id"]) == []
    with pytest.raises(requests.HTTPError) as nowhere:
        changes.attachments.upload("0" * 32, str(plan)).one()
    assert _error(nowhere)[0] == 404


def test_cmdb_instance_api(client: pysnow.Client, servicenow: ServiceNowStandIn) -> None:
    servers = client.resource(api_path="/cmdb/instance/cmdb_ci_linux_server")
    host = servers.request(
        "POST", data=json.dumps({"attributes": {"name": "lnx01", "ip_address": "10.1.0.1"}, "source": "ServiceNow"})
    ).one()
    host_id = host["attributes"]["sys_id"]
    apps = client.resource(api_path="/cmdb/instance/cmdb_ci_appl")
    runs_on = servicenow.records("cmdb_rel_type", "name=Runs on::Runs")[0]["sys_id"]
    app = apps.request(
        "POST",
        data=json.dumps(
            {
                "attributes": {"name": "payments"},
                "source": "ServiceNow",
                "outbound_relations": [{"type": runs_on, "target": host_id}],
            }
        ),
    ).one()
    app_id = app["attributes"]["sys_id"]
    assert [(r["type"]["display_value"], r["target"]["value"]) for r in app["outbound_relations"]] == [
        ("Runs on::Runs", host_id)
    ]
    read = servers.request("GET", path_append="/" + host_id).one()
    assert [r["target"]["display_value"] for r in read["inbound_relations"]] == ["payments"]
    assert [r["name"] for r in servers.get(query="nameSTARTSWITHlnx").all()] == ["lnx01"]
    patched = servers.request(
        "PATCH",
        path_append="/" + host_id,
        data=json.dumps({"attributes": {"fqdn": "lnx01.lab"}, "source": "ServiceNow"}),
    ).one()
    assert patched["attributes"]["fqdn"] == "lnx01.lab"
    relation = app["outbound_relations"][0]["sys_id"]
    deleted = apps.request("DELETE", path_append="/%s/relation/%s" % (app_id, relation))
    assert deleted._response.status_code == 204
    assert servicenow.records("cmdb_rel_ci") == []
    with pytest.raises(requests.HTTPError) as unsourced:
        servers.request("POST", data=json.dumps({"attributes": {"name": "lnx02"}})).one()
    assert _error(unsourced)[0] == 400
