"""Release permits and audit checkpoints signed through OpenBao's transit engine, against a real
`bao server -dev`: the permit guard's check and the trail's verifier accept them with the exported
public key, and refuse them with one byte changed; a sealed or unreachable server is named."""

from __future__ import annotations

import base64
import datetime
import json
import os
import uuid
from typing import Any

import pytest
from fixtures.openbao import OpenBao
from fixtures.postgres import free_port

from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import load_keyring
from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import Recorder, RecorderSettings
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import AuditKeyError, load_public_keys
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import (
    PermitError,
    build_permit,
    check_permit,
    open_permit_signer,
    sign_permit,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor
from ansible_collections.relops.release.plugins.plugin_utils.secrets import SecretsUnavailable
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import keyring_entries, read_key

DIGEST = "ab" * 32
RECORD = {
    "release_id": "rel-1",
    "service": "payments-api",
    "environment": "production",
    "version": "2.4.0",
    "digest": "sha256:" + DIGEST,
    "change_number": "CHG0001",
}


@pytest.fixture
def transit(openbao: OpenBao) -> str:
    mount = "transit-%s" % uuid.uuid4().hex[:8]
    openbao.enable("transit", mount)
    return mount


def _key(openbao: OpenBao, mount: str, key_type: str, name: str = "permits") -> str:
    openbao.request("POST", "%s/keys/%s" % (mount, name), json={"type": key_type})
    return name


def _options(openbao: OpenBao) -> dict[str, Any]:
    return {"url": openbao.url, "token": openbao.token}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _permit(signer: Any) -> dict[str, Any]:
    statement = build_permit(RECORD, ["web01", "web02"], _now(), 600, {"decided_at": "t"})
    return sign_permit(statement, signer)


def _permit_keyring(openbao: OpenBao, mount: str, name: str) -> Any:
    """The keyring the guard reads from relops_permit_keyring, built as the transit_keyring lookup builds it."""
    info = read_key(OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token)), mount, name)
    return load_keyring({"keys": keyring_entries(info)}, lambda path: b"")


def _with_payload_byte_changed(envelope: dict[str, Any], old: bytes, new: bytes) -> dict[str, Any]:
    payload = base64.b64decode(envelope["payload"])
    assert len(old) == len(new) and payload.count(old) == 1
    return dict(envelope, payload=base64.b64encode(payload.replace(old, new)).decode())


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256"])
def test_a_transit_signed_permit_verifies_with_the_exported_public_key_and_one_changed_byte_does_not(
    openbao: OpenBao, transit: str, key_type: str
) -> None:
    name = _key(openbao, transit, key_type)
    signer = open_permit_signer({"key": name, "mount": transit}, None, None, _options(openbao))
    envelope = _permit(signer)
    keyring = _permit_keyring(openbao, transit, name)

    check = check_permit(envelope, keyring, _now(), "production", host="web01", digest=DIGEST)
    assert check.reasons == [] and check.permit["release_id"] == "rel-1"
    assert check.signers == [envelope["signatures"][0]["keyid"]]

    # web02 -> web03: a permit widened by one byte to a host the gate never allowed.
    widened = _with_payload_byte_changed(envelope, b'"web02"', b'"web03"')
    refused = check_permit(widened, keyring, _now(), "production", host="web03", digest=DIGEST)
    assert not refused.valid
    assert any("signature" in reason for reason in refused.reasons), refused.reasons


def test_a_permit_signed_by_another_transit_key_is_refused(openbao: OpenBao, transit: str) -> None:
    trusted = _key(openbao, transit, "ed25519", "permits")
    other = _key(openbao, transit, "ed25519", "someone-elses")
    envelope = _permit(open_permit_signer({"key": other, "mount": transit}, None, None, _options(openbao)))
    check = check_permit(envelope, _permit_keyring(openbao, transit, trusted), _now(), "production", host="web01")
    assert not check.valid and check.reasons


