# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by an artifact module (target side) and its action plugin (controller side).

One spec per plugin, so the documentation, the target module and the
controller action accept exactly the same options.
"""

from __future__ import annotations

from typing import Any, Dict

ARTIFACT_VERIFY_SPEC: Dict[str, Dict[str, Any]] = {
    "path": {"type": "path", "required": True},
    "remote_src": {"type": "bool", "default": False},
    "algorithm": {"type": "str", "default": "sha256", "choices": ["sha256", "sha512"]},
    "checksum": {"type": "str"},
    "envelope": {"type": "path"},
    # Public keys only: nothing secret.
    "keyring": {"type": "raw", "no_log": False},
    "required_signatures": {"type": "int", "default": 1},
    "check_manifest": {"type": "bool", "default": True},
    "name_pattern": {"type": "str", "default": "{name}-{version}.{ext}"},
    "environment": {"type": "str"},
    "mode": {"type": "str", "default": "fail", "choices": ["fail", "report"]},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    # Controller side only (the action plugin): the policy that says what the environment requires, and
    # the release record this verification opens (docs/release-record.md).
    "policy": {"type": "path"},
    "record": {"type": "bool", "default": False},
    "release_id": {"type": "str"},
    "ledger_url": {"type": "str"},
}

ARTIFACT_DELTA_SPEC: Dict[str, Dict[str, Any]] = {
    "src": {"type": "path", "required": True},
    "base": {"type": "path", "required": True},
    "dest": {"type": "path", "required": True},
    "remote_base": {"type": "path"},
    "sha256": {"type": "str"},
    "level": {"type": "int", "default": 19},
    "mode": {"type": "raw", "default": "0644"},
    # Set by the action plugin when it calls the module on the target.
    "step": {"type": "str", "default": "probe", "choices": ["probe", "apply", "full"]},
    "base_sha256": {"type": "str"},
    "delta_file": {"type": "path"},
    "full_file": {"type": "path"},
}
