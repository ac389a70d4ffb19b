# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The change gate's checks: each returns findings; the decision is the worst of them.

A finding is ``pass``, ``wait`` (time may resolve it: approval pending, the
window not open yet, a blackout ending before the window does, a
stabilization period, a held lock), ``deny``, ``waived`` (an active
exemption covers it) or ``skipped`` (a backend the policy marks fail_open did
not answer). Any deny makes the decision deny; otherwise any wait makes it
wait; otherwise allow.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.calendar import (
    CalendarError,
    CalendarUnavailable,
    evaluate,
    load_windows,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import resolve_ci_ids
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.lock_recovery_store import holder_is_dead
from ansible_collections.relops.release.plugins.plugin_utils.policy import Policy, canonical_digest
from ansible_collections.relops.release.plugins.plugin_utils.release_record.evidence import signature_shortfall

from .readiness import review
from .times import optional_moment

Window = Tuple[datetime.datetime, datetime.datetime]
CLOSED_STATES = ("review", "closed", "canceled")


@dataclass
class Finding:
    check: str
    outcome: str
    reason: str
    exemption: Optional[Dict[str, Any]] = None
    waivable: bool = True
    details: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        shown: Dict[str, Any] = {"check": self.check, "outcome": self.outcome, "reason": self.reason}
        if self.exemption:
            shown["exemption"] = self.exemption["name"]
        if self.details:
            shown["details"] = self.details
        return shown


@dataclass
class GateContext:
    """Everything one evaluation reads; the action fills it per attempt."""

    policy: Policy
    args: Mapping[str, Any]
    now: datetime.datetime
    route: str
    change_type: str
    requester: str
    backend: Optional[ItsmBackend] = None
    backend_error: Optional[str] = None
    ledger: Optional[Ledger] = None
    ledger_error: Optional[str] = None
    change: Optional[Record] = None
    window: Optional[Window] = None
    inputs: Dict[str, Any] = field(default_factory=dict)


def unreachable(ctx: GateContext, check: str, backend: str, error: str) -> Finding:
    """Fail closed, unless the policy says this backend fails open."""
    if ctx.policy.fail_open(backend):
        return Finding(
            check, "skipped", "%s backend unreachable (%s); skipped: policy says fail_open" % (backend, error)
        )
    return Finding(
        check,
        "deny",
        "%s backend unreachable (%s); denied: policy says fail_closed" % (backend, error),
        waivable=False,
    )


def check_approval(ctx: GateContext) -> Finding:
    args = ctx.args
    if args.get("change"):
        if ctx.backend is None:
            return unreachable(ctx, "approval", "itsm", ctx.backend_error or "not configured")
        change = ctx.change
        if change is None:
            return Finding(
                "approval", "deny", "change %s does not exist on the ITSM backend" % args["change"], waivable=False
            )
        state, approval = change["state"], change.get("approval") or ""
        ctx.inputs["change"] = {"number": change.get("number"), "state": state, "approval": approval}
        if change.get("type") == "standard" or change.get("std_change_producer_version"):
            return check_standard_change(ctx, change)
        if state == "implement":
            return Finding("approval", "pass", "change %s is approved and in implement" % change.get("number"))
        if approval == "rejected":
            return Finding("approval", "deny", "change %s was rejected" % change.get("number"), waivable=False)
        if state in CLOSED_STATES:
            return Finding(
                "approval", "deny", "change %s is %s; open a new change" % (change.get("number"), state), waivable=False
            )
        return Finding(
            "approval",
            "wait",
            "change %s is in %s (approval %s); waiting for implement"
            % (change.get("number"), state, approval or "none"),
            waivable=False,
        )
    if ctx.route == "automatic":
        return Finding("approval", "pass", "automatic route: no approval needed")
    if ctx.route == "peer" and args.get("peer_approver"):
        return Finding("approval", "pass", "peer route: approved by %s" % args["peer_approver"])
    need = "a change or peer_approver" if ctx.route == "peer" else "an approved change (give change)"
    return Finding("approval", "deny", "%s route needs %s" % (ctx.route, need), waivable=False)


def check_standard_change(ctx: GateContext, change: Record) -> Finding:
    """A standard change passes without CAB only when its template is one the policy pre-approves.

    The template is the record producer behind the change's std_change_producer_version; the policy's
    standard_templates list it by name or sys_id. ServiceNow marks every standard change approved, so
    without this check a change from any template (a retired one, one nobody calibrated) would pass.
    """
    number = change.get("number")
    if ctx.backend is None:
        return unreachable(ctx, "approval", "itsm", ctx.backend_error or "not configured")
    template = ctx.backend.standard_template(change)
    ctx.inputs["change"]["standard_template"] = template
    policy = ctx.policy.name
    if template is None:
        return Finding(
            "approval",
            "deny",
            "standard change %s has no std_change_producer_version; create it from a template "
            "(change_request type standard with template) or raise a normal change" % number,
            waivable=False,
        )
    label = template["producer"] or template["version"]
    listed = listed_template(ctx.policy, template)
    if template["producer"] is None:
        problem = "its template version %s no longer exists on the ITSM backend" % template["version"]
    elif listed is None:
        problem = "template %s is not pre-approved in policy %s (standard_templates lists %s)" % (
            label,
            policy,
            ", ".join(item["name"] for item in ctx.policy.document.get("standard_templates", [])) or "none",
        )
    elif template["retired"] or not template["active"]:
        problem = "template %s is %s on the ITSM backend" % (label, "retired" if template["retired"] else "inactive")
    else:
        problem = None
    if problem:
        return Finding(
            "approval",
            "deny",
            "standard change %s: %s; list the template in the policy's standard_templates (name or sys_id) "
            "or raise a normal change" % (number, problem),
            waivable=False,
        )
    version = " version %s" % template["version_number"] if template.get("version_number") else ""
    state = change["state"]
    if state in ("scheduled", "implement"):
        return Finding(
            "approval",
            "pass",
            "standard change %s from pre-approved template %s%s is %s" % (number, label, version, state),
        )
    if state in CLOSED_STATES or change.get("approval") == "rejected":
        return Finding(
            "approval", "deny", "standard change %s is %s; open a new change" % (number, state), waivable=False
        )
    return Finding(
        "approval",
        "wait",
        "standard change %s from pre-approved template %s is in %s; waiting for scheduled or implement"
        % (number, label, state),
        waivable=False,
    )


def listed_template(policy: Policy, template: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The policy's standard_templates entry naming this template (record producer name or sys_id), if any."""
    names = {template.get("producer"), template.get("producer_sys_id")} - {None, ""}
    for item in policy.document.get("standard_templates", []):
        if item["name"] in names or (item.get("sys_id") and item["sys_id"] in names):
            return dict(item)
    return None


def planned_window(ctx: GateContext) -> Tuple[Optional[Window], Optional[str]]:
    """The window from the change (start_date/end_date) or the task; automatic changes may start now."""
    args = ctx.args
    change = ctx.change or {}
    start = optional_moment(args.get("planned_start") or change.get("start_date"), "planned_start")
    end = optional_moment(args.get("planned_end") or change.get("end_date"), "planned_end")
    if start is None and end is None and ctx.route == "automatic":
        return (ctx.now, ctx.now + datetime.timedelta(seconds=int(args.get("duration") or 3600))), None
    if start is None or end is None:
        return None, "no planned window: give planned_start and planned_end (or start_date/end_date on the change)"
    if end <= start:
        return None, "planned window ends (%s) before it starts (%s)" % (format_timestamp(end), format_timestamp(start))
    return (start, end), None


def check_window(ctx: GateContext) -> Finding:
    window, problem = planned_window(ctx)
    ctx.window = window
    if window is None:
        return Finding("window", "deny", str(problem), waivable=False)
    shown = "%s to %s" % (format_timestamp(window[0]), format_timestamp(window[1]))
    ctx.inputs["window"] = shown
    if ctx.now < window[0]:
        return Finding("window", "wait", "planned window %s has not started" % shown, waivable=False)
    if ctx.now >= window[1]:
        return Finding("window", "deny", "planned window %s has ended; reschedule the change" % shown, waivable=False)
    return Finding("window", "pass", "now is inside the planned window %s" % shown)


def check_blackout(ctx: GateContext, sources: Sequence[Mapping[str, Any]], scope: Mapping[str, Any]) -> List[Finding]:
    if not sources:
        return [Finding("blackout", "pass", "no calendars configured")]
    if ctx.window is None:
        return [Finding("blackout", "deny", "no planned window to check the calendars against", waivable=False)]
    try:
        windows = cached_windows(sources, ctx.args.get("base_dir"), ctx.backend)
    except CalendarUnavailable as exc:
        return [unreachable(ctx, "blackout", "calendar", str(exc))]
    except CalendarError as exc:
        # A calendar that cannot be read as written is a configuration error, never a reason to fail open.
        return [Finding("blackout", "deny", "calendar unusable: %s" % exc, waivable=False)]
    start = max(ctx.now, ctx.window[0])
    answer = evaluate(windows, now=ctx.now, planned=(start, ctx.window[1]), scope=dict(scope))
    ctx.inputs["calendar"] = answer.as_dict()
    findings = [_blackout_finding(ctx, answer)]
    if ctx.policy.gate["require_maintenance_window"] and answer.outside_maintenance:
        findings.append(Finding("maintenance_window", "deny", "the planned window is outside every maintenance window"))
    return findings


def cached_windows(sources: Sequence[Mapping[str, Any]], base_dir: Optional[str], backend: Any) -> List[Any]:
    """Calendar windows, parsed once per process while the files are unchanged.

    Only file and inline sources are cached; URLs and ServiceNow schedules are
    fetched on every attempt, so an unreachable source is always noticed.
    """
    key = _cache_key(sources, base_dir)
    if key is not None and key in _WINDOWS:
        return _WINDOWS[key]
    windows: List[Any] = load_windows(list(sources), default_tz="UTC", base_dir=base_dir, itsm=backend)
    if key is not None:
        _WINDOWS[key] = windows
    return windows


def _cache_key(sources: Sequence[Mapping[str, Any]], base_dir: Optional[str]) -> Optional[str]:
    stamps: List[Any] = []
    for source in sources:
        if source.get("type") == "servicenow" or source.get("url"):
            return None
        if source.get("path"):
            path = os.path.join(base_dir or "", str(source["path"]))
            try:
                stat = os.stat(path)
            except OSError:
                return None
            stamps.append([os.path.abspath(path), stat.st_mtime_ns, stat.st_size])
    return canonical_digest({"sources": list(sources), "base_dir": base_dir, "files": stamps})


_WINDOWS: Dict[str, List[Any]] = {}


def _blackout_finding(ctx: GateContext, answer: Any) -> Finding:
    hits = list(answer.current) + [hit for hit in answer.overlapping if hit not in answer.current]
    if not hits:
        return Finding("blackout", "pass", "no blackout now or in the planned window")
    names = ", ".join(
        "%s (%s to %s)" % (hit.name, format_timestamp(hit.start), format_timestamp(hit.end))
        for hit in hits
        if hit.kind == "blackout"
    )
    if ctx.change_type == "emergency":
        mode = ctx.policy.gate["emergency_during_blackout"]
        if mode == "allow":
            return Finding(
                "blackout", "pass", "emergency change during blackout %s: the emergency policy allows it" % names
            )
        if mode == "deny":
            return Finding(
                "blackout", "deny", "emergency change during blackout %s: the policy denies it" % names, waivable=False
            )
        return Finding(
            "blackout", "deny", "emergency change during blackout %s needs an active exemption for blackout" % names
        )
    following = answer.next_allowed_start
    if answer.in_blackout and following is not None and ctx.window is not None and following < ctx.window[1]:
        return Finding(
            "blackout", "wait", "in blackout %s; next allowed start %s" % (names, format_timestamp(following))
        )
    return Finding("blackout", "deny", "the planned window overlaps blackout %s" % names)


def check_conflicts(ctx: GateContext) -> Finding:
    if ctx.backend is None:
        if ctx.args.get("change") or ctx.args.get("cis"):
            return unreachable(ctx, "conflict", "itsm", ctx.backend_error or "not configured")
        return Finding("conflict", "pass", "no change or CIs given: nothing to conflict with")
    if ctx.window is None:
        return Finding("conflict", "pass", "no planned window: conflicts not checked")
    backend = ctx.backend
    mine = set(backend.change_cis(ctx.change)) if ctx.change else set()
    if ctx.args.get("cis"):
        mine |= set(resolve_ci_ids(backend, list(ctx.args["cis"]), ctx.args.get("environment")))
    if not mine:
        return Finding("conflict", "pass", "the change names no CIs")
    related = _with_neighbours(backend, mine)
    own = (ctx.change or {}).get("sys_id")
    query = "active=true" if backend.name == "servicenow" else None
    clashes: List[str] = []
    for other in backend.list_changes({}, query, 500):
        if other["sys_id"] == own or other.get("state") in CLOSED_STATES:
            continue
        span = _change_window(other)
        if span is None or not (span[0] < ctx.window[1] and ctx.window[0] < span[1]):
            continue
        shared = related & set(backend.change_cis(other))
        if shared:
            how = "same CI" if shared & mine else "a parent or child CI"
            clashes.append(
                "%s (%s, %s to %s)" % (other.get("number"), how, format_timestamp(span[0]), format_timestamp(span[1]))
            )
    ctx.inputs["conflicts"] = clashes
    if clashes:
        return Finding("conflict", "deny", "conflicting change(s) in the window: %s" % ", ".join(clashes))
    return Finding("conflict", "pass", "no other change on these CIs or their parents/children in the window")


def _with_neighbours(backend: ItsmBackend, cis: Set[str]) -> Set[str]:
    related = set(cis)
    for sys_id in cis:
        for relation in backend.relations(sys_id, "downstream") + backend.relations(sys_id, "upstream"):
            related.update((relation["parent"], relation["child"]))
    return related


def _change_window(change: Record) -> Optional[Window]:
    try:
        start = optional_moment(change.get("start_date"), "start_date")
        end = optional_moment(change.get("end_date"), "end_date")
    except ValueError:
        return None
    return (start, end) if start and end else None


def check_stabilization(ctx: GateContext) -> Finding:
    if ctx.ledger is None:
        if ctx.ledger_error:
            return unreachable(ctx, "stabilization", "ledger", ctx.ledger_error)
        return Finding("stabilization", "pass", "no ledger yet: nothing is stabilizing")
    args = ctx.args
    periods = ctx.ledger.active_stabilizations(args["service"], args["environment"])
    if not periods:
        return Finding("stabilization", "pass", "%s is not stabilizing in %s" % (args["service"], args["environment"]))
    period = periods[0]
    ctx.inputs["stabilization"] = {"id": period["id"], "version": period["version"], "ends_at": period["ends_at"]}
    what = "%s %s stabilizes in %s until %s" % (
        args["service"],
        period["version"],
        args["environment"],
        period["ends_at"],
    )
    if ctx.change_type == "emergency":
        return Finding("stabilization", "pass", "%s; emergency changes pass" % what)
    return Finding("stabilization", "wait", "%s; only emergency changes pass" % what)


def check_readiness(ctx: GateContext) -> Finding:
    spec = ctx.args.get("readiness")
    if not ctx.policy.gate["require_readiness"]:
        return Finding("readiness", "pass", "the policy does not require a readiness review")
    if not spec:
        return Finding(
            "readiness",
            "deny",
            "no readiness review: give readiness (rollback, communication, roster, runbook, dependencies)",
        )
    if ctx.ledger is None and ctx.ledger_error:
        return unreachable(ctx, "readiness", "ledger", ctx.ledger_error)
    request = dict(spec, service=ctx.args["service"], version=ctx.args["version"], environment=ctx.args["environment"])
    checklist = review(request, ctx.ledger, ctx.window, ctx.policy.gate["lower_environments"])
    ctx.inputs["readiness"] = checklist
    failed = [item for item in checklist if not item["passed"]]
    if failed:
        return Finding(
            "readiness",
            "deny",
            "readiness failed: %s" % "; ".join("%s (%s)" % (item["item"], item["detail"]) for item in failed),
        )
    return Finding("readiness", "pass", "readiness passed (%d items)" % len(checklist))


def check_lock(ctx: GateContext, run_id: str) -> Finding:
    name = ctx.args.get("lock") or ctx.args["service"]
    if ctx.ledger is None:
        if ctx.ledger_error:
            return unreachable(ctx, "lock", "ledger", ctx.ledger_error)
        return Finding("lock", "pass", "lock %s is free" % name)
    lock = ctx.ledger.get_lock(name)
    if lock is None or lock.owner_run_id == run_id or parse_timestamp(lock.expires_at) <= ctx.now:
        return Finding("lock", "pass", "lock %s is free or held by this run" % name)
    if holder_is_dead(lock):
        # release_lock takes such a lock over at once (docs/ledger.md, Locks); waiting would wait for its TTL.
        return Finding("lock", "pass", "lock %s is held by %s, whose process is gone" % (name, lock.describe_holder()))
    ctx.inputs["lock"] = {"name": name, "owner_run_id": lock.owner_run_id}
    return Finding(
        "lock",
        "wait",
        "lock %s is held by %s until %s" % (name, lock.describe_holder(), lock.expires_at),
        waivable=False,
    )


def check_segregation(ctx: GateContext) -> Finding:
    approvers: List[str] = []
    if ctx.args.get("peer_approver"):
        approvers.append(str(ctx.args["peer_approver"]))
    if ctx.change is not None and ctx.backend is not None:
        approvers.extend(
            str(a.get("approver")) for a in ctx.backend.approvals(ctx.change) if a.get("state") == "approved"
        )
    ctx.inputs["approvers"] = sorted(set(approvers))
    if not ctx.policy.environment(str(ctx.args["environment"]))["segregation_of_duties"]:
        return Finding(
            "segregation_of_duties",
            "pass",
            "the policy does not require segregation of duties in %s" % ctx.args["environment"],
        )
    if ctx.requester in approvers:
        return Finding(
            "segregation_of_duties",
            "deny",
            "requester %s approved their own change on the %s route; another person must approve"
            % (ctx.requester, ctx.route),
            waivable=False,
        )
    return Finding(
        "segregation_of_duties",
        "pass",
        "requester %s is not the approver (%s)" % (ctx.requester, ", ".join(approvers) or "none"),
    )


def check_evidence(ctx: GateContext, record: Optional[Mapping[str, Any]], claims: Mapping[str, Any]) -> List[Finding]:
    """What the environment's policy requires of the release record: signatures and, where a caller
    told the gate what to think outside an enforced environment, a note that it did."""
    rules = ctx.policy.environment(str(ctx.args["environment"]))
    findings: List[Finding] = []
    if claims:
        ctx.inputs["caller_claims"] = claims
        findings.append(
            Finding(
                "evidence",
                "pass",
                "decided from caller claims (%s), not from a release record; allowed because %s is not enforced"
                % (", ".join(sorted(claims)), ctx.args["environment"]),
            )
        )
    required = int(rules["signatures_required"])
    if record is None:
        if required:
            findings.append(
                Finding(
                    "signatures",
                    "deny",
                    "%s requires %d signature(s), and without release_id the gate has no verification to read"
                    % (ctx.args["environment"], required),
                    waivable=False,
                )
            )
        return findings
    findings.extend(_quality_findings(record, bool(rules["quality_required"])))
    shortfall = signature_shortfall(record, required) if (required or rules["enforced"]) else None
    if shortfall:
        findings.append(Finding("signatures", "deny", shortfall, waivable=False))
    elif required or rules["enforced"]:
        findings.append(
            Finding(
                "signatures",
                "pass",
                "verified with %d signature(s)" % len(record["stages"]["verification"].get("signers") or []),
            )
        )
    return findings


def _quality_findings(record: Mapping[str, Any], required: bool) -> List[Finding]:
    """A recorded quality deny for the artifact stops the release; where the policy requires a quality
    decision, having none does too."""
    quality = record["stages"].get("quality")
    if quality is None:
        if not required:
            return []
        return [
            Finding(
                "quality",
                "deny",
                "the policy requires a quality decision for %s and its record has none; run "
                "relops.release.quality_gate with release_id (release_junit in the release role)"
                % record["release_id"],
                waivable=False,
            )
        ]
    if quality.get("decision") != "allow":
        return [
            Finding(
                "quality",
                "deny",
                "the quality gate denied this artifact (%s)" % "; ".join(quality.get("reasons") or ["no reason"]),
                waivable=False,
            )
        ]
    return [Finding("quality", "pass", "the quality gate allowed this artifact")]


def apply_exemptions(
    ctx: GateContext,
    findings: List[Finding],
    scope: Mapping[str, Optional[str]],
    used: Callable[[Dict[str, Any]], None],
) -> None:
    """Waive findings an active exemption covers; say when only an expired one would have."""
    exemptable = set(ctx.policy.exemptions["exemptable"])
    for finding in findings:
        if finding.outcome not in ("deny", "wait") or not finding.waivable or finding.check not in exemptable:
            continue
        if ctx.ledger is None:
            continue
        rows = ctx.ledger.list_exemptions(rule=finding.check, service=scope.get("service"), team=scope.get("team"))
        active = [row for row in rows if not row["revoked_at"] and parse_timestamp(row["expires_at"]) > ctx.now]
        if active:
            chosen = active[0]
            finding.outcome = "waived"
            finding.exemption = chosen
            finding.reason += "; waived by exemption %s (approved by %s until %s: %s)" % (
                chosen["name"],
                chosen["approver"],
                chosen["expires_at"],
                chosen["reason"],
            )
            used(chosen)
            continue
        expired = [row for row in rows if not row["revoked_at"]]
        if expired:
            finding.reason += "; exemption %s expired at %s and was ignored" % (
                expired[0]["name"],
                expired[0]["expires_at"],
            )


def decide(findings: Sequence[Finding]) -> str:
    outcomes = {finding.outcome for finding in findings}
    if "deny" in outcomes:
        return "deny"
    if "wait" in outcomes:
        return "wait"
    return "allow"


def reasons_of(findings: Sequence[Finding]) -> List[str]:
    """Blocking findings first, then the rest, each as ``check: reason``."""
    order = {"deny": 0, "wait": 1, "waived": 2, "skipped": 3, "pass": 4}
    ranked = sorted(findings, key=lambda finding: order[finding.outcome])
    return ["%s %s: %s" % (finding.check, finding.outcome, finding.reason) for finding in ranked]
