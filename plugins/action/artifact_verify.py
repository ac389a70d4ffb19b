# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.artifact_verify.

On the controller it runs every check itself. With ``remote_src`` the digest is
measured on the target by the module of the same name (standard library,
streaming) and the checksum and signatures are checked here against it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.module_utils.artifact_specs import ARTIFACT_VERIFY_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.action import ArtifactActionBase
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import Keyring
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import (
    VerifyReport,
    VerifyRequest,
    failure_message,
    resolve_checksum,
    unchecked_reason,
    verify_artifact,
)
from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    ReleaseRecordStore,
    manifest_facts,
    verification_evidence,
)


class ActionModule(ArtifactActionBase):
    argument_spec = ARTIFACT_VERIFY_SPEC
    # The target is reached only with remote_src, but the connection must exist for that case.
    _requires_connection = True

    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["required_signatures"] < 0:
            raise ArtifactError("required_signatures %d is negative; use 0 or more" % args["required_signatures"])
        keyring = self._keyring(args["keyring"])
        envelope_text = self._envelope(args["envelope"])
        if keyring is not None and envelope_text is None:
            raise ArtifactError("a keyring was given but no envelope; give envelope: <artifact>.intoto.json")
        request = VerifyRequest(
            path=args["path"] if args["remote_src"] else self.local_path(args["path"]),
            algorithm=args["algorithm"],
            checksum=args["checksum"],
            envelope_text=envelope_text,
            envelope_source=args["envelope"] or "envelope",
            keyring=keyring,
            required_signatures=args["required_signatures"],
            check_manifest=args["check_manifest"],
            name_pattern=args["name_pattern"],
            environment=args["environment"],
            validate_certs=args["validate_certs"],
            ca_path=args["ca_path"],
        )
        rules = load_policy(args["policy"]).environment(args["environment"]) if args["environment"] else {}
        if rules.get("enforced"):
            request.required_signatures = max(request.required_signatures, int(rules["signatures_required"]))
        if args["remote_src"]:
            failure = self._measure_on_target(request)
            if failure is not None:
                return failure
        report = verify_artifact(request)
        result: Dict[str, Any] = {"changed": False, **report.as_dict()}
        warnings = _policy_reasons(report, request, rules, args["environment"])
        if not report.checked and not rules.get("enforced"):
            warnings.append(unchecked_reason(report, None))
        elif warnings:
            report.reasons.extend(warnings)
            warnings = []
        result.update(report.as_dict())
        if warnings:
            result["warnings"] = warnings
        if args["record"]:
            result.update(self._record(args, report, request, rules))
        if report.reasons and args["mode"] == "fail":
            result.update(failed=True, msg=failure_message(report))
        return result

    def _record(
        self, args: Dict[str, Any], report: VerifyReport, request: VerifyRequest, rules: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Open (or continue) the release's record and write what this verification found."""
        if report.manifest is None or not args["environment"]:
            raise ArtifactError(
                "record needs the package's manifest and environment; give environment and keep check_manifest on"
            )
        manifest = report.manifest
        evidence = verification_evidence(report, request.required_signatures, rules)
        if self.check_mode:
            return {"release_id": args.get("release_id"), "recorded": False}
        with self.open_task_ledger(args) as ledger:
            store = ReleaseRecordStore(ledger)
            record, created = store.open_release(
                self.actor,
                service=str(manifest.get("service") or manifest["name"]),
                environment=args["environment"],
                version=str(manifest["version"]),
                digest="sha256:" + report.sha256,
                manifest=manifest_facts(manifest),
                release_id=args.get("release_id"),
            )
            store.record_stage(self.actor, record["release_id"], "verification", evidence)
        self.audit("release_record", release_id=record["release_id"], stage="verification", created=created)
        return {"release_id": record["release_id"], "recorded": True}

    def _measure_on_target(self, request: VerifyRequest) -> Optional[Dict[str, Any]]:
        """Hash the file on the target; return a failed result when the module could not."""
        module_args: Dict[str, Any] = {"path": request.path, "algorithm": request.algorithm, "remote_src": True}
        if request.checksum:
            algorithm, expected = resolve_checksum(
                request.checksum, request.path.rsplit("/", 1)[-1], request.validate_certs, request.ca_path
            )
            request.checksum = module_args["checksum"] = "%s:%s" % (algorithm, expected)
        measured = self._execute_module(
            module_name="relops.release.artifact_verify", module_args=module_args, task_vars=self.task_vars
        )
        if "digests" not in measured:
            return {"failed": True, "changed": False, "msg": measured.get("msg", "the target could not hash the file")}
        request.measured = dict(measured["digests"])
        request.measured_size = int(measured["size"])
        return None

    def _keyring(self, value: Any) -> Optional[Keyring]:
        if value is None:
            return None
        return self.load_keyring_option(value)

    def _envelope(self, path: Optional[str]) -> Optional[bytes]:
        if path is None:
            return None
        try:
            with open(self.local_path(path), "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise ArtifactError(
                "envelope %s cannot be read (%s); sign the artifact with relops.release.artifact_sign"
                % (path, exc.strerror)
            ) from None


def _policy_reasons(
    report: VerifyReport, request: VerifyRequest, rules: Dict[str, Any], environment: Optional[str]
) -> List[str]:
    """What an enforced environment's policy requires that this verification did not show."""
    if not rules.get("enforced"):
        return []
    reasons: List[str] = []
    if not report.checked:
        reasons.append(unchecked_reason(report, environment))
    required = int(rules["signatures_required"])
    if required and request.envelope_text is None:
        reasons.append(
            "environment %s requires %d valid signature(s) from the keyring; give envelope (the package's "
            ".intoto.json from relops.release.artifact_sign) and keyring" % (environment, required)
        )
    return reasons
