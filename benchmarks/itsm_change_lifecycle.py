"""Requests sent for one full change lifecycle (create, assess, authorize, approve, implement, review,
close) against the ServiceNow stand-in, through relops.release's backend with the Change Management API,
through its Table-API fallback, and for the baseline a thin Table-API layer does (look the change up by
number before every update, as servicenow.itsm's change_request module does per task). Measured in the
same run. Prints one JSON object.

    .venv/bin/python benchmarks/itsm_change_lifecycle.py [--changes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
sys.path.insert(0, os.path.join(REPO, "tests"))

from servicenow.server import ServiceNowStandIn  # noqa: E402

from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.itsm.query import Query  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import (  # noqa: E402
    ServiceNowBackend,
)

CLOSE = {"close_code": "successful", "close_notes": "done"}


def client_for(standin: ServiceNowStandIn) -> ServiceNowClient:
    config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
    return ServiceNowClient(config)


def lifecycle_relops(standin: ServiceNowStandIn, changes: int) -> Dict[str, Any]:
    backend = ServiceNowBackend(client_for(standin))
    started = time.perf_counter()
    for number in range(changes):
        change, _created = backend.ensure_change("normal", {"correlation_id": "rel-%d" % number}, None)
        change, _passed = backend.move_to(change, "authorize", {})
        change = backend.decide_approval(change, "approved", "ok")
        backend.move_to(change, "closed", CLOSE)
    return {
        "requests_per_change": round(backend.client.requests_sent / changes, 2),
        "seconds": round(time.perf_counter() - started, 3),
    }


def lifecycle_baseline(standin: ServiceNowStandIn, changes: int) -> Dict[str, Any]:
    client = client_for(standin)
    started = time.perf_counter()
    for number in range(changes):
        created = client.create_record("change_request", {"type": "normal", "correlation_id": "base-%d" % number})
        query = str(Query().equals("number", created["number"]))
        for state in ("-4", "-3"):
            sys_id = client.list_records("change_request", query, limit=1)[0]["sys_id"]
            client.update_record("change_request", sys_id, {"state": state})
        sys_id = client.list_records("change_request", query, limit=1)[0]["sys_id"]
        approval = client.list_records("sysapproval_approver", str(Query().equals("sysapproval", sys_id)), limit=1)[0]
        client.update_record("sysapproval_approver", approval["sys_id"], {"state": "approved"})
        for state, extra in (("-1", {}), ("0", {}), ("3", CLOSE)):
            sys_id = client.list_records("change_request", query, limit=1)[0]["sys_id"]
            client.update_record("change_request", sys_id, dict(extra, state=state))
    return {
        "requests_per_change": round(client.requests_sent / changes, 2),
        "seconds": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=20, help="how many lifecycles to average over")
    options = parser.parse_args()
    results: Dict[str, Any] = {}
    for label, change_api in (("relops_change_api", True), ("relops_table_api", False)):
        standin = ServiceNowStandIn().start()
        standin.instance.change_api = change_api
        try:
            results[label] = lifecycle_relops(standin, options.changes)
        finally:
            standin.stop()
    standin = ServiceNowStandIn().start()
    try:
        results["baseline_table_api"] = lifecycle_baseline(standin, options.changes)
    finally:
        standin.stop()
    base = results["baseline_table_api"]["requests_per_change"]
    print(
        json.dumps(
            {
                "benchmark": "itsm_change_lifecycle",
                "changes": options.changes,
                **results,
                "request_ratio_change_api": round(results["relops_change_api"]["requests_per_change"] / base, 3),
                "request_ratio_table_api": round(results["relops_table_api"]["requests_per_change"] / base, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
