"""DSSE interoperability, proven by implementations other than the collection's own.

- DSSE's published test vectors: the protocol's own example (ECDSA P-256, the signature as raw r || s) from
  protocol.md, and tests/fixtures/data/dsse/vectors.json, a copy of testvectors/vectors.json of the
  secure-systems-lab/dsse repository (Apache-2.0, commit 82043adf78bb4e67c208f9ffa72b38804ea6a0c4; Ed25519 keys of
  RFC 8032 section 7.1, so every signature can be made again here and compared byte for byte).
- securesystemslib (PyPI, the library in-toto and python-tuf sign with): envelopes its CryptoSigner makes
  with Ed25519, ECDSA P-256 and RSA-PSS keys and its default key ids verify with the collection's
  verifier, and the envelopes the collection signs verify with securesystemslib's dsse.Envelope.verify.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import os
from typing import Any, Callable, Dict, List

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fixtures.signing import demo_manifest
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    PAYLOAD_TYPE,
    Keyring,
    build_statement,
    decode_base64,
    key_id,
    load_keyring,
    pae,
    sign_envelope,
    verified_signers,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.manifest import canonical_json
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import VerifyRequest, verify_artifact

NOW = datetime.datetime(2026, 11, 26, 8, 0, tzinfo=datetime.timezone.utc)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(REPO, "tests", "fixtures", "data", "dsse", "vectors.json")
DEMO_APP = os.path.join(REPO, "examples", "demo_app", "app")

# protocol.md, "Test Vectors": ECDSA over NIST P-256 and SHA-256, deterministic (RFC 6979), "raw
# concatenation of r and s".
PROTOCOL_X = 46950820868899156662930047687818585632848591499744589407958293238635476079160
PROTOCOL_Y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
PROTOCOL_ENVELOPE = {
    "payload": "aGVsbG8gd29ybGQ=",
    "payloadType": "http://example.com/HelloWorld",
    "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}],
}

SIGNERS: Dict[str, Callable[[], CryptoSigner]] = {
    "ed25519": CryptoSigner.generate_ed25519,
    "ecdsa-p256": CryptoSigner.generate_ecdsa,
    "rsa-pss": CryptoSigner.generate_rsa,
}


def _pem(public_key: Any) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _public_key(signer: CryptoSigner) -> Any:
    """A securesystemslib key as a cryptography key, read from its published form (keyval)."""
    value = signer.public_key.keyval["public"]
    if signer.public_key.keytype == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
    return serialization.load_pem_public_key(value.encode())


def _keyring(public_keys: List[Any]) -> Keyring:
    return load_keyring({"keys": [{"public_key": _pem(key)} for key in public_keys]}, lambda path: b"")


def _url_safe(data: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("dsse") / "demo-app-1.4.0.tar.gz")
    with open(path, "wb") as handle:
        write_package(plan_package(DEMO_APP, demo_manifest()), handle, "tar.gz")
    return path


def _statement(artifact: str) -> Dict[str, Any]:
    with open(artifact, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    return build_statement(os.path.basename(artifact), digest, demo_manifest(), {})


def _verify(artifact: str, envelope: Dict[str, Any], keyring: Keyring, required: int = 1) -> Any:
    return verify_artifact(
        VerifyRequest(
            path=artifact,
            envelope_text=json.dumps(envelope).encode(),
            keyring=keyring,
            required_signatures=required,
            now=NOW,
        )
    )


# -- base64 ---------------------------------------------------------------------


# 0xfb 0xff 0xbf encodes as "+/+/" in the standard alphabet and "-_-_" in the URL-safe one.
@pytest.mark.parametrize("data", [b"\xfb\xff\xbf", b"\xfb\xff\xbf>?", b"\xfb\xff\xbf>", b"", b"hello world"])
def test_both_base64_alphabets_padded_or_not_decode_alike(data: bytes) -> None:
    standard = base64.b64encode(data).decode()
    for text in (standard, standard.rstrip("="), _url_safe(data, True), _url_safe(data, False)):
        assert decode_base64(text) == data, text


@pytest.mark.parametrize(
    ("text", "why"),
    [("+/-_", "mixes"), ("aGk===", "3 padding"), ("aGk=aGk=", "after padding")],
)
def test_malformed_base64_is_refused(text: str, why: str) -> None:
    with pytest.raises(binascii.Error, match=why):
        decode_base64(text)


def test_url_safe_unpadded_envelope_verifies(artifact: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    envelope = sign_envelope(_statement(artifact), [key])
    envelope["payload"] = _url_safe(base64.b64decode(envelope["payload"]), padded=False)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    envelope["signatures"][0]["sig"] = _url_safe(signature, padded=False)
    report = _verify(artifact, envelope, _keyring([key.public_key()]))
    assert report.reasons == [] and report.signers == [key_id(key.public_key())]


# -- DSSE's published vectors -----------------------------------------------------


def test_protocol_vector_raw_ecdsa_signature_verifies() -> None:
    public = ec.EllipticCurvePublicNumbers(PROTOCOL_X, PROTOCOL_Y, ec.SECP256R1()).public_key()
    envelope = PROTOCOL_ENVELOPE
    payload = decode_base64(envelope["payload"])
    assert pae(envelope["payloadType"], payload) == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    raw = decode_base64(envelope["signatures"][0]["sig"])
    assert len(raw) == 64
    reasons: List[str] = []
    signers = verified_signers(
        envelope["payloadType"], payload, envelope["signatures"], _keyring([public]), NOW, reasons
    )
    assert (signers, reasons) == ([key_id(public)], [])
    # The same signature DER-encoded verifies too; a changed bit of s does not.
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    altered = raw[:-1] + bytes([raw[-1] ^ 1])
    for sig, expected in ((der, [key_id(public)]), (altered, [])):
        found = verified_signers(
            envelope["payloadType"], payload, [{"sig": base64.b64encode(sig).decode()}], _keyring([public]), NOW, []
        )
        assert found == expected


def test_raw_ecdsa_signature_in_a_collection_envelope_verifies(artifact: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = sign_envelope(_statement(artifact), [key])
    r, s = decode_dss_signature(base64.b64decode(envelope["signatures"][0]["sig"]))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    envelope["signatures"][0]["sig"] = base64.b64encode(raw).decode()
    report = _verify(artifact, envelope, _keyring([key.public_key()]))
    assert report.reasons == [] and report.signers == [key_id(key.public_key())]
    envelope["signatures"][0]["sig"] = base64.b64encode(raw[:32] + (s ^ 1).to_bytes(32, "big")).decode()
    assert _verify(artifact, envelope, _keyring([key.public_key()])).signers == []


def _vectors() -> List[Dict[str, Any]]:
    with open(VECTORS, encoding="utf-8") as handle:
        document: Dict[str, Any] = json.load(handle)
    for vector in document["vectors"]:
        vector["keys"] = {name: document["keys"][name] for name in vector["trustedKeys"]}
    return list(document["vectors"])


@pytest.mark.parametrize("vector", _vectors(), ids=lambda vector: str(vector["id"]))
def test_published_dsse_vector(vector: Dict[str, Any]) -> None:
    private = {
        name: ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed"]))
        for name, key in vector["keys"].items()
    }
    envelope = vector["envelope"]
    payload = decode_base64(envelope["payload"])
    reasons: List[str] = []
    # The vectors name keys "A" and "B", never a fingerprint: the key ids are hints that match no keyring key.
    signers = verified_signers(
        envelope["payloadType"],
        payload,
        envelope["signatures"],
        _keyring([key.public_key() for key in private.values()]),
        NOW,
        reasons,
    )
    accepted = envelope["payloadType"] in vector["supportedPayloadTypes"] and len(signers) >= vector["threshold"]
    assert ("accept" if accepted else "reject") == vector["expect"], reasons
    message = pae(envelope["payloadType"], payload)
    if vector["expect"] == "accept":
        assert message.hex() == vector["pae"]
        # Ed25519 is deterministic: the vector's signers signed exactly these PAE bytes.
        made = {base64.b64encode(key.sign(message)).decode() for key in private.values()}
        assert {base64.b64encode(decode_base64(sig["sig"])).decode() for sig in envelope["signatures"]} <= made


# -- keyid is a hint ---------------------------------------------------------------


@pytest.mark.parametrize("keyid", ["", "release-signer-2026", None, "OTHER-KEY"])
def test_keyid_only_narrows_which_keys_are_tried(artifact: str, keyid: Any) -> None:
    signer, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    envelope = sign_envelope(_statement(artifact), [signer])
    if keyid == "OTHER-KEY":
        keyid = key_id(other.public_key())  # names another trusted key: that one fails, the signer's verifies
    if keyid is None:
        del envelope["signatures"][0]["keyid"]
    else:
        envelope["signatures"][0]["keyid"] = keyid
    report = _verify(artifact, envelope, _keyring([other.public_key(), signer.public_key()]))
    assert report.reasons == [] and report.signers == [key_id(signer.public_key())]


@pytest.mark.parametrize("claim", ["", "OTHER-KEY"])
def test_revocation_follows_the_key_that_verifies_not_the_keyid(artifact: str, claim: str) -> None:
    revoked, other = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    envelope = sign_envelope(_statement(artifact), [revoked])
    envelope["signatures"][0]["keyid"] = key_id(other.public_key()) if claim == "OTHER-KEY" else claim
    document = {
        "keys": [{"public_key": _pem(other.public_key())}, {"public_key": _pem(revoked.public_key())}],
        "revoked": [{"keyid": key_id(revoked.public_key()), "reason": "key leaked"}],
    }
    report = _verify(artifact, envelope, load_keyring(document, lambda path: b""))
    assert report.signers == []
    assert any(
        "is by key %s, which is revoked (key leaked)" % key_id(revoked.public_key()) in reason
        for reason in report.reasons
    )


def test_unknown_keyid_and_unknown_key_is_refused_naming_the_keyid(artifact: str) -> None:
    stranger, trusted = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    envelope = sign_envelope(_statement(artifact), [stranger])
    envelope["signatures"][0]["keyid"] = "stranger-1"
    report = _verify(artifact, envelope, _keyring([trusted.public_key()]))
    assert report.signers == []
    assert any("is by key stranger-1, which is not in the keyring" in reason for reason in report.reasons)


# -- securesystemslib ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sslib_signers() -> Dict[str, CryptoSigner]:
    return {name: generate() for name, generate in SIGNERS.items()}


@pytest.mark.parametrize("kind", sorted(SIGNERS))
def test_securesystemslib_envelope_verifies_with_the_collection(
    artifact: str, sslib_signers: Dict[str, CryptoSigner], kind: str
) -> None:
    signer = sslib_signers[kind]
    envelope = Envelope(canonical_json(_statement(artifact)), PAYLOAD_TYPE, {})
    envelope.sign(signer)
    document = envelope.to_dict()
    public = _public_key(signer)
    # securesystemslib's default keyid hashes its own key dict; it is not the collection's fingerprint.
    assert document["signatures"][0]["keyid"] == signer.public_key.keyid != key_id(public)
    report = _verify(artifact, document, _keyring([public]))
    assert report.reasons == [] and report.signers == [key_id(public)]


def test_securesystemslib_three_signer_envelope_meets_three_required(
    artifact: str, sslib_signers: Dict[str, CryptoSigner]
) -> None:
    envelope = Envelope(canonical_json(_statement(artifact)), PAYLOAD_TYPE, {})
    for signer in sslib_signers.values():
        envelope.sign(signer)
    publics = [_public_key(signer) for signer in sslib_signers.values()]
    report = _verify(artifact, envelope.to_dict(), _keyring(publics), required=3)
    assert report.reasons == [] and sorted(report.signers) == sorted(key_id(key) for key in publics)
    tampered = envelope.to_dict()
    tampered["payload"] = base64.b64encode(canonical_json(dict(_statement(artifact), subject=[]))).decode()
    assert _verify(artifact, tampered, _keyring(publics), required=3).signers == []


def test_collection_envelope_verifies_with_securesystemslib(artifact: str) -> None:
    private = [
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ]
    document = sign_envelope(_statement(artifact), private)
    # A securesystemslib user configures each trusted key with the key id the envelope carries: the fingerprint.
    keys = [SSlibKey.from_crypto(key.public_key(), keyid=key_id(key.public_key())) for key in private]
    accepted = Envelope.from_dict(json.loads(json.dumps(document))).verify(keys, threshold=3)
    assert sorted(accepted) == sorted(key_id(key.public_key()) for key in private)
    assert Envelope.from_dict(json.loads(json.dumps(document))).payload == canonical_json(_statement(artifact))
    altered = json.loads(json.dumps(document))
    altered["payloadType"] = "application/vnd.example.other+json"
    with pytest.raises(VerificationError, match="threshold"):
        Envelope.from_dict(altered).verify(keys, threshold=1)
