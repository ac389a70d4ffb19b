# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signing with a key held in OpenBao's transit engine: the private key never leaves the server.

The controller sends the DSSE pre-authentication encoding, the server signs it
(Ed25519 as is; ECDSA P-256 over its SHA-256, DER-encoded), and the envelope
carries the signature under the key id the rest of the collection uses: the
SHA-256 of the exported public key's DER SubjectPublicKeyInfo. So a verifier
needs nothing but that public key in its keyring.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import load_public_key

from . import SecretsError
from .openbao import OpenBaoClient, OpenBaoConfig

if TYPE_CHECKING:
    from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import PublicKey

# DER SubjectPublicKeyInfo header of an Ed25519 key (RFC 8410): what precedes the 32 raw key bytes.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

# Transit key types the DSSE envelopes can carry, and the algorithm names attest.key_algorithm gives them.
SUPPORTED_TYPES = {"ed25519": "ed25519", "ecdsa-p256": "ecdsa-p256-sha256"}

# The ``transit`` sub-options of every module that signs with a transit key (artifact_sign's keys[].transit,
# change_gate's permit_transit): which key, where the engine is mounted, which version.
TRANSIT_KEY_SPEC: Dict[str, Dict[str, Any]] = {
    "key": {"type": "str", "required": True, "no_log": False},
    "mount": {"type": "str", "default": "transit"},
    "version": {"type": "int"},
}


@dataclass(frozen=True)
class TransitVersion:
    version: int
    public_key_pem: str
    created: str


@dataclass(frozen=True)
class TransitKeyInfo:
    mount: str
    name: str
    key_type: str
    latest_version: int
    min_encryption_version: int
    versions: Dict[int, TransitVersion]


def read_key(client: OpenBaoClient, mount: str, name: str) -> TransitKeyInfo:
    """The key's type and every version's public key (PEM), as transit exports them."""
    path = "%s/keys/%s" % (mount.strip("/"), name)
    data = client.read(path).get("data") or {}
    key_type = str(data.get("type"))
    if key_type not in SUPPORTED_TYPES:
        raise SecretsError(
            "transit key %s is of type %s; artifact signing needs ed25519 or ecdsa-p256 (create it with type=%s)"
            % (path, key_type, " or type=".join(SUPPORTED_TYPES))
        )
    versions: Dict[int, TransitVersion] = {}
    for number, entry in (data.get("keys") or {}).items():
        versions[int(number)] = TransitVersion(
            version=int(number),
            public_key_pem=_public_pem(str(entry.get("public_key") or ""), key_type, "%s v%s" % (path, number)),
            created=str(entry.get("creation_time") or ""),
        )
    return TransitKeyInfo(
        mount=mount.strip("/"),
        name=name,
        key_type=key_type,
        latest_version=int(data.get("latest_version") or max(versions)),
        min_encryption_version=int(data.get("min_encryption_version") or 0),
        versions=versions,
    )


def _public_pem(exported: str, key_type: str, where: str) -> str:
    """Transit gives ECDSA keys as PEM and Ed25519 keys as base64 raw bytes; the keyring wants PEM."""
    if key_type != "ed25519":
        return exported
    try:
        raw = base64.b64decode(exported, validate=True)
    except binascii.Error as exc:
        raise SecretsError("transit key %s exported an unreadable Ed25519 public key (%s)" % (where, exc)) from None
    if len(raw) != 32:
        raise SecretsError("transit key %s exported a %d-byte Ed25519 public key, not 32 bytes" % (where, len(raw)))
    body = base64.encodebytes(_ED25519_SPKI_PREFIX + raw).decode("ascii")
    return "-----BEGIN PUBLIC KEY-----\n%s-----END PUBLIC KEY-----\n" % body


