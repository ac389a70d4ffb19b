# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attestations: in-toto Statement v1 with a SLSA provenance v1 predicate, in a DSSE envelope.

Keys are Ed25519, ECDSA P-256 (SHA-256) or RSA-PSS (SHA-256, MGF1, >= 2048
bits). A key id is the key's fingerprint: the lowercase hex SHA-256 of its
DER SubjectPublicKeyInfo, so a keyring cannot claim an id for another key.

Verification follows the DSSE protocol where other signers differ from ours:
base64 in either alphabet, padded or not; a signature's keyid is an
unauthenticated hint that only orders the keys tried (securesystemslib and
others compute their own ids); ECDSA signatures in DER or raw r || s.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol, Sequence, Union

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, parse_timestamp

from . import ArtifactError, require_library
from .manifest import canonical_json

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/relops/release/package/v1"
DEFAULT_BUILDER = "https://github.com/relops/release/builders/ansible-controller"
MIN_RSA_BITS = 2048
# An ECDSA P-256 signature as the raw concatenation r || s of two 32-byte integers (IEEE P1363), the
# form DSSE's own test vector uses; cryptography signs and verifies DER.
RAW_P256_SIGNATURE_BYTES = 64
_URL_SAFE_ALPHABET = str.maketrans("-_", "+/")

if TYPE_CHECKING:
    PrivateKey = Union[ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
    PublicKey = Union[ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey]


class RemoteSigner(Protocol):
    """A key whose private half stays in a key service (OpenBao transit): it signs bytes on request."""

    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes: ...


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def decode_base64(text: str) -> bytes:
    """Decode DSSE base64: the standard or the URL-safe alphabet, padded or not.

    The DSSE protocol lets signers use either alphabet and says verifiers MUST
    accept both; a string mixing the two is neither and is refused.
    """
    if any(char in text for char in "-_") and any(char in text for char in "+/"):
        raise binascii.Error("it mixes the standard (+/) and the URL-safe (-_) base64 alphabets")
    core = text.rstrip("=")
    if len(text) - len(core) > 2:
        raise binascii.Error("it ends in %d padding characters; base64 has at most 2" % (len(text) - len(core)))
    return base64.b64decode(core.translate(_URL_SAFE_ALPHABET) + "=" * (-len(core) % 4), validate=True)


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_key_pem(public_key: PublicKey) -> str:
    """The key as a keyring lists it: PEM SubjectPublicKeyInfo."""
    pem: bytes = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def key_algorithm(key: Union[PrivateKey, PublicKey]) -> str:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "ed25519"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ArtifactError("ECDSA key on curve %s is not supported; use P-256 (secp256r1)" % key.curve.name)
        return "ecdsa-p256-sha256"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        if key.key_size < MIN_RSA_BITS:
            raise ArtifactError("RSA key of %d bits is too small; use at least %d bits" % (key.key_size, MIN_RSA_BITS))
        return "rsa-pss-sha256"
    raise ArtifactError(
        "key type %s is not supported; use Ed25519, ECDSA P-256 or RSA (signed with PSS)" % type(key).__name__
    )


def require_cryptography() -> None:
    require_library(HAS_CRYPTOGRAPHY, "cryptography", "signing and verifying artifacts")


def load_private_key(pem: bytes, passphrase: Optional[str], source: str) -> PrivateKey:
    require_cryptography()
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode("utf-8") if passphrase else None)
    except TypeError as exc:
        hint = "drop the passphrase" if passphrase else "give its passphrase"
        raise ArtifactError("private key %s: %s; %s" % (source, exc, hint)) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ArtifactError(
            "private key %s cannot be read (%s); give a PEM private key and the right passphrase" % (source, exc)
        ) from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ArtifactError(
            "private key %s is a %s key; use Ed25519, ECDSA P-256 or RSA" % (source, type(key).__name__)
        )
    key_algorithm(key)  # refuses other curves and short RSA keys
    return key


def load_public_key(pem: bytes, source: str) -> PublicKey:
    require_cryptography()
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ArtifactError("public key %s cannot be read (%s); give a PEM public key" % (source, exc)) from None
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise ArtifactError("public key %s is not Ed25519, ECDSA P-256 or RSA" % source)
    key_algorithm(key)
    return key


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(
        data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256()
    )


def verify_bytes(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            return any(_verify_ecdsa(key, candidate, data) for candidate in _ecdsa_encodings(signature))
        else:
            key.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                hashes.SHA256(),
            )
    except InvalidSignature:
        return False
    return True


