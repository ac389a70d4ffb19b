"""Release plan analysis (issue 12): a plan of N releases with M dependencies. Prints one JSON object.

The baseline is loading and validating the same plan (YAML parse + JSON Schema + model), measured in the
same run; the figure is the whole analysis on top of it: CI resolution and related-CI traversal through the
local CMDB (an SQLite ledger), governance rigor, conflicts, vendor slips, feasible schedule and what moves,
compliance at risk, dependency order, the governance calendars, and the three exports.

The issue's headline figure is the default:

    .venv/bin/python benchmarks/planning.py --releases 500 --dependencies 2000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))

from ansible_collections.relops.release.plugins.plugin_utils.calendar import load_windows  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.planning.analysis import (  # noqa: E402
    analyse,
    make_calendar_check,
)
from ansible_collections.relops.release.plugins.plugin_utils.planning.cmdb import related_cis  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.planning.export import (  # noqa: E402
    to_html,
    to_ical,
    to_markdown,
)
from ansible_collections.relops.release.plugins.plugin_utils.planning.plan import load_plan  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor  # noqa: E402

UTC = datetime.timezone.utc
AS_OF = datetime.datetime(2026, 11, 26, tzinfo=UTC)
CLASSES = ("strategic", "operational", "operational", "emergency")
UNITS = ("retail", "platform", "payments", "logistics")


def make_plan(releases: int, dependencies: int, cis: int, seed: int) -> Dict[str, Any]:
    """A plan over two years: every dependency points at an earlier release, so the graph is acyclic."""
    rng = random.Random(seed)
    first = datetime.date(2027, 1, 4)
    items: List[Dict[str, Any]] = []
    for index in range(releases):
        start = first + datetime.timedelta(days=index * 730 // releases)
        quarter = "%d-Q%d" % (start.year, (start.month - 1) // 3 + 1)
        item: Dict[str, Any] = {
            "id": "rel-%04d" % index,
            "title": "Release %d" % index,
            "class": CLASSES[index % len(CLASSES)],
            "quarter": quarter,
            "business_unit": UNITS[index % len(UNITS)],
            "start": start.isoformat(),
            "end": (start + datetime.timedelta(days=rng.randint(0, 2))).isoformat(),
            "milestones": [{"name": "go/no-go", "date": (start - datetime.timedelta(days=2)).isoformat()}],
            "cis": sorted(rng.sample(["ci-%03d" % n for n in range(cis)], 2)),
            "depends_on": [],
        }
        if index % 5 == 0:
            vendor_date = start - datetime.timedelta(days=rng.randint(0, 20))
            vendor = {"vendor": "vendor-%d" % (index % 7), "delivery": "kit", "date": vendor_date.isoformat()}
            item["vendors"] = [vendor]
        if index % 9 == 0:
            deadline = start + datetime.timedelta(days=rng.randint(0, 30))
            item["scope"] = [{"id": "CMP-%d" % index, "type": "compliance", "deadline": deadline.isoformat()}]
        items.append(item)
    pairs = set()
    while len(pairs) < dependencies:
        later = rng.randrange(1, releases)
        earlier = rng.randrange(max(0, later - 60), later)
        pairs.add((later, earlier))
    for later, earlier in sorted(pairs):
        items[later]["depends_on"].append(items[earlier]["id"])
    calendars = [
        {
            "type": "windows",
            "name": "governance",
            "windows": [
                {
                    "name": "peak: winter sale %d" % year,
                    "kind": "blackout",
                    "start": "%d-12-01" % year,
                    "end": "%d-12-31" % year,
                    "scope": {"business_unit": ["retail"]},
                }
                for year in (2027, 2028)
            ]
            + [
                {
                    "name": "quarter close",
                    "kind": "blackout",
                    "cron_start": "0 0 28 3,6,9,12 *",
                    "cron_end": "0 0 3 1,4,7,10 *",
                }
            ],
        }
    ]
    return {"name": "benchmark plan", "buffer_days": 3, "related_depth": 1, "calendars": calendars, "releases": items}


def fill_cmdb(ledger_url: str, cis: int, seed: int) -> None:
    """CIs ci-000.. as applications on hosts; each host runs several applications, so CIs are related."""
    rng = random.Random(seed)
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        backend = LocalBackend(ledger, current_actor({}))
        hosts = [backend.create_ci("cmdb_ci_linux_server", {"name": "host-%02d" % n}) for n in range(cis // 8 + 1)]
        for n in range(cis):
            app = backend.create_ci("cmdb_ci_appl", {"name": "ci-%03d" % n})
            backend.add_relation(app["sys_id"], rng.choice(hosts)["sys_id"], "Runs on::Runs")


def timed(action: Callable[[], Any], runs: int) -> float:
    best = float("inf")
    for _run in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=500)
    parser.add_argument("--dependencies", type=int, default=2000)
    parser.add_argument("--cis", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=12)
    options = parser.parse_args()
    text = yaml.safe_dump(make_plan(options.releases, options.dependencies, options.cis, options.seed))
    with tempfile.TemporaryDirectory(prefix="relops-bench-plan-") as workdir:
        ledger_url = "sqlite:///" + os.path.join(workdir, "ledger.db").lstrip("/")
        fill_cmdb(ledger_url, options.cis, options.seed)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def load() -> Any:
            return load_plan(yaml.load(text, Loader=loader))  # the C variant of SafeLoader

        def full() -> Any:
            plan = load()
            with open_ledger(parse_ledger_url(ledger_url)) as ledger:
                related = related_cis(plan, LocalBackend(ledger, current_actor({})))
            check = make_calendar_check(load_windows(plan.calendars, plan.default_tz, workdir))
            analysis = analyse(plan, related=related, as_of=AS_OF, calendar_check=check)
            to_ical(analysis, AS_OF)
            to_markdown(analysis)
            to_html(analysis)
            return analysis

        baseline = timed(load, options.runs)
        total = timed(full, options.runs)
        analysis = full()
    print(
        json.dumps(
            {
                "benchmark": "release plan analysis",
                "releases": options.releases,
                "dependencies": sum(len(r.depends_on) for r in analysis.plan.releases),
                "cis": options.cis,
                "findings": analysis.counts(),
                "moves": len(analysis.moves),
                "baseline_load_validate_seconds": round(baseline, 4),
                "analysis_seconds": round(total, 4),
                "ratio_to_baseline": round(total / baseline, 2),
                "runs": options.runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
