# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.promote (documentation in plugins/modules/promote.py)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.versions import DEFAULT_NAME_PATTERN
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.action import ArtifactActionBase
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.repository import Repository, open_repository
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import (
    VerifyReport,
    VerifyRequest,
    failure_message,
    verify_artifact,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.release_record.guard import PermitChecks

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "from_repository": {"type": "str", "required": True},
    "to_repository": {"type": "str", "required": True},
    "from_environment": {"type": "str", "required": True},
    "to_environment": {"type": "str", "required": True},
    "keyring": {"type": "raw", "required": True, "no_log": False},
    "required_signatures": {"type": "int", "default": 1},
    "checksum": {"type": "str"},
    "name_pattern": {"type": "str", "default": DEFAULT_NAME_PATTERN},
    "envelope_suffix": {"type": "str", "default": ".intoto.json"},
    "url_username": {"type": "str"},
    "url_password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "permit": {"type": "raw"},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(PermitChecks, ArtifactActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if "/" in args["name"] or args["name"] in ("", ".", ".."):
            raise ArtifactError("name %r must be a file name, not a path" % args["name"])
        source, target = self._repository(args, "from_repository"), self._repository(args, "to_repository")
        envelope_name = args["name"] + args["envelope_suffix"]
        with tempfile.TemporaryDirectory(prefix="relops-promote-") as workdir:
            artifact = os.path.join(workdir, args["name"])
            envelope = os.path.join(workdir, envelope_name)
            for name, local in ((args["name"], artifact), (envelope_name, envelope)):
                if not source.fetch(name, local):
                    raise ArtifactError(
                        "%s is not in the %s repository %s; promote only what was published there"
                        % (name, args["from_environment"], source.location)
                    )
            report = self._verify(args, artifact, envelope)
            if report.reasons:
                return {
                    "failed": True,
                    "changed": False,
                    "verified": False,
                    "reasons": report.reasons,
                    "msg": "not promoted to %s: %s" % (args["to_environment"], failure_message(report)),
                }
            return self._copy(args, source, target, report, (artifact, envelope), envelope_name)

    def _copy(
        self,
        args: Dict[str, Any],
        source: Repository,
        target: Repository,
        report: VerifyReport,
        files: "tuple[str, str]",
        envelope_name: str,
    ) -> Dict[str, Any]:
        before = target.sha256_of(args["name"])
        if before is not None and before != report.sha256:
            raise ArtifactError(
                "%s already holds %s with sha256:%s, not sha256:%s; a released version is immutable, "
                "so publish the change under a new version" % (target.location, args["name"], before, report.sha256)
            )
        envelope_changed = target.sha256_of(envelope_name) != file_digest(files[1])[0]
        changed = before is None or envelope_changed
        result: Dict[str, Any] = {
            "changed": changed,
            "name": args["name"],
            "sha256": report.sha256,
            "signers": report.signers,
            "from_repository": source.location,
            "to_repository": target.location,
            "verified": True,
            "manifest": report.manifest,
        }
        if self.diff_mode:
            result["diff"] = {
                "before": "%s absent\n" % args["name"] if before is None else "%s sha256:%s\n" % (args["name"], before),
                "after": "%s sha256:%s\n" % (args["name"], report.sha256),
                "before_header": target.location,
                "after_header": target.location,
            }
        if not changed:
            return result
        # Into an enforced environment only under a release permit for exactly this artifact.
        permit = self.permit_for(
            args["to_environment"],
            args.get("permit"),
            "promote %s to %s" % (args["name"], args["to_environment"]),
            digest=report.sha256,
        )
        if permit is not None:
            result.update(permit_id=permit["permit_id"], release_id=permit["release_id"])
        if self.check_mode:
            return result
        # The artifact first: a reader that finds the envelope always finds what it signs.
        if before is None:
            target.store(args["name"], files[0])
        target.store(envelope_name, files[1])
        manifest = report.manifest or {}
        with self.open_task_ledger(args) as ledger:
            result["promotion"] = ledger.record_promotion(
                self.actor,
                args["name"],
                str(manifest.get("service", manifest.get("name", ""))),
                str(manifest.get("version", "")),
                report.sha256,
                (args["from_environment"], args["to_environment"]),
                (source.location, target.location),
                report.signers,
            )
        return result

    def _verify(self, args: Dict[str, Any], artifact: str, envelope: str) -> VerifyReport:
        with open(envelope, "rb") as handle:
            envelope_text = handle.read()
        keyring = self.load_keyring_option(args["keyring"])
        return verify_artifact(
            VerifyRequest(
                path=artifact,
                checksum=args["checksum"],
                envelope_text=envelope_text,
                envelope_source=os.path.basename(envelope),
                keyring=keyring,
                required_signatures=args["required_signatures"],
                name_pattern=args["name_pattern"],
                environment=args["to_environment"],
                validate_certs=args["validate_certs"],
                ca_path=args["ca_path"],
            )
        )

    def _repository(self, args: Dict[str, Any], option: str) -> Repository:
        location: Optional[str] = args[option]
        if location is None or not location.strip():
            raise ArtifactError("%s is empty; give a directory or an http(s):// repository URL" % option)
        if "://" not in location:
            location = self.local_path(location)
        return open_repository(
            location, args["url_username"], args["url_password"], args["validate_certs"], args["ca_path"]
        )
