"""Ledger write cost: recording deployments through the Ledger API against the
same rows inserted with raw sqlite3 in one connection (the baseline), measured
in the same run. Prints one JSON object.

    .venv/bin/python benchmarks/ledger_writes.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (  # noqa: E402
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor  # noqa: E402


def measure_ledger(path: str, rows: int) -> float:
    actor = Actor(run_id="bench", user="bench", host="bench")
    with open_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/"))) as ledger:
        started = time.perf_counter()
        for number in range(rows):
            ledger.record_deployment(actor, "svc", "1.0.%d" % number, "bench", "successful")
        return time.perf_counter() - started


def measure_baseline(path: str, rows: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(
        "CREATE TABLE deployments (id INTEGER PRIMARY KEY, service TEXT, version TEXT, environment TEXT, status TEXT)"
    )
    started = time.perf_counter()
    for number in range(rows):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "INSERT INTO deployments (service, version, environment, status) VALUES (?, ?, ?, ?)",
            ("svc", "1.0.%d" % number, "bench", "successful"),
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as folder:
        ledger_seconds = measure_ledger(os.path.join(folder, "ledger.db"), rows)
        baseline_seconds = measure_baseline(os.path.join(folder, "baseline.db"), rows)
    print(
        json.dumps(
            {
                "benchmark": "ledger_writes",
                "rows": rows,
                "ledger_seconds": round(ledger_seconds, 4),
                "baseline_seconds": round(baseline_seconds, 4),
                "ledger_ms_per_row": round(ledger_seconds * 1000 / rows, 4),
                "baseline_ms_per_row": round(baseline_seconds * 1000 / rows, 4),
                "ratio_to_baseline": round(ledger_seconds / baseline_seconds, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
