# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.artifact_delta.

The controller makes the delta from the previous release; the module of the
same name checks the target's base and rebuilds the new package there. When
the target cannot (no zstandard, no base, other compressed bytes) the full
package is shipped instead and the result says why.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.artifact_specs import ARTIFACT_DELTA_SPEC
from ansible_collections.relops.release.plugins.module_utils.digests import digests_equal, file_digest
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.action import ArtifactActionBase
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.delta import create_delta

MODULE = "relops.release.artifact_delta"


class ActionModule(ArtifactActionBase):
    argument_spec = ARTIFACT_DELTA_SPEC
    _requires_connection = True
    TRANSFERS_FILES = True

    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return self._ship(args)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _ship(self, args: Dict[str, Any]) -> Dict[str, Any]:
        src, base = self.local_path(args["src"]), self.local_path(args["base"])
        for path, what in ((src, "src (the new package)"), (base, "base (the previous package)")):
            if not os.path.isfile(path):
                raise ArtifactError("%s %s does not exist on the controller" % (what, path))
        sha256 = file_digest(src)[0]
        if args["sha256"] and not digests_equal(args["sha256"].removeprefix("sha256:"), sha256):
            raise ArtifactError(
                "src %s has sha256:%s, not the signed sha256:%s; verify the package before shipping it"
                % (src, sha256, args["sha256"].removeprefix("sha256:"))
            )
        base_sha256 = file_digest(base)[0]
        dest = args["dest"]
        remote_base = args["remote_base"] or os.path.join(os.path.dirname(dest), os.path.basename(base))
        common = {
            "src": src,
            "base": base,
            "dest": dest,
            "remote_base": remote_base,
            "sha256": sha256,
            "base_sha256": base_sha256,
            "mode": args["mode"],
        }
        probe = self._run_module({**common, "step": "probe"})
        result: Dict[str, Any] = {
            "dest": dest,
            "sha256": sha256,
            "base_sha256": base_sha256,
            "full_size": os.path.getsize(src),
        }
        if probe.get("dest_sha256") == sha256:
            return {**result, "changed": False, "method": "none"}
        fallback = _fallback_reason(probe, remote_base, base_sha256)
        result["changed"] = True
        if fallback is None:
            with tempfile.TemporaryDirectory(prefix="relops-delta-") as workdir:
                info = create_delta(base, src, os.path.join(workdir, "delta.zst"), args["level"])
                result.update(
                    delta_size=info.size, ratio=round(info.size / result["full_size"], 4), delta_method=info.method
                )
                if self.check_mode:
                    return {**result, "method": "delta"}
                applied = self._run_module({**common, "step": "apply", "delta_file": self._send(info.path, "delta")})
            if not applied.get("failed"):
                return {**result, "method": "delta"}
            if not applied.get("fallback"):
                raise ArtifactError(str(applied.get("msg")))
            fallback = str(applied["msg"])
        result.update(method="full", fallback_reason=fallback)
        result["warnings"] = ["shipping the full artifact instead of a delta: %s" % fallback]
        if self.check_mode:
            return result
        shipped = self._run_module({**common, "step": "full", "full_file": self._send(src, "full")})
        if shipped.get("failed"):
            raise ArtifactError(str(shipped.get("msg")))
        return result

    def _run_module(self, module_args: Dict[str, Any]) -> Dict[str, Any]:
        result: Dict[str, Any] = self._execute_module(
            module_name=MODULE, module_args=module_args, task_vars=self.task_vars
        )
        if result.get("failed") and module_args["step"] == "probe":
            raise ArtifactError(str(result.get("msg")))
        return result

    def _send(self, local: str, name: str) -> str:
        remote = self._connection._shell.join_path(self._connection._shell.tmpdir, name)
        self._transfer_file(local, remote)
        self._fixup_perms2((self._connection._shell.tmpdir, remote))
        return str(remote)


def _fallback_reason(probe: Dict[str, Any], remote_base: str, base_sha256: str) -> Optional[str]:
    """Why a delta cannot be applied on the target (None when it can); a wrong base is an error."""
    if not probe.get("has_zstandard"):
        return "the target's Python has no zstandard package (pip install zstandard to receive deltas)"
    if not probe.get("base_present"):
        return "the base %s is not on the target" % remote_base
    if probe.get("base_sha256") != base_sha256:
        raise ArtifactError(
            "delta is against base sha256:%s but the target's %s has sha256:%s; the host holds another release "
            "than the base you named; name the release it runs as base, or remove %s to ship the full artifact"
            % (base_sha256, remote_base, probe.get("base_sha256"), remote_base)
        )
    return None