def test_the_permit_transit_variable_takes_a_key_name_and_refuses_two_keys_or_unknown_fields(openbao: OpenBao) -> None:
    # A bare name means the default mount, "transit", as the option's default does.
    if "transit/" not in openbao.request("GET", "sys/mounts").json()["data"]:
        openbao.enable("transit", "transit")
    name = _key(openbao, "transit", "ed25519", "named-%s" % uuid.uuid4().hex[:6])
    envelope = _permit(open_permit_signer(name, None, None, _options(openbao)))
    assert check_permit(envelope, _permit_keyring(openbao, "transit", name), _now(), "production").valid

    with pytest.raises(PermitError, match=r"both a permit key file \(/etc/permit.pem\) and a transit permit key"):
        open_permit_signer({"key": name}, "/etc/permit.pem", None, _options(openbao))
    with pytest.raises(PermitError, match=r"unknown keys path; it takes key, mount, version"):
        open_permit_signer({"key": name, "path": "x"}, None, None, _options(openbao))


def test_a_sealed_openbao_fails_the_permit_naming_the_key_path(private_openbao: OpenBao) -> None:
    private_openbao.enable("transit", "transit")
    name = _key(private_openbao, "transit", "ed25519")
    signer = open_permit_signer({"key": name}, None, None, _options(private_openbao))
    private_openbao.request("POST", "sys/seal")
    # Sealed between reading the key (before the gate records anything) and signing the permit.
    with pytest.raises(SecretsUnavailable, match=r"is sealed; secret path transit/sign/permits cannot be read"):
        _permit(signer)
    with pytest.raises(SecretsUnavailable, match=r"is sealed; secret path transit/keys/permits cannot be read"):
        open_permit_signer({"key": name}, None, None, _options(private_openbao))


def test_an_unreachable_openbao_fails_the_permit_naming_the_key_path() -> None:
    options = {"url": "http://127.0.0.1:%d" % free_port(), "token": "t", "timeout": 2}
    with pytest.raises(SecretsUnavailable, match=r"unreachable, so secret path transit/keys/permits cannot be used"):
        open_permit_signer({"key": "permits"}, None, None, options)


def _audit_run(trail: str, reference: str, tasks: int = 3) -> None:
    recorder = Recorder(RecorderSettings(path=trail, signing_transit_key=reference, checkpoint_every=2))
    recorder.begin_run(Actor(run_id="run-%s" % uuid.uuid4().hex[:6], user="ops", host="controller"), "/r.yml", None)
    recorder.record("playbook_start", "play", {})
    for number in range(tasks):
        recorder.record("task_start", "task", {"task": "t%d" % number, "task_uuid": "u%d" % number, "args": {}})
    recorder.record("playbook_end", "play", {"outcome": "success"})
    recorder.end_run()


def _exported_public_keys(openbao: OpenBao, mount: str, name: str, directory: str) -> Any:
    """The trail verifier's public keys: every version's PEM as transit exports it (docs/secrets.md)."""
    info = read_key(OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token)), mount, name)
    paths = []
    for version in info.versions.values():
        path = os.path.join(directory, "%s-v%d.pem" % (name, version.version))
        with open(path, "w", encoding="ascii") as handle:
            handle.write(version.public_key_pem)
        paths.append(path)
    return load_public_keys(paths)


