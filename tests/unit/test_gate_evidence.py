"""The change gate's evidence checks (governance/gate.py): segregation of duties on every route, the
environment's signature count read from the release record, and caller claims noted where they are
allowed; the gate's classification from the record (release_record/evidence.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.governance import gate
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import ServiceNowBackend
from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy
from ansible_collections.relops.release.plugins.plugin_utils.policy.loader import DEFAULT_POLICY_PATH
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordError, refuse_claims


class _Approvals:
    """An ITSM backend that only answers who approved the change (the one call check_segregation makes)."""

    def __init__(self, approvers: List[str]) -> None:
        self.approvers = approvers

    def approvals(self, change: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [{"approver": name, "state": "approved"} for name in self.approvers]


def _context(environment: str, route: str, approvers: Optional[List[str]] = None, **policy: Any) -> gate.GateContext:
    document = load_policy(DEFAULT_POLICY_PATH).document
    if policy:
        document = dict(document, environments={environment: policy})
    ctx = gate.GateContext(
        policy=load_policy(inline=document),
        args={"environment": environment, "service": "payments-api"},
        now=utc_now(),
        route=route,
        change_type="normal",
        requester="alice",
    )
    if approvers is not None:
        ctx.change, ctx.backend = {"number": "CHG1"}, _Approvals(approvers)  # type: ignore[assignment]
    return ctx


@pytest.mark.parametrize("route", ["automatic", "peer", "cab"])
def test_the_releaser_may_not_approve_their_own_change_on_any_route(route: str) -> None:
    own = gate.check_segregation(_context("production", route, ["alice"]))
    assert own.outcome == "deny" and not own.waivable
    assert (
        own.reason == "requester alice approved their own change on the %s route; another person must approve" % route
    )
    assert gate.check_segregation(_context("production", route, ["bob"])).outcome == "pass"


def test_a_policy_can_waive_segregation_for_a_one_person_environment_only_by_saying_so() -> None:
    waived = gate.check_segregation(_context("local", "cab", ["alice"], segregation_of_duties=False))
    assert waived.outcome == "pass" and "does not require segregation of duties in local" in waived.reason


def _record(signers: List[str], verified: bool = True) -> Dict[str, Any]:
    verification = {"verified": verified, "signers": signers, "reasons": [] if verified else ["nothing was checked"]}
    return {"release_id": "r1", "stages": {"verification": verification}}


def test_signatures_the_environment_requires_are_read_from_the_record() -> None:
    ctx = _context("production", "cab", signatures_required=2, enforced=True)
    [short] = gate.check_evidence(ctx, _record(["k1"]), {})
    assert short.outcome == "deny" and "carries 1 valid signature(s) (k1); the policy requires 2" in short.reason
    [enough] = gate.check_evidence(ctx, _record(["k1", "k2"]), {})
    assert enough.outcome == "pass" and enough.check == "signatures"
    [unverified] = gate.check_evidence(ctx, _record([], verified=False), {})
    assert unverified.outcome == "deny" and "failed verification: nothing was checked" in unverified.reason
    [blind] = gate.check_evidence(ctx, None, {})
    assert blind.outcome == "deny" and "without release_id the gate has no verification to read" in blind.reason


def test_caller_claims_are_noted_where_the_environment_is_not_enforced() -> None:
    findings = gate.check_evidence(_context("staging", "automatic"), None, {"route": "automatic"})
    assert [(f.check, f.outcome) for f in findings] == [("evidence", "pass")]
    assert "decided from caller claims (route), not from a release record" in findings[0].reason
    assert gate.check_evidence(_context("staging", "automatic"), None, {}) == []


def test_an_enforced_environment_refuses_what_a_caller_says_about_route_risk_and_approvers() -> None:
    for claim in ({"route": "automatic"}, {"risk": "low"}, {"peer_approver": "bob"}, {"assessment": {"route": "peer"}}):
        with pytest.raises(ReleaseRecordError, match="is enforced by the policy"):
            refuse_claims(dict(claim, release_id="r1"), "production")


def test_on_servicenow_the_releaser_approving_their_own_change_is_denied() -> None:
    """The approver comes from ServiceNow's sysapproval_approver, as the sys_user's user_name (the login id
    the releaser runs as), not its display name: alice approving her own change is caught."""
    standin = ServiceNowStandIn().start()
    try:
        standin.instance.insert("sys_user", {"user_name": "alice", "name": "Alice Adams", "active": "true"})
        config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
        backend = ServiceNowBackend(ServiceNowClient(config))
        change = backend.create_change("normal", {"short_description": "Release payments-api 2.4.0"}, None)
        for state in ("assess", "authorize"):
            change = backend.set_state(change, state, {})
        standin.instance.decide(standin.instance.find("change_request", change["sys_id"]), "approved", "ok", "alice")
        assert [(a["approver"], a["approver_name"]) for a in backend.approvals(change)] == [("alice", "Alice Adams")]
        for route in ("automatic", "peer", "cab"):
            ctx = _context("production", route)
            ctx.change, ctx.backend = change, backend
            own = gate.check_segregation(ctx)
            assert own.outcome == "deny" and "requester alice approved their own change" in own.reason, own
        ctx = _context("production", "cab")
        ctx.change, ctx.backend, ctx.requester = change, backend, "bob"
        assert gate.check_segregation(ctx).outcome == "pass"
    finally:
        standin.stop()