def _ecdsa_encodings(signature: bytes) -> List[bytes]:
    """The DER forms an ECDSA signature may stand for: itself, and r || s re-encoded when it has that length."""
    encodings = [signature]
    if len(signature) == RAW_P256_SIGNATURE_BYTES:
        half = RAW_P256_SIGNATURE_BYTES // 2
        r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        encodings.append(encode_dss_signature(r, s))
    return encodings


def _verify_ecdsa(key: ec.EllipticCurvePublicKey, der: bytes, data: bytes) -> bool:
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def signature_fits(key: PublicKey, signature: bytes) -> bool:
    """Whether a signature has the shape this key's algorithm makes (its length, or DER for ECDSA)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return len(signature) == 64
    if isinstance(key, ec.EllipticCurvePublicKey):
        if len(signature) == RAW_P256_SIGNATURE_BYTES:
            return True
        try:
            decode_dss_signature(signature)
        except ValueError:
            return False
        return True
    return len(signature) == (key.key_size + 7) // 8


def build_statement(
    artifact_name: str, sha256: str, manifest: Mapping[str, Any], build_context: Mapping[str, Any]
) -> Dict[str, Any]:
    """An in-toto Statement v1 about one artifact, with SLSA provenance v1 from the manifest and build context."""
    source = manifest.get("source_repository")
    dependency: Dict[str, Any] = {"digest": {"gitCommit": manifest["source_revision"]}}
    if source:
        dependency["uri"] = "git+%s@%s" % (source, manifest["source_revision"])
    metadata: Dict[str, Any] = {"startedOn": manifest["created"]}
    if build_context.get("invocation_id"):
        metadata["invocationId"] = str(build_context["invocation_id"])
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": artifact_name, "digest": {"sha256": sha256}}],
        "predicateType": PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"manifest": dict(manifest)},
                "internalParameters": dict(build_context.get("parameters") or {}),
                "resolvedDependencies": [dependency],
            },
            "runDetails": {
                "builder": {"id": str(build_context.get("builder_id") or DEFAULT_BUILDER)},
                "metadata": metadata,
            },
        },
    }


def sign_envelope(statement: Mapping[str, Any], keys: Sequence[Union[PrivateKey, RemoteSigner]]) -> Dict[str, Any]:
    """The DSSE envelope; local and remote keys give the same signature format under the same key id rule."""
    payload = canonical_json(statement)
    message = pae(PAYLOAD_TYPE, payload)
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": key_id(key.public_key()), "sig": base64.b64encode(_sign_with(key, message)).decode("ascii")}
            for key in keys
        ],
    }


def _sign_with(key: Union[PrivateKey, RemoteSigner], message: bytes) -> bytes:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        return sign_bytes(key, message)
    return key.sign(message)


@dataclass
class TrustedKey:
    keyid: str
    key: PublicKey
    name: str
    not_before: Optional[datetime.datetime] = None
    not_after: Optional[datetime.datetime] = None


@dataclass
class Keyring:
    keys: Dict[str, TrustedKey] = field(default_factory=dict)
    revoked: Dict[str, str] = field(default_factory=dict)


def load_keyring(document: Mapping[str, Any], read_file: Any) -> Keyring:
    """Build a keyring from ``{keys: [...], revoked: [...]}``; ``read_file(path)`` returns a key file's bytes."""
    ring = Keyring()
    entries = document.get("keys")
    if not isinstance(entries, list) or not entries:
        raise ArtifactError("the keyring has no keys list; add keys: [{public_key: <PEM>, name: ...}]")
    for index, entry in enumerate(entries):
        ring_key = _trusted_key(entry, index, read_file)
        ring.keys[ring_key.keyid] = ring_key
    for item in document.get("revoked") or []:
        keyid = item.get("keyid") if isinstance(item, Mapping) else item
        reason = item.get("reason", "revoked") if isinstance(item, Mapping) else "revoked"
        if not isinstance(keyid, str):
            raise ArtifactError("keyring revoked entry %r has no keyid; list key ids (fingerprints)" % (item,))
        ring.revoked[keyid.lower()] = str(reason)
    return ring


