"""DORA metrics over release records (docs/metrics.md, "Release records: one release, one unit"):
relops.release.dora_metrics' computation with source releases over a generated SQLite ledger (the
counting in SQL), against the baseline of only reading the window's release rows into Python (what
any client-side computation must do first), measured in the same run. Prints one JSON object.

    .venv/bin/python benchmarks/metrics_releases.py                       # 100,000 releases
    .venv/bin/python benchmarks/metrics_releases.py --releases 1000000

Releases are spread over 90 days, 200 services and 20 teams: 85 % successful, 7 % rolled back,
3 % failed, 5 % aborted; each deployed one has a deployment stage, each rolled-back one a rollback
stage. Rows go in by multi-row INSERTs (the store writes one release at a time, far too slowly to
generate a large ledger); the metrics then read them as they read what releases recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (  # noqa: E402
    Ledger,
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (  # noqa: E402
    MetricsRequest,
    compute,
    resolve_window,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor  # noqa: E402

DAYS = 90
FIRST = datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)
OUTCOMES = (("successful", 85), ("rolled_back", 7), ("failed", 3), ("aborted", 5))


def generate(count: int) -> Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]]]:
    pick = random.Random(18)
    releases: List[Tuple[Any, ...]] = []
    stages: List[Tuple[Any, ...]] = []
    outcomes = [name for name, _weight in OUTCOMES]
    weights = [weight for _name, weight in OUTCOMES]
    for number in range(count):
        started = FIRST + datetime.timedelta(seconds=number * DAYS * 86400 / count)
        finished = started + datetime.timedelta(minutes=10)
        outcome = pick.choices(outcomes, weights)[0]
        release_id = "svc%d@%d/production/bench" % (number % 200, number)
        releases.append(
            (
                release_id,
                "svc%d" % (number % 200),
                "production",
                str(number),
                "sha256:bench",
                1,
                "bench",
                "bench",
                "team%d" % (number % 20),
                format_timestamp(started - datetime.timedelta(hours=pick.randint(1, 72))),
                outcome,
                format_timestamp(started),
                format_timestamp(finished),
                format_timestamp(finished),
            )
        )
        if outcome != "aborted":
            stages.append((release_id, "deployment", format_timestamp(started + datetime.timedelta(minutes=2)), "{}"))
        if outcome == "rolled_back":
            stages.append((release_id, "rollback", format_timestamp(finished), "{}"))
    return releases, stages


def fill(ledger: Ledger, releases: List[Tuple[Any, ...]], stages: List[Tuple[Any, ...]]) -> None:
    ledger.touch_run(current_actor(environ={"RELOPS_RUN_ID": "bench"}))
    with ledger.backend.transaction(write=True) as cursor:
        for offset in range(0, len(releases), 500):
            chunk = releases[offset : offset + 500]
            cursor.execute(
                "INSERT INTO releases (release_id, service, environment, version, digest, attempt, run_id, actor,"
                " team, commit_time, outcome, started_at, updated_at, finished_at) VALUES "
                + ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _row in chunk),
                [value for row in chunk for value in row],
            )
        for offset in range(0, len(stages), 500):
            chunk = stages[offset : offset + 500]
            cursor.execute(
                "INSERT INTO release_stages (release_id, stage, recorded_at, data) VALUES "
                + ", ".join("(?, ?, ?, ?)" for _row in chunk),
                [value for row in chunk for value in row],
            )


def best_of(repeat: int, action: Callable[[], Any]) -> Tuple[float, float]:
    """The shortest wall time and the smallest CPU time over the repeats (SQLite runs in this process)."""
    times, cpu_times = [], []
    for _attempt in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        action()
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    return min(times), min(cpu_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    releases, stages = generate(args.releases)
    directory = tempfile.mkdtemp(prefix="relops-bench-")
    try:
        url = "sqlite:///" + os.path.join(directory, "ledger.db").lstrip("/")
        with open_ledger(parse_ledger_url(url)) as ledger:
            fill(ledger, releases, stages)
            start, end = resolve_window(None, "2026-09-01", "2026-11-29", "UTC")
            request = MetricsRequest("production", start, end, "UTC", "day", 86400, source="releases")

            def baseline() -> None:
                with ledger.backend.transaction(write=False) as cursor:
                    cursor.all(
                        "SELECT release_id, service, team, outcome, commit_time, started_at, finished_at FROM releases"
                        " WHERE environment = ? AND finished_at >= ? AND finished_at < ?",
                        ("production", format_timestamp(start), format_timestamp(end)),
                    )

            load_before = os.getloadavg()[0]
            baseline_seconds, baseline_cpu = best_of(args.repeat, baseline)
            seconds, cpu = best_of(args.repeat, lambda: compute(ledger, request))
            answer = compute(ledger, request)
            load_after = os.getloadavg()[0]
        print(
            json.dumps(
                {
                    "backend": "sqlite",
                    "releases": args.releases,
                    "window_days": DAYS,
                    # On a shared machine the load explains most of the wall times; the CPU time is the
                    # work done, and the ratio to the baseline carries over.
                    "load_average": [round(load_before, 2), round(load_after, 2)],
                    "baseline_fetch_seconds": round(baseline_seconds, 3),
                    "seconds": round(seconds, 3),
                    "cpu_seconds": {"baseline_fetch": round(baseline_cpu, 3), "metrics": round(cpu, 3)},
                    "ratio_metrics_to_fetch": round(seconds / baseline_seconds, 2) if baseline_seconds else None,
                    "under_5_seconds": seconds < 5.0,
                    "change_failure_rate": answer["summary"]["change_failure_rate"],
                    "successful": answer["summary"]["deployment_frequency"]["deployments"],
                    "rework": answer["summary"]["rework_rate"]["rework"],
                    "lead_median_seconds": answer["summary"]["lead_time"]["median_seconds"],
                    "recovery_median_seconds": answer["summary"]["recovery_time"]["median_seconds"],
                },
                sort_keys=True,
            )
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
