# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.artifact_sign (documentation in plugins/modules/artifact_sign.py)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.unpack import read_member
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.action import ArtifactActionBase
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    PAYLOAD_TYPE,
    build_statement,
    decode_base64,
    key_algorithm,
    key_id,
    load_private_key,
    pae,
    public_key_pem,
    sign_envelope,
    verify_bytes,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.manifest import (
    canonical_json,
    check_manifest,
    load_manifest_text,
)
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import (
    OPENBAO_ARGUMENT_SPEC,
    OpenBaoClient,
    OpenBaoConfig,
)
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import (
    TRANSIT_KEY_SPEC,
    TransitSigner,
    open_signer,
)

if TYPE_CHECKING:
    from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import PrivateKey, RemoteSigner

    SigningKey = Union[PrivateKey, RemoteSigner]

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "artifact": {"type": "path", "required": True},
    "envelope": {"type": "path"},
    "keys": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "path": {"type": "path"},
            "content": {"type": "str", "no_log": True},
            "passphrase": {"type": "str", "no_log": True},
            "transit": {"type": "dict", "options": TRANSIT_KEY_SPEC},
        },
        "mutually_exclusive": [["path", "content", "transit"]],
        "required_one_of": [["path", "content", "transit"]],
    },
    "openbao": {"type": "dict", "default": {}, "options": OPENBAO_ARGUMENT_SPEC},
    "manifest": {"type": "raw"},
    "build_context": {"type": "dict", "default": {}},
}


class ActionModule(ArtifactActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        artifact = self.local_path(args["artifact"])
        if not os.path.isfile(artifact):
            raise ArtifactError("artifact %s does not exist; build it with relops.release.package first" % artifact)
        envelope_path = self.local_path(args["envelope"]) if args["envelope"] else artifact + ".intoto.json"
        self._openbao: Optional[OpenBaoClient] = None
        keys = [self._load_key(entry, index, args["openbao"]) for index, entry in enumerate(args["keys"])]
        if len({key_id(key.public_key()) for key in keys}) != len(keys):
            raise ArtifactError("the same key is listed twice in keys; each signature must come from a different key")
        manifest = self._manifest(args, artifact)
        sha256, _size = file_digest(artifact)
        statement = build_statement(os.path.basename(artifact), sha256, manifest, args["build_context"])
        keyids = [key_id(key.public_key()) for key in keys]
        current = _existing_signers(envelope_path, canonical_json(statement), keys)
        unchanged = current is not None and set(keyids) <= set(current)
        result: Dict[str, Any] = {
            "changed": not unchanged,
            "envelope": envelope_path,
            "artifact": artifact,
            "sha256": sha256,
            "keyids": keyids,
            "algorithms": [key_algorithm(key.public_key()) for key in keys],
            "public_keys": [public_key_pem(key.public_key()) for key in keys],
            "payload_type": PAYLOAD_TYPE,
            "subject": statement["subject"],
        }
        if not unchanged and not self.check_mode:
            _write_atomically(envelope_path, json.dumps(sign_envelope(statement, keys), indent=2) + "\n")
        if self.diff_mode:
            result["diff"] = {
                "before": "absent\n" if current is None else "signed by %s\n" % ", ".join(sorted(current)),
                "after": "signed by %s\n" % ", ".join(sorted(keyids)),
                "before_header": envelope_path,
                "after_header": envelope_path,
            }
        return result

    def _load_key(self, entry: Dict[str, Any], index: int, openbao: Dict[str, Any]) -> SigningKey:
        if entry.get("transit"):
            return self._transit_key(entry["transit"], openbao)
        if entry.get("content"):
            return load_private_key(str(entry["content"]).encode("utf-8"), entry.get("passphrase"), "keys[%d]" % index)
        path = self.local_path(str(entry["path"]))
        try:
            with open(path, "rb") as handle:
                pem = handle.read()
        except OSError as exc:
            raise ArtifactError("private key %s cannot be read (%s)" % (path, exc.strerror)) from None
        return load_private_key(pem, entry.get("passphrase"), path)

    def _transit_key(self, transit: Dict[str, Any], openbao: Dict[str, Any]) -> TransitSigner:
        """A transit key version: its public key is read now, so a sealed server fails before any write."""
        if self._openbao is None:
            self._openbao = OpenBaoClient(OpenBaoConfig.from_options(openbao))
        return open_signer(self._openbao, transit)

    def _manifest(self, args: Dict[str, Any], artifact: str) -> Dict[str, Any]:
        if args["manifest"] is not None:
            return check_manifest(self.load_document(args["manifest"], "manifest"), "manifest")
        text = read_member(artifact, "manifest.json").decode("utf-8")
        return check_manifest(load_manifest_text(text, artifact), "manifest.json in %s" % artifact)


def _existing_signers(path: str, payload: bytes, keys: List[SigningKey]) -> Optional[List[str]]:
    """Key ids of ``keys`` whose signature on ``payload`` the existing envelope holds (None: no envelope)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            envelope = json.load(handle)
        existing = decode_base64(envelope["payload"])
        signatures = {str(sig["keyid"]): decode_base64(sig["sig"]) for sig in envelope["signatures"]}
    except (ValueError, KeyError, TypeError):
        return []
    if existing != payload:
        return []
    message = pae(PAYLOAD_TYPE, payload)
    signed = []
    for key in keys:
        keyid = key_id(key.public_key())
        if keyid in signatures and verify_bytes(key.public_key(), signatures[keyid], message):
            signed.append(keyid)
    return signed


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".envelope.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
