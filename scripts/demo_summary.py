#!/usr/bin/env python
"""Print the demo's closing summary from the release ledger.

Usage: demo_summary.py <state dir> <site url> <log file> <audit verdict> <report path>
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (  # noqa: E402
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (  # noqa: E402
    MetricsRequest,
    compute,
    resolve_window,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (  # noqa: E402
    STAGES,
    ReleaseRecordStore,
)


def main() -> None:
    state, url, log, verdict, report = sys.argv[1:6]
    with open_ledger(parse_ledger_url("sqlite:///" + os.path.join(state, "ledger.db").lstrip("/"))) as ledger:
        runs = [run for run in ledger.list_runs(limit=50) if (run.get("summary") or {}).get("version")]
        releases = list(reversed(runs[:3]))
        incidents = ledger.list_incidents(service="demo-app")
        store = ReleaseRecordStore(ledger)
        records = {
            run["summary"].get("release_id"): store.get_record(run["summary"].get("release_id") or "")
            for run in releases
        }
        start, end = resolve_window("30d", None, None, "UTC")
        dora = compute(ledger, MetricsRequest("local", start, end, "UTC", "day", 86400, group_by="team"))
    print("Releases (newest last):")
    for run in releases:
        summary = run["summary"]
        line = "  %-6s %-10s risk %-9s gate %-6s change %-11s" % (
            summary["version"],
            summary.get("outcome", run["status"]),
            summary.get("risk") or "-",
            summary.get("gate") or "-",
            summary.get("change") or "-",
        )
        if summary.get("outcome") == "failed":
            line += " failed at %s; application %s; %s; change closed %s; incident %s" % (
                summary.get("failed_stage"),
                summary.get("application"),
                summary.get("schema"),
                summary.get("change_closed"),
                summary.get("incident"),
            )
        print(line)
        record = records.get(summary.get("release_id"))
        if record is not None:
            print(
                "         record %s: %d stages (%s), signed by %s, approved by %s, permit %s"
                % (
                    record["release_id"],
                    len(record["stages"]),
                    ", ".join(stage for stage in STAGES if stage in record["stages"]),
                    ", ".join(key[:16] for key in summary.get("signers") or []) or "nobody",
                    ", ".join(approvers(record)) or "nobody",
                    record["permit_id"] or "none",
                )
            )
    print("Incidents recorded for demo-app: %d" % len(incidents))
    print_delivery(dora)
    print("Audit trail: %s" % verdict)
    print("Report: %s" % report)
    with urllib.request.urlopen(url + "/", timeout=5) as response:
        live = json.load(response)
    print("Site: %s serves demo-app %s" % (url, live["version"]))
    print("Log of every playbook run: %s" % log)


def approvers(record: dict[str, Any]) -> list[str]:
    """Who approved the release's change, as its record's change stage says (the demo's second identity)."""
    return [str(who) for who in (record["stages"].get("change") or {}).get("approvers") or []]


def print_delivery(dora: dict[str, Any]) -> None:
    """The DORA figures over the release records, as the dashboard shows them (docs/metrics.md)."""
    summary = dora["summary"]
    failures = summary["change_failure_rate"]
    lead = summary["lead_time"]["median_hours"]
    recovery = summary["recovery_time"]["median_seconds"]
    source = {"releases": "release records", "deployments": "deployments table"}[dora["window"]["source"]]
    print("Delivery (DORA over the %s, last 30 days):" % source)
    print(
        "  successful releases %d; change failure rate %s (%d of %d deployed releases); lead time %s;"
        " recovery %s; teams %s"
        % (
            summary["deployment_frequency"]["deployments"],
            "-" if failures["rate"] is None else "%.1f %%" % (failures["rate"] * 100),
            failures["failures"],
            failures["deployments"],
            "-" if lead is None else "%.1f h (median of %d)" % (lead, summary["lead_time"]["samples"]),
            "-" if recovery is None else "%.0f s (median)" % recovery,
            ", ".join(sorted(dora.get("groups") or {})) or "(none)",
        )
    )


if __name__ == "__main__":
    main()
