"""audit_verify speed: events verified per second on a trail the writer produced (HMAC on
every line, a signed checkpoint every 1000 events), against the baseline of only reading the
same file and hashing every line, measured in the same run, and the verifier's peak memory (it streams,
so that stays flat as the trail grows). Prints one JSON object.

    .venv/bin/python benchmarks/audit_verify_speed.py                  # 100,000 events
    .venv/bin/python benchmarks/audit_verify_speed.py --events 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable, Dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import Sealer, key_id  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import Head, Trail, TrailSettings  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail  # noqa: E402

HMAC_KEY = b"bench-hmac-key-0123456789abcdef"


def write_trail(path: str, events: int, key: Ed25519PrivateKey, hmac_key: bytes | None) -> None:
    """A trail shaped like the callback's: runner events of about 500 bytes, a checkpoint every 1000."""
    trail = Trail(TrailSettings(path), Sealer(hmac_key, key))
    base = {
        "event": "runner_ok",
        "run_id": "0f5c1a52-3f7e-5d8e-9a41-bd0c6a1f2e33",
        "actor": {"user": "deploy", "host": "controller-1", "sudo_user": "ann"},
        "playbook": {"path": "/srv/release/playbooks/release.yml", "revision": "9f2c51b4a4e0c8d3f1b7e6a5d4c3b2a1"},
        "play": "Release payments-api",
        "action": "ansible.builtin.set_fact",
        "host": "app-1.example.com",
        "outcome": "ok",
        "changed": False,
        "duration": 0.0123,
    }
    first = 1
    for number in range(1, events + 1):
        event = dict(base, task="Set fact %d" % number, args={"value": number}, result={"changed": False})
        if number == events:
            event["event"] = "playbook_end"  # the run ends, as the callback's runs do (verify_trail requires it)
        trail.append(event)
        if number % 1000 == 0 or number == events:
            trail.append(
                {"event": "checkpoint", "run_id": base["run_id"], "actor": base["actor"]}, True, seal(key, first)
            )
            first = trail.last_seq + 1
    trail.close()


def seal(key: Ed25519PrivateKey, first: int) -> Callable[[Dict[str, Any], Head], None]:
    def describe(record: Dict[str, Any], head: Head) -> None:
        record["checkpoint"] = {
            "first_seq": first,
            "last_seq": head.seq,
            "head": head.digest,
            "key_id": key_id(key.public_key()),
        }

    return describe


def measure(path: str, key: Ed25519PrivateKey, hmac_key: bytes | None, repeat: int) -> tuple[int, float, float]:
    """Verify ``repeat`` times; return lines and the best wall and CPU seconds (a shared machine only slows runs)."""
    walls, cpus, lines = [], [], 0
    for _run in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = verify_trail([path], hmac_key, {key_id(key.public_key()): key.public_key()})
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
        if not report.ok:
            raise SystemExit("the benchmark trail did not verify: %s" % report.as_dict()["first_problem"])
        lines = report.lines
    return lines, min(walls), min(cpus)


def peak_memory(path: str, key: Ed25519PrivateKey, hmac_key: bytes | None) -> float:
    """Peak Python memory (MiB) allocated while verifying: flat whatever the trail's size, as it streams."""
    tracemalloc.start()
    try:
        verify_trail([path], hmac_key, {key_id(key.public_key()): key.public_key()})
        return round(tracemalloc.get_traced_memory()[1] / 1024 / 1024, 2)
    finally:
        tracemalloc.stop()


def baseline(path: str, repeat: int) -> float:
    """Reading the file and hashing every line, nothing else (best of ``repeat``)."""
    timings = []
    for _run in range(repeat):
        started = time.perf_counter()
        with open(path, "rb") as handle:
            for line in handle:
                hashlib.sha256(line[:-1]).hexdigest()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=3, help="verifications per trail; the best is reported")
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    figures: Dict[str, Any] = {"benchmark": "audit_verify_speed", "events": args.events}
    with tempfile.TemporaryDirectory() as directory:
        for label, hmac_key in (("chain_and_signatures", None), ("chain_signatures_and_hmac", HMAC_KEY)):
            path = os.path.join(directory, "%s.jsonl" % label)
            write_trail(path, args.events, key, hmac_key)
            base = baseline(path, args.repeat)
            lines, elapsed, cpu = measure(path, key, hmac_key, args.repeat)
            figures[label] = {
                "lines": lines,
                "bytes": os.path.getsize(path),
                "verify_seconds": round(elapsed, 3),
                "events_per_second": round(lines / elapsed),
                "events_per_cpu_second": round(lines / cpu),
                "read_and_hash_seconds": round(base, 3),
                "ratio_to_read_and_hash": round(elapsed / base, 2),
                "peak_python_memory_mib": peak_memory(path, key, hmac_key),
            }
    figures["target_events_per_second"] = 200000
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
