"""Audit callback overhead: one localhost playbook of N tasks, run whole-process with no
extra callback (the baseline), with relops.release.audit (fsync per play, HMAC and signed
checkpoints), and with community.general.log_plays when that collection is installed,
all in the same run; the median of several runs each. Prints one JSON object.

    .venv/bin/python benchmarks/audit_overhead.py                    # short default: 100 tasks, 3 runs
    .venv/bin/python benchmarks/audit_overhead.py --tasks 500 --runs 7   # the issue's headline figure

community.general is found on ANSIBLE_COLLECTIONS_PATH, in build/collections, or in
build/bench-ansible (`pip install --no-deps --target build/bench-ansible 'ansible>=12,<13'`
puts the community package, which bundles it, there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402


def write_playbook(directory: str, tasks: int) -> str:
    path = os.path.join(directory, "bench.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("- name: Bench\n  hosts: localhost\n  gather_facts: false\n  tasks:\n")
        for number in range(tasks):
            handle.write(
                "    - name: Task %d\n      ansible.builtin.set_fact:\n        value_%d: %d\n"
                % (number, number % 7, number)
            )
    return path


def find_community_general() -> str | None:
    candidates = [*os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)]
    candidates += [os.path.join(REPO, "build", "collections"), os.path.join(REPO, "build", "bench-ansible")]
    for root in filter(None, candidates):
        if os.path.exists(
            os.path.join(root, "ansible_collections", "community", "general", "plugins", "callback", "log_plays.py")
        ):
            return root
    return None


def write_keys(directory: str) -> tuple[str, str]:
    key_path = os.path.join(directory, "audit.key")
    with open(key_path, "wb") as handle:
        handle.write(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    hmac_path = os.path.join(directory, "audit.hmac")
    with open(hmac_path, "w", encoding="ascii") as handle:
        handle.write(os.urandom(32).hex())
    return key_path, hmac_path


def run_once(playbook: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), playbook], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s%s" % (done.stdout[-2000:], done.stderr[-2000:]))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        playbook = write_playbook(directory, args.tasks)
        key_path, hmac_path = write_keys(directory)
        community = find_community_general()
        paths = [os.path.join(REPO, "build", "collections"), *([community] if community else [])]
        base = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "RELOPS_"))}
        base.update(
            ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(paths),
            ANSIBLE_INVENTORY=os.path.join(REPO, "inventories", "local", "hosts.yml"),
            ANSIBLE_LOCAL_TEMP=os.path.join(directory, "tmp"),
            PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        )
        variants: dict[str, dict[str, str]] = {
            "baseline": dict(base),
            "audit": dict(
                base,
                ANSIBLE_CALLBACKS_ENABLED="relops.release.audit",
                RELOPS_AUDIT_PATH=os.path.join(directory, "audit", "audit.jsonl"),
                RELOPS_AUDIT_FSYNC="play",
                RELOPS_AUDIT_SIGNING_KEY=key_path,
                RELOPS_AUDIT_HMAC_KEY_FILE=hmac_path,
            ),
        }
        if community:
            variants["log_plays"] = dict(
                base,
                ANSIBLE_CALLBACKS_ENABLED="community.general.log_plays",
                ANSIBLE_LOG_FOLDER=os.path.join(directory, "log_plays"),
            )
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _round in range(args.runs):
            # Interleaved, so a machine that gets busier part-way through affects every variant alike.
            for name, env in variants.items():
                timings[name].append(run_once(playbook, env))
        medians = {name: statistics.median(values) for name, values in timings.items()}
        with open(os.path.join(directory, "audit", "audit.jsonl"), encoding="utf-8") as trail:
            audit_lines = sum(1 for _line in trail)
    report = {
        "benchmark": "audit_overhead",
        "tasks": args.tasks,
        "runs": args.runs,
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "audit_overhead_ratio": round(medians["audit"] / medians["baseline"], 4),
        "log_plays_overhead_ratio": round(medians["log_plays"] / medians["baseline"], 4) if community else None,
        "community_general": community or "not installed (Galaxy unreachable); compared against no callback only",
        "audit_events_written": audit_lines,
        "audit_fsync": "play",
        "target_overhead_ratio": 1.05,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
