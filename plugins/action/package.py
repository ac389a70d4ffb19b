# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.package (documentation in plugins/modules/package.py)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any, Dict, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.versions import DEFAULT_NAME_PATTERN, render_name
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.action import ArtifactActionBase
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.manifest import check_manifest, version_scheme
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import (
    PackagePlan,
    plan_package,
    write_package,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "src": {"type": "path", "required": True},
    "manifest": {"type": "raw", "required": True},
    "dest": {"type": "path", "required": True},
    "format": {"type": "str", "default": "tar.gz", "choices": ["tar.gz", "tar.zst"]},
    "name_pattern": {"type": "str", "default": DEFAULT_NAME_PATTERN},
    "mtime": {"type": "int"},
}


class ActionModule(ArtifactActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        manifest = check_manifest(self.load_document(args["manifest"], "manifest"), "manifest")
        name = render_name(
            manifest["name"], manifest["version"], args["format"], args["name_pattern"], version_scheme(manifest)
        )
        source = self.local_path(args["src"])
        dest_dir = self.local_path(args["dest"])
        path = os.path.join(dest_dir, name)
        plan = plan_package(source, manifest, args["mtime"])
        before = file_digest(path)[0] if os.path.isfile(path) else None
        # Build beside the destination so the final rename is atomic; check mode builds in the temp dir.
        build_dir = tempfile.gettempdir() if self.check_mode else dest_dir
        if not self.check_mode:
            os.makedirs(dest_dir, exist_ok=True)
        digest, size = _build(plan, build_dir, name, args["format"], None if self.check_mode else path)
        changed = before != digest
        result: Dict[str, Any] = {
            "changed": changed,
            "path": path,
            "name": name,
            "format": args["format"],
            "sha256": digest,
            "digest": "sha256:%s" % digest,
            "size": size,
            "files": plan.files,
            "payload_bytes": plan.payload_bytes,
            "manifest": manifest,
        }
        if self.diff_mode:
            result["diff"] = {
                "before": "%s sha256:%s\n" % (name, before) if before else "absent\n",
                "after": "%s sha256:%s\n" % (name, digest),
                "before_header": path,
                "after_header": path,
            }
        return result


def _build(plan: PackagePlan, build_dir: str, name: str, compression: str, keep_at: Optional[str]) -> Tuple[str, int]:
    """Write the archive to a temporary file; move it to ``keep_at`` when it differs, else drop it."""
    handle, temporary = tempfile.mkstemp(prefix=".%s." % name, dir=build_dir)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(handle, "wb") as raw:
            write_package(plan, _HashingWriter(raw, hasher), compression)
        digest = hasher.hexdigest()
        size = os.path.getsize(temporary)
        if keep_at is not None and not _same_file(keep_at, digest):
            os.chmod(temporary, 0o644)
            os.replace(temporary, keep_at)
        return digest, size
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _same_file(path: str, digest: str) -> bool:
    return os.path.isfile(path) and file_digest(path)[0] == digest


class _HashingWriter:
    """A binary stream that hashes what it writes, so the build needs no second read."""

    def __init__(self, raw: Any, hasher: Any) -> None:
        self.raw = raw
        self.hasher = hasher

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        return int(self.raw.write(data))

    def flush(self) -> None:
        self.raw.flush()

    def tell(self) -> int:
        return int(self.raw.tell())
