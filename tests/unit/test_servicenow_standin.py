"""The stand-in's own contract: encoded-query operators, display values, reference links, pagination."""

from __future__ import annotations

import requests
from servicenow.query import compile_query
from servicenow.server import ServiceNowStandIn

RECORDS = [
    {"name": "web01", "state": "-1", "version": "", "sys_created_on": "1"},
    {"name": "web02", "state": "0", "version": "2.0", "sys_created_on": "2"},
    {"name": "db01", "state": "-1", "version": "1.0", "sys_created_on": "3"},
]


def _names(query: str) -> list[str]:
    matches, order = compile_query(query)
    found = [r for r in RECORDS if matches(r)]
    for column, descending in reversed(order):
        found.sort(key=lambda r, c=column: r[c], reverse=descending)
    return [r["name"] for r in found]


def test_encoded_query_operators() -> None:
    assert _names("state=-1") == ["web01", "db01"]
    assert _names("state!=-1") == ["web02"]
    assert _names("nameSTARTSWITHweb^state=-1") == ["web01"]
    assert _names("name=db01^ORname=web02^ORDERBYname") == ["db01", "web02"]
    assert _names("stateIN0,-1^ORDERBYDESCname") == ["web02", "web01", "db01"]
    assert _names("nameLIKEB0") == ["web01", "web02", "db01"]
    assert _names("versionISEMPTY") == ["web01"] and _names("versionISNOTEMPTY") == ["web02", "db01"]
    assert _names("name=web01^NQname=db01") == ["web01", "db01"]
    assert _names("nameENDSWITH01") == ["web01", "db01"] and _names("nameNOT LIKEweb") == ["db01"]
    assert _names("version>1.5") == ["web02"] and _names("version<=1.0") == ["db01"]
    assert _names("sys_created_on>=2") == ["web02", "db01"] and _names("sys_created_on<2") == ["web01"]
    assert _names("sys_created_onBETWEEN2@3") == ["web02", "db01"]
    assert _names("sys_created_onBETWEENjavascript:gs.dateGenerate('1','')@2") == ["web01", "web02"]


def test_unknown_fields_are_ignored() -> None:
    known = {"name", "state"}
    matches, order = compile_query("u_missing=1^name=db01^ORDERBYu_missing", known.__contains__)
    assert [r["name"] for r in RECORDS if matches(r)] == ["db01"] and order == []


def test_table_api_shapes(servicenow: ServiceNowStandIn) -> None:
    auth = ("admin", "admin-secret")
    group = servicenow.records("sys_user_group", "name=CAB Approval")[0]
    created = requests.post(
        servicenow.url + "/api/now/table/change_request",
        json={"short_description": "x", "assignment_group": group["sys_id"], "not_a_column": "ignored"},
        auth=auth,
        timeout=10,
    )
    assert created.status_code == 201 and created.headers["Location"].endswith(created.json()["result"]["sys_id"])
    record = created.json()["result"]
    assert "not_a_column" not in record and record["number"].startswith("CHG") and record["state"] == "-5"
    assert record["assignment_group"]["link"].endswith("/api/now/table/sys_user_group/%s" % group["sys_id"])
    shown = requests.get(
        servicenow.url + "/api/now/table/change_request",
        params={"sysparm_display_value": "all", "sysparm_fields": "state,assignment_group", "sysparm_limit": "1"},
        auth=auth,
        timeout=10,
    )
    assert shown.json()["result"] == [
        {
            "state": {"display_value": "New", "value": "-5"},
            "assignment_group": {"display_value": "CAB Approval", "value": group["sys_id"]},
        }
    ]
    assert shown.headers["X-Total-Count"] == "1" and 'rel="first"' in shown.headers["Link"]
    missing = requests.get(servicenow.url + "/api/now/table/change_request/" + "0" * 32, auth=auth, timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"},
        "status": "failure",
    }
    refused = requests.get(servicenow.url + "/api/now/table/sys_user", auth=("admin", "no"), timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "User Not Authenticated"


def test_incident_table_rules(servicenow: ServiceNowStandIn) -> None:
    auth = ("admin", "admin-secret")
    url = servicenow.url + "/api/now/table/incident"
    created = requests.post(
        url, json={"short_description": "down", "impact": "2", "urgency": "1"}, auth=auth, timeout=10
    )
    assert created.status_code == 201
    record = created.json()["result"]
    assert record["number"].startswith("INC") and (record["state"], record["priority"]) == ("1", "2")
    assert record["active"] == "true" and record["opened_at"] and record["resolved_at"] == ""
    refused = requests.patch(url + "/" + record["sys_id"], json={"state": "6"}, auth=auth, timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"]["detail"] == "Data Policy Exception: Resolution code and Resolution notes mandatory"
    resolved = requests.patch(
        url + "/" + record["sys_id"],
        params={"sysparm_display_value": "all", "sysparm_fields": "state,resolved_at,resolved_by,priority"},
        json={"state": "6", "close_code": "Solved (Permanently)", "close_notes": "rolled back", "urgency": "3"},
        auth=auth,
        timeout=10,
    ).json()["result"]
    assert resolved["state"] == {"display_value": "Resolved", "value": "6"}
    assert resolved["resolved_at"]["value"] and resolved["resolved_by"]["display_value"] == "System Administrator"
    assert resolved["priority"]["value"] == "4", "priority follows impact 2 and urgency 3"
    bad = requests.post(url, json={"short_description": "x", "state": "5"}, auth=auth, timeout=10)
    assert bad.status_code == 400 and len(servicenow.records("incident")) == 1
