"""CMDB upserts against the ServiceNow stand-in: relops.release's batched upsert (one IN read per hundred
CIs, a write only for what differs) against one read plus one write per CI (the baseline), measured in
the same run on two fresh instances. Prints one JSON object.

The issue's headline figure (10,000 CIs, 10% of them changed on the second pass):

    .venv/bin/python benchmarks/itsm_cmdb_upsert.py --cis 10000

The default (1,000 CIs) finishes in well under two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List

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

CLASS = "cmdb_ci_linux_server"


def items(count: int, changed_every: int = 0) -> List[Dict[str, Any]]:
    """The estate: ``count`` servers; every ``changed_every``-th one has a new IP address."""
    return [
        {
            "name": "srv%05d" % i,
            "serial_number": "SN%05d" % i,
            "ip_address": "10.%d.%d.%d" % (i // 65536, (i // 256) % 256, i % 256)
            if not (changed_every and i % changed_every == 0)
            else "192.168.%d.%d" % ((i // 256) % 256, i % 256),
        }
        for i in range(count)
    ]


def client_for(standin: ServiceNowStandIn) -> ServiceNowClient:
    config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
    return ServiceNowClient(config)


def run_batched(estate: List[Dict[str, Any]], resync: List[Dict[str, Any]]) -> Dict[str, Any]:
    standin = ServiceNowStandIn().start()
    try:
        backend = ServiceNowBackend(client_for(standin))
        started = time.perf_counter()
        backend.upsert_many(CLASS, "name", estate, check_mode=False)
        load_requests, load_seconds = backend.client.requests_sent, time.perf_counter() - started
        started = time.perf_counter()
        outcomes = backend.upsert_many(CLASS, "name", resync, check_mode=False)
        return {
            "load_requests": load_requests,
            "load_seconds": round(load_seconds, 3),
            "resync_requests": backend.client.requests_sent - load_requests,
            "resync_seconds": round(time.perf_counter() - started, 3),
            "resync_writes": sum(1 for _ci, changed, _b, _a in outcomes if changed),
        }
    finally:
        standin.stop()


def upsert_naively(client: ServiceNowClient, item: Dict[str, Any]) -> None:
    """The baseline: read the CI by name, then always write it (create or update)."""
    found = client.list_records(CLASS, str(Query().equals("name", item["name"])), limit=1)
    if found:
        client.update_record(CLASS, found[0]["sys_id"], item)
    else:
        client.create_record(CLASS, item)


def run_baseline(estate: List[Dict[str, Any]], resync: List[Dict[str, Any]]) -> Dict[str, Any]:
    standin = ServiceNowStandIn().start()
    try:
        client = client_for(standin)
        started = time.perf_counter()
        for item in estate:
            upsert_naively(client, item)
        load_requests, load_seconds = client.requests_sent, time.perf_counter() - started
        started = time.perf_counter()
        for item in resync:
            upsert_naively(client, item)
        return {
            "load_requests": load_requests,
            "load_seconds": round(load_seconds, 3),
            "resync_requests": client.requests_sent - load_requests,
            "resync_seconds": round(time.perf_counter() - started, 3),
            "resync_writes": len(resync),
        }
    finally:
        standin.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cis", type=int, default=1000, help="how many CIs to upsert (the issue's figure: 10000)")
    parser.add_argument("--changed-every", type=int, default=10, help="every Nth CI changes on the second pass")
    options = parser.parse_args()
    estate = items(options.cis)
    resync = items(options.cis, options.changed_every)
    batched = run_batched(estate, resync)
    baseline = run_baseline(estate, resync)
    print(
        json.dumps(
            {
                "benchmark": "itsm_cmdb_upsert",
                "cis": options.cis,
                "changed_on_resync": sum(1 for a, b in zip(estate, resync, strict=True) if a != b),
                "relops": batched,
                "baseline_read_plus_write": baseline,
                "resync_request_ratio": round(batched["resync_requests"] / baseline["resync_requests"], 4),
                "resync_time_ratio": round(batched["resync_seconds"] / max(baseline["resync_seconds"], 1e-9), 4),
                "load_request_ratio": round(batched["load_requests"] / baseline["load_requests"], 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
