"""In production (enforced by the default policy) the change gate decides from recorded evidence only.
Each way around it that a playbook could try is refused through real ansible-playbook runs, on the
local ITSM: route and risk given by the caller, the releaser approving their own CAB change, one
signature where the policy wants two, the audit callback off where the policy requires it, a recorded
quality deny, a release while the previous one's stabilization period runs, an artifact whose signing
key was revoked, and a package that was neither checksummed nor signed. The allowed path issues a permit
bound to the release."""

from __future__ import annotations

import copy
import datetime
import json
import os
import uuid
from typing import Any

import yaml
from fixtures.governance import run_tasks, write_junit, write_yaml
from fixtures.openbao import OpenBao
from fixtures.playbooks import BIN, REPO, Ansible
from fixtures.signing import DEMO_APP, KeyPair

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    key_id,
    load_keyring,
    load_public_key,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.policy.loader import DEFAULT_POLICY_PATH
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import check_permit
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import keyring_entries, read_key

SN_FORMAT = "%Y-%m-%d %H:%M:%S"
# The second person: approves from their own login (the local ITSM records the login of whoever decides).
CAB_MEMBER = "cab.member"


def _policies(directory: str) -> "tuple[str, str]":
    """The default policy without the readiness review (not what this test is about), and the same
    policy asking production for two signatures."""
    with open(DEFAULT_POLICY_PATH, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    document["gate"]["require_readiness"] = False
    # These runs have no audit callback; the refusal that causes has its own policy (audited.yml) below.
    document["environments"]["production"]["audit_required"] = False
    one = write_yaml(os.path.join(directory, "one-signature.yml"), document)
    two_signatures = copy.deepcopy(document)
    two_signatures["environments"]["production"]["signatures_required"] = 2
    audited = copy.deepcopy(document)
    audited["environments"]["production"]["audit_required"] = True  # the default policy's own setting
    write_yaml(os.path.join(directory, "audited.yml"), audited)
    return one, write_yaml(os.path.join(directory, "two-signatures.yml"), two_signatures)


def _keyring(directory: str, key: KeyPair, name: str, revoked: bool = False) -> str:
    document: dict[str, Any] = {"keys": [{"name": "release", "public_key_file": key.public_path}]}
    if revoked:
        document["revoked"] = [{"keyid": key_id(load_public_key(key.public_pem.encode(), "key")), "reason": "leaked"}]
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    return path


def test_production_gate_decides_from_evidence_and_fails_closed(
    ansible: Ansible, tmp_path: Any, key_factory: Any, openbao: OpenBao
) -> None:
    workdir = str(tmp_path)
    ledger_url = "sqlite:///" + os.path.join(workdir, "ledger.db").lstrip("/")
    env = {"RELOPS_LEDGER_URL": ledger_url}
    one, two = _policies(workdir)
    key, permit_key = key_factory("ed25519", "release"), key_factory("ed25519", "permits")
    keyring = _keyring(workdir, key, "keyring.json")
    now = utc_now()
    start, end = (
        (now - datetime.timedelta(minutes=5)).strftime(SN_FORMAT),
        (now + datetime.timedelta(hours=1)).strftime(SN_FORMAT),
    )
    gate = {
        "service": "{{ result_verified.manifest.service }}",
        "environment": "production",
        "version": "{{ result_verified.manifest.version }}",
        "release_id": "{{ result_verified.release_id }}",
        "change": "{{ result_change.change.number }}",
        "policy": one,
        "permit_key": permit_key.private_path,
        "hosts": ["web01", "web02"],
        "fail_on_deny": False,
    }
    cab_gate = dict(gate, change="{{ result_cab_change.change.number }}")
    verify = {"environment": "production", "policy": one, "record": True, "mode": "report"}
    # The same gate with the permit signed by a key that never leaves OpenBao's transit engine.
    transit = "transit-gate-%s" % uuid.uuid4().hex[:8]
    openbao.enable("transit", transit)
    openbao.request("POST", "%s/keys/permits" % transit, json={"type": "ed25519"})
    transit_gate = {key: value for key, value in gate.items() if key != "permit_key"}
    transit_gate.update(
        change="{{ result_cab_change.change.number }}",
        permit_transit={"key": "permits", "mount": transit},
        openbao={"url": openbao.url, "token": openbao.token},
    )
    assess = {
        "service": "{{ result_verified.manifest.service }}",
        "environment": "production",
        "release_class": "operational",
        "policy": one,
        "release_id": "{{ result_verified.release_id }}",
    }
    tasks = [
        {
            "id": "built",
            "module": "package",
            "args": {
                "src": os.path.join(DEMO_APP, "app"),
                "manifest": os.path.join(DEMO_APP, "manifest.json"),
                "dest": os.path.join(workdir, "dist"),
            },
        },
        {
            "id": "unsigned",
            "module": "artifact_verify",
            "args": dict(verify, path="{{ result_built.path }}", release_id="unsigned"),
        },
        {
            "id": "signed",
            "module": "artifact_sign",
            "args": {"artifact": "{{ result_built.path }}", "keys": [{"path": key.private_path}]},
        },
        {
            "id": "verified",
            "module": "artifact_verify",
            "args": dict(
                verify,
                path="{{ result_built.path }}",
                checksum="{{ result_built.digest }}",
                envelope="{{ result_signed.envelope }}",
                keyring=keyring,
            ),
        },
        {
            "id": "risk",
            "module": "risk_assess",
            "args": assess,
        },
        {
            "id": "change",
            "module": "change_request",
            "args": {
                "correlation_id": "evidence-gate",
                "short_description": "Release the demo app",
                "start_date": start,
                "end_date": end,
                "state": "authorize",
            },
        },
        # The person running the release approves the change they asked for.
        {
            "id": "own-approval",
            "module": "change_request",
            "args": {"number": "{{ result_change.change.number }}", "approval": "approved"},
        },
        {
            "id": "implement",
            "module": "change_request",
            "args": {"number": "{{ result_change.change.number }}", "state": "implement"},
        },
        {"id": "claimed", "module": "change_gate", "args": dict(gate, route="automatic", risk="low")},
        # Passing as someone else is a claim too: the requester is the run's identity.
        {"id": "claimed-requester", "module": "change_gate", "args": dict(gate, requested_by="dev.two")},
        {"id": "self-approved", "module": "change_gate", "args": gate},
        # The releaser withdraws that change; a second one is approved by another person, from their own
        # login, in their own ansible-playbook process (playbooks/approve.yml, as `make demo` does).
        {
            "id": "withdrawn",
            "module": "change_request",
            "args": {"number": "{{ result_change.change.number }}", "state": "canceled", "close_notes": "withdrawn"},
        },
        {
            "id": "cab-change",
            "module": "change_request",
            "args": {
                "correlation_id": "evidence-gate-cab",
                "short_description": "Release the demo app (for the CAB)",
                "start_date": start,
                "end_date": end,
                "state": "authorize",
            },
        },
        {
            "id": "cab-approval",
            "module": "ansible.builtin.command",
            "args": {
                "argv": [
                    os.path.join(BIN, "ansible-playbook"),
                    os.path.join(REPO, "playbooks", "approve.yml"),
                    "-e",
                    "approve_change={{ result_cab_change.change.number }}",
                ]
            },
            "environment": {"LOGNAME": CAB_MEMBER, "USER": CAB_MEMBER},
        },
        {
            "id": "cab-implement",
            "module": "change_request",
            "args": {"number": "{{ result_cab_change.change.number }}", "state": "implement"},
        },
        {"id": "two-wanted", "module": "change_gate", "args": dict(cab_gate, policy=two)},
        # The policy requires the audit trail, and this run has the audit callback off.
        {
            "id": "unaudited",
            "module": "change_gate",
            "args": dict(cab_gate, policy=os.path.join(workdir, "audited.yml")),
        },
        {"id": "allowed", "module": "change_gate", "args": cab_gate},
        {"id": "allowed-transit", "module": "change_gate", "args": transit_gate},
        # The release succeeded and started the period production's policy asks for (roles/release does
        # this after success); the service's next change waits for it to end.
        {
            "id": "stabilizing",
            "module": "stabilization",
            "args": {
                "service": "{{ result_verified.manifest.service }}",
                "environment": "production",
                "version": "{{ result_verified.manifest.version }}",
                "period": "{{ result_risk.stabilization_seconds }}",
            },
        },
        {"id": "during-stabilization", "module": "change_gate", "args": cab_gate},
        # A quality deny for the artifact, recorded in its release record, stops the release.
        {
            "id": "quality",
            "module": "quality_gate",
            "args": {
                "subject": "{{ result_verified.release_id }}",
                "release_class": "operational",
                "fail_on_deny": False,
                "junit": [write_junit(os.path.join(workdir, "junit.xml"), 10, failures=2)],
                "release_id": "{{ result_verified.release_id }}",
            },
        },
        {"id": "risk-after-quality", "module": "risk_assess", "args": assess},
        {"id": "after-quality", "module": "change_gate", "args": cab_gate},
        {
            "id": "revoked",
            "module": "artifact_verify",
            "args": dict(
                verify,
                path="{{ result_built.path }}",
                checksum="{{ result_built.digest }}",
                envelope="{{ result_signed.envelope }}",
                keyring=_keyring(workdir, key, "revoked.json", revoked=True),
                release_id="{{ result_verified.release_id }}",
            ),
        },
        {"id": "after-revocation", "module": "change_gate", "args": cab_gate},
    ]
    results, run = run_tasks(ansible, tasks, env=env)

    unsigned = results["unsigned"]
    assert unsigned["verified"] is False and unsigned["checked"] == []
    assert "neither a checksum nor a signature was checked (environment production is enforced" in " ".join(
        unsigned["reasons"]
    ), unsigned
    assert "requires 1 valid signature(s) from the keyring" in " ".join(unsigned["reasons"])
    assert results["verified"]["verified"] is True and results["risk"]["recorded"] is True, run.report

    claimed = results["claimed"]
    assert claimed["failed"] and "environment production is enforced by the policy" in claimed["msg"], claimed
    assert "not from risk, route" in claimed["msg"] and "decision" not in claimed

    claimed_requester = results["claimed-requester"]
    assert claimed_requester["failed"] and "not from requested_by" in claimed_requester["msg"], claimed_requester

    own = results["self-approved"]
    assert own["decision"] == "deny" and "permit" not in own, own
    assert any("approved their own change on the %s route" % results["risk"]["route"] in r for r in own["reasons"])

    two_wanted = results["two-wanted"]
    assert two_wanted["decision"] == "deny" and "permit" not in two_wanted
    assert any("carries 1 valid signature(s)" in r and "requires 2" in r for r in two_wanted["reasons"]), two_wanted

    unaudited = results["unaudited"]
    assert unaudited["decision"] == "deny" and "permit" not in unaudited
    assert any(
        r.startswith("audit deny: audit callback relops.release.audit is not enabled") for r in unaudited["reasons"]
    )

    assert results["cab-approval"]["rc"] == 0, results["cab-approval"]
    allowed = results["allowed"]
    assert allowed["decision"] == "allow", allowed.get("reasons") or run.report
    assert allowed["approvers"] == [CAB_MEMBER], allowed
    assert allowed["caller_claims"] == {} and allowed["route"] == results["risk"]["route"]
    assert allowed["permit_id"] and allowed["permit"]["payloadType"] == "application/vnd.in-toto+json"
    by_transit = results["allowed-transit"]
    assert by_transit["decision"] == "allow", by_transit.get("msg") or run.report
    info = read_key(OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token)), transit, "permits")
    transit_keyring = load_keyring({"keys": keyring_entries(info)}, lambda path: b"")
    digest = results["built"]["digest"].split(":")[1]
    check = check_permit(by_transit["permit"], transit_keyring, utc_now(), "production", host="web02", digest=digest)
    assert check.valid, check.reasons
    # Only the transit key signed it: the file key's permit does not verify against the transit keyring.
    assert not check_permit(allowed["permit"], transit_keyring, utc_now(), "production").valid

    assert allowed["environment_policy"]["stabilization_required"] is True
    assert results["stabilizing"]["changed"] is True and results["risk"]["stabilization_seconds"] > 0
    during = results["during-stabilization"]
    assert during["decision"] in ("wait", "deny") and "permit" not in during, during
    assert any(r.startswith("stabilization %s: " % during["decision"]) for r in during["reasons"]), during["reasons"]

    assert results["quality"]["decision"] == "deny"
    reassessed = results["risk-after-quality"]
    assert reassessed["evidence"]["quality"]["decision"] == "deny" and reassessed["facts"]["tests_passed"] is False
    after_quality = results["after-quality"]
    assert after_quality["decision"] == "deny" and "permit" not in after_quality
    assert any(r.startswith("quality deny: the quality gate denied this artifact") for r in after_quality["reasons"])

    revoked = results["revoked"]
    assert revoked["verified"] is False and any("revoked" in r for r in revoked["reasons"]), revoked
    after = results["after-revocation"]
    assert after["decision"] == "deny" and any("failed verification" in r for r in after["reasons"]), after

    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = ReleaseRecordStore(ledger)
        record = store.get_record(results["verified"]["release_id"])
        assert record is not None
        permit = store.get_permit(allowed["permit_id"])
        never_signed = store.get_record("unsigned")
    assert record["permit_id"] == by_transit["permit_id"] and permit is not None
    assert record["stages"]["permit"]["hosts"] == ["web01", "web02"]
    assert record["stages"]["permit"]["digest"] == results["built"]["digest"].split(":")[1]
    gates = [entry["data"]["decision"] for entry in record["history"] if entry["stage"] == "gate"]
    assert gates == ["deny", "deny", "deny", "allow", "allow", during["decision"], "deny", "deny"], (
        "every decision the gate made is in the record"
    )
    assert never_signed is not None and never_signed["stages"]["verification"]["verified"] is False