def _trusted_key(entry: Any, index: int, read_file: Any) -> TrustedKey:
    where = "keyring keys[%d]" % index
    if not isinstance(entry, Mapping):
        raise ArtifactError("%s is not a mapping with public_key or public_key_file" % where)
    if entry.get("public_key"):
        pem = str(entry["public_key"]).encode("utf-8")
    elif entry.get("public_key_file"):
        pem = read_file(str(entry["public_key_file"]))
    else:
        raise ArtifactError("%s has neither public_key (PEM text) nor public_key_file" % where)
    key = load_public_key(pem, where)
    fingerprint = key_id(key)
    declared = entry.get("keyid")
    if declared and str(declared).lower() != fingerprint:
        raise ArtifactError(
            "%s declares keyid %s but the key's fingerprint is %s; key ids are fingerprints, fix or drop keyid"
            % (where, declared, fingerprint)
        )
    return TrustedKey(
        keyid=fingerprint,
        key=key,
        name=str(entry.get("name") or fingerprint[:16]),
        not_before=_optional_time(entry.get("not_before"), where + ".not_before"),
        not_after=_optional_time(entry.get("not_after"), where + ".not_after"),
    )


def _optional_time(value: Any, where: str) -> Optional[datetime.datetime]:
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    try:
        return parse_timestamp(str(value))
    except ValueError as exc:
        raise ArtifactError("%s: %s" % (where, exc)) from None


@dataclass
class EnvelopeCheck:
    """What an envelope check found: the statement (when readable), valid signer ids and reasons to refuse."""

    statement: Optional[Dict[str, Any]] = None
    signers: List[str] = field(default_factory=list)
    reasons: List[str] = field(default_factory=list)


def parse_envelope(text: Union[str, bytes], source: str) -> Dict[str, Any]:
    try:
        envelope = json.loads(text)
    except ValueError as exc:
        raise ArtifactError("envelope %s is not valid JSON (%s); it must be a DSSE envelope" % (source, exc)) from None
    if not isinstance(envelope, dict):
        raise ArtifactError("envelope %s is not a JSON object; it must be a DSSE envelope" % source)
    for name, kind in (("payloadType", str), ("payload", str), ("signatures", list)):
        if not isinstance(envelope.get(name), kind):
            raise ArtifactError("envelope %s has no %s %s; it is not a DSSE envelope" % (source, kind.__name__, name))
    return envelope


def check_envelope(
    envelope: Mapping[str, Any],
    keyring: Keyring,
    required: int,
    now: datetime.datetime,
    predicate_type: str = PROVENANCE_TYPE,
) -> EnvelopeCheck:
    """Check payload type, payload and every signature; the subject is checked by the caller.

    ``predicate_type`` is what the statement must attest: SLSA provenance for an artifact, the
    collection's permit type for a release permit (release_record/permit.py)."""
    check = EnvelopeCheck()
    if envelope["payloadType"] != PAYLOAD_TYPE:
        check.reasons.append(
            "envelope payload type is %r, not the in-toto statement type %r; it attests something else"
            % (envelope["payloadType"], PAYLOAD_TYPE)
        )
        return check
    try:
        payload = decode_base64(envelope["payload"])
        statement = json.loads(payload)
    except ValueError as exc:  # binascii.Error is a ValueError
        check.reasons.append("envelope payload is not base64-encoded JSON (%s)" % exc)
        return check
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        check.reasons.append("envelope payload is not an in-toto Statement v1 (_type must be %s)" % STATEMENT_TYPE)
        return check
    check.statement = statement
    if statement.get("predicateType") != predicate_type:
        check.reasons.append(
            "statement predicate type is %r, not %s" % (statement.get("predicateType"), predicate_type)
        )
    check.signers = verified_signers(
        envelope["payloadType"], payload, envelope["signatures"], keyring, now, check.reasons
    )
    if len(check.signers) < required:
        check.reasons.append(
            "%d valid signature(s) from trusted keys, %d required%s"
            % (len(check.signers), required, " (%s)" % ", ".join(check.signers) if check.signers else "")
        )
    return check


def verified_signers(
    payload_type: str,
    payload: bytes,
    signatures: Sequence[Any],
    keyring: Keyring,
    now: datetime.datetime,
    reasons: List[str],
) -> List[str]:
    """The distinct trusted keys whose signature over PAE(payload_type, payload) is valid; why others fail goes
    to ``reasons``. DSSE's multi-signature rule: one key signing twice counts once."""
    message = pae(payload_type, payload)
    signers: List[str] = []
    for index, signature in enumerate(signatures):
        keyid = _check_signature(signature, index, message, keyring, now, reasons)
        if keyid and keyid not in signers:
            signers.append(keyid)
    return signers


