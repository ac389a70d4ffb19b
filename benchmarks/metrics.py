"""DORA metrics over a large ledger: relops.release.dora_metrics' computation (aggregation in SQL)
against the baseline of only reading the window's deployment rows into Python (what any
client-side computation must do first), measured in the same run on SQLite and PostgreSQL.
Prints one JSON object.

    .venv/bin/python benchmarks/metrics.py                                   # small default
    .venv/bin/python benchmarks/metrics.py --deployments 1000000 --incidents 100000   # headline

Deployments are spread over 365 days, 500 services, 50 teams and 400 CIs; incidents over the
same days and CIs. The metrics cover the last 90 days with daily series, plus a per-team breakdown.
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
import uuid
from typing import Any, Callable, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
sys.path.insert(0, os.path.join(REPO, "tests"))

from fixtures.postgres import free_port, start_cluster, stop_cluster  # noqa: E402

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
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor  # noqa: E402

ACTOR = Actor(run_id="bench-metrics", user="bench", host="bench")
END = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
SPAN_SECONDS = 365 * 86400


def seed(ledger: Ledger, deployments: int, incidents: int) -> float:
    """Fill the ledger in batches; return the seconds it took (reported, not compared)."""
    rng = random.Random(11)
    started = time.perf_counter()
    batch: List[Dict[str, Any]] = []
    for number in range(deployments):
        finished = END - datetime.timedelta(seconds=rng.randrange(SPAN_SECONDS))
        service = rng.randrange(500)
        batch.append(
            {
                "service": "svc-%03d" % service,
                "version": "1.%d.0" % number,
                "environment": "production",
                "status": rng.choices(("successful", "failed", "rolled_back"), (90, 4, 6))[0],
                "started_at": format_timestamp(finished - datetime.timedelta(minutes=5)),
                "finished_at": format_timestamp(finished),
                "team": "team-%02d" % (service % 50),
                "ci": "ci-%03d" % (service % 400),
                "commit_at": format_timestamp(finished - datetime.timedelta(hours=rng.randrange(1, 200))),
                "planned": rng.random() > 0.05,
            }
        )
        if len(batch) == 20000:
            ledger.import_deployments(ACTOR, batch)
            batch = []
    if batch:
        ledger.import_deployments(ACTOR, batch)
    records = []
    for number in range(incidents):
        opened = END - datetime.timedelta(seconds=rng.randrange(SPAN_SECONDS))
        ci = "ci-%03d" % rng.randrange(400)
        records.append(
            {
                "service": ci,
                "environment": "production",
                "ci": ci,
                "title": "incident %d" % number,
                "opened_at": format_timestamp(opened),
                "resolved_at": format_timestamp(opened + datetime.timedelta(minutes=rng.randrange(5, 600))),
                "component": "component-%d" % rng.randrange(20),
            }
        )
    ledger.import_incidents(ACTOR, records)
    # As autovacuum would on PostgreSQL; without statistics its planner picks nested loops.
    ledger.refresh_statistics()
    return time.perf_counter() - started


def request(group_by: Any = None) -> MetricsRequest:
    first, last = resolve_window("90d", None, None, "UTC", now=END - datetime.timedelta(days=1))
    return MetricsRequest("production", first, last, "UTC", "day", 86400, group_by=group_by)


def best_of(
    repeat: int, action: Callable[[], Any], cpu: Callable[[], float] = time.process_time
) -> Tuple[float, float]:
    """The shortest wall time and the smallest CPU time over the repeats."""
    times, cpu_times = [], []
    for _attempt in range(repeat):
        started, cpu_started = time.perf_counter(), cpu()
        action()
        times.append(time.perf_counter() - started)
        cpu_times.append(cpu() - cpu_started)
    return min(times), min(cpu_times)


def cpu_clock(ledger: Ledger) -> Callable[[], float]:
    """CPU seconds used so far by this process plus, on PostgreSQL, the server process serving the ledger.

    On a shared machine the wall time mostly measures the load; the CPU time is the work done.
    """
    if ledger.url.dialect != "postgresql":
        return time.process_time
    with ledger.backend.transaction(write=False) as cursor:
        row = cursor.one("SELECT pg_backend_pid() AS pid")
    stat = "/proc/%d/stat" % int(row["pid"]) if row else ""
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        with open(stat) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        # utime and stime: fields 14 and 15 of proc(5), counted after the command name.
        return time.process_time() + (int(fields[11]) + int(fields[12])) / ticks

    return read


def measure(url: str, deployments: int, incidents: int, repeat: int) -> Dict[str, Any]:
    with open_ledger(parse_ledger_url(url)) as ledger:
        seconds_to_seed = seed(ledger, deployments, incidents)
        window = request()
        scope_start, scope_end = format_timestamp(window.start), format_timestamp(window.end)

        def baseline() -> None:
            with ledger.backend.transaction(write=False) as cursor:
                cursor.all(
                    "SELECT id, status, started_at, finished_at, commit_at, team, ci FROM deployments"
                    " WHERE environment = ? AND finished_at >= ? AND finished_at < ?",
                    ("production", scope_start, scope_end),
                )

        load_before = os.getloadavg()[0]
        clock = cpu_clock(ledger)
        baseline_seconds, baseline_cpu = best_of(repeat, baseline, clock)
        metrics_seconds, metrics_cpu = best_of(repeat, lambda: compute(ledger, request()), clock)
        grouped_seconds, grouped_cpu = best_of(repeat, lambda: compute(ledger, request("team")), clock)
        answer = compute(ledger, request())["summary"]
        load_after = os.getloadavg()[0]
    return {
        # The machine's 1-minute load average around the timings: on a shared machine it explains
        # most of the absolute times (the ratio to the baseline carries over).
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "seed_seconds": round(seconds_to_seed, 2),
        "baseline_fetch_seconds": round(baseline_seconds, 3),
        "metrics_seconds": round(metrics_seconds, 3),
        "metrics_by_team_seconds": round(grouped_seconds, 3),
        "cpu_seconds": {
            "baseline_fetch": round(baseline_cpu, 3),
            "metrics": round(metrics_cpu, 3),
            "metrics_by_team": round(grouped_cpu, 3),
        },
        "ratio_metrics_to_fetch": round(metrics_seconds / baseline_seconds, 2) if baseline_seconds else None,
        "under_5_seconds": metrics_seconds < 5.0 and grouped_seconds < 5.0,
        "deployments_in_window": answer["change_failure_rate"]["deployments"],
        "change_failure_rate": answer["change_failure_rate"]["rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=50000)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    results: Dict[str, Any] = {"deployments": args.deployments, "incidents": args.incidents, "window_days": 90}
    base = tempfile.mkdtemp(prefix="relops-bench-metrics-")
    try:
        for database in args.databases.split(","):
            if database == "sqlite":
                url = "sqlite:///" + os.path.join(base, "ledger.db").lstrip("/")
                results["sqlite"] = measure(url, args.deployments, args.incidents, args.repeat)
            elif database == "postgresql":
                results["postgresql"] = measure_postgres(base, args)
            else:
                raise SystemExit("unknown database %r; use sqlite and/or postgresql" % database)
            # Each database's figures as soon as they exist: a headline run takes a while.
            print(json.dumps({database: results[database]}, sort_keys=True), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2, sort_keys=True))


def measure_postgres(base: str, args: argparse.Namespace) -> Dict[str, Any]:
    cluster = os.path.join(base, "pg")
    os.makedirs(cluster)
    os.chmod(base, 0o755)
    os.chmod(cluster, 0o755)
    server = start_cluster(cluster, free_port())
    try:
        database = "bench_metrics_%s" % uuid.uuid4().hex[:8]
        with server.admin() as admin:
            admin.execute("CREATE DATABASE %s" % database)
        return measure(server.url(database), args.deployments, args.incidents, args.repeat)
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
