"""Artifact signing through OpenBao's transit engine, against a real `bao server -dev`."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import uuid
from typing import Any

import pytest
from fixtures.openbao import OpenBao
from fixtures.postgres import free_port
from fixtures.signing import demo_manifest

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    build_statement,
    key_algorithm,
    key_id,
    load_keyring,
    load_public_key,
    sign_envelope,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import VerifyRequest, verify_artifact
from ansible_collections.relops.release.plugins.plugin_utils.secrets import SecretsError, SecretsUnavailable
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import (
    TransitSigner,
    keyring_entries,
    read_key,
)

DEMO_APP = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "demo_app", "app")


def _client(openbao: OpenBao) -> OpenBaoClient:
    return OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token))


@pytest.fixture
def transit(openbao: OpenBao) -> str:
    mount = "transit-%s" % uuid.uuid4().hex[:8]
    openbao.enable("transit", mount)
    return mount


def _make_key(openbao: OpenBao, mount: str, key_type: str) -> str:
    name = "release-%s" % key_type
    openbao.request("POST", "%s/keys/%s" % (mount, name), json={"type": key_type})
    return name


def _package(directory: str) -> str:
    path = os.path.join(directory, "demo-app-1.4.0.tar.gz")
    with open(path, "wb") as handle:
        write_package(plan_package(DEMO_APP, demo_manifest()), handle, "tar.gz")
    return path


def _sign(artifact: str, signers: list[Any]) -> bytes:
    with open(artifact, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    statement = build_statement(os.path.basename(artifact), digest, demo_manifest(), {})
    return json.dumps(sign_envelope(statement, signers)).encode()


def _verify(artifact: str, envelope: bytes, entries: list[dict[str, Any]], now: datetime.datetime) -> Any:
    keyring = load_keyring({"keys": entries}, lambda path: b"")
    return verify_artifact(VerifyRequest(path=artifact, envelope_text=envelope, keyring=keyring, now=now))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize(("key_type", "algorithm"), [("ed25519", "ed25519"), ("ecdsa-p256", "ecdsa-p256-sha256")])
def test_a_transit_signed_package_verifies_with_the_exported_public_key_and_one_changed_byte_does_not(
    openbao: OpenBao, transit: str, tmp_path: Any, key_type: str, algorithm: str
) -> None:
    client = _client(openbao)
    name = _make_key(openbao, transit, key_type)
    info = read_key(client, transit, name)
    signer = TransitSigner(client, info)
    artifact = _package(str(tmp_path))
    envelope = _sign(artifact, [signer])

    exported = load_public_key(info.versions[1].public_key_pem.encode(), "exported")
    signature = json.loads(envelope)["signatures"][0]
    assert signature["keyid"] == key_id(exported)
    entries = keyring_entries(info)
    report = _verify(artifact, envelope, entries, _now())
    assert report.reasons == []
    assert report.signers == [key_id(exported)]
    assert key_algorithm(signer.public_key()) == algorithm

    with open(artifact, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0x01]))
    tampered = _verify(artifact, envelope, entries, _now())
    assert tampered.reasons, "a package with one byte changed must not verify"
    assert any("not for demo-app-1.4.0.tar.gz" in reason for reason in tampered.reasons), tampered.reasons


def test_an_altered_transit_signature_does_not_verify(openbao: OpenBao, transit: str, tmp_path: Any) -> None:
    client = _client(openbao)
    info = read_key(client, transit, _make_key(openbao, transit, "ed25519"))
    artifact = _package(str(tmp_path))
    document = json.loads(_sign(artifact, [TransitSigner(client, info)]))
    raw = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
    raw[0] ^= 0x01
    document["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    report = _verify(artifact, json.dumps(document).encode(), keyring_entries(info), _now())
    assert any("does not verify" in reason for reason in report.reasons), report.reasons


def test_a_rotated_out_key_version_follows_the_keyrings_validity_rules(
    openbao: OpenBao, transit: str, tmp_path: Any
) -> None:
    client = _client(openbao)
    name = _make_key(openbao, transit, "ed25519")
    artifact = _package(str(tmp_path))
    old_envelope = _sign(artifact, [TransitSigner(client, read_key(client, transit, name))])
    openbao.request("POST", "%s/keys/%s/rotate" % (transit, name))
    rotated = read_key(client, transit, name)
    assert rotated.latest_version == 2
    new_envelope = _sign(artifact, [TransitSigner(client, rotated)])
    assert json.loads(new_envelope)["signatures"][0]["keyid"] != json.loads(old_envelope)["signatures"][0]["keyid"]

    # Rotated but still allowed to sign: version 1 stays trusted unless the keyring retires it.
    assert _verify(artifact, old_envelope, keyring_entries(rotated), _now()).reasons == []
    v2_created = parse_timestamp(rotated.versions[2].created)
    grace = keyring_entries(rotated, retire_after=3600)
    assert _verify(artifact, old_envelope, grace, v2_created + datetime.timedelta(minutes=30)).reasons == []
    late = _verify(artifact, old_envelope, grace, v2_created + datetime.timedelta(hours=2))
    assert any("expired" in reason and "v1" in reason for reason in late.reasons), late.reasons

    # Rotated out (min_encryption_version 2): v1 may no longer sign, and its signatures stop counting.
    openbao.request("POST", "%s/keys/%s/config" % (transit, name), json={"min_encryption_version": 2})
    retired = read_key(client, transit, name)
    with pytest.raises(SecretsError, match=r"v1 was rotated out"):
        TransitSigner(client, retired, version=1)
    entries = keyring_entries(retired)
    assert "not_after" in entries[0] and "not_after" not in entries[1]
    refused = _verify(artifact, old_envelope, entries, _now())
    assert any("expired" in reason for reason in refused.reasons), refused.reasons
    assert _verify(artifact, new_envelope, entries, _now()).reasons == []


def test_a_key_type_that_cannot_sign_envelopes_is_refused_with_the_path(openbao: OpenBao, transit: str) -> None:
    name = _make_key(openbao, transit, "aes256-gcm96")
    with pytest.raises(SecretsError, match=r"transit-.*/keys/release-aes256-gcm96 is of type aes256-gcm96"):
        read_key(_client(openbao), transit, name)


def test_a_sealed_openbao_fails_naming_the_path(private_openbao: OpenBao) -> None:
    client = _client(private_openbao)
    private_openbao.request("POST", "sys/seal")
    with pytest.raises(SecretsUnavailable, match=r"is sealed; secret path transit/keys/release cannot be read"):
        read_key(client, "transit", "release")


def test_an_unreachable_openbao_fails_naming_the_path() -> None:
    client = OpenBaoClient(OpenBaoConfig(url="http://127.0.0.1:%d" % free_port(), token="t", timeout=2))
    with pytest.raises(SecretsUnavailable, match=r"unreachable, so secret path transit/keys/release cannot be used"):
        read_key(client, "transit", "release")
