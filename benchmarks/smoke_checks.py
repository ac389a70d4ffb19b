"""Smoke checks against a lab fleet: the same HTTP checks run concurrently (the
smoke_check default) against run one by one (the baseline, what a loop of
ansible.builtin.uri tasks does), measured in the same run. Prints one JSON object.

Each lab host (a network namespace, tests/lab/lab.py) runs the demo app on its own
address with a fixed per-request latency, standing in for a real service.
Needs root (the lab does).

    .venv/bin/python benchmarks/smoke_checks.py                                # small: 3 hosts, 15 checks
    .venv/bin/python benchmarks/smoke_checks.py --hosts 10 --checks 50         # the issue's headline figure
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as lab_harness  # noqa: E402

from ansible_collections.relops.release.plugins.module_utils.smoke import normalize_checks, run_checks  # noqa: E402

DEMO_APP = os.path.join(REPO, "examples", "demo_app", "app.py")
PORT = 8080


def start_apps(lab: lab_harness.Lab, latency: float) -> list[subprocess.Popen]:
    processes = []
    for host in lab.hosts:
        processes.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.namespace,
                    sys.executable,
                    DEMO_APP,
                    "--host",
                    host.address,
                    "--port",
                    str(PORT),
                    "--latency",
                    str(latency),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    for host in lab.hosts:
        wait_for("http://%s:%d/healthz" % (host.address, PORT))
    return processes


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def make_checks(lab: lab_harness.Lab, total: int) -> list[dict]:
    """``total`` checks spread over the hosts, alternating the work endpoint and the health document."""
    checks = []
    for number in range(total):
        host = lab.hosts[number % len(lab.hosts)]
        if number % 2:
            checks.append(
                {
                    "name": "check-%d" % number,
                    "url": "http://%s:%d/healthz" % (host.address, PORT),
                    "json": [{"path": "status", "equals": "ok"}],
                    "max_latency_ms": 1000,
                }
            )
        else:
            checks.append(
                {
                    "name": "check-%d" % number,
                    "url": "http://%s:%d/" % (host.address, PORT),
                    "status": 200,
                    "max_latency_ms": 1000,
                }
            )
    return normalize_checks(checks)


def timed(checks: list[dict], concurrency: int) -> tuple[float, int]:
    started = time.perf_counter()
    results = run_checks(checks, concurrency)
    return time.perf_counter() - started, sum(1 for result in results if result["passed"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--checks", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=8, help="the smoke_check default is 8")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the demo app adds to /")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each")
    options = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="relops-bench-smoke-")
    lab = lab_harness.up(options.hosts, directory)
    processes: list[subprocess.Popen] = []
    try:
        processes = start_apps(lab, options.latency)
        checks = make_checks(lab, options.checks)
        timed(checks, options.concurrency)  # warm-up: ARP, first connections
        concurrent = [timed(checks, options.concurrency) for _run in range(options.repeat)]
        sequential = [timed(checks, 1) for _run in range(options.repeat)]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        lab_harness.down(lab)
    best_concurrent, best_sequential = min(run[0] for run in concurrent), min(run[0] for run in sequential)
    print(
        json.dumps(
            {
                "benchmark": "smoke_checks",
                "hosts": options.hosts,
                "checks": options.checks,
                "concurrency": options.concurrency,
                "app_latency_s": options.latency,
                "repeat": options.repeat,
                "concurrent_wall_s": round(best_concurrent, 3),
                "sequential_wall_s": round(best_sequential, 3),
                "passed": {"concurrent": concurrent[0][1], "sequential": sequential[0][1]},
                "speedup_vs_sequential": round(best_sequential / best_concurrent, 2),
            },
            indent=2,
        )
    )
    return 0 if all(run[1] == options.checks for run in concurrent + sequential) else 1


if __name__ == "__main__":
    raise SystemExit(main())
