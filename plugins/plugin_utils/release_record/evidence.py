# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence: what the modules that check a release write into its record, and what the change gate
reads back from it instead of believing its caller."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from .model import ReleaseRecordError

# Options through which a caller could tell the gate what to think. In an enforced environment the
# gate refuses them: it takes route, risk and approvals from the record and the ITSM, and the requester
# from the run's identity (a requested_by claim would let the releaser pass as someone else and
# approve their own change).
CALLER_CLAIMS = ("assessment", "route", "risk", "change_type", "peer_approver", "requested_by")
# Stages only the module that checked may write; relops.release.release_record refuses them.
CHECKED_STAGES = ("manifest", "verification", "risk", "quality", "gate", "permit")


def verification_evidence(report: Any, required_signatures: int, rules: Mapping[str, Any]) -> Dict[str, Any]:
    """What artifact_verify found, as the record keeps it."""
    return {
        "verified": bool(report.verified),
        "checked": list(report.checked),
        "signers": list(report.signers),
        "required_signatures": required_signatures,
        "policy_met": bool(report.verified) and len(report.signers) >= int(rules.get("signatures_required") or 0),
        "reasons": list(report.reasons),
        "digest": "sha256:" + report.sha256,
    }


def risk_evidence(result: Mapping[str, Any]) -> Dict[str, Any]:
    """What risk_assess decided, as the record keeps it."""
    keys = ("risk", "score", "route", "change_type", "contributions", "policy_version", "stabilization_seconds")
    return {key: result.get(key) for key in keys if key in result}


def caller_claims(args: Mapping[str, Any]) -> Dict[str, Any]:
    """The claim options a caller gave (assessment shown by its route and risk only)."""
    claims: Dict[str, Any] = {}
    for name in CALLER_CLAIMS:
        value = args.get(name)
        if value in (None, "", {}):
            continue
        claims[name] = {k: value.get(k) for k in ("route", "risk", "change_type")} if name == "assessment" else value
    return claims


def refuse_claims(args: Mapping[str, Any], environment: str) -> None:
    """In an enforced environment a caller may not tell the gate the route, the risk, who approved or who asks."""
    claims = caller_claims(args)
    if claims:
        raise ReleaseRecordError(
            "environment %s is enforced by the policy: the gate decides from the release record and the ITSM, "
            "not from %s; drop %s and give release_id (the record that artifact_verify and risk_assess wrote)"
            % (environment, ", ".join(sorted(claims)), ", ".join(sorted(claims)))
        )
    if not args.get("release_id"):
        raise ReleaseRecordError(
            "environment %s is enforced by the policy: the gate needs release_id, the release record that "
            "relops.release.artifact_verify (record: true) opened; playbooks/release.yml passes it" % environment
        )


def classification_from_record(record: Mapping[str, Any]) -> Dict[str, Any]:
    """The route, change type and risk the record's risk stage holds, as an assessment."""
    risk = record["stages"].get("risk")
    if not risk or not risk.get("route"):
        raise ReleaseRecordError(
            "release %s has no risk assessment in its record; run relops.release.risk_assess with release_id "
            "before the gate" % record["release_id"]
        )
    return {"route": risk["route"], "risk": risk.get("risk"), "change_type": risk.get("change_type") or "normal"}


def signature_shortfall(record: Mapping[str, Any], required: int) -> Optional[str]:
    """Why the record's verification does not meet the policy's signature count (None when it does)."""
    verification = record["stages"].get("verification")
    if not verification:
        return (
            "release %s has no verification in its record; run relops.release.artifact_verify with record: true"
            % (record["release_id"])
        )
    if not verification.get("verified"):
        return "release %s failed verification: %s" % (
            record["release_id"],
            "; ".join(verification.get("reasons") or ["nothing was checked"]),
        )
    signers: List[str] = list(verification.get("signers") or [])
    if len(signers) < required:
        return "release %s carries %d valid signature(s) (%s); the policy requires %d" % (
            record["release_id"],
            len(signers),
            ", ".join(s[:16] for s in signers) or "none",
            required,
        )
    return None
