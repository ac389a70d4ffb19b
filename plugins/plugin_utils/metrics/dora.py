# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DORA delivery metrics from the ledger (issue 11); definitions in docs/metrics.md.

The ledger aggregates (``ledger/metrics_store.py``); this module chooses the
window and the calendar periods (in a time zone, so days and weeks follow local
midnights across DST changes), turns counts into rates, medians and tiers, and
reads commit times from git when a repository is given.
"""

from __future__ import annotations

import datetime
import functools
import statistics
import subprocess
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.metrics_store import MetricsScope

from .release_store import DEPLOYED_OUTCOMES, ReleaseMetricsStore

WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
GRANULARITIES = ("day", "week", "month")
# Where the figures come from: release records (one release, one unit), or the deployments table
# (history imported with import_deployments); auto takes the records when the environment has any.
SOURCES = ("auto", "releases", "deployments")
DAY = 86400.0
Period = Tuple[str, str, str]
ALL = "all"

# Accelerate State of DevOps Report 2023 (Google Cloud / DORA), "Software delivery performance"
# cluster table; docs/metrics.md cites it and says how ranges become thresholds.
TIERS = ("elite", "high", "medium", "low")
LEAD_TIME_LIMITS = (DAY, 7 * DAY, 30 * DAY)
RECOVERY_LIMITS = (3600.0, DAY, 7 * DAY)
FAILURE_RATE_LIMITS = (0.05, 0.10, 0.15)
DEPLOYS_PER_DAY_LIMITS = (1.0, 1.0 / 7.0, 1.0 / 30.0)


class MetricsError(LedgerError):
    """A metrics request that cannot be answered as asked (the message says what to change)."""


@dataclass(frozen=True)
class MetricsRequest:
    environment: str
    start: datetime.datetime
    end: datetime.datetime
    timezone: str
    granularity: str
    link_window_seconds: int
    service: Optional[str] = None
    team: Optional[str] = None
    group_by: Optional[str] = None
    repository: Optional[str] = None
    source: str = "auto"


def zone(name: str) -> datetime.tzinfo:
    if name.upper() == "UTC":
        return datetime.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MetricsError("time zone %r is unknown; use an IANA name such as Europe/Berlin or UTC" % name) from None


def resolve_window(
    window: Optional[str],
    start: Optional[str],
    end: Optional[str],
    timezone: str,
    now: Optional[datetime.datetime] = None,
) -> Tuple[datetime.datetime, datetime.datetime]:
    """The window as aware datetimes at local midnights: [start date, day after end date).

    ``window`` (7d/30d/90d) ends with today (local); dates are YYYY-MM-DD, the end date included.
    """
    tz = zone(timezone)
    if start or end:
        if not (start and end):
            raise MetricsError("give both start and end dates (YYYY-MM-DD), or a window such as 30d")
        first, last = _date(start, "start"), _date(end, "end")
        if last < first:
            raise MetricsError("end date %s is before start date %s; swap them" % (end, start))
    else:
        name = window or "30d"
        if name not in WINDOWS:
            raise MetricsError("window %r is not one of %s; or give start and end dates" % (name, ", ".join(WINDOWS)))
        last = (now or utc_now()).astimezone(tz).date()
        first = last - datetime.timedelta(days=WINDOWS[name] - 1)
    return _midnight(first, tz), _midnight(last + datetime.timedelta(days=1), tz)


def calendar_periods(
    start: datetime.datetime, end: datetime.datetime, granularity: str, tz: datetime.tzinfo
) -> List[Period]:
    """Local calendar periods (day, ISO week, month) covering [start, end), clipped to it, as UTC bounds."""
    if granularity not in GRANULARITIES:
        raise MetricsError("granularity %r is not one of %s" % (granularity, ", ".join(GRANULARITIES)))
    periods: List[Period] = []
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day < last:
        following = _next_boundary(day, granularity)
        bounded = min(following, last)
        periods.append(
            (_label(day, granularity), format_timestamp(_midnight(day, tz)), format_timestamp(_midnight(bounded, tz)))
        )
        day = bounded
    return periods


def compute(ledger: Ledger, request: MetricsRequest) -> Dict[str, Any]:
    """The dora_metrics answer: summary, series per period, optional groups, incident link counts."""
    tz = zone(request.timezone)
    scope = scope_of(request)
    series_periods = calendar_periods(request.start, request.end, request.granularity, tz)
    days = calendar_periods(request.start, request.end, "day", tz)
    source = choose_source(ledger, request)
    git_leads = None
    if source == "releases":
        store = ReleaseMetricsStore(ledger)
        counts, group_counts, medians, day_counts = _aggregate_releases(
            store, scope, request.granularity, request.group_by, tz
        )
        if request.repository:
            git_leads = _git_lead_times(store.revision_history(scope), scope, series_periods, request.repository)
    else:
        counts, group_counts, medians = _aggregate(ledger, scope, request.granularity, request.group_by)
        if request.granularity == "day":
            day_counts = {label: int(row["successful"]) for (label, _grp), row in counts.items() if label != ALL}
        else:
            day_counts = {row["label"]: int(row["deployments"]) for row in ledger.deployment_day_counts(scope)}
        if request.repository:
            git_leads = _git_lead_times(_revision_history(ledger, scope), scope, series_periods, request.repository)
    if git_leads is not None:
        # Git replaces the series' lead times; each group's stays the recorded commit time's.
        for key in list(medians):
            if key[2] == "lead_seconds" and key[1] == "":
                del medians[key]
        medians.update(git_leads)
    window_days = len(days)
    summary = _metrics(counts.get((ALL, "")), medians, (ALL, ""), window_days)
    summary["deployment_frequency"].update(
        deployment_days=sum(1 for label in day_counts if day_counts[label]),
        fourkeys=fourkeys_bucket(days, day_counts) if day_counts else None,
        devlake=devlake_bucket(days, day_counts) if day_counts else None,
    )
    summary["lead_time"]["source"] = (
        "git" if git_leads is not None else ("commit_time" if source == "releases" else "commit_at")
    )
    series = []
    for label, starts, ends in series_periods:
        entry = _metrics(counts.get((label, "")), medians, (label, ""), _days_between(starts, ends))
        entry["deployment_frequency"]["deployment_days"] = sum(
            1
            for day_label, day_start, _day_end in days
            if day_start >= starts and day_start < ends and day_counts.get(day_label)
        )
        series.append({"period": label, "start": starts, "end": ends, **entry})
    answer: Dict[str, Any] = {
        "window": {
            "start": scope.start,
            "end": scope.end,
            "days": window_days,
            "timezone": request.timezone,
            "granularity": request.granularity,
            "environment": request.environment,
            "service": request.service,
            "team": request.team,
            "link_window_seconds": request.link_window_seconds,
            "source": source,
        },
        "summary": summary,
        "series": series,
    }
    if request.group_by:
        answer["groups"] = _groups(group_counts, medians, window_days)
    return answer


def scope_of(request: MetricsRequest) -> MetricsScope:
    """What the ledger queries cover for a request: environment, window (UTC), filters, calendar."""
    return MetricsScope(
        environment=request.environment,
        start=format_timestamp(request.start),
        end=format_timestamp(request.end),
        incident_until=format_timestamp(request.end + datetime.timedelta(seconds=request.link_window_seconds)),
        link_window_seconds=request.link_window_seconds,
        service=request.service,
        team=request.team,
        timezone=request.timezone,
        offsets=offset_stretches(request.start, request.end, zone(request.timezone)),
    )


def choose_source(ledger: Ledger, request: MetricsRequest) -> str:
    """The source the figures come from: ``releases`` or ``deployments`` (``auto`` picks, see SOURCES)."""
    if request.source not in SOURCES:
        raise MetricsError("source %r is not one of %s" % (request.source, ", ".join(SOURCES)))
    if request.source != "auto":
        return request.source
    return "releases" if ReleaseMetricsStore(ledger).has_records(request.environment) else "deployments"


# Release records (docs/metrics.md, "Definitions"): one finished release record is one unit.


def _aggregate_releases(
    store: ReleaseMetricsStore, scope: MetricsScope, granularity: str, group: Optional[str], tz: datetime.tzinfo
) -> Tuple[
    Dict[Tuple[str, str], Dict[str, int]],
    Dict[str, Dict[str, int]],
    Dict[Tuple[str, str, str], float],
    Dict[str, int],
]:
    """What :func:`_aggregate` answers, plus successful releases per local day, from release records.

    The database counts (:class:`ReleaseMetricsStore`): releases per period and group, the failed
    and rolled-back ones with their recovery and the release after each (rework), lead-time
    histograms. Python adds what incidents change (a window's worth): the releases they belong to
    (:func:`_incidents_of_releases`) become failures, recover when their incidents are resolved, and
    make the next release of their service rework; and the rework of each service's first release
    when the release before the window failed. :func:`release_facts` gives the same figures per release.
    """
    _check_group(group)
    tallies: Dict[Tuple[str, str], Dict[str, int]] = {}
    counted = store.release_counts(scope, granularity, group)
    for row in counted:
        key = (_period_label(row["period"], granularity), row["grp"])
        tally = tallies.setdefault(key, dict.fromkeys(_COUNT_COLUMNS, 0))
        for name, column in _RELEASE_COUNTS:
            tally[name] += int(row[column] or 0)
    recoveries: Dict[Tuple[str, str], List[float]] = {}
    owner: Dict[int, str] = {}
    incidents = store.incidents_opened(scope.environment, scope.start, scope.incident_until)
    for row in store.failed_releases(scope, granularity, group, incidents=bool(incidents)):
        if row["recovery_seconds"] is not None:
            key = (_period_label(row["period"], granularity), row["grp"])
            recoveries.setdefault(key, []).append(round(float(row["recovery_seconds"]), 3))
        if row["next_period"] is not None:
            _count_rework(tallies, _period_label(row["next_period"], granularity), row["next_grp"])
        if row["incident_id"] not in (None, ""):
            owner[int(row["incident_id"])] = str(row["release_id"])
    _count_rework_after_the_window_start(store, scope, granularity, group, tallies)
    _count_incidents(
        store, scope, granularity, group, _incidents_of_releases(store, scope, incidents, owner), tallies, recoveries
    )
    for key, values in recoveries.items():
        tallies.setdefault(key, _tally({}))["recovered"] = len(values)
    for tally in tallies.values():
        tally["unrecovered"] = tally["failures"] - tally["recovered"]
    lead_medians, _samples = _lead_medians(
        _CountedLeads(store, [row for row in counted if row["bucket"] is not None]), scope, granularity, group
    )
    medians = {(*key, "lead_seconds"): value for key, value in lead_medians.items()}
    medians.update(((*key, "recovery_seconds"), median(values)) for key, values in _pool(recoveries, group).items())
    per_group_rows = [{"period": label, "grp": grp, **tally} for (label, grp), tally in tallies.items()]
    per_period = _with_totals(_sum_over_groups(per_group_rows) if group else per_group_rows)
    per_group = (
        {grp: row for (label, grp), row in _with_totals(per_group_rows).items() if label == ALL} if group else {}
    )
    if granularity == "day":
        day_counts = {label: int(row["successful"]) for (label, _grp), row in per_period.items() if label != ALL}
    else:
        day_counts = {str(row["label"]): int(row["successful"]) for row in store.successful_per_day(scope)}
    return per_period, per_group, medians, {label: count for label, count in day_counts.items() if count}


def _count_rework_after_the_window_start(
    store: ReleaseMetricsStore,
    scope: MetricsScope,
    granularity: str,
    group: Optional[str],
    tallies: Dict[Tuple[str, str], Dict[str, int]],
) -> None:
    """Each service's first deployed release in the window is rework when the one before the window failed."""
    previous = store.previous_deployed(scope.environment, scope.start, store.services_in_scope(scope))
    for service, before in sorted(previous.items()):
        if before["outcome"] not in _FAILED:
            continue
        first = store.next_deployed(scope, granularity, group, {"service": service})
        if first is not None:
            _count_rework(tallies, _period_label(first["period"], granularity), first["grp"])


def _count_incidents(
    store: ReleaseMetricsStore,
    scope: MetricsScope,
    granularity: str,
    group: Optional[str],
    linked: Mapping[str, Sequence[Mapping[str, Any]]],
    tallies: Dict[Tuple[str, str], Dict[str, int]],
    recoveries: Dict[Tuple[str, str], List[float]],
) -> None:
    """What incidents change: the deployed releases they belong to are counted with an incident; a
    successful one is a failure that recovers when its incidents are resolved, and makes the next
    release of its service rework (a failed one's next release was counted in SQL)."""
    for row in _relabel(store.releases_by_id(scope, granularity, group, sorted(linked)), granularity):
        if row["outcome"] not in DEPLOYED_OUTCOMES:
            continue
        key = (row["period"], row["grp"])
        tally = tallies.setdefault(key, _tally({}))
        tally["with_incident"] += 1
        if row["outcome"] != "successful":
            continue
        tally["failures"] += 1
        span = _incident_span(linked[str(row["release_id"])])
        if span is not None:
            recoveries.setdefault(key, []).append(span)
        following = store.next_deployed(scope, granularity, group, row)
        if following is not None:
            _count_rework(tallies, _period_label(following["period"], granularity), following["grp"])


# release_counts' columns that are tallies as they are (a failed or rolled-back release is a failure).
_RELEASE_COUNTS = (
    ("deployments", "deployments"),
    ("successful", "successful"),
    ("failures", "failed"),
    ("rollbacks", "rollbacks"),
    ("lead_samples", "samples"),
)


class _CountedLeads:
    """The lead-time histograms :func:`_lead_medians` asks for, from the counts' pass (per period,
    group and bucket) summed over groups or over periods; the exact values from the store."""

    def __init__(self, store: ReleaseMetricsStore, rows: Sequence[Mapping[str, Any]]) -> None:
        self.store = store
        self.rows = rows

    def lead_histogram(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        sums: Dict[Tuple[str, str, int], int] = {}
        for row in self.rows:
            key = ("all", str(row["grp"])) if granularity is None else (str(row["period"]), "")
            bucket = (*key, int(row["bucket"]))
            sums[bucket] = sums.get(bucket, 0) + int(row["samples"])
        return [{"period": p, "grp": g, "bucket": b, "samples": n} for (p, g, b), n in sums.items()]

    def lead_values(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], buckets: Sequence[int]
    ) -> List[Dict[str, Any]]:
        return self.store.lead_values(scope, granularity, group, buckets)


def _count_rework(tallies: Dict[Tuple[str, str], Dict[str, int]], label: str, grp: str) -> None:
    key = (label, grp)
    if key not in tallies:
        tallies[key] = _tally({})
    tallies[key]["rework"] += 1


@functools.lru_cache(maxsize=4096)
def _period_label(period: str, granularity: Optional[str]) -> str:
    """A period's name from its first local day, as :func:`_relabel` names them."""
    return period if granularity is None or period == ALL else _label(datetime.date.fromisoformat(period), granularity)


def _incidents_of_releases(
    store: ReleaseMetricsStore, scope: MetricsScope, incidents: Sequence[Mapping[str, Any]], owner: Mapping[int, str]
) -> Dict[str, List[Dict[str, Any]]]:
    """The incidents each release in scope led to (the rule of :func:`_incidents_of`, one query per
    incident at most): the release whose ``incident`` stage names it (``owner``), else the one made
    under its change number, else the newest deployed release of its service at most the link
    window before it was opened."""
    by_change = store.releases_by_change(scope, sorted({_change_of(incident) for incident in incidents} - {""}))
    linked: Dict[str, List[Dict[str, Any]]] = {}
    for incident in incidents:
        chosen: Optional[str] = owner.get(int(incident["id"])) or by_change.get(_change_of(incident))
        if chosen is None:
            newest = store.newest_deployed_before(
                scope, str(incident.get("ci") or incident["service"]), str(incident["opened_at"])
            )
            if newest is not None and _seconds_between(str(newest["finished_at"]), str(incident["opened_at"])) <= (
                scope.link_window_seconds
            ):
                chosen = str(newest["release_id"])
        if chosen is not None:
            linked.setdefault(chosen, []).append(dict(incident))
    return linked


def _change_of(incident: Mapping[str, Any]) -> str:
    """The change an incident names: its caused_by (ServiceNow's "Caused by Change"), or, in incidents
    recorded before that column was filled, the external id the release role gave it."""
    return str(incident.get("caused_by") or incident.get("external_id") or "")


def _incident_span(incidents: Sequence[Mapping[str, Any]]) -> Optional[float]:
    """First incident opened to last resolved, or None while any is open."""
    if any(incident.get("resolved_at") is None for incident in incidents):
        return None
    first = min(str(incident["opened_at"]) for incident in incidents)
    return _seconds_between(first, max(str(incident["resolved_at"]) for incident in incidents))


def release_facts(store: ReleaseMetricsStore, scope: MetricsScope) -> List[Dict[str, Any]]:
    """Every release finished in scope with its counts (0/1) and its lead and recovery seconds.

    - deployed: it changed the environment (successful, failed or rolled back; not aborted);
    - failure: it was rolled back, failed (needs a fix-forward), or led to an incident;
    - lead: a successful release's commit time (the manifest's) to its finish;
    - recovery: a failure's detection to service restored (its rollbacks done, else the next
      successful release for a fix-forward, the incidents resolved for an incident alone);
    - rework: a deployed release that follows a failed one of the same service (the fix).
    """
    later = store.finished_releases(scope.environment, scope.start, "9999", scope.service, scope.team)
    in_scope = [release for release in later if release["finished_at"] < scope.end]
    next_success = _next_successes(later)
    # Only a failed or rolled-back release has recovery stages: the release role writes its rollback and
    # incident during the recovery, and a finished successful record takes no incident stage.
    stages = store.recovery_stages(
        [release["release_id"] for release in in_scope if release["outcome"] in ("failed", "rolled_back")]
    )
    incidents = _incidents_of(store, scope, in_scope, stages)
    previous = store.previous_deployed(scope.environment, scope.start, sorted({r["service"] for r in in_scope}))
    last_outcome = {service: row["outcome"] for service, row in previous.items()}
    facts = []
    for release in in_scope:
        outcome = release["outcome"]
        deployed = outcome in DEPLOYED_OUTCOMES
        linked = incidents.get(release["release_id"], [])
        failed = outcome in ("failed", "rolled_back") or bool(linked and deployed)
        fact = {
            **release,
            "deployments": int(deployed),
            "successful": int(outcome == "successful"),
            "failures": int(deployed and failed),
            "rollbacks": int(outcome == "rolled_back"),
            "with_incident": int(bool(linked) and deployed),
            "rework": int(deployed and last_outcome.get(release["service"]) in ("failed", "rolled_back", "incident")),
            "incidents": [int(incident["id"]) for incident in linked],
            "lead_seconds": _lead_seconds(release),
            "recovery_seconds": None,
        }
        if deployed:
            last_outcome[release["service"]] = "incident" if linked and outcome == "successful" else outcome
        if fact["failures"]:
            fact["recovery_seconds"] = _recovery_seconds(
                release, stages.get(release["release_id"], {}), linked, next_success
            )
            fact["recovered" if fact["recovery_seconds"] is not None else "unrecovered"] = 1
        fact["lead_samples"] = int(fact["lead_seconds"] is not None)
        facts.append(fact)
    return facts


def _incidents_of(
    store: ReleaseMetricsStore,
    scope: MetricsScope,
    releases: Sequence[Mapping[str, Any]],
    stages: Mapping[str, Mapping[str, Mapping[str, Any]]],
) -> Dict[str, List[Dict[str, Any]]]:
    """The incidents each release led to.

    The release's own ``incident`` stage names its incident; an incident raised under a release's
    change number is that release's; any other incident goes to the newest deployed release of its
    service finished at most the link window before it was opened. So the incident a failed
    release opens during its own recovery (before it finishes) never blames the release before it.
    """
    by_id = {release["release_id"]: release for release in releases}
    owner: Dict[int, str] = {}
    for release_id, entries in stages.items():
        incident_id = (entries.get("incident") or {}).get("data", {}).get("id")
        if incident_id not in (None, ""):
            owner[int(incident_id)] = release_id
    by_change = {str(r["change_number"]): r["release_id"] for r in releases if r.get("change_number")}
    linked: Dict[str, List[Dict[str, Any]]] = {}
    for incident in store.incidents_opened(scope.environment, scope.start, scope.incident_until):
        chosen: Optional[str] = owner.get(int(incident["id"])) or by_change.get(_change_of(incident))
        if chosen is None:
            chosen = _window_release(incident, releases, scope.link_window_seconds)
        if chosen is not None and chosen in by_id:
            linked.setdefault(chosen, []).append(dict(incident))
    return linked


def _window_release(
    incident: Mapping[str, Any], releases: Sequence[Mapping[str, Any]], window_seconds: int
) -> Optional[str]:
    opened = parse_timestamp(str(incident["opened_at"]))
    service = incident.get("ci") or incident["service"]
    for release in reversed(releases):
        if release["service"] != service or release["outcome"] not in DEPLOYED_OUTCOMES:
            continue
        finished = parse_timestamp(str(release["finished_at"]))
        if finished <= opened:
            return str(release["release_id"]) if (opened - finished).total_seconds() <= window_seconds else None
    return None


def _lead_seconds(release: Mapping[str, Any]) -> Optional[float]:
    if release["outcome"] != "successful" or not release.get("commit_time"):
        return None
    return _seconds_between(str(release["commit_time"]), str(release["finished_at"]))


def _recovery_seconds(
    release: Mapping[str, Any],
    stages: Mapping[str, Mapping[str, Any]],
    incidents: Sequence[Mapping[str, Any]],
    next_success: Mapping[str, str],
) -> Optional[float]:
    """Seconds from the failure's detection to service restored, or None while it is not restored."""
    rollback = stages.get("rollback")
    if release["outcome"] == "successful":
        return _incident_span(incidents)
    detected = _detected_at(release, stages)
    # The role notes when its rollbacks (application, schema) were done; the rollback stage follows.
    restored = ((rollback or {}).get("data") or {}).get("restored_at")
    if restored:
        return _seconds_between(detected, str(restored))
    if release["outcome"] == "rolled_back":
        return _seconds_between(detected, str(rollback["recorded_at"] if rollback else release["finished_at"]))
    fixed = next_success.get(str(release["release_id"]))
    return _seconds_between(detected, fixed) if fixed else None


def _next_successes(releases: Sequence[Mapping[str, Any]]) -> Dict[str, str]:
    """Per release, when the next successful release of its service finished (one pass, newest first)."""
    following: Dict[str, str] = {}
    found: Dict[str, str] = {}
    for release in reversed(releases):
        if release["service"] in following:
            found[str(release["release_id"])] = following[release["service"]]
        if release["outcome"] == "successful":
            following[release["service"]] = str(release["finished_at"])
    return found


def _detected_at(release: Mapping[str, Any], stages: Mapping[str, Mapping[str, Any]]) -> str:
    """When the failure was detected: the release role notes it (rollback ``detected_at``); records
    written before it did use the deployment (the change went live), else the release's start."""
    rollback = stages.get("rollback") or {}
    noted = (rollback.get("data") or {}).get("detected_at")
    if noted:
        return str(noted)
    deployment = stages.get("deployment")
    return str(deployment["recorded_at"]) if deployment else str(release["started_at"])


def _seconds_between(earlier: str, later: str) -> float:
    return round((parse_timestamp(later) - parse_timestamp(earlier)).total_seconds(), 3)


def _release_group(fact: Mapping[str, Any], group: Optional[str]) -> str:
    if group == "service":
        return str(fact["service"])
    if group == "team":
        return str(fact.get("team") or "(none)")
    return ""


def _check_group(group: Optional[str]) -> None:
    if group is not None and group not in ("service", "team"):
        raise MetricsError("metrics group %r is not one of service, team" % group)


def _sum_rows(rows: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Counts per (period, group) from one row per release."""
    sums: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for row in rows:
        key = (row["period"], row["grp"])
        total = sums.setdefault(key, {"period": key[0], "grp": key[1], **dict.fromkeys(_COUNT_COLUMNS, 0)})
        for name in _COUNT_COLUMNS:
            total[name] += int(row.get(name) or 0)
    return list(sums.values())


def _groups(
    group_counts: Mapping[str, Mapping[str, Any]],
    medians: Mapping[Tuple[str, str, str], float],
    window_days: int,
) -> Dict[str, Any]:
    return {name: _metrics(row, medians, (ALL, name), window_days) for name, row in sorted(group_counts.items())}


def _aggregate(
    ledger: Ledger, scope: MetricsScope, granularity: str, group: Optional[str]
) -> Tuple[Dict[Tuple[str, str], Dict[str, int]], Dict[str, Dict[str, int]], Dict[Tuple[str, str, str], float]]:
    """Counts per (period, "") and (all, ""), counts per group over the window, and the medians.

    No read sorts the window: counts per period and group (one index scan, no incident links), the
    deployments linked to an incident (one look-up per incident), the failed and rolled-back
    deployments (an index range of those alone), and for lead time a histogram plus the exact
    values of the buckets that hold a median (:func:`_lead_medians`).
    """
    tallies = {
        (row["period"], row["grp"]): _tally(row)
        for row in _relabel(ledger.delivery_counts(scope, granularity, group), granularity)
    }
    recoveries: Dict[Tuple[str, str], List[float]] = {}
    linked_ids = set()
    for row in _relabel(ledger.linked_deployments(scope, granularity, group), granularity):
        linked_ids.add(row["id"])
        key = (row["period"], row["grp"])
        tally = tallies.setdefault(key, _tally({}))
        tally["with_incident"] += 1
        if row["status"] not in _FAILED:
            tally["failures"] += 1
        if row["recovery_seconds"] is not None:
            recoveries.setdefault(key, []).append(float(row["recovery_seconds"]))
    for row in _relabel(ledger.failed_deployments(scope, granularity, group), granularity):
        # A linked failed deployment recovers when its incidents are resolved, not when it was rolled back.
        if row["id"] not in linked_ids and row["recovery_seconds"] is not None:
            recoveries.setdefault((row["period"], row["grp"]), []).append(float(row["recovery_seconds"]))
    for key, values in recoveries.items():
        tallies.setdefault(key, _tally({}))["recovered"] = len(values)
    for tally in tallies.values():
        tally["unrecovered"] = tally["failures"] - tally["recovered"]
    lead_medians, lead_samples = _lead_medians(ledger, scope, granularity, group)
    medians = {(*key, "lead_seconds"): value for key, value in lead_medians.items()}
    medians.update(((*key, "recovery_seconds"), median(values)) for key, values in _pool(recoveries, group).items())
    per_group_rows = [{"period": label, "grp": grp, **tally} for (label, grp), tally in tallies.items()]
    per_period = _with_totals(_sum_over_groups(per_group_rows) if group else per_group_rows)
    per_group = (
        {grp: row for (label, grp), row in _with_totals(per_group_rows).items() if label == ALL} if group else {}
    )
    for (label, grp), samples in lead_samples.items():
        counted = per_group.get(grp) if grp else per_period.get((label, grp))
        if counted is not None:
            counted["lead_samples"] = samples
    return per_period, per_group, medians


_FAILED = ("failed", "rolled_back")


def _tally(row: Mapping[str, Any]) -> Dict[str, int]:
    """One period's (and group's) counts before incident links: the failures so far are the failed statuses."""
    tally = dict.fromkeys(_COUNT_COLUMNS, 0)
    for name in ("deployments", "successful", "rollbacks", "rework"):
        tally[name] = int(row.get(name) or 0)
    tally["failures"] = int(row.get("failed") or 0)
    return tally


def _pool(values: Mapping[Tuple[str, str], List[float]], group: Optional[str]) -> Dict[Tuple[str, str], List[float]]:
    """Samples per (period, ""), (all, "") and, when grouping, (all, group), from samples per period and group."""
    pooled: Dict[Tuple[str, str], List[float]] = {}
    for (label, grp), samples in values.items():
        for key in [(label, ""), (ALL, "")] + ([(ALL, grp)] if group else []):
            pooled.setdefault(key, []).extend(samples)
    return pooled


def _lead_medians(
    ledger: Union[Ledger, "_CountedLeads"], scope: MetricsScope, granularity: str, group: Optional[str]
) -> Tuple[Dict[Tuple[str, str], float], Dict[Tuple[str, str], int]]:
    """Exact lead-time medians and sample counts per (period, ""), (all, "") and (all, group).

    The ledger counts the values per bucket (buckets grow with the value); the count of each
    (period or group) says which bucket holds its middle rank(s) and how many values lie below
    it, so only the values of those buckets are read and sorted.
    """
    histograms: Dict[Tuple[str, str], Dict[int, int]] = {}
    for row in _relabel(ledger.lead_histogram(scope, granularity), granularity):
        for key in ((row["period"], ""), (ALL, "")):
            _add_samples(histograms, key, int(row["bucket"]), int(row["samples"]))
    if group:
        for row in ledger.lead_histogram(scope, None, group):
            _add_samples(histograms, (ALL, row["grp"]), int(row["bucket"]), int(row["samples"]))
    wanted = {key: _middle_buckets(histogram) for key, histogram in histograms.items()}
    buckets = sorted({bucket for middle in wanted.values() for bucket in middle[0]})
    by_period: Dict[Tuple[str, int], List[float]] = {}
    by_group: Dict[Tuple[str, int], List[float]] = {}
    for row in _relabel(ledger.lead_values(scope, granularity, group, buckets), granularity):
        bucket, value = int(row["bucket"]), float(row["value"])
        by_period.setdefault((row["period"], bucket), []).append(value)
        by_period.setdefault((ALL, bucket), []).append(value)
        by_group.setdefault((row["grp"], bucket), []).append(value)
    medians = {}
    for (label, grp), (middle, below) in wanted.items():
        source, name = (by_group, grp) if grp else (by_period, label)
        ordered = sorted(value for bucket in middle for value in source.get((name, bucket), ()))
        medians[(label, grp)] = _middle(ordered, sum(histograms[(label, grp)].values()), below)
    samples = {key: sum(histogram.values()) for key, histogram in histograms.items()}
    return medians, samples


def _add_samples(
    histograms: Dict[Tuple[str, str], Dict[int, int]], key: Tuple[str, str], bucket: int, count: int
) -> None:
    histogram = histograms.setdefault(key, {})
    histogram[bucket] = histogram.get(bucket, 0) + count


def _middle_buckets(histogram: Mapping[int, int]) -> Tuple[Tuple[int, ...], int]:
    """The bucket(s) holding the middle rank(s) of a histogram, and how many values lie in lower buckets."""
    count = sum(histogram.values())
    ranks = ((count + 1) // 2, (count + 2) // 2)
    below = 0
    middle: List[int] = []
    first_below = 0
    for bucket in sorted(histogram):
        upto = below + histogram[bucket]
        if any(below < rank <= upto for rank in ranks):
            if not middle:
                first_below = below
            middle.append(bucket)
        below = upto
    return tuple(middle), first_below


def median(values: Sequence[float]) -> float:
    """The middle value, or the mean of the two middle values, rounded to milliseconds."""
    ordered = sorted(values)
    return _middle(ordered, len(ordered))


def _middle(ordered: Sequence[float], count: int, below: int = 0) -> float:
    """Median of ``count`` sorted samples of which ``ordered`` holds the ranks after the lowest ``below``."""
    low = ordered[(count + 1) // 2 - 1 - below]
    high = ordered[(count + 2) // 2 - 1 - below]
    return round((low + high) / 2, 3)


def _metrics(
    row: Optional[Mapping[str, Any]], medians: Mapping[Tuple[str, str, str], float], key: Tuple[str, str], days: float
) -> Dict[str, Any]:
    """Shape one period's (or group's) counts and medians as the four keys plus rework rate."""
    data = {name: int((row or {}).get(name) or 0) for name in _COUNT_COLUMNS}
    attempts = data["deployments"]
    lead = medians.get((key[0], key[1], "lead_seconds"))
    recovery = medians.get((key[0], key[1], "recovery_seconds"))
    per_day = data["successful"] / days if days else 0.0
    rate = data["failures"] / attempts if attempts else None
    rework = data["rework"] / attempts if attempts else None
    return {
        "deployment_frequency": {
            "deployments": data["successful"],
            "per_day": round(per_day, 4),
            "per_week": round(per_day * 7, 4),
            "tier": _tier_higher_better(per_day, DEPLOYS_PER_DAY_LIMITS) if days and data["successful"] else None,
        },
        "lead_time": {
            "median_seconds": lead,
            "median_hours": _hours(lead),
            "samples": data["lead_samples"],
            "tier": _tier_lower_better(lead, LEAD_TIME_LIMITS, strict=True),
        },
        "change_failure_rate": {
            "deployments": attempts,
            "failures": data["failures"],
            "rollbacks": data["rollbacks"],
            "with_incident": data["with_incident"],
            "rate": None if rate is None else round(rate, 4),
            "tier": _tier_lower_better(rate, FAILURE_RATE_LIMITS, strict=False),
        },
        "recovery_time": {
            "median_seconds": recovery,
            "median_hours": _hours(recovery),
            "recovered": data["recovered"],
            "unrecovered": data["unrecovered"],
            "tier": _tier_lower_better(recovery, RECOVERY_LIMITS, strict=True),
        },
        "rework_rate": {
            "deployments": attempts,
            "rework": data["rework"],
            "rate": None if rework is None else round(rework, 4),
        },
    }


_COUNT_COLUMNS = (
    "deployments",
    "successful",
    "failures",
    "rework",
    "rollbacks",
    "with_incident",
    "lead_samples",
    "recovered",
    "unrecovered",
)


def _tier_lower_better(value: Optional[float], limits: Sequence[float], strict: bool) -> Optional[str]:
    """Elite/high/medium when under (or, for rates, at most) each limit in turn; low beyond the last."""
    if value is None:
        return None
    for tier, limit in zip(TIERS, limits, strict=False):
        if value < limit or (not strict and value <= limit):
            return tier
    return TIERS[-1]


def _tier_higher_better(value: float, limits: Sequence[float]) -> str:
    for tier, limit in zip(TIERS, limits, strict=False):
        if value >= limit:
            return tier
    return TIERS[-1]


def fourkeys_bucket(days: Sequence[Period], day_counts: Mapping[str, int]) -> str:
    """fourkeys' dashboard bucket: Daily / Weekly / Monthly / Yearly from medians of deployment days."""
    weekly = _median_days(days, day_counts, "week")
    monthly = _median_days(days, day_counts, "month")
    if weekly >= 3:
        return "Daily"
    if weekly >= 1:
        return "Weekly"
    if monthly >= 1:
        return "Monthly"
    return "Yearly"


