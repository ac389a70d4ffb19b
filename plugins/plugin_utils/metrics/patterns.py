# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which releases fail (issue 18): change failure rate by release attribute, over release records.

Each deployed release in the window is one unit, failed as the change failure rate counts it
(:func:`.dora.release_facts`: rolled back, failed, or led to an incident); its attributes come from
its record: the ``risk`` stage (risk band, release class, files changed, migrations), the
strategy, and when it started (weekday and hour in the request's time zone).
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger

from .dora import MetricsRequest, release_facts, scope_of, zone
from .release_store import ReleaseMetricsStore

ATTRIBUTES = ("risk", "migrations", "strategy", "class", "size", "day", "hour")
NOT_ASSESSED = "(not assessed)"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Files changed, as bands: the first band whose upper limit the count stays below.
SIZE_BANDS = ((10, "1-9 files"), (100, "10-99 files"), (1000, "100-999 files"))


def failure_patterns(ledger: Ledger, request: MetricsRequest) -> Dict[str, List[Dict[str, Any]]]:
    """Per attribute, per value: deployed releases, failures and the rate, highest rate first."""
    store = ReleaseMetricsStore(ledger)
    scope = scope_of(request)
    tz = zone(request.timezone)
    attributes = store.release_attributes(scope)
    tallies: Dict[str, Dict[str, List[int]]] = {name: {} for name in ATTRIBUTES}
    for fact in release_facts(store, scope):
        if not fact["deployments"]:
            continue
        values = release_values(attributes.get(str(fact["release_id"]), {}), tz)
        for name in ATTRIBUTES:
            counts = tallies[name].setdefault(values[name], [0, 0])
            counts[0] += 1
            counts[1] += int(fact["failures"])
    return {
        name: sorted(
            (
                {
                    "value": value,
                    "deployments": deployed,
                    "failures": failed,
                    "rate": round(failed / deployed, 4),
                }
                for value, (deployed, failed) in tallies[name].items()
            ),
            key=lambda row: (-row["rate"], -row["deployments"], row["value"]),
        )
        for name in ATTRIBUTES
    }


def release_values(attributes: Mapping[str, Any], tz: datetime.tzinfo) -> Dict[str, str]:
    """A release's value of each attribute, from its record (``(not assessed)`` without a risk stage)."""
    risk = attributes.get("risk") or {}
    facts = risk.get("facts") or {}
    started = attributes.get("started_at")
    local = parse_timestamp(str(started)).astimezone(tz) if started else None
    migrations = facts.get("migrations")
    strategy = attributes.get("strategy") or (attributes.get("deployment") or {}).get("strategy")
    return {
        "risk": str(risk.get("risk") or NOT_ASSESSED),
        "migrations": NOT_ASSESSED
        if migrations is None
        else ("with migrations" if int(migrations) > 0 else "without migrations"),
        "strategy": str(strategy or "(none)"),
        "class": str(facts.get("release_class") or NOT_ASSESSED),
        "size": size_band(facts.get("files_changed")),
        "day": WEEKDAYS[local.weekday()] if local else "(unknown)",
        "hour": "%02d:00" % local.hour if local else "(unknown)",
    }


def size_band(files: Optional[Any]) -> str:
    if files is None or files == "":
        return NOT_ASSESSED
    count = int(files)
    if count <= 0:
        return "no files"
    for limit, label in SIZE_BANDS:
        if count < limit:
            return label
    return "1000+ files"
