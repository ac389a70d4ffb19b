"""Drift scan against a baseline: relops.release.drift_scan's scan (the module's own code,
in-process) over N files against `sha256sum` hashing the same files, measured in the
same run. Both read every file; the scan also stats each file, resolves owner/group and
compares with the baseline. Prints one JSON object; ratio = scan / sha256sum wall time.

    .venv/bin/python benchmarks/drift.py                   # small: 2,000 files
    .venv/bin/python benchmarks/drift.py --files 10000     # the issue's headline figure
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from ansible_collections.relops.release.plugins.module_utils.drift import scan, take_baseline  # noqa: E402


def make_tree(root: str, count: int, size: int) -> list[str]:
    paths = []
    for index in range(count):
        folder = os.path.join(root, "d%03d" % (index // 100))
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "f%05d.conf" % index)
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
        paths.append(path)
    return paths


def time_sha256sum(paths: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-0", "sha256sum"],
        input=b"\0".join(path.encode() for path in paths),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def time_scan(baseline: dict) -> tuple[float, int]:
    started = time.perf_counter()
    findings = scan(baseline)
    return time.perf_counter() - started, len(findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs each")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relops-drift-bench-") as root:
        paths = make_tree(root, options.files, options.size)
        baseline = take_baseline([root], [], [], [])
        # Change one file in ten so the scan also builds findings.
        for path in paths[::10]:
            os.chmod(path, 0o600)
        # Warm the page cache so both sides measure hashing, not the first read from disk.
        time_sha256sum(paths)
        sums = min(time_sha256sum(paths) for _attempt in range(options.repeat))
        scans = [time_scan(baseline) for _attempt in range(options.repeat)]
        best = min(seconds for seconds, _count in scans)
    print(
        json.dumps(
            {
                "benchmark": "drift_scan",
                "files": options.files,
                "file_size": options.size,
                "drift_findings": scans[0][1],
                "sha256sum_seconds": round(sums, 4),
                "drift_scan_seconds": round(best, 4),
                "ratio": round(best / sums, 2),
                "files_per_second": round(options.files / best),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