def devlake_bucket(days: Sequence[Period], day_counts: Mapping[str, int]) -> str:
    """DevLake's DORA dashboard bucket with the 2023 benchmarks: elite / high / medium / low."""
    weekly = _median_days(days, day_counts, "week")
    monthly = _median_days(days, day_counts, "month")
    if weekly >= 7:
        return "elite"
    if weekly >= 1:
        return "high"
    if monthly >= 1:
        return "medium"
    return "low"


def _median_days(days: Sequence[Period], day_counts: Mapping[str, int], granularity: str) -> float:
    """Median over the window's calendar weeks (or months) of the number of days with a deployment."""
    buckets: Dict[str, int] = {}
    for label, _starts, _ends in days:
        day = datetime.date.fromisoformat(label)
        key = _label(day, granularity)
        buckets[key] = buckets.get(key, 0) + (1 if day_counts.get(label) else 0)
    return float(statistics.median(buckets.values())) if buckets else 0.0


def _git_lead_times(
    history: Sequence[Mapping[str, Any]], scope: MetricsScope, periods: Sequence[Period], repository: str
) -> Dict[Tuple[str, str, str], float]:
    """Median lead time per period over every commit between each release's previous release and its own.

    ``history``: oldest first, each service's release before the window, then the window's releases
    (deployments, or successful release records), with service, source_revision and finished_at.
    """
    samples: Dict[str, List[float]] = {ALL: []}
    previous: Dict[str, str] = {}
    for deployment in history:
        revision = deployment.get("source_revision")
        if not revision:
            continue
        before = previous.get(deployment["service"])
        previous[deployment["service"]] = revision
        if deployment["finished_at"] < scope.start:
            continue
        finished = datetime.datetime.fromisoformat(deployment["finished_at"].replace("Z", "+00:00")).timestamp()
        for committed in commit_times(repository, revision, before):
            lead = finished - committed
            samples[ALL].append(lead)
            for label, starts, ends in periods:
                if starts <= deployment["finished_at"] < ends:
                    samples.setdefault(label, []).append(lead)
    return {
        (label, "", "lead_seconds"): float(statistics.median(values)) for label, values in samples.items() if values
    }


