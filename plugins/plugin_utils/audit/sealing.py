# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HMAC on every line and Ed25519 signatures on checkpoints (a key file, or a key in OpenBao's transit engine).

A line's ``mac`` is HMAC-SHA256 over the line as it would be without ``mac``;
a checkpoint's ``sig`` is an Ed25519 signature over the line without ``mac``
and ``sig``. Both are computed on canonical bytes and checked on the raw
bytes with the field cut out (``canonical.without_field``), so checking needs
no re-serialisation. Keys are identified by the first 16 hex digits of the
SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Protocol, Tuple, cast

from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import canonical_line, without_field

# Only signing and checking checkpoints need cryptography; an unsigned trail works without it.
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

_NEEDS_CRYPTOGRAPHY = (
    "%s needs the Python package cryptography on the controller; install it with: pip install cryptography"
)


class AuditKeyError(ValueError):
    """A key file that cannot be used; the message names the file and the fix."""


class CheckpointSigner(Protocol):
    """What signs checkpoints: an Ed25519 private key, or a transit key version that signs on the server."""

    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(path: str) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a PEM file (unencrypted PKCS#8, as openssl genpkey writes it)."""
    if not HAS_CRYPTOGRAPHY:
        raise AuditKeyError(_NEEDS_CRYPTOGRAPHY % ("signing audit checkpoints with %s" % path))
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditKeyError(
            "audit signing key %s cannot be loaded (%s); create one with "
            "`openssl genpkey -algorithm ed25519 -out %s`" % (path, exc, path)
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(
            "audit signing key %s is not an Ed25519 key; create one with openssl genpkey -algorithm ed25519" % path
        )
    return key


def load_transit_signing_key(reference: str) -> CheckpointSigner:
    """The latest version of an Ed25519 transit key (``<mount>/<key>``) on the OpenBao that BAO_ADDR and
    BAO_TOKEN (or VAULT_ADDR and VAULT_TOKEN) name; its private half never leaves the server."""
    if not HAS_CRYPTOGRAPHY:
        raise AuditKeyError(_NEEDS_CRYPTOGRAPHY % ("signing audit checkpoints with transit key %s" % reference))
    # Imported here: transit needs requests, and a trail without transit signing must not.
    from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import (  # noqa: PLC0415
        signer_from_reference,
    )

    signer = signer_from_reference(reference)
    if signer.info.key_type != "ed25519":
        raise AuditKeyError(
            "%s is of type %s; audit checkpoints are signed with Ed25519 keys (bao write -f %s/keys/%s type=ed25519)"
            % (signer.label, signer.info.key_type, signer.info.mount, signer.info.name)
        )
    if not isinstance(signer.public_key(), Ed25519PublicKey):
        raise AuditKeyError("%s did not export an Ed25519 public key" % signer.label)
    # Checked just above: this signer's public key is Ed25519, as the Protocol says.
    return cast(CheckpointSigner, signer)


def load_public_keys(paths: Iterable[str]) -> Dict[str, Ed25519PublicKey]:
    """Load Ed25519 public keys (PEM, or a private key whose public half is used), by key id."""
    keys: Dict[str, Ed25519PublicKey] = {}
    if paths and not HAS_CRYPTOGRAPHY:
        raise AuditKeyError(_NEEDS_CRYPTOGRAPHY % "checking audit checkpoint signatures")
    for path in paths:
        try:
            with open(os.path.expanduser(path), "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise AuditKeyError("audit public key %s cannot be read (%s)" % (path, exc.strerror)) from None
        public: Any
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                public = serialization.load_pem_private_key(data, password=None).public_key()
            except (ValueError, TypeError) as exc:
                raise AuditKeyError(
                    "audit public key %s is not a PEM key (%s); export it with "
                    "`openssl pkey -in audit.key -pubout -out %s`" % (path, exc, path)
                ) from None
        if not isinstance(public, Ed25519PublicKey):
            raise AuditKeyError("audit public key %s is not an Ed25519 key" % path)
        keys[key_id(public)] = public
    return keys


def load_hmac_key(text: Optional[str] = None, path: Optional[str] = None) -> Optional[bytes]:
    """Return the HMAC key from its text or its file (surrounding whitespace ignored), or None."""
    if path:
        try:
            with open(os.path.expanduser(path), "rb") as handle:
                data = handle.read().strip()
        except OSError as exc:
            raise AuditKeyError("audit HMAC key file %s cannot be read (%s)" % (path, exc.strerror)) from None
        if not data:
            raise AuditKeyError("audit HMAC key file %s is empty; put at least 32 random bytes in it" % path)
        return data
    if text:
        return text.strip().encode("utf-8")
    return None


def line_mac(key: bytes, body: bytes) -> str:
    return hmac.digest(key, body, "sha256").hex()


class Sealer:
    """Adds ``mac`` to every line and ``sig`` to checkpoints, with the keys it was given."""

    def __init__(self, hmac_key: Optional[bytes] = None, signing_key: Optional[CheckpointSigner] = None) -> None:
        self.hmac_key = hmac_key
        self.signing_key = signing_key
        self.key_id = key_id(signing_key.public_key()) if signing_key is not None else None

    def seal(self, event: Dict[str, Any]) -> bytes:
        """Return the event's final line, adding ``sig`` (checkpoints, with a key) and ``mac`` (with an HMAC key)."""
        if event.get("event") == "checkpoint" and self.signing_key is not None:
            body = canonical_line(event)
            event["sig"] = base64.b64encode(self.signing_key.sign(body)).decode("ascii")
        line = canonical_line(event)
        if self.hmac_key is not None:
            event["mac"] = line_mac(self.hmac_key, line)
            line = canonical_line(event)
        return line


_BLOCK_SIZE = 64  # SHA-256's block size, which HMAC pads the key to
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class MacChecker:
    """Checks line MACs: HMAC-SHA256 (RFC 2104) from two pre-keyed SHA-256 states, copied per line.

    Copying two hashlib states is cheaper than copying an ``hmac`` object or
    keying OpenSSL's HMAC for every line (``hmac.digest``, OpenSSL's one-shot
    HMAC, measured twice as slow per line here), and the verifier does this
    for every line of the trail. ``line_mac`` (the writer) uses the ``hmac``
    module; a unit test holds the two equal.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK_SIZE, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def mac(self, body: bytes) -> str:
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def states(self) -> Tuple[Callable[[], "hashlib._Hash"], Callable[[], "hashlib._Hash"]]:
        """The inner and outer states' ``copy`` methods, for a loop that computes ``mac`` inline.

        The verifier checks a line's MAC with these in its own loop (one call
        fewer per line than calling ``mac``): the inner copy is updated with
        the line without its ``mac`` field, the outer copy with the inner digest.
        """
        return self._inner.copy, self._outer.copy


def check_signature(keys: Mapping[str, Ed25519PublicKey], body: bytes, event: Mapping[str, Any]) -> Optional[str]:
    """Check a checkpoint's signature over ``body`` (its line without ``mac``); return why it fails, or None."""
    checkpoint = event.get("checkpoint")
    signature = event.get("sig")
    if not isinstance(checkpoint, dict) or not isinstance(signature, str):
        return "checkpoint is not signed"
    public = keys.get(str(checkpoint.get("key_id")))
    if public is None:
        return "checkpoint signed with key %s, which is not among the trusted public keys" % checkpoint.get("key_id")
    try:
        public.verify(base64.b64decode(signature, validate=True), without_field(body, "sig", signature))
    except (InvalidSignature, binascii.Error, ValueError):
        return "checkpoint signature does not verify with key %s" % checkpoint.get("key_id")
    return None
