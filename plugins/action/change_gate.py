# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.change_gate (documentation in plugins/modules/change_gate.py)."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.audit.readiness import check_audit_ready_for_task
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import (
    AuditKeyError,
    load_hmac_key,
    load_public_keys,
)
from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff, poll_until
from ansible_collections.relops.release.plugins.plugin_utils.governance import gate
from ansible_collections.relops.release.plugins.plugin_utils.governance.readiness import (
    READINESS_KEYS,
    READINESS_OPTIONS,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMAuthError, ITSMUnreachable
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    Ledger,
    LedgerConnectionError,
    LedgerError,
    decision_record,
)
from ansible_collections.relops.release.plugins.plugin_utils.policy import (
    CHANGE_TYPES,
    RISK_LEVELS,
    ROUTES,
    Policy,
    canonical_digest,
    load_policy,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    ReleaseRecordError,
    ReleaseRecordStore,
    caller_claims,
    classification_from_record,
    refuse_claims,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import (
    build_permit,
    open_permit_signer,
    sign_permit,
)
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OPENBAO_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import TRANSIT_KEY_SPEC

if TYPE_CHECKING:
    from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import PermitSigner

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "environment": {"type": "str", "default": "production"},
    "version": {"type": "str", "required": True},
    "assessment": {"type": "dict"},
    "route": {"type": "str", "choices": list(ROUTES)},
    "change_type": {"type": "str", "choices": list(CHANGE_TYPES)},
    "risk": {"type": "str", "choices": list(RISK_LEVELS)},
    "change": {"type": "str"},
    "cis": {"type": "list", "elements": "str", "default": []},
    "planned_start": {"type": "str"},
    "planned_end": {"type": "str"},
    "duration": {"type": "int", "default": 3600},
    "calendars": {"type": "list", "elements": "dict", "default": []},
    "base_dir": {"type": "path"},
    "business_unit": {"type": "str"},
    "team": {"type": "str"},
    "readiness": {"type": "dict", "options": READINESS_OPTIONS},
    "peer_approver": {"type": "str"},
    "requested_by": {"type": "str"},
    "lock": {"type": "str"},
    "policy": {"type": "path"},
    "subject": {"type": "str"},
    "wait_timeout": {"type": "float"},
    "fail_on_deny": {"type": "bool", "default": True},
    "release_id": {"type": "str"},
    "hosts": {"type": "list", "elements": "str", "default": []},
    "permit_key": {"type": "path"},
    "permit_key_passphrase": {"type": "str", "no_log": True},
    "permit_transit": {"type": "dict", "options": TRANSIT_KEY_SPEC},
    "openbao": {"type": "dict", "default": {}, "options": OPENBAO_ARGUMENT_SPEC},
    "audit": {
        "type": "dict",
        "default": {},
        "options": {
            "path": {"type": "path"},
            "hmac_key_file": {"type": "path"},
            "public_keys": {"type": "list", "elements": "path", "default": []},
        },
    },
    **ITSM_ARGUMENT_SPEC,
}
GATE = "change_gate"
# The audit callback's own setting for its HMAC key file (docs/audit.md), read when audit.hmac_key_file is unset.
HMAC_KEY_FILE_ENV = "RELOPS_AUDIT_HMAC_KEY_FILE"


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        # Calendar files are read like every other controller path: relative to the playbook (docs/paths.md).
        args = dict(
            args,
            base_dir=self.optional_local_path(args.get("base_dir")) or self.playbook_dir(),
            readiness=self.with_local_paths(args.get("readiness"), ("manifest", "roster")),
        )
        policy = load_policy(self.optional_local_path(args.get("policy")))
        rules = policy.environment(args["environment"])
        if rules["enforced"]:
            refuse_claims(args, args["environment"])
        release = self._release_record(args) if args.get("release_id") else None
        # Read before deciding: a permit key that cannot be used (a sealed OpenBao) fails the task before
        # the decision is written anywhere.
        permit_signer = self._permit_signer(args) if release is not None and not self.check_mode else None
        claims = caller_claims(args)
        if release is not None:
            args = _with_record_evidence(args, release)
        route, change_type, risk = _classification(args)
        requester = args.get("requested_by") or self.actor.awx_user_name or self.actor.sudo_user or self.actor.user
        subject = (
            args.get("subject")
            or args.get("change")
            or "%s/%s/%s"
            % (
                args["service"],
                args["environment"],
                args["version"],
            )
        )
        timeout = args["wait_timeout"] if args.get("wait_timeout") is not None else policy.gate["wait_timeout"]
        used: Dict[int, Dict[str, Any]] = {}

        def attempt() -> "tuple[str, List[gate.Finding], Dict[str, Any]]":
            used.clear()
            return self._evaluate(args, policy, route, change_type, requester, used, (release, claims))

        if self.check_mode or timeout <= 0:
            outcome = attempt()
            attempts = 1
        else:
            polled = poll_until(attempt, lambda value: value[0] != "wait", Backoff(timeout=float(timeout)))
            outcome, attempts = polled.value, polled.attempts
        decision, findings, inputs = outcome
        reasons = gate.reasons_of(findings)
        digest = canonical_digest(
            {
                "policy": policy.digest,
                "arguments": _digestible(args),
                "classification": [route, change_type, risk],
                "inputs": inputs,
            }
        )
        recording = {"subject": subject, "policy_version": policy.identity, "ledger_url": args.get("ledger_url")}
        warnings: List[str] = []
        try:
            record = self.record_decision(recording, GATE, decision, reasons, digest)
        except LedgerConnectionError as exc:
            # A decision nobody can audit later is only acceptable when the policy says the ledger fails open.
            if not policy.fail_open("ledger"):
                decision = "deny"
                reasons.insert(0, "ledger deny: ledger backend unreachable (%s); denied: policy says fail_closed" % exc)
            warnings.append("the decision could not be stored in the ledger: %s" % exc)
            record = decision_record(decision, reasons, policy.identity, digest)
            self.audit("decision", gate=GATE, subject=subject, **record)
        if used and not self.check_mode and not warnings:
            with self.open_task_ledger(args, touch=False) as ledger:
                for exemption in used.values():
                    ledger.record_exemption_use(self.actor, int(exemption["id"]), GATE, subject)
                    self.audit(
                        "exemption_used",
                        gate=GATE,
                        subject=subject,
                        exemption=exemption["name"],
                        rule=exemption["rule"],
                        approver=exemption["approver"],
                        expires_at=exemption["expires_at"],
                    )
        result: Dict[str, Any] = {
            "changed": False,
            **record,
            "allowed": decision == "allow",
            "recorded": not self.check_mode,
            "subject": subject,
            "checks": [finding.as_dict() for finding in findings],
            "exemptions_used": sorted(exemption["name"] for exemption in used.values()),
            "route": route,
            "change_type": change_type,
            "risk": risk,
            "policy": policy.describe(),
            "attempts": attempts,
            "release_id": args.get("release_id"),
            "environment_policy": policy.environment(args["environment"]),
            "caller_claims": claims,
            "approvers": inputs.get("approvers", []),
            "msg": "change gate %s for %s: %s" % (decision, subject, "; ".join(reasons[:3])),
        }
        if warnings:
            result["warnings"] = warnings
            result["recorded"] = False
        if release is not None and not self.check_mode:
            result.update(self._record_gate(args, release, result, policy, permit_signer))
        if decision != "allow" and args["fail_on_deny"]:
            result["failed"] = True
        return result

    def _release_record(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """The record the gate decides from; it must be this service's release in this environment."""
        ledger = self.open_task_ledger_readonly(args)
        record = ReleaseRecordStore(ledger).get_record(args["release_id"]) if ledger is not None else None
        if ledger is not None and record is not None and "quality" not in record["stages"]:
            # A quality decision holds for the artifact, whichever attempt of its release recorded it.
            earlier = ReleaseRecordStore(ledger).latest_stage(
                record["service"], record["environment"], record["digest"], "quality"
            )
            if earlier is not None:
                record["stages"]["quality"] = earlier["data"]
        if ledger is not None:
            ledger.close()
        if record is None:
            raise ReleaseRecordError(
                "release %s has no record in the ledger; open it with relops.release.artifact_verify (record: true)"
                " and give the release_id it returned" % args["release_id"]
            )
        wanted = (args["service"], args["environment"], args["version"])
        if (record["service"], record["environment"], record["version"]) != wanted:
            raise ReleaseRecordError(
                "release %s is %s %s to %s, not %s %s to %s; give this release's release_id"
                % (args["release_id"], record["service"], record["version"], record["environment"], *wanted)
            )
        return record

    def _record_gate(
        self,
        args: Dict[str, Any],
        record: Dict[str, Any],
        result: Dict[str, Any],
        policy: Policy,
        signer: Optional[PermitSigner],
    ) -> Dict[str, Any]:
        """Write the decision (and the change it read) into the record; on allow, issue the permit."""
        added: Dict[str, Any] = {}
        decision = {
            key: result[key] for key in ("decision", "reasons", "policy_version", "inputs_digest", "decided_at")
        }
        with self.open_task_ledger(args, touch=False) as ledger:
            store = ReleaseRecordStore(ledger)
            approval = next((check for check in result["checks"] if check["check"] == "approval"), None)
            if args.get("change"):
                approvers = sorted(set(result.get("approvers") or []))
                store.record_stage(
                    self.actor, record["release_id"], "change", {"number": args["change"], "approvers": approvers}
                )
            store.record_stage(
                self.actor,
                record["release_id"],
                "gate",
                dict(decision, checks=result["checks"], caller_claims=result["caller_claims"], approval=approval),
            )
            if result["decision"] == "allow":
                permit = self._issue_permit(
                    args, store.get_record(record["release_id"]) or record, decision, policy, signer
                )
                if permit is not None:
                    store.save_permit(permit["statement"])
                    store.record_stage(self.actor, record["release_id"], "permit", permit["statement"])
                    added = {"permit": permit["envelope"], "permit_id": permit["statement"]["permit_id"]}
        self.audit("release_record", release_id=record["release_id"], stage="gate", decision=result["decision"])
        return added

    def _permit_signer(self, args: Dict[str, Any]) -> Optional[PermitSigner]:
        """The permit key: a PEM file (permit_key) or a transit key (permit_transit), else the variables."""
        transit, key_path = args.get("permit_transit"), args.get("permit_key")
        if not transit and not key_path:
            transit, key_path = self.task_vars.get("relops_permit_transit"), self.task_vars.get("relops_permit_key")
        return open_permit_signer(
            transit,
            self._templated(key_path) if key_path else None,
            args.get("permit_key_passphrase"),
            args["openbao"],
        )

    def _issue_permit(
        self,
        args: Dict[str, Any],
        record: Dict[str, Any],
        decision: Dict[str, Any],
        policy: Policy,
        signer: Optional[PermitSigner],
    ) -> Optional[Dict[str, Any]]:
        if signer is None:
            if policy.enforced(args["environment"]):
                raise ReleaseRecordError(
                    "environment %s is enforced but no permit key is set: give permit_key (or relops_permit_key), "
                    "the private key whose public half is in relops_permit_keyring, or permit_transit (or "
                    "relops_permit_transit), a key in OpenBao's transit engine (docs/governance.md)"
                    % args["environment"]
                )
            return None
        hosts = args["hosts"] or [self.task_vars.get("inventory_hostname", "localhost")]
        lifetime = int(policy.environment(args["environment"])["permit_lifetime"])
        statement = build_permit(record, hosts, utc_now(), lifetime, decision)
        envelope = sign_permit(statement, signer)
        return {"statement": statement["predicate"], "envelope": envelope}

    def _templated(self, value: Any) -> str:
        return str(self._templar.template(value))

    def _evaluate(
        self,
        args: Dict[str, Any],
        policy: Policy,
        route: str,
        change_type: str,
        requester: str,
        used: Dict[int, Dict[str, Any]],
        evidence: "tuple[Optional[Dict[str, Any]], Dict[str, Any]]",
    ) -> "tuple[str, List[gate.Finding], Dict[str, Any]]":
        ctx = gate.GateContext(
            policy=policy, args=args, now=utc_now(), route=route, change_type=change_type, requester=requester
        )
        sources = list(policy.document.get("calendars", [])) + list(args["calendars"])
        needs_itsm = bool(args.get("change") or args["cis"] or any(s.get("type") == "servicenow" for s in sources))
        with self._ledger(args, ctx) as ledger, self._backend(args, ctx, needs_itsm) as backend:
            ctx.ledger, ctx.backend = ledger, backend
            findings = [gate.check_approval(ctx), gate.check_window(ctx)]
            findings.extend(self._guarded(ctx, "blackout", lambda: gate.check_blackout(ctx, sources, _scope(args))))
            findings.extend(self._guarded(ctx, "conflict", lambda: [gate.check_conflicts(ctx)]))
            findings.append(gate.check_stabilization(ctx))
            findings.append(gate.check_readiness(ctx))
            findings.append(gate.check_lock(ctx, self.actor.run_id))
            findings.extend(self._guarded(ctx, "segregation_of_duties", lambda: [gate.check_segregation(ctx)]))
            findings.extend(gate.check_evidence(ctx, *evidence))
            if policy.environment(args["environment"])["audit_required"]:
                findings.append(self._check_audit(args, ctx))

            def remember(row: Dict[str, Any]) -> None:
                used[int(row["id"])] = row

            gate.apply_exemptions(ctx, findings, {"service": args["service"], "team": args.get("team")}, remember)
        return gate.decide(findings), findings, ctx.inputs

    def _check_audit(self, args: Dict[str, Any], ctx: gate.GateContext) -> gate.Finding:
        """The environment requires an audit trail the gate can lean on: the audit callback writing this
        run, and the trail's tail verifying against the ledger's anchors (docs/audit.md)."""
        options = args["audit"]
        try:
            hmac_key = load_hmac_key(None, options.get("hmac_key_file") or os.environ.get(HMAC_KEY_FILE_ENV))
            public_keys = load_public_keys(options["public_keys"])
        except AuditKeyError as exc:
            return gate.Finding("audit", "deny", str(exc), waivable=False)
        if ctx.ledger is None:
            return gate.unreachable(ctx, "audit", "ledger", ctx.ledger_error or "no ledger yet")
        answer = check_audit_ready_for_task(self._task, hmac_key, public_keys, ctx.ledger, options.get("path"))
        ctx.inputs["audit"] = {"ready": answer.ready, "trail": answer.trail}
        return gate.Finding("audit", "pass" if answer.ready else "deny", answer.reason, waivable=False)

    @staticmethod
    def _guarded(ctx: gate.GateContext, check: str, run: Any) -> List[gate.Finding]:
        """A check that talks to the ITSM backend: an unreachable instance is a finding, not a crash."""
        try:
            found: List[gate.Finding] = run()
            return found
        except (ITSMUnreachable, ITSMAuthError) as exc:
            return [gate.unreachable(ctx, check, "itsm", str(exc))]

    @contextlib.contextmanager
    def _ledger(self, args: Dict[str, Any], ctx: gate.GateContext) -> Iterator[Optional[Ledger]]:
        try:
            ledger = self.open_task_ledger_readonly(args) if self.check_mode else self.open_task_ledger(args)
        except LedgerConnectionError as exc:
            ctx.ledger_error = str(exc)
            yield None
            return
        try:
            yield ledger
        finally:
            if ledger is not None:
                ledger.close()

    @contextlib.contextmanager
    def _backend(self, args: Dict[str, Any], ctx: gate.GateContext, needed: bool) -> Iterator[Optional[ItsmBackend]]:
        if not needed:
            yield None
            return
        with self.itsm_backend(args, write=False) as backend:
            try:
                if args.get("change"):
                    ctx.change = backend.get_change(number=args["change"])
            except (ITSMUnreachable, ITSMAuthError) as exc:
                ctx.backend_error = str(exc)
                yield None
                return
            yield backend


def _with_record_evidence(args: Dict[str, Any], record: Dict[str, Any]) -> Dict[str, Any]:
    """The arguments with the record's risk classification and change where the caller gave none."""
    shown = dict(args)
    if not caller_claims(args):
        shown["assessment"] = classification_from_record(record)
    if not shown.get("change") and record.get("change_number"):
        shown["change"] = record["change_number"]
    return shown


def _classification(args: Dict[str, Any]) -> "tuple[str, str, Optional[str]]":
    """Route, change type and risk from a risk_assess result or the explicit options."""
    assessment = args.get("assessment") or {}
    route = args.get("route") or assessment.get("route")
    change_type = args.get("change_type") or assessment.get("change_type") or "normal"
    risk = args.get("risk") or assessment.get("risk")
    if route not in ROUTES:
        raise LedgerError(
            "the gate needs the approval route: give assessment (a registered relops.release.risk_assess result) "
            "or route (one of %s); got %r" % (", ".join(ROUTES), route)
        )
    if change_type not in CHANGE_TYPES:
        raise LedgerError("change_type %r is not one of %s" % (change_type, ", ".join(CHANGE_TYPES)))
    return str(route), str(change_type), risk


def _scope(args: Dict[str, Any]) -> Dict[str, Any]:
    scope: Dict[str, Any] = {"service": args["service"], "environment": args["environment"]}
    if args["cis"]:
        scope["ci"] = list(args["cis"])
    if args.get("business_unit"):
        scope["business_unit"] = args["business_unit"]
    return scope


def _digestible(args: Dict[str, Any]) -> Dict[str, Any]:
    """The arguments that decide, without credentials or result-shaping switches."""
    skipped = {
        "instance",
        "ledger_url",
        "fail_on_deny",
        "wait_timeout",
        "permit_key",
        "permit_key_passphrase",
        "permit_transit",
        "openbao",
    }
    shown = {key: value for key, value in args.items() if key not in skipped}
    shown["readiness"] = {k: v for k, v in (args.get("readiness") or {}).items() if k in (*READINESS_KEYS, "manifest")}
    return shown