def _revision_history(ledger: Ledger, scope: MetricsScope) -> List[Dict[str, Any]]:
    """Deployments in scope, plus each service's deployment before the window (its previous release)."""
    earlier = MetricsScope(
        environment=scope.environment,
        start="0000",
        end=scope.end,
        incident_until=scope.start,
        link_window_seconds=0,
        service=scope.service,
        team=scope.team,
    )
    return [
        row
        for row in ledger.deployments_between(earlier)
        if row["status"] == "successful" or row["finished_at"] >= scope.start
    ]


def commit_times(repository: str, revision: str, previous: Optional[str]) -> List[float]:
    """Commit times (epoch seconds) of the commits in previous..revision, or of revision alone."""
    selection = ["%s..%s" % (previous, revision)] if previous and previous != revision else ["-1", revision]
    done = subprocess.run(
        ["git", "-C", repository, "log", "--format=%ct", *selection, "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MetricsError(
            "git log %s in %s failed (%s); give the repository the releases were built from, with full history"
            % (" ".join(selection), repository, done.stderr.strip())
        )
    return [float(line) for line in done.stdout.split()]


def offset_stretches(
    start: datetime.datetime, end: datetime.datetime, tz: datetime.tzinfo
) -> Tuple[Tuple[Optional[str], int], ...]:
    """The UTC offsets in force over [start, end): (UTC end of each stretch, offset seconds), the last open.

    Found hour by hour, then to the second by bisection, so a DST change lands exactly.
    """

    def offset(moment: datetime.datetime) -> int:
        return int((moment.astimezone(tz).utcoffset() or datetime.timedelta(0)).total_seconds())

    stretches: List[Tuple[Optional[str], int]] = []
    moment = start.astimezone(datetime.timezone.utc)
    current = offset(moment)
    hour = datetime.timedelta(hours=1)
    while moment < end:
        following = moment + hour
        if offset(following) != current:
            low, high = moment, following
            while (high - low).total_seconds() > 1:
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            stretches.append((format_timestamp(high), current))
            current = offset(following)
        moment = following
    stretches.append((None, current))
    return tuple(stretches)


def _relabel(rows: Iterable[Mapping[str, Any]], granularity: str) -> List[Dict[str, Any]]:
    """Name each period (the ledger returns its first local day) as the series does."""
    relabelled = []
    for row in rows:
        period = row["period"]
        label = period if period == ALL else _label(datetime.date.fromisoformat(str(period)), granularity)
        relabelled.append({**row, "period": label})
    return relabelled


def _sum_over_groups(rows: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Per-period counts of all groups together (group ``""``), from counts per period and group."""
    sums: Dict[str, Dict[str, Any]] = {}
    for row in rows:
        total = sums.setdefault(row["period"], {"period": row["period"], "grp": "", **dict.fromkeys(_COUNT_COLUMNS, 0)})
        for name in _COUNT_COLUMNS:
            total[name] += int(row.get(name) or 0)
    return list(sums.values())


def _with_totals(rows: Iterable[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Counts per period plus their sums as period ``all`` (the periods partition the window)."""
    result: Dict[Tuple[str, str], Dict[str, Any]] = {(row["period"], row["grp"]): row for row in rows}
    totals: Dict[str, Dict[str, Any]] = {}
    for (_label, grp), row in result.items():
        total = totals.setdefault(grp, dict.fromkeys(_COUNT_COLUMNS, 0))
        for name in _COUNT_COLUMNS:
            total[name] += int(row.get(name) or 0)
    result.update({(ALL, grp): total for grp, total in totals.items()})
    return result


def _hours(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds / 3600.0, 3)


def _days_between(starts: str, ends: str) -> float:
    first = datetime.datetime.fromisoformat(starts.replace("Z", "+00:00"))
    last = datetime.datetime.fromisoformat(ends.replace("Z", "+00:00"))
    return round((last - first).total_seconds() / DAY)


def _date(text: str, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise MetricsError("%s date %r is not YYYY-MM-DD" % (name, text)) from None


def _midnight(day: datetime.date, tz: datetime.tzinfo) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(0), tzinfo=tz)


def _next_boundary(day: datetime.date, granularity: str) -> datetime.date:
    if granularity == "day":
        return day + datetime.timedelta(days=1)
    if granularity == "week":
        return day + datetime.timedelta(days=7 - day.weekday())
    return (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)


def _label(day: datetime.date, granularity: str) -> str:
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _weekday = day.isocalendar()
        return "%04d-W%02d" % (year, week)
    return day.strftime("%Y-%m")