class TransitSigner:
    """One version of a transit key, shaped like a private key for attest.sign_envelope: public_key(), sign()."""

    def __init__(self, client: OpenBaoClient, info: TransitKeyInfo, version: Optional[int] = None) -> None:
        self.client = client
        self.info = info
        self.version = version or info.latest_version
        self.label = "transit key %s/keys/%s v%d" % (info.mount, info.name, self.version)
        if self.version not in info.versions:
            raise SecretsError(
                "%s does not exist (versions: %s); sign with an existing version"
                % (self.label, ", ".join(str(v) for v in sorted(info.versions)))
            )
        if self.version < info.min_encryption_version:
            raise SecretsError(
                "%s was rotated out: the key signs with version %d or later only (min_encryption_version); "
                "drop the version to sign with the current one" % (self.label, info.min_encryption_version)
            )
        self._public = load_public_key(info.versions[self.version].public_key_pem.encode("ascii"), self.label)

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        body: Dict[str, Any] = {"input": base64.b64encode(data).decode("ascii"), "key_version": self.version}
        if self.info.key_type != "ed25519":
            body.update(hash_algorithm="sha2-256", marshaling_algorithm="asn1")
        answer = self.client.write("%s/sign/%s" % (self.info.mount, self.info.name), body)
        signature = str((answer.get("data") or {}).get("signature") or "")
        prefix = "vault:v%d:" % self.version
        if not signature.startswith(prefix):
            raise SecretsError(
                "%s answered signature %r, not one of version %d" % (self.label, signature[:24], self.version)
            )
        return base64.b64decode(signature[len(prefix) :])


def open_signer(client: OpenBaoClient, transit: Mapping[str, Any]) -> TransitSigner:
    """The signer for a ``TRANSIT_KEY_SPEC`` mapping; the key is read now, so a sealed server fails before any write."""
    info = read_key(client, str(transit.get("mount") or "transit"), str(transit["key"]))
    return TransitSigner(client, info, transit.get("version"))


def parse_key_reference(reference: str) -> Tuple[str, str]:
    """``<mount>/<key>`` (the mount may hold slashes) as (mount, key): how a plain setting names a transit key."""
    mount, _slash, name = reference.strip().strip("/").rpartition("/")
    if not mount or not name:
        raise SecretsError(
            "transit key reference %r is not <mount>/<key> (for example transit/audit-checkpoints)" % reference
        )
    return mount, name


def signer_from_reference(reference: str, environ: Optional[Mapping[str, str]] = None) -> TransitSigner:
    """The latest version of the key a ``<mount>/<key>`` reference names, on the server BAO_ADDR / BAO_TOKEN give."""
    mount, name = parse_key_reference(reference)
    return open_signer(OpenBaoClient(OpenBaoConfig.from_options({}, environ)), {"mount": mount, "key": name})


def keyring_entries(info: TransitKeyInfo, retire_after: Optional[float] = None) -> List[Dict[str, Any]]:
    """Keyring entries (docs/artifacts.md) for every version of a transit key.

    Each version is valid from its creation. A version that a later one replaced
    stays trusted for ``retire_after`` seconds after the replacement was created
    (None: until the keyring is edited); a version below min_encryption_version
    is rotated out for good and gets not_after at its replacement's creation.
    """
    entries: List[Dict[str, Any]] = []
    ordered = sorted(info.versions.values(), key=lambda item: item.version)
    for index, version in enumerate(ordered):
        entry: Dict[str, Any] = {
            "name": "openbao %s/keys/%s v%d" % (info.mount, info.name, version.version),
            "public_key": version.public_key_pem,
        }
        if version.created:
            entry["not_before"] = format_timestamp(parse_timestamp(version.created))
        successor = ordered[index + 1] if index + 1 < len(ordered) else None
        if successor is not None and successor.created:
            replaced = parse_timestamp(successor.created).timestamp()
            if version.version < info.min_encryption_version:
                entry["not_after"] = format_timestamp(_utc(replaced))
            elif retire_after is not None:
                entry["not_after"] = format_timestamp(_utc(replaced + retire_after))
        entries.append(entry)
    return entries


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
