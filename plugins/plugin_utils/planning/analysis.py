# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis of a release plan: governance rigor, dependency order, conflicts, vendor slips, scope at risk.

Pure functions over the parsed plan. What comes from outside (related CIs from the CMDB, the
governance calendars) is passed in, so the analysis is the same for every backend.
"""

from __future__ import annotations

import datetime
import graphlib
import heapq
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.calendar import evaluate

from .plan import DAY, Plan, PlanError, Release, parse_when

# What each class of release needs before it may go: who approves, who is told, which milestones
# must be on the plan, and how many days' notice. A plan's ``governance`` section overrides any key.
DEFAULT_GOVERNANCE: Dict[str, Dict[str, Any]] = {
    "strategic": {
        "approvals": ["change advisory board", "business owner", "architecture board"],
        "stakeholders": ["product management", "operations", "security", "service desk"],
        "required_milestones": ["scope freeze", "cab review", "go/no-go"],
        "min_lead_days": 30,
    },
    "operational": {
        "approvals": ["change manager"],
        "stakeholders": ["operations", "service owner"],
        "required_milestones": ["go/no-go"],
        "min_lead_days": 5,
    },
    "emergency": {
        "approvals": ["emergency change advisory board"],
        "stakeholders": ["operations", "incident manager"],
        "required_milestones": [],
        "min_lead_days": 0,
    },
}

SEVERITIES = ("error", "warning")

# A calendar check answers, for one release, the blackout or peak occurrences its window overlaps.
CalendarCheck = Callable[[Release], List[Dict[str, Any]]]


@dataclass
class Finding:
    kind: str
    severity: str
    releases: List[str]
    message: str
    details: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "releases": self.releases,
            "message": self.message,
            "details": self.details,
        }


@dataclass
class Move:
    release: str
    start: datetime.datetime
    end: datetime.datetime
    new_start: datetime.datetime
    new_end: datetime.datetime
    because: List[str]

    @property
    def days(self) -> float:
        return round((self.new_start - self.start) / DAY, 2)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "release": self.release,
            "start": format_timestamp(self.start),
            "new_start": format_timestamp(self.new_start),
            "new_end": format_timestamp(self.new_end),
            "days": self.days,
            "because": self.because,
        }


@dataclass
class Analysis:
    plan: Plan
    order: List[str]
    rigor: Dict[str, Dict[str, Any]]
    findings: List[Finding]
    moves: List[Move]
    schedule: Dict[str, Tuple[datetime.datetime, datetime.datetime]]

    def counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def worst(self) -> Optional[str]:
        for severity in SEVERITIES:
            if any(finding.severity == severity for finding in self.findings):
                return severity
        return None

    def as_dict(self) -> Dict[str, Any]:
        releases = []
        for release in self.plan.releases:
            new_start, new_end = self.schedule[release.id]
            releases.append(
                {
                    "id": release.id,
                    "title": release.title,
                    "class": release.klass,
                    "quarter": release.quarter,
                    "business_unit": release.business_unit,
                    "start": format_timestamp(release.start),
                    "end": format_timestamp(release.end),
                    "last_day": (release.end - datetime.timedelta(microseconds=1)).date().isoformat(),
                    "feasible_start": format_timestamp(new_start),
                    "feasible_end": format_timestamp(new_end),
                    "depends_on": release.depends_on,
                    "cis": release.cis,
                    "governance": self.rigor[release.id],
                }
            )
        return {
            "name": self.plan.name,
            "releases": releases,
            "order": self.order,
            "findings": [finding.as_dict() for finding in self.findings],
            "moves": [move.as_dict() for move in self.moves],
            "counts": self.counts(),
        }


def analyse(
    plan: Plan,
    related: Optional[Mapping[str, Set[str]]] = None,
    as_of: Optional[datetime.datetime] = None,
    vendor_moves: Sequence[Mapping[str, Any]] = (),
    calendar_check: Optional[CalendarCheck] = None,
) -> Analysis:
    """Analyse the plan; raise PlanError for what makes analysis impossible (unknown releases, a cycle)."""
    releases = plan.by_id()
    check_dependencies_exist(plan)
    order = dependency_order(plan)
    rigor = {release.id: governance_for(plan, release.klass) for release in plan.releases}
    findings: List[Finding] = []
    findings.extend(governance_findings(plan, rigor, as_of))
    findings.extend(quarter_findings(plan))
    findings.extend(dependency_findings(plan, releases))
    findings.extend(vendor_findings(plan))
    findings.extend(conflict_findings(plan, related or {}))
    if calendar_check is not None:
        findings.extend(calendar_findings(plan, calendar_check))
    vendor_dates = apply_vendor_moves(plan, vendor_moves)
    schedule, reasons = feasible_schedule(plan, order, releases, vendor_dates)
    moves = [
        Move(rid, releases[rid].start, releases[rid].end, schedule[rid][0], schedule[rid][1], reasons[rid])
        for rid in order
        if schedule[rid][0] > releases[rid].start
    ]
    findings.extend(scope_findings(plan, schedule, reasons))
    return Analysis(plan, order, rigor, findings, moves, schedule)


def governance_for(plan: Plan, klass: str) -> Dict[str, Any]:
    rules = dict(DEFAULT_GOVERNANCE[klass])
    rules.update(plan.governance.get(klass, {}))
    return rules


def check_dependencies_exist(plan: Plan) -> None:
    known = plan.by_id()
    problems = [
        "plan.releases[%d].depends_on: %r is not a release in this plan; add it or fix the id" % (index, dep)
        for index, release in enumerate(plan.releases)
        for dep in release.depends_on
        if dep not in known
    ]
    if problems:
        raise PlanError("release plan is invalid:\n  " + "\n  ".join(problems))


def dependency_order(plan: Plan) -> List[str]:
    """Releases in an order that puts every dependency first and, within that, earlier starts first."""
    releases = plan.by_id()
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for release in plan.releases:
        sorter.add(release.id, *release.depends_on)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        raise PlanError(
            "release plan has a dependency cycle: %s; remove one of these depends_on entries"
            % " -> ".join(reversed(cycle))
        ) from None
    # Kahn's algorithm with the earliest-starting ready release first, so the order reads like the calendar.
    order: List[str] = []
    ready: List[Tuple[datetime.datetime, str]] = []
    while sorter.is_active():
        for rid in sorter.get_ready():
            heapq.heappush(ready, (releases[rid].start, rid))
        rid = heapq.heappop(ready)[1]
        order.append(rid)
        sorter.done(rid)
    return order


def governance_findings(
    plan: Plan, rigor: Mapping[str, Mapping[str, Any]], as_of: Optional[datetime.datetime]
) -> Iterable[Finding]:
    for release in plan.releases:
        rules = rigor[release.id]
        have = {milestone.name.lower() for milestone in release.milestones}
        missing = [name for name in rules["required_milestones"] if name.lower() not in have]
        if missing:
            yield Finding(
                "governance",
                "warning",
                [release.id],
                "%s release %s lacks the milestones %s its class requires"
                % (release.klass, release.id, ", ".join(repr(name) for name in missing)),
                {"missing_milestones": missing},
            )
        late = [m.name for m in release.milestones if m.at >= release.end]
        if late:
            yield Finding(
                "governance",
                "warning",
                [release.id],
                "release %s has milestones after its window ends: %s" % (release.id, ", ".join(late)),
                {"late_milestones": late},
            )
        if as_of is not None and release.start >= as_of:
            notice = (release.start - as_of) / DAY
            if notice < rules["min_lead_days"]:
                yield Finding(
                    "governance",
                    "warning",
                    [release.id],
                    "%s release %s starts in %.0f days; its class needs %d days' notice"
                    % (release.klass, release.id, notice, rules["min_lead_days"]),
                    {"notice_days": round(notice, 2), "min_lead_days": rules["min_lead_days"]},
                )


def quarter_findings(plan: Plan) -> Iterable[Finding]:
    for release in plan.releases:
        year, quarter = release.quarter.split("-Q")
        actual = "%d-Q%d" % (release.start.year, (release.start.month - 1) // 3 + 1)
        if actual != "%s-Q%s" % (year, quarter):
            yield Finding(
                "quarter",
                "warning",
                [release.id],
                "release %s is planned for %s but starts on %s (%s)"
                % (release.id, release.quarter, release.start.date().isoformat(), actual),
                {"planned": release.quarter, "actual": actual},
            )


def dependency_findings(plan: Plan, releases: Mapping[str, Release]) -> Iterable[Finding]:
    for release in plan.releases:
        for dep_id in release.depends_on:
            dep = releases[dep_id]
            if dep.end > release.start:
                yield Finding(
                    "dependency_order",
                    "error",
                    [release.id, dep_id],
                    "release %s starts %s, before its dependency %s ends (%s)"
                    % (release.id, format_timestamp(release.start), dep_id, format_timestamp(dep.end)),
                    {"dependency": dep_id},
                )


def vendor_buffer(plan: Plan, buffer_days: int) -> int:
    return plan.buffer_days if buffer_days < 0 else buffer_days


def vendor_findings(plan: Plan) -> Iterable[Finding]:
    for release in plan.releases:
        for vendor in release.vendors:
            buffer = vendor_buffer(plan, vendor.buffer_days)
            needed = vendor.at + buffer * DAY
            if release.start < needed:
                short = (needed - release.start) / DAY
                yield Finding(
                    "vendor_slip",
                    "warning",
                    [release.id],
                    "release %s starts %s, %.1f days before %s's %s (due %s) plus %d buffer days"
                    % (
                        release.id,
                        release.start.date().isoformat(),
                        short,
                        vendor.vendor,
                        vendor.delivery or "delivery",
                        vendor.at.date().isoformat(),
                        buffer,
                    ),
                    {"vendor": vendor.vendor, "delivery": vendor.delivery, "short_days": round(short, 2)},
                )


def conflict_findings(plan: Plan, related: Mapping[str, Set[str]]) -> Iterable[Finding]:
    """Pairs of releases whose windows overlap and that touch the same CI or CIs related in the CMDB."""
    ordered = sorted((r for r in plan.releases if r.cis), key=lambda r: (r.start, r.id))
    expanded = {r.id: set().union(*(related.get(ci, set()) for ci in r.cis)) for r in ordered}
    active: List[Release] = []
    for release in ordered:
        active = [other for other in active if other.end > release.start]
        own = set(release.cis)
        for other in active:
            theirs = set(other.cis)
            same = own & theirs
            linked = ((expanded[release.id] & theirs) | (own & expanded[other.id])) - same
            if not same and not linked:
                continue
            yield Finding(
                "ci_conflict",
                "warning",
                [other.id, release.id],
                "releases %s and %s overlap (%s to %s) and touch %s"
                % (
                    other.id,
                    release.id,
                    format_timestamp(max(other.start, release.start)),
                    format_timestamp(min(other.end, release.end)),
                    "; ".join(
                        part
                        for part in (
                            "the same CIs %s" % ", ".join(sorted(same)) if same else "",
                            "related CIs %s" % ", ".join(sorted(linked)) if linked else "",
                        )
                        if part
                    ),
                ),
                {"same": sorted(same), "related": sorted(linked)},
            )
        active.append(release)


def make_calendar_check(windows: Sequence[Any]) -> CalendarCheck:
    """A calendar check over the governance calendars' windows (plugin_utils/calendar), blackouts only.

    Peak periods are blackout windows too (a calendar names them, for example "peak: Black Friday");
    maintenance windows say where changes may go, not where they may not, so they are not findings.
    """

    def check(release: Release) -> List[Dict[str, Any]]:
        scope = {
            "business_unit": release.business_unit or None,
            "ci": release.cis or None,
            "service": release.service,
            "environment": release.environment,
        }
        # Only the occurrences overlapping the window matter: asking "as of" the window's start with a
        # one-day horizon keeps recurring windows from being expanded from today to every release.
        answer = evaluate(windows, now=release.start, planned=(release.start, release.end), scope=scope, horizon=DAY)
        return [hit.as_dict() for hit in answer.overlapping if hit.kind == "blackout"]

    return check


def calendar_findings(plan: Plan, calendar_check: CalendarCheck) -> Iterable[Finding]:
    for release in plan.releases:
        for hit in calendar_check(release):
            yield Finding(
                "calendar",
                "warning",
                [release.id],
                "release %s (%s to %s) falls in %s %r (%s to %s)"
                % (
                    release.id,
                    format_timestamp(release.start),
                    format_timestamp(release.end),
                    hit["kind"],
                    hit["name"],
                    hit["start"],
                    hit["end"],
                ),
                {"window": hit},
            )


def apply_vendor_moves(plan: Plan, moves: Sequence[Mapping[str, Any]]) -> Dict[Tuple[str, int], datetime.datetime]:
    """Vendor delivery dates after the what-if moves, keyed by (release id, vendor index)."""
    dates = {
        (release.id, index): vendor.at for release in plan.releases for index, vendor in enumerate(release.vendors)
    }
    for number, move in enumerate(moves):
        where = "vendor_moves[%d]" % number
        if not move.get("vendor") or not move.get("date"):
            raise PlanError("%s: give vendor and date (YYYY-MM-DD)" % where)
        new_date = parse_when(str(move["date"]), where + ".date")[0]
        matched = False
        for release in plan.releases:
            for index, vendor in enumerate(release.vendors):
                if vendor.vendor == move["vendor"] and move.get("delivery") in (None, "", vendor.delivery):
                    dates[(release.id, index)] = new_date
                    matched = True
        if not matched:
            raise PlanError(
                "%s: no release depends on vendor %r%s; check the name against the plan's vendors"
                % (where, move["vendor"], " delivery %r" % move["delivery"] if move.get("delivery") else "")
            )
    return dates


def feasible_schedule(
    plan: Plan,
    order: Sequence[str],
    releases: Mapping[str, Release],
    vendor_dates: Mapping[Tuple[str, int], datetime.datetime],
) -> Tuple[Dict[str, Tuple[datetime.datetime, datetime.datetime]], Dict[str, List[str]]]:
    """Earliest start of each release given vendor dates (plus buffer) and dependencies, keeping its length."""
    schedule: Dict[str, Tuple[datetime.datetime, datetime.datetime]] = {}
    reasons: Dict[str, List[str]] = {}
    for rid in order:
        release = releases[rid]
        start = release.start
        because: List[str] = []
        for index, vendor in enumerate(release.vendors):
            ready = vendor_dates[(rid, index)] + vendor_buffer(plan, vendor.buffer_days) * DAY
            if ready > release.start:
                because.append("vendor %s %s" % (vendor.vendor, vendor.delivery or "delivery"))
                start = max(start, ready)
        for dep in release.depends_on:
            dep_end = schedule[dep][1]
            if dep_end > release.start:
                because.append("dependency %s" % dep)
                start = max(start, dep_end)
        schedule[rid] = (start, start + (release.end - release.start))
        reasons[rid] = because
    return schedule, reasons


def scope_findings(
    plan: Plan,
    schedule: Mapping[str, Tuple[datetime.datetime, datetime.datetime]],
    reasons: Mapping[str, List[str]],
) -> Iterable[Finding]:
    """Compliance items whose release ends after their deadline, as planned or once it slips."""
    for release in plan.releases:
        feasible_end = schedule[release.id][1]
        for item in release.scope:
            if item.limit is None:
                continue
            if release.end > item.limit:
                yield Finding(
                    "compliance_at_risk",
                    "error",
                    [release.id],
                    "compliance item %s (deadline %s) rides on release %s, planned to end %s"
                    % (item.id, item.deadline, release.id, format_timestamp(release.end)),
                    {"item": item.id, "deadline": item.deadline, "slipped": False},
                )
            elif feasible_end > item.limit:
                yield Finding(
                    "compliance_at_risk",
                    "error",
                    [release.id],
                    "compliance item %s (deadline %s) is at risk: release %s slips to end %s because of %s"
                    % (
                        item.id,
                        item.deadline,
                        release.id,
                        format_timestamp(feasible_end),
                        ", ".join(reasons[release.id]),
                    ),
                    {"item": item.id, "deadline": item.deadline, "slipped": True, "because": reasons[release.id]},
                )