def _check_signature(
    signature: Any, index: int, message: bytes, keyring: Keyring, now: datetime.datetime, reasons: List[str]
) -> Optional[str]:
    """Return the signer's key id when the signature is valid and its key trusted now; else note why."""
    where = "signature %d" % index
    if not isinstance(signature, Mapping) or not isinstance(signature.get("sig"), str):
        reasons.append("%s has no sig field" % where)
        return None
    try:
        raw = decode_base64(signature["sig"])
    except binascii.Error as exc:
        reasons.append("%s is not base64, standard or URL-safe (%s)" % (where, exc))
        return None
    hint = str(signature.get("keyid") or "").lower()
    trusted = _find_signer(_candidate_keys(keyring, hint, raw), raw, message)
    if trusted is None:
        reasons.append(_unverified_reason(where, hint, keyring))
        return None
    if trusted.keyid in keyring.revoked:
        reasons.append(
            "%s is by key %s, which is revoked (%s)" % (where, trusted.keyid, keyring.revoked[trusted.keyid])
        )
        return None
    if trusted.not_before and now < trusted.not_before:
        reasons.append(
            "%s is by key %s (%s), not valid before %s"
            % (where, trusted.keyid, trusted.name, format_timestamp(trusted.not_before))
        )
        return None
    if trusted.not_after and now > trusted.not_after:
        reasons.append(
            "%s is by key %s (%s), which expired at %s; rotate to a current key"
            % (where, trusted.keyid, trusted.name, format_timestamp(trusted.not_after))
        )
        return None
    return trusted.keyid


def _candidate_keys(keyring: Keyring, hint: str, raw: bytes) -> List[TrustedKey]:
    """The keys to try, the one the keyid names first: DSSE makes a keyid an unauthenticated hint.

    Signers pick their own key ids (securesystemslib hashes its key dict, others use names), so
    an unknown or empty keyid narrows nothing; every trusted key whose algorithm makes signatures
    of this shape is tried. Whether the signer is trusted is decided by which key verifies.
    """
    named = keyring.keys.get(hint)
    others = [trusted for trusted in keyring.keys.values() if trusted is not named and signature_fits(trusted.key, raw)]
    return ([named] if named is not None else []) + others


def _find_signer(candidates: Sequence[TrustedKey], raw: bytes, message: bytes) -> Optional[TrustedKey]:
    for trusted in candidates:
        if verify_bytes(trusted.key, raw, message):
            return trusted
    return None


def _unverified_reason(where: str, hint: str, keyring: Keyring) -> str:
    """Why no trusted key verified a signature, worded after what its (unauthenticated) keyid claims."""
    named = keyring.keys.get(hint)
    if named is not None:
        return "%s by key %s (%s) does not verify; the envelope was altered or signed by another key" % (
            where,
            named.keyid,
            named.name,
        )
    if hint in keyring.revoked:
        return "%s is by key %s, which is revoked (%s)" % (where, hint, keyring.revoked[hint])
    return (
        "%s is by key %s, which is not in the keyring (none of the keyring's %d key(s) verifies the signature); "
        "add the signer's public key if it is trusted" % (where, hint or "(no keyid)", len(keyring.keys))
    )


def subject_reasons(statement: Mapping[str, Any], artifact_name: str, sha256: str) -> List[str]:
    """Why the statement does not describe this artifact (name and digest both must match one subject)."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return ["statement has no subject; it attests no artifact"]
    for subject in subjects:
        if not isinstance(subject, Mapping):
            continue
        digest = (subject.get("digest") or {}).get("sha256")
        if subject.get("name") == artifact_name and isinstance(digest, str) and digest.lower() == sha256:
            return []
    described = ", ".join(
        "%s sha256:%s" % (s.get("name"), (s.get("digest") or {}).get("sha256"))
        for s in subjects
        if isinstance(s, Mapping)
    )
    return [
        "statement is for %s, not for %s sha256:%s; the envelope belongs to another artifact or the artifact changed"
        % (described, artifact_name, sha256)
    ]


def signed_manifest(statement: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    try:
        manifest = statement["predicate"]["buildDefinition"]["externalParameters"]["manifest"]
    except (KeyError, TypeError):
        return None
    return dict(manifest) if isinstance(manifest, Mapping) else None
