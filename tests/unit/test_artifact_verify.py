"""Signing and verification: every bad input the issue lists gives a clear reason or error."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
from typing import Any, Optional

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fixtures.signing import KeyPair, demo_manifest, write_key_pair

from ansible_collections.relops.release.plugins.module_utils.digests import ChecksumError, parse_sums_file
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    build_statement,
    key_id,
    load_keyring,
    load_private_key,
    pae,
    sign_envelope,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import VerifyRequest, verify_artifact

NOW = datetime.datetime(2026, 11, 26, 8, 0, tzinfo=datetime.timezone.utc)
DEMO_APP = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "demo_app", "app")


def _package(directory: str, manifest: Optional[dict] = None, name: str = "demo-app-1.4.0.tar.gz") -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        write_package(plan_package(DEMO_APP, manifest or demo_manifest()), handle, "tar.gz")
    return path


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _sign(artifact: str, keys: list[KeyPair], name: Optional[str] = None, sha256: Optional[str] = None) -> bytes:
    digest = hashlib.sha256(_read(artifact)).hexdigest()
    statement = build_statement(name or os.path.basename(artifact), sha256 or digest, demo_manifest(), {})
    private = [load_private_key(_read(key.private_path), key.passphrase, key.private_path) for key in keys]
    return json.dumps(sign_envelope(statement, private)).encode()


def _keyring(keys: list[KeyPair], **extra: Any) -> Any:
    entries = [{"public_key": key.public_pem, "name": key.kind, **extra.get(key.kind, {})} for key in keys]
    return load_keyring({"keys": entries, "revoked": extra.get("revoked", [])}, lambda path: b"")


def _verify(artifact: str, envelope: Optional[bytes], keyring: Any, **options: Any) -> Any:
    return verify_artifact(VerifyRequest(path=artifact, envelope_text=envelope, keyring=keyring, now=NOW, **options))


@pytest.fixture
def keys(tmp_path: Any) -> dict[str, KeyPair]:
    return {
        "ed25519": write_key_pair(str(tmp_path), "ed25519", "ed"),
        "ecdsa": write_key_pair(str(tmp_path), "ecdsa", "ec", passphrase="s3cret"),
        "rsa": write_key_pair(str(tmp_path), "rsa", "rsa"),
    }


def test_three_key_types_sign_one_envelope_and_verify(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    pairs = list(keys.values())
    envelope = _sign(artifact, pairs)
    report = _verify(artifact, envelope, _keyring(pairs), required_signatures=3, environment="staging")
    assert report.reasons == []
    assert sorted(report.signers) == sorted(key_id(load_public(k)) for k in pairs)
    assert report.manifest["name"] == "demo-app"
    document = json.loads(envelope)
    assert document["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(document["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "demo-app-1.4.0.tar.gz", "digest": {"sha256": report.sha256}}]


def load_public(pair: KeyPair) -> Any:
    return load_pem_public_key(pair.public_pem.encode())


def test_pae_matches_the_dsse_specification() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_tampered_byte_is_refused(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [keys["ed25519"]])
    with open(artifact, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0x01]))
    report = _verify(artifact, envelope, _keyring([keys["ed25519"]]))
    assert any("statement is for demo-app-1.4.0.tar.gz sha256:" in reason for reason in report.reasons)


def test_truncated_file_fails_the_checksum(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    good = _verify(artifact, None, None)
    envelope = _sign(artifact, [keys["ed25519"]])
    size = os.path.getsize(artifact)
    with open(artifact, "r+b") as handle:
        handle.truncate(size - 10)
    report = _verify(artifact, envelope, _keyring([keys["ed25519"]]), checksum="sha256:" + good.sha256)
    assert report.size == size - 10
    assert any("sha256 mismatch (expected %s" % good.sha256 in reason for reason in report.reasons)
    assert any("statement is for demo-app-1.4.0.tar.gz sha256:%s" % good.sha256 in r for r in report.reasons)


@pytest.mark.parametrize(
    "checksum",
    ["md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc", "9f2c", "sha256:" + "z" * 64],
)
def test_wrong_checksum_format_is_an_error_naming_it(tmp_path: Any, checksum: str) -> None:
    artifact = _package(str(tmp_path))
    with pytest.raises(ChecksumError) as caught:
        _verify(artifact, None, None, checksum=checksum)
    assert checksum[:20] in str(caught.value)


def test_sums_file_forms(tmp_path: Any) -> None:
    hex_digest = "a" * 64
    assert parse_sums_file("%s  dist/app-1.0.0.tar.gz\n" % hex_digest, "app-1.0.0.tar.gz") == ("sha256", hex_digest)
    assert parse_sums_file("%s *app-1.0.0.tar.gz\n" % ("b" * 128), "app-1.0.0.tar.gz")[0] == "sha512"
    assert parse_sums_file("SHA256 (app-1.0.0.tar.gz) = %s\n" % hex_digest, "app-1.0.0.tar.gz")[1] == hex_digest
    with pytest.raises(ChecksumError, match=r"no line for app-2\.0\.0\.tar\.gz"):
        parse_sums_file("%s  app-1.0.0.tar.gz\n" % hex_digest, "app-2.0.0.tar.gz")
    with pytest.raises(ChecksumError, match="neither"):
        parse_sums_file("not a checksum line\n", "app-1.0.0.tar.gz")


def test_checksum_from_file_url(tmp_path: Any) -> None:
    artifact = _package(str(tmp_path))
    digest = _verify(artifact, None, None).sha256
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("%s  demo-app-1.4.0.tar.gz\n" % digest)
    assert _verify(artifact, None, None, checksum="file://%s" % sums).reasons == []
    sums.write_text("%s  demo-app-1.4.0.tar.gz\n" % ("0" * 64))
    assert "sha256 mismatch" in _verify(artifact, None, None, checksum=str(sums)).reasons[0]
    with pytest.raises(ChecksumError, match=r"plain HTTP"):
        _verify(artifact, None, None, checksum="http://127.0.0.1/SHA256SUMS")


def test_unknown_key_is_refused(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [keys["ed25519"]])
    report = _verify(artifact, envelope, _keyring([keys["rsa"]]))
    keyid = key_id(load_public(keys["ed25519"]))
    assert any("by key %s, which is not in the keyring" % keyid in reason for reason in report.reasons)
    assert any("0 valid signature(s) from trusted keys, 1 required" in reason for reason in report.reasons)


def test_revoked_key_is_refused(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [keys["ed25519"]])
    keyid = key_id(load_public(keys["ed25519"]))
    keyring = _keyring([keys["ed25519"]], revoked=[{"keyid": keyid, "reason": "key leaked"}])
    report = _verify(artifact, envelope, keyring)
    assert any("which is revoked (key leaked)" in reason for reason in report.reasons)
    assert report.signers == []


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"not_after": "2026-01-01T00:00:00Z"}, "expired at 2026-01-01T00:00:00.000000Z"),
        ({"not_before": "2027-01-01T00:00:00Z"}, "not valid before 2027-01-01T00:00:00.000000Z"),
    ],
)
def test_key_outside_its_validity_is_refused(
    tmp_path: Any, keys: dict[str, KeyPair], window: dict, expected: str
) -> None:
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [keys["ed25519"]])
    report = _verify(artifact, envelope, _keyring([keys["ed25519"]], ed25519=window))
    assert any(expected in reason for reason in report.reasons)


def test_too_few_signatures(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [keys["ed25519"], keys["rsa"]])
    report = _verify(artifact, envelope, _keyring(list(keys.values())), required_signatures=3)
    assert report.reasons == ["2 valid signature(s) from trusted keys, 3 required (%s)" % ", ".join(report.signers)]


def test_duplicate_signatures_by_one_key_count_once(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    document = json.loads(_sign(artifact, [keys["ed25519"]]))
    document["signatures"] = document["signatures"] * 2
    report = _verify(artifact, json.dumps(document).encode(), _keyring([keys["ed25519"]]), required_signatures=2)
    assert any("1 valid signature(s) from trusted keys, 2 required" in reason for reason in report.reasons)


def test_other_payload_type_is_refused(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    document = json.loads(_sign(artifact, [keys["ed25519"]]))
    document["payloadType"] = "application/vnd.cncf.notary.payload.v1+json"
    report = _verify(artifact, json.dumps(document).encode(), _keyring([keys["ed25519"]]))
    assert "not the in-toto statement type" in report.reasons[0]


def test_payload_swapped_under_a_valid_signature_fails(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path))
    document = json.loads(_sign(artifact, [keys["ed25519"]]))
    statement = json.loads(base64.b64decode(document["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example"
    document["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    report = _verify(artifact, json.dumps(document).encode(), _keyring([keys["ed25519"]]))
    assert any("does not verify" in reason for reason in report.reasons)


@pytest.mark.parametrize("field", ["digest", "name"])
def test_statement_for_another_artifact(tmp_path: Any, keys: dict[str, KeyPair], field: str) -> None:
    artifact = _package(str(tmp_path))
    envelope = (
        _sign(artifact, [keys["ed25519"]], sha256="0" * 64)
        if field == "digest"
        else _sign(artifact, [keys["ed25519"]], name="other-app-1.4.0.tar.gz")
    )
    report = _verify(artifact, envelope, _keyring([keys["ed25519"]]))
    assert report.signers  # the signature itself is good...
    assert any("statement is for" in reason and "not for demo-app-1.4.0.tar.gz" in reason for reason in report.reasons)


@pytest.mark.parametrize("text", [b"{not json", b"[]", b'{"payloadType": "x"}'])
def test_malformed_envelope(tmp_path: Any, keys: dict[str, KeyPair], text: bytes) -> None:
    artifact = _package(str(tmp_path))
    report = _verify(artifact, text, _keyring([keys["ed25519"]]))
    assert len(report.reasons) == 1 and "envelope" in report.reasons[0]


def test_name_outside_convention_and_wrong_environment(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path), name="demo-app-latest.tar.gz")
    report = _verify(artifact, None, None, environment="qa")
    assert any(
        "breaks the naming convention" in reason and "demo-app-1.4.0.tar.gz" in r2
        for reason in report.reasons
        for r2 in [reason]
    )
    assert any("environment 'qa' is not in the manifest's environments" in reason for reason in report.reasons)


def test_signed_manifest_must_equal_the_packaged_one(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    artifact = _package(str(tmp_path), manifest=demo_manifest(owner="mallory@example.com"))
    envelope = _sign(artifact, [keys["ed25519"]])
    report = _verify(artifact, envelope, _keyring([keys["ed25519"]]))
    assert any("differs from the manifest in the signed provenance" in reason for reason in report.reasons)


def test_keyring_rejects_a_keyid_that_is_not_the_fingerprint(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(ArtifactError, match="declares keyid"):
        load_keyring({"keys": [{"public_key": keys["rsa"].public_pem, "keyid": "abcd"}]}, lambda path: b"")


def test_unsupported_and_locked_keys(tmp_path: Any, keys: dict[str, KeyPair]) -> None:
    p384 = write_key_pair(str(tmp_path), "ecdsa-p384", "p384")
    with pytest.raises(ArtifactError, match="use P-256"):
        load_private_key(_read(p384.private_path), None, p384.private_path)
    with pytest.raises(ArtifactError, match="give its passphrase"):
        load_private_key(_read(keys["ecdsa"].private_path), None, "ec.pem")
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_private_key(_read(keys["ecdsa"].private_path), "wrong", "ec.pem")