def _bao_env(monkeypatch: pytest.MonkeyPatch, openbao: OpenBao) -> None:
    for variable in ("VAULT_ADDR", "VAULT_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("BAO_ADDR", openbao.url)
    monkeypatch.setenv("BAO_TOKEN", openbao.token)


def test_audit_checkpoints_signed_through_transit_verify_and_one_changed_byte_does_not(
    openbao: OpenBao, transit: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bao_env(monkeypatch, openbao)
    name = _key(openbao, transit, "ed25519", "audit")
    trail = str(tmp_path / "audit.jsonl")
    _audit_run(trail, "%s/%s" % (transit, name))
    public_keys = _exported_public_keys(openbao, transit, name, str(tmp_path))

    report = verify_trail([trail], None, public_keys)
    assert report.ok, report.as_dict()
    assert report.checkpoints >= 2 and report.sealed_through == report.last_seq

    # A key rotated mid-trail: later checkpoints carry version 2's key id, and both versions verify.
    openbao.request("POST", "%s/keys/%s/rotate" % (transit, name))
    _audit_run(trail, "%s/%s" % (transit, name))
    rotated_keys = _exported_public_keys(openbao, transit, name, str(tmp_path))
    assert len(rotated_keys) == 2
    assert verify_trail([trail], None, rotated_keys).ok
    assert not verify_trail([trail], None, public_keys).ok, "version 2's checkpoints need version 2's key"

    with open(trail, "rb") as handle:
        lines = handle.read().split(b"\n")[:-1]
    index = next(i for i, line in enumerate(lines) if json.loads(line)["event"] == "checkpoint")
    checkpoint = json.loads(lines[index])
    forged = str(checkpoint["checkpoint"]["first_seq"] + 1).encode()
    lines[index] = lines[index].replace(
        b'"first_seq":%d' % checkpoint["checkpoint"]["first_seq"], b'"first_seq":' + forged, 1
    )
    assert len(forged) == len(str(checkpoint["checkpoint"]["first_seq"]))
    with open(trail, "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))
    tampered = verify_trail([trail], None, rotated_keys)
    assert not tampered.ok
    found = [(problem.reason, problem.line) for problem in tampered.problems]
    assert ("bad signature", index + 1) in found, found


def test_audit_checkpoints_refuse_a_transit_key_that_is_not_ed25519_or_given_with_a_key_file(
    openbao: OpenBao, transit: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bao_env(monkeypatch, openbao)
    name = _key(openbao, transit, "ecdsa-p256", "audit-p256")
    with pytest.raises(AuditKeyError, match=r"keys/audit-p256 v1 is of type ecdsa-p256; audit checkpoints are signed"):
        _audit_run(str(tmp_path / "audit.jsonl"), "%s/%s" % (transit, name))
    with pytest.raises(ValueError, match=r"signing_key /k.pem and signing_transit_key t/k are both set"):
        Recorder(RecorderSettings(path=str(tmp_path / "b.jsonl"), signing_key="/k.pem", signing_transit_key="t/k"))


def test_a_sealed_openbao_stops_the_audit_trail_naming_the_key_path(
    private_openbao: OpenBao, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bao_env(monkeypatch, private_openbao)
    private_openbao.enable("transit", "transit")
    _key(private_openbao, "transit", "ed25519", "audit")
    trail = str(tmp_path / "audit.jsonl")
    recorder = Recorder(RecorderSettings(path=trail, signing_transit_key="transit/audit"))
    recorder.begin_run(Actor(run_id="sealed-run", user="ops", host="controller"), "/r.yml", None)
    recorder.record("playbook_start", "play", {})
    private_openbao.request("POST", "sys/seal")
    # Mid-run: the checkpoint that cannot be signed is not written; the error names the signing path.
    with pytest.raises(SecretsUnavailable, match=r"is sealed; secret path transit/sign/audit cannot be read"):
        recorder.checkpoint()
    with open(trail, "rb") as handle:
        assert all(json.loads(line)["event"] != "checkpoint" for line in handle.read().splitlines())
    # At the start of the next run: no recorder, and the error names the key.
    with pytest.raises(SecretsUnavailable, match=r"is sealed; secret path transit/keys/audit cannot be read"):
        Recorder(RecorderSettings(path=trail, signing_transit_key="transit/audit"))


def test_an_unreachable_openbao_stops_the_audit_trail_naming_the_key_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAO_ADDR", "http://127.0.0.1:%d" % free_port())
    monkeypatch.setenv("BAO_TOKEN", "t")
    with pytest.raises(SecretsUnavailable, match=r"unreachable, so secret path transit/keys/audit cannot be used"):
        Recorder(RecorderSettings(path=str(tmp_path / "audit.jsonl"), signing_transit_key="transit/audit"))
