# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release reports from the ledger and the audit trail (issue 11).

Every report is built as data first: a title and sections, each section holding
text, a table and/or a chart. ``render.py`` turns that one shape into static
HTML (charts as inline SVG), Markdown and JSON, so the three formats always
agree. Definitions are in docs/metrics.md.
"""

from __future__ import annotations

import datetime
import json
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import trail_files
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.metrics_store import MetricsScope
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.review import ReviewStore, check_runbook, with_overdue

from .dora import MetricsRequest, choose_source, compute
from .patterns import failure_patterns
from .release_store import ReleaseMetricsStore

REPORTS = ("dashboard", "cfr", "pir", "runbook", "automation", "pipeline", "calibration")

# Audit actions and outcomes that are points where a person holds the release.
PAUSE_ACTIONS = ("ansible.builtin.pause", "pause", "ansible.builtin.wait_for_connection")
APPROVAL_ACTIONS = ("relops.release.change_request", "relops.release.change_gate")
TEST_ACTIONS = ("relops.release.quality_gate", "relops.release.smoke_check")


@dataclass
class Section:
    heading: str
    text: List[str] = field(default_factory=list)
    columns: List[str] = field(default_factory=list)
    rows: List[List[Any]] = field(default_factory=list)
    chart: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        section: Dict[str, Any] = {"heading": self.heading, "text": self.text}
        if self.columns:
            section["table"] = {"columns": self.columns, "rows": self.rows}
        if self.chart:
            section["chart"] = self.chart
        return section


@dataclass
class Report:
    name: str
    title: str
    sections: List[Section]
    data: Dict[str, Any]

    def as_dict(self, covers: str) -> Dict[str, Any]:
        return {
            "report": self.name,
            "title": self.title,
            "covers": covers,
            "sections": [section.as_dict() for section in self.sections],
            "data": self.data,
        }


@dataclass
class ReportInputs:
    """What every report reads: the metrics request, the audit trail and the optional inputs."""

    request: MetricsRequest
    audit_path: Optional[str] = None
    deployment_ids: Sequence[int] = ()
    release_ids: Sequence[str] = ()
    runbook_root: Optional[str] = None
    runbook_max_age_hours: int = 48
    slow_task_seconds: float = 300.0
    exemptions: Sequence[Mapping[str, Any]] = ()
    # When the report is made: what is overdue, and whether a runbook's update period has ended.
    now: Optional[datetime.datetime] = None

    def moment(self) -> datetime.datetime:
        return self.now or utc_now()


def line_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[Optional[float]]]) -> Dict[str, Any]:
    return {"type": "line", "title": title, "labels": list(labels), "series": {k: list(v) for k, v in series.items()}}


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[Optional[float]]]) -> Dict[str, Any]:
    return {"type": "bar", "title": title, "labels": list(labels), "series": {k: list(v) for k, v in series.items()}}


# Delivery dashboard


def dashboard(ledger: Ledger, inputs: ReportInputs) -> Report:
    metrics = compute(ledger, inputs.request)
    summary = metrics["summary"]
    teams = compute(ledger, _with(inputs.request, group_by="team"))["groups"]
    services = compute(ledger, _with(inputs.request, group_by="service"))["groups"]
    labels = [entry["period"] for entry in metrics["series"]]
    sections = [
        Section(
            "The four keys and rework rate",
            text=[
                "%s to %s, %s, %s"
                % (
                    _day(metrics["window"]["start"]),
                    _day(metrics["window"]["end"], -1),
                    inputs.request.environment,
                    inputs.request.timezone,
                )
            ],
            columns=["metric", "value", "tier (DORA 2023)"],
            rows=_summary_rows(summary),
        ),
        Section(
            "Deployments per %s" % inputs.request.granularity,
            chart=bar_chart(
                "Successful deployments",
                labels,
                {"deployments": [e["deployment_frequency"]["deployments"] for e in metrics["series"]]},
            ),
        ),
        Section(
            "Change failure rate and rework rate trend",
            chart=line_chart(
                "Rates per %s" % inputs.request.granularity,
                labels,
                {
                    "change failure rate": [e["change_failure_rate"]["rate"] for e in metrics["series"]],
                    "rework rate": [e["rework_rate"]["rate"] for e in metrics["series"]],
                },
            ),
        ),
        Section(
            "Lead time and recovery time trend (hours, medians)",
            chart=line_chart(
                "Median hours per %s" % inputs.request.granularity,
                labels,
                {
                    "lead time": [e["lead_time"]["median_hours"] for e in metrics["series"]],
                    "recovery time": [e["recovery_time"]["median_hours"] for e in metrics["series"]],
                },
            ),
        ),
        Section("Per team", columns=_GROUP_COLUMNS, rows=_group_rows(teams)),
        Section("Per service", columns=_GROUP_COLUMNS, rows=_group_rows(services)),
    ]
    return Report(
        "dashboard", "Delivery dashboard", sections, {"metrics": metrics, "teams": teams, "services": services}
    )


_GROUP_COLUMNS = [
    "name",
    "deployments",
    "per week",
    "lead time h",
    "CFR",
    "recovery h",
    "rework",
    "tiers DF/LT/CFR/FDRT",
]


def _group_rows(groups: Mapping[str, Mapping[str, Any]]) -> List[List[Any]]:
    rows = []
    for name, group in sorted(groups.items()):
        tiers = "/".join(
            str(group[key]["tier"] or "-")
            for key in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time")
        )
        rows.append(
            [
                name,
                group["change_failure_rate"]["deployments"],
                group["deployment_frequency"]["per_week"],
                group["lead_time"]["median_hours"],
                _percent(group["change_failure_rate"]["rate"]),
                group["recovery_time"]["median_hours"],
                _percent(group["rework_rate"]["rate"]),
                tiers,
            ]
        )
    return rows


def _summary_rows(summary: Mapping[str, Any]) -> List[List[Any]]:
    frequency = summary["deployment_frequency"]
    return [
        [
            "deployment frequency",
            "%s per week (%s deployments on %s days; fourkeys %s, DevLake %s)"
            % (
                frequency["per_week"],
                frequency["deployments"],
                frequency.get("deployment_days"),
                frequency.get("fourkeys"),
                frequency.get("devlake"),
            ),
            frequency["tier"],
        ],
        ["lead time for changes", _hours_text(summary["lead_time"]["median_hours"]), summary["lead_time"]["tier"]],
        [
            "change failure rate",
            "%s (%s of %s)"
            % (
                _percent(summary["change_failure_rate"]["rate"]),
                summary["change_failure_rate"]["failures"],
                summary["change_failure_rate"]["deployments"],
            ),
            summary["change_failure_rate"]["tier"],
        ],
        [
            "failed deployment recovery time",
            _hours_text(summary["recovery_time"]["median_hours"]),
            summary["recovery_time"]["tier"],
        ],
        [
            "deployment rework rate",
            "%s (%s of %s)"
            % (
                _percent(summary["rework_rate"]["rate"]),
                summary["rework_rate"]["rework"],
                summary["rework_rate"]["deployments"],
            ),
            "-",
        ],
    ]


# Change failure rate by team and application


def change_failure(ledger: Ledger, inputs: ReportInputs) -> Report:
    sections: List[Section] = []
    data: Dict[str, Any] = {}
    for group in ("team", "service"):
        groups = compute(ledger, _with(inputs.request, group_by=group))["groups"]
        trends: Dict[str, List[Optional[float]]] = {}
        labels: List[str] = []
        for name in sorted(groups):
            filters = {"team": name} if group == "team" else {"service": name}
            if group == "team" and name == "(none)":
                continue
            series = compute(ledger, _with(inputs.request, group_by=None, **filters))["series"]
            labels = [entry["period"] for entry in series]
            trends[name] = [entry["change_failure_rate"]["rate"] for entry in series]
        data[group] = {"groups": groups, "trend": {"labels": labels, "series": trends}}
        title = "application" if group == "service" else "team"
        sections.append(
            Section(
                "Change failure rate by %s" % title,
                columns=[title, "deployments", "failures", "with incident", "rollbacks", "CFR", "tier"],
                rows=[
                    [
                        name,
                        g["change_failure_rate"]["deployments"],
                        g["change_failure_rate"]["failures"],
                        g["change_failure_rate"]["with_incident"],
                        g["change_failure_rate"]["rollbacks"],
                        _percent(g["change_failure_rate"]["rate"]),
                        g["change_failure_rate"]["tier"],
                    ]
                    for name, g in sorted(groups.items())
                ],
            )
        )
        if trends:
            sections.append(
                Section(
                    "Change failure rate trend by %s" % title,
                    chart=line_chart("CFR per %s" % inputs.request.granularity, labels, trends),
                )
            )
    scope = _scope(inputs.request)
    causes = ledger.component_stats(scope.environment, scope.start, scope.end)
    data["root_causes"] = [{**row, "resolution_seconds": float(row["resolution_seconds"] or 0)} for row in causes]
    sections.append(
        Section(
            "Incidents by service, component and root cause",
            columns=["service", "component", "root cause", "incidents", "resolved", "hours to resolve (total)"],
            rows=[
                [
                    row["service"],
                    row["component"],
                    row["root_cause"],
                    int(row["incidents"]),
                    int(row["resolved"]),
                    round(float(row["resolution_seconds"] or 0) / 3600, 2),
                ]
                for row in causes
            ],
        )
    )
    if choose_source(ledger, inputs.request) == "releases":
        data["patterns"] = failure_patterns(ledger, inputs.request)
        sections.append(
            Section(
                "Which kinds of release fail",
                text=[
                    "Change failure rate of the deployed releases by what their records say: risk band, "
                    "migrations, strategy, release class, size (files changed), weekday and hour started."
                ],
                columns=["attribute", "value", "deployed releases", "failures", "CFR"],
                rows=[
                    [name, row["value"], row["deployments"], row["failures"], _percent(row["rate"])]
                    for name, rows in data["patterns"].items()
                    for row in rows
                ],
            )
        )
    return Report("cfr", "Change failure rate by team and application", sections, data)


# Post-implementation review


def post_implementation(ledger: Ledger, inputs: ReportInputs) -> Report:
    scope = _scope(inputs.request)
    chosen = list(inputs.deployment_ids)
    if not chosen and not inputs.release_ids:
        # Without a choice: every failed deployment of the window (those are what reviews are for).
        chosen = [int(row["id"]) for row in ledger.deployments_between(scope) if row["failure"]]
    events = list(read_audit(inputs.audit_path)) if inputs.audit_path else []
    incidents = ledger.incidents_with_links(
        scope.environment, scope.start, scope.incident_until, scope.link_window_seconds
    )
    reviews_store = ReviewStore(ledger)
    today = inputs.moment().date()
    sections: List[Section] = []
    reviews = []
    reviewed_releases = set()
    for deployment_id in chosen:
        deployment = ledger.get_deployment(deployment_id)
        if deployment is None:
            sections.append(Section("Deployment %d" % deployment_id, text=["Not in the ledger."]))
            continue
        release_id = reviews_store.release_of_deployment(deployment)
        if release_id is not None and release_id in reviewed_releases:
            continue
        review = _review(ledger, deployment, events, incidents, inputs)
        review.update(_recorded_review(reviews_store, release_id, today))
        reviewed_releases.add(release_id)
        reviews.append(review)
        sections.extend(_review_sections(review))
    for release_id in inputs.release_ids:
        if release_id in reviewed_releases:
            continue
        record = ReleaseRecordStore(ledger).get_record(release_id)
        if record is None:
            sections.append(Section("Release %s" % release_id, text=["Not in the ledger."]))
            continue
        incident = (record["stages"].get("incident") or {}).get("id")
        named = [dict(i, deployment_id=None, link="record") for i in incidents if incident and i["id"] == incident]
        review = _review(ledger, _deployment_of_record(record), events, named, inputs)
        review.update(_recorded_review(reviews_store, release_id, today))
        reviewed_releases.add(release_id)
        reviews.append(review)
        sections.extend(_review_sections(review))
    if not reviews and not sections:
        sections.append(Section("No deployments to review", text=["No failed deployments in the window."]))
    open_actions = with_overdue(
        reviews_store.actions(state="open", environment=scope.environment, service=scope.service), today
    )
    sections.append(_open_actions_section(open_actions, today))
    data = {
        "reviews": reviews,
        "open_actions": open_actions,
        "overdue": [action for action in open_actions if action["overdue"]],
    }
    return Report("pir", "Post-implementation reviews", sections, data)


def _deployment_of_record(record: Mapping[str, Any]) -> Dict[str, Any]:
    """A release record in the shape a review reads (a deployment row's columns); it has no deployment id."""
    return {
        "id": None,
        "service": record["service"],
        "version": record["version"],
        "environment": record["environment"],
        "status": record["outcome"],
        "team": record.get("team"),
        "started_at": record["started_at"],
        "finished_at": record.get("finished_at"),
        "run_id": record.get("run_id"),
        "change_id": record.get("change_number"),
        "artifact_digest": record["digest"],
    }


def _recorded_review(store: ReviewStore, release_id: Optional[str], today: datetime.date) -> Dict[str, Any]:
    """The feedback and follow-up actions recorded for the release (relops.release.release_review)."""
    recorded = store.review(release_id) if release_id else None
    if recorded is None:
        return {"release_id": release_id, "feedback": [], "actions": []}
    return {
        "release_id": release_id,
        "feedback": [{k: entry[k] for k in ("author", "text", "recorded_at")} for entry in recorded["feedback"]],
        "actions": with_overdue(recorded["actions"], today),
    }


def _open_actions_section(actions: Sequence[Mapping[str, Any]], today: datetime.date) -> Section:
    overdue = sum(1 for action in actions if action["overdue"])
    return Section(
        "Open follow-up actions",
        text=[
            "%d open, %d overdue on %s (every release of the environment)." % (len(actions), overdue, today)
            if actions
            else "No open follow-up actions."
        ],
        columns=["release", "action", "owner", "due", "overdue"] if actions else [],
        rows=[
            [a["release_id"], a["title"], a["owner"], a["due_date"], "OVERDUE" if a["overdue"] else ""] for a in actions
        ],
    )


def _review(
    ledger: Ledger,
    deployment: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    incidents: Sequence[Mapping[str, Any]],
    inputs: ReportInputs,
) -> Dict[str, Any]:
    run_events = [event for event in events if event.get("run_id") == deployment.get("run_id")]
    results = [event for event in run_events if str(event.get("event", "")).startswith("runner_")]
    timeline = [
        {
            "ts": event["ts"],
            "event": event["event"],
            "task": event.get("task"),
            "host": event.get("host"),
            "outcome": event.get("outcome"),
            "duration": event.get("duration"),
        }
        for event in run_events
        if event.get("event") in ("playbook_start", "play_start", "playbook_end") or event in results
    ]
    decisions = [
        {"gate": d["gate"], "decision": d["decision"], "reasons": d["reasons"], "decided_at": d["decided_at"]}
        for d in ledger.decisions_for_run(str(deployment.get("run_id") or ""))
    ]
    anomalies = []
    for event in results:
        result = _result(event)
        if event.get("outcome") in ("failed", "rescued", "ignored", "unreachable", "async_failed"):
            anomalies.append({"task": event.get("task"), "kind": event.get("outcome"), "detail": result.get("msg")})
        if int(result.get("attempts") or 0) > 1:
            anomalies.append(
                {"task": event.get("task"), "kind": "retried", "detail": "%s attempts" % result["attempts"]}
            )
        if float(event.get("duration") or 0) > inputs.slow_task_seconds:
            anomalies.append({"task": event.get("task"), "kind": "slow", "detail": "%.1f s" % event["duration"]})
    health = [
        {
            "task": event.get("task"),
            "action": event.get("action"),
            "outcome": event.get("outcome"),
            "verdict": (event.get("result") or {}).get("verdict") or (event.get("result") or {}).get("decision"),
        }
        for event in results
        if event.get("action") in ("relops.release.health_gate", "relops.release.smoke_check")
    ]
    linked = [
        {
            "id": i["id"],
            "title": i["title"],
            "opened_at": i["opened_at"],
            "resolved_at": i.get("resolved_at"),
            "link": i["link"],
            "root_cause": i.get("root_cause"),
        }
        for i in incidents
        if deployment["id"] is None or i.get("deployment_id") == deployment["id"]
    ]
    return {
        "deployment": {
            key: deployment.get(key)
            for key in (
                "id",
                "service",
                "version",
                "environment",
                "status",
                "team",
                "started_at",
                "finished_at",
                "run_id",
                "change_id",
                "artifact_digest",
            )
        },
        "timeline": timeline,
        "decisions": decisions,
        "anomalies": anomalies,
        "health": health,
        "incidents": linked,
        "rollback": deployment.get("status") == "rolled_back",
        "durations": [{"task": e.get("task"), "duration": float(e.get("duration") or 0)} for e in results],
    }


def _review_sections(review: Mapping[str, Any]) -> List[Section]:
    deployment = review["deployment"]
    name = "%s %s to %s (%s)" % (
        deployment["service"],
        deployment["version"],
        deployment["environment"],
        "release %s" % review["release_id"] if review.get("release_id") else "deployment %s" % deployment["id"],
    )
    sections = [
        Section(
            "Review: " + name,
            text=[
                "Status %s; started %s, finished %s; run %s; change %s."
                % (
                    deployment["status"],
                    deployment["started_at"],
                    deployment["finished_at"],
                    deployment["run_id"],
                    deployment["change_id"] or "-",
                )
            ],
            columns=["time", "event", "task", "host", "outcome", "seconds"],
            rows=[
                [e["ts"], e["event"], e["task"] or "", e["host"] or "", e["outcome"] or "", e["duration"] or ""]
                for e in review["timeline"]
            ],
        ),
        Section(
            "Decisions and their reasons",
            columns=["gate", "decision", "reasons", "decided at"],
            rows=[[d["gate"], d["decision"], "; ".join(d["reasons"]), d["decided_at"]] for d in review["decisions"]],
        ),
        Section(
            "Anomalies",
            columns=["task", "kind", "detail"],
            rows=[[a["task"], a["kind"], a["detail"] or ""] for a in review["anomalies"]],
        ),
        Section(
            "Health results",
            columns=["task", "action", "outcome", "verdict"],
            rows=[[h["task"], h["action"], h["outcome"], h["verdict"] or ""] for h in review["health"]],
        ),
        Section(
            "Incidents and rollback",
            text=["Rolled back: %s." % ("yes" if review["rollback"] else "no")],
            columns=["incident", "title", "opened", "resolved", "link", "root cause"],
            rows=[
                [i["id"], i["title"], i["opened_at"], i["resolved_at"] or "open", i["link"], i["root_cause"] or ""]
                for i in review["incidents"]
            ],
        ),
        _feedback_section(review),
        _actions_section(review),
    ]
    if review["durations"]:
        sections[0].chart = bar_chart(
            "Task durations (s)",
            [str(d["task"]) for d in review["durations"]],
            {"seconds": [d["duration"] for d in review["durations"]]},
        )
    return sections


def _feedback_section(review: Mapping[str, Any]) -> Section:
    if not review["feedback"]:
        return Section("Team feedback", text=[_not_recorded(review, "feedback")])
    return Section(
        "Team feedback",
        columns=["who", "what", "recorded"],
        rows=[[entry["author"], entry["text"], entry["recorded_at"]] for entry in review["feedback"]],
    )


def _actions_section(review: Mapping[str, Any]) -> Section:
    if not review["actions"]:
        return Section("Follow-up actions", text=[_not_recorded(review, "follow-up actions")])
    overdue = sum(1 for action in review["actions"] if action["overdue"])
    return Section(
        "Follow-up actions",
        text=["%d of %d overdue." % (overdue, len(review["actions"]))] if overdue else [],
        columns=["action", "owner", "due", "state", "overdue"],
        rows=[
            [a["title"], a["owner"], a["due_date"], a["state"], "OVERDUE" if a["overdue"] else ""]
            for a in review["actions"]
        ],
    )


def _not_recorded(review: Mapping[str, Any], what: str) -> str:
    if not review["release_id"]:
        return "No %s: this deployment has no release record to record them against." % what
    return "No %s recorded yet; record them with relops.release.release_review (release_id: %s)." % (
        what,
        review["release_id"],
    )


# Runbook compliance


def runbook_compliance(ledger: Ledger, inputs: ReportInputs) -> Report:
    """Each deployment's runbook updated within ``runbook_max_age_hours`` AFTER it (review/runbook.py).

    Over release records (the manifest's runbook the record keeps, the deployment stage's time) when the
    environment has them, else over the deployments table of older ledgers.
    """
    now = inputs.moment()
    checked = []
    for deployment in _runbook_subjects(ledger, inputs):
        deployed_at = parse_timestamp(str(deployment["deployed_at"]))
        check = check_runbook(
            deployment.get("runbook"), inputs.runbook_root, deployed_at, inputs.runbook_max_age_hours, now
        )
        checked.append(
            {
                "deployment": deployment["id"],
                "service": deployment["service"],
                "version": deployment["version"],
                "deployed_at": deployment["deployed_at"],
                "runbook": deployment.get("runbook"),
                "updated_at": format_timestamp(check.updated_at) if check.updated_at else None,
                "method": check.method,
                "verdict": check.verdict,
            }
        )
    columns = ("deployment", "service", "version", "deployed_at", "runbook", "updated_at", "method", "verdict")
    rows = [[entry[k] or "" for k in columns] for entry in checked if entry["verdict"] != "compliant"]
    compliant = sum(1 for entry in checked if entry["verdict"] == "compliant")
    sections = [
        Section(
            "Runbooks not updated within %d hours after the deployment" % inputs.runbook_max_age_hours,
            text=[
                "%d of %d deployments compliant (pending: the period has not ended yet)." % (compliant, len(checked))
            ],
            columns=[
                "release or deployment",
                "service",
                "version",
                "deployed",
                "runbook",
                "update",
                "checked by",
                "verdict",
            ],
            rows=rows,
        )
    ]
    return Report("runbook", "Runbook compliance", sections, {"deployments": checked, "compliant": compliant})


def _runbook_subjects(ledger: Ledger, inputs: ReportInputs) -> List[Dict[str, Any]]:
    scope = _scope(inputs.request)
    if ReleaseMetricsStore(ledger).has_records(scope.environment):
        return [
            dict(row, id=row["release_id"])
            for row in ReviewStore(ledger).deployed_releases(
                scope.environment, scope.start, scope.end, scope.service, scope.team
            )
        ]
    return [
        dict(row, deployed_at=row.get("finished_at") or row["started_at"]) for row in ledger.deployments_between(scope)
    ]


# Automation coverage


def automation_coverage(inputs: ReportInputs) -> Report:
    points: Dict[Tuple[str, str], Dict[str, Any]] = {}
    for event in read_audit(inputs.audit_path) if inputs.audit_path else ():
        kind = intervention_kind(event)
        if kind is None:
            continue
        key = (kind, str(event.get("task") or event.get("action") or "?"))
        point = points.setdefault(key, {"kind": kind, "task": key[1], "count": 0, "held_seconds": 0.0})
        point["count"] += 1
        point["held_seconds"] += float(event.get("duration") or 0)
    ranked = sorted(points.values(), key=lambda p: (-p["count"], -p["held_seconds"], p["task"]))
    sections = [
        Section(
            "Manual intervention points, most frequent first",
            columns=["kind", "task", "times", "held (s)"],
            rows=[[p["kind"], p["task"], p["count"], round(p["held_seconds"], 1)] for p in ranked],
        )
    ]
    if ranked:
        top = ranked[:15]
        sections.append(
            Section(
                "Time held by each intervention point",
                chart=bar_chart(
                    "Seconds held", [p["task"] for p in top], {"held seconds": [p["held_seconds"] for p in top]}
                ),
            )
        )
    return Report("automation", "Automation coverage", sections, {"points": ranked})


def intervention_kind(event: Mapping[str, Any]) -> Optional[str]:
    """Classify an audit event as a manual intervention point (or None)."""
    name = str(event.get("event") or "")
    action = str(event.get("action") or "")
    if not name.startswith("runner_"):
        return None
    result = _result(event)
    if event.get("outcome") == "rescued":
        return "rescue"
    if action in PAUSE_ACTIONS:
        return "prompt" if isinstance(event.get("args"), dict) and event["args"].get("prompt") else "pause"
    if action in APPROVAL_ACTIONS and (result.get("approval") or (event.get("args") or {}).get("approval")):
        return "manual approval"
    if int(result.get("attempts") or 0) > 1:
        return "retry"
    return None


# Pipeline efficiency


def pipeline_efficiency(ledger: Ledger, inputs: ReportInputs) -> Report:
    durations: Dict[str, List[float]] = {}
    runs_digest: Dict[str, Optional[str]] = {}
    tests: Dict[Tuple[str, str], List[str]] = {}
    for event in read_audit(inputs.audit_path) if inputs.audit_path else ():
        if not str(event.get("event") or "").startswith("runner_") or event.get("outcome") == "skipped":
            continue
        task = str(event.get("task") or event.get("action"))
        durations.setdefault(task, []).append(float(event.get("duration") or 0))
        for suite in _suites(event):
            run_id = str(event.get("run_id"))
            if run_id not in runs_digest:
                runs_digest[run_id] = ledger.artifact_digest_of_run(run_id)
            digest = _event_digest(event) or runs_digest[run_id]
            if digest:
                tests.setdefault((suite, digest), []).append(run_id)
    stages: List[Dict[str, Any]] = sorted(
        (
            {
                "stage": name,
                "runs": len(values),
                "median_seconds": round(statistics.median(values), 3),
                "max_seconds": round(max(values), 3),
                "total_seconds": round(sum(values), 3),
            }
            for name, values in durations.items()
        ),
        key=lambda stage: -stage["total_seconds"],
    )
    redundant: List[Dict[str, Any]] = [
        {"suite": suite, "artifact_digest": digest, "times": len(runs), "runs": sorted(set(runs))}
        for (suite, digest), runs in sorted(tests.items())
        if len(runs) > 1
    ]
    sections = [
        Section(
            "Stage durations",
            columns=["stage", "runs", "median (s)", "max (s)", "total (s)"],
            rows=[[s["stage"], s["runs"], s["median_seconds"], s["max_seconds"], s["total_seconds"]] for s in stages],
            chart=bar_chart(
                "Median seconds per stage",
                [s["stage"] for s in stages[:20]],
                {"median seconds": [s["median_seconds"] for s in stages[:20]]},
            )
            if stages
            else None,
        ),
        Section(
            "Redundant stages: the same test suite on the same artifact more than once",
            columns=["suite", "artifact digest", "times", "runs"],
            rows=[[r["suite"], r["artifact_digest"], r["times"], ", ".join(r["runs"])] for r in redundant],
        ),
    ]
    return Report("pipeline", "Pipeline efficiency", sections, {"stages": stages, "redundant": redundant})


def _suites(event: Mapping[str, Any]) -> List[str]:
    """The test suites a result ran: quality_gate's suites, else the task itself for test actions."""
    result = _result(event)
    if isinstance(result.get("suites"), dict) and result["suites"]:
        return sorted(str(name) for name in result["suites"])
    if event.get("action") in TEST_ACTIONS:
        return [str(event.get("task") or event.get("action"))]
    return []


def _event_digest(event: Mapping[str, Any]) -> Optional[str]:
    for source in (event.get("args"), event.get("result")):
        if isinstance(source, dict):
            for key in ("artifact_digest", "sha256", "digest"):
                if isinstance(source.get(key), str) and source[key]:
                    return str(source[key])
    return None


# Quarterly calibration


def calibration(ledger: Ledger, inputs: ReportInputs) -> Report:
    scope = _scope(inputs.request)
    decisions = ledger.decisions_between(scope.start, scope.end)
    successes = ledger.successful_deployments_after(scope.start)
    releases = ReleaseMetricsStore(ledger)
    # The gate writes its stage just after the decision row: a day's margin past the window's end.
    gated = releases.gated_releases(scope.start, _day(scope.end, 1))
    quarters: Dict[str, Dict[str, Any]] = {}
    for decision in decisions:
        quarter = _quarter(str(decision["decided_at"]))
        entry = quarters.setdefault(
            quarter, {"routes": {}, "denials": {}, "later_deployed": 0, "denied": 0, "exemptions": 0}
        )
        route = "%s: %s" % (decision["gate"], decision["decision"])
        entry["routes"][route] = entry["routes"].get(route, 0) + 1
        if decision["decision"] == "deny":
            entry["denied"] += 1
            for failing in failing_rules(decision["reasons"] or ["(no reason)"]):
                rule = "%s: %s" % (decision["gate"], failing)
                entry["denials"][rule] = entry["denials"].get(rule, 0) + 1
            if _deployed_later(decision, successes, releases, gated):
                entry["later_deployed"] += 1
    for exemption in inputs.exemptions:
        when = str(exemption.get("used_at") or exemption.get("granted_at") or "")
        if when and scope.start <= when < scope.end:
            quarters.setdefault(
                _quarter(when), {"routes": {}, "denials": {}, "later_deployed": 0, "denied": 0, "exemptions": 0}
            )["exemptions"] += 1
    names = sorted(quarters)
    sections = [
        Section(
            "Policy outcomes per quarter",
            text=["Exemptions come from the exemptions option (the governance ledger tables are optional input)."],
            columns=["quarter", "decisions", "denials", "denied then deployed", "exemptions used"],
            rows=[
                [
                    q,
                    sum(quarters[q]["routes"].values()),
                    quarters[q]["denied"],
                    quarters[q]["later_deployed"],
                    quarters[q]["exemptions"],
                ]
                for q in names
            ],
            chart=bar_chart(
                "Decisions per quarter",
                names,
                {
                    "allowed": [_count(quarters[q]["routes"], ": allow") for q in names],
                    "denied": [quarters[q]["denied"] for q in names],
                    "waited": [_count(quarters[q]["routes"], ": wait") for q in names],
                },
            )
            if names
            else None,
        ),
        Section(
            "Routes taken",
            columns=["quarter", "gate: decision", "times"],
            rows=[[q, route, n] for q in names for route, n in sorted(quarters[q]["routes"].items())],
        ),
        Section(
            "Denials by rule",
            columns=["quarter", "gate: reason", "times"],
            rows=[[q, rule, n] for q in names for rule, n in sorted(quarters[q]["denials"].items())],
        ),
    ]
    return Report("calibration", "Quarterly policy calibration", sections, {"quarters": quarters})


# A gate reason as the change gate writes it: "<check> <outcome>: <why>" (governance.gate.reasons_of).
_REASON = re.compile(r"^(?P<check>\S+) (?P<outcome>deny|wait|waived|skipped|pass): ")


def failing_rules(reasons: Sequence[str]) -> List[str]:
    """The rules that denied: the checks whose outcome is ``deny``; a reason in no known form counts as it is.

    A decision lists every check, passed ones included, so counting every reason would count rules
    that passed.
    """
    rules: List[str] = []
    for reason in reasons:
        matched = _REASON.match(str(reason))
        if matched is None:
            rules.append(str(reason))
        elif matched.group("outcome") == "deny" and matched.group("check") not in rules:
            rules.append(matched.group("check"))
    return rules


def _deployed_later(
    decision: Mapping[str, Any],
    successes: Sequence[Mapping[str, Any]],
    releases: ReleaseMetricsStore,
    gated: Mapping[str, Mapping[str, Any]],
) -> bool:
    """A denial whose release was deployed successfully afterwards.

    Joined on the release: the release record whose gate stage holds this decision (same inputs
    digest), then a later successful attempt of the same artifact to the same environment. Without
    a record, the subject the gate wrote: ``service/environment/version`` (a successful release or
    deployment of that version there), or ``service@version`` (a successful deployment).
    """
    decided = str(decision["decided_at"])
    release = gated.get(str(decision.get("inputs_digest") or ""))
    if release is not None:
        return (
            releases.released_after(
                release["service"], release["environment"], release["version"], decided, release["digest"]
            )
            is not None
        )
    subject = str(decision["subject"])
    parts = subject.split("/")
    if len(parts) == 3:
        service, environment, version = parts
        if releases.released_after(service, environment, version, decided) is not None:
            return True
        return any(
            (row["service"], row["environment"], row["version"]) == (service, environment, version)
            and str(row["finished_at"]) > decided
            for row in successes
        )
    if "@" not in subject:
        return False
    service, version = subject.split("@", 1)
    return any(
        row["service"] == service and row["version"] == version and str(row["finished_at"]) > decided
        for row in successes
    )


def _count(routes: Mapping[str, int], suffix: str) -> int:
    return sum(n for route, n in routes.items() if route.endswith(suffix))


def _quarter(timestamp: str) -> str:
    return "%s-Q%d" % (timestamp[:4], (int(timestamp[5:7]) - 1) // 3 + 1)


# Shared helpers


def build(ledger: Ledger, name: str, inputs: ReportInputs) -> Report:
    if name == "dashboard":
        return dashboard(ledger, inputs)
    if name == "cfr":
        return change_failure(ledger, inputs)
    if name == "pir":
        return post_implementation(ledger, inputs)
    if name == "runbook":
        return runbook_compliance(ledger, inputs)
    if name == "automation":
        return automation_coverage(inputs)
    if name == "pipeline":
        return pipeline_efficiency(ledger, inputs)
    return calibration(ledger, inputs)


def read_audit(path: Optional[str]) -> Iterator[Dict[str, Any]]:
    """Every event of the trail (rotated files first); lines that are not JSON objects are skipped."""
    if not path:
        return
    for name in trail_files(path):
        with open(name, encoding="utf-8") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    yield event


def _result(event: Mapping[str, Any]) -> Dict[str, Any]:
    """An audit event's recorded module result (empty when it has none or it was redacted)."""
    result = event.get("result")
    return dict(result) if isinstance(result, dict) else {}


def _scope(request: MetricsRequest) -> MetricsScope:
    return MetricsScope(
        environment=request.environment,
        start=format_timestamp(request.start),
        end=format_timestamp(request.end),
        incident_until=format_timestamp(request.end + datetime.timedelta(seconds=request.link_window_seconds)),
        link_window_seconds=request.link_window_seconds,
        service=request.service,
        team=request.team,
    )


def _with(request: MetricsRequest, **changes: Any) -> MetricsRequest:
    values = dict(request.__dict__)
    values.update(changes)
    return MetricsRequest(**values)


def _percent(rate: Optional[float]) -> str:
    return "-" if rate is None else "%.1f%%" % (rate * 100)


def _hours_text(hours: Optional[float]) -> str:
    return "-" if hours is None else "%.2f h" % hours


def _day(timestamp: str, shift: int = 0) -> str:
    return (parse_timestamp(timestamp) + datetime.timedelta(days=shift)).date().isoformat()
