#!/usr/bin/env python
"""Prepare the demo releases' source trees from examples/demo_app (one app, versions built from it).

Usage: demo_sources.py <build dir>. For each release: the app, its release.json (version and the
columns it reads) and the migrations up to its schema version. Trees are rebuilt from scratch, so
the packages built from them are the same bytes every time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(REPO, "examples", "demo_app")
# 1.2.0 is the deliberately broken release: it reads price_cents, which no migration adds.
RELEASES = {
    "1.0.0": {"schema": 1, "columns": ["id", "name"]},
    "1.1.0": {"schema": 2, "columns": ["id", "name", "note"]},
    "1.2.0": {"schema": 3, "columns": ["id", "name", "note", "price_cents"]},
}


def prepare(build: str, version: str, schema: int, columns: list[str]) -> None:
    tree = os.path.join(build, version)
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(os.path.join(SOURCE, "app"), tree, ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(tree, "src", "demo_app", "release.json"), "w", encoding="utf-8") as handle:
        json.dump({"version": version, "columns": columns}, handle)
    migrations = os.path.join(tree, "migrations")
    os.makedirs(migrations)
    for name in sorted(os.listdir(os.path.join(SOURCE, "migrations"))):
        match = re.match(r"^[VU](\d+)__", name)
        if match and int(match.group(1)) <= schema:
            shutil.copy(os.path.join(SOURCE, "migrations", name), migrations)


def main() -> None:
    build = sys.argv[1]
    for version, release in RELEASES.items():
        prepare(build, version, int(str(release["schema"])), [str(column) for column in release["columns"]])  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
