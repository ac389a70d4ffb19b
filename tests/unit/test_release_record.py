"""The release record (schema V22): its store on SQLite and PostgreSQL, the evidence the gate reads
from it, and the release permit."""

from __future__ import annotations

import datetime
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import Keyring, TrustedKey, key_id
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    ReleaseRecordError,
    ReleaseRecordStore,
    caller_claims,
    classification_from_record,
    refuse_claims,
    signature_shortfall,
)
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import (
    PermitError,
    build_permit,
    check_permit,
    sign_permit,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "record-run"})
RERUN = current_actor(environ={"RELOPS_RUN_ID": "record-rerun"})
DIGEST = "sha256:" + "ab" * 32
FACTS = {
    "owner": "alice",
    "team": "payments",
    "source_revision": "0123abc",
    "commit_time": "2026-12-01T10:00:00Z",
    "runbook": None,
}


def _open(store: ReleaseRecordStore, actor=ACTOR, version: str = "1.0.0", digest: str = DIGEST, **kw):  # type: ignore[no-untyped-def]
    return store.open_release(actor, "payments-api", "production", version, digest, FACTS, **kw)


def test_one_record_per_attempt_continued_by_a_rerun_and_new_after_an_outcome(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = ReleaseRecordStore(ledger)
        record, created = _open(store)
        assert created and record["release_id"] == "payments-api@1.0.0/production/abababababab"
        assert (record["team"], record["commit_time"], record["outcome"]) == (
            "payments",
            "2026-12-01T10:00:00Z",
            "in_progress",
        )
        store.record_stage(ACTOR, record["release_id"], "change", {"number": "CHG0001"})
        # A run killed mid-release and started again continues the same record: one release, not two.
        again, created = _open(store, actor=RERUN)
        assert not created and again["release_id"] == record["release_id"] and again["run_id"] == "record-rerun"
        store.record_stage(RERUN, record["release_id"], "deployment", {"strategy": "blue_green", "hosts": ["a"]})
        store.record_stage(RERUN, record["release_id"], "outcome", {"outcome": "successful"})
        shown = store.get_record(record["release_id"])
        assert shown is not None
        assert (shown["change_number"], shown["strategy"], shown["outcome"]) == ("CHG0001", "blue_green", "successful")
        assert shown["finished_at"] and [e["stage"] for e in shown["history"]] == ["change", "deployment", "outcome"]
        with pytest.raises(ReleaseRecordError, match="is finished"):
            store.record_stage(RERUN, record["release_id"], "smoke", {"passed": True})
        # The same artifact released again after the outcome is a new attempt with its own record.
        second, created = _open(store)
        assert created and second["release_id"] == record["release_id"] + "#2" and second["attempt"] == 2
        assert store.list_records(service="payments-api")[0]["release_id"] == second["release_id"]


def test_a_record_refuses_other_facts_unknown_stages_and_outcomes(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = ReleaseRecordStore(ledger)
        record, _created = _open(store, release_id="rel_1%")
        with pytest.raises(ReleaseRecordError, match=r"version=1\.0\.0.*version=2\.0\.0"):
            _open(store, version="2.0.0", release_id="rel_1%")
        with pytest.raises(ReleaseRecordError, match="not a release stage"):
            store.record_stage(ACTOR, "rel_1%", "deploy", {})
        with pytest.raises(ReleaseRecordError, match="not a release outcome"):
            store.record_stage(ACTOR, "rel_1%", "outcome", {"outcome": "fine"})
        with pytest.raises(ReleaseRecordError, match="no record"):
            store.record_stage(ACTOR, "rel_2", "smoke", {})
        # LIKE wildcards in an id do not match other releases' attempts.
        other, created = store.open_release(ACTOR, "x", "production", "1", DIGEST, FACTS, release_id="rel_10")
        assert created and other["attempt"] == 1 and record["attempt"] == 1


def test_the_gate_reads_route_and_signatures_from_the_record_and_refuses_claims() -> None:
    record = {
        "release_id": "r1",
        "stages": {
            "risk": {"route": "cab", "risk": "high", "change_type": "normal"},
            "verification": {"verified": True, "signers": ["k1"], "reasons": []},
        },
    }
    assert classification_from_record(record) == {"route": "cab", "risk": "high", "change_type": "normal"}
    assert signature_shortfall(record, 1) is None
    assert "carries 1 valid signature(s) (k1); the policy requires 2" in str(signature_shortfall(record, 2))
    unverified = {"release_id": "r2", "stages": {"verification": {"verified": False, "reasons": ["no checksum"]}}}
    assert "failed verification: no checksum" in str(signature_shortfall(unverified, 0))
    assert "no verification" in str(signature_shortfall({"release_id": "r3", "stages": {}}, 0))
    with pytest.raises(ReleaseRecordError, match="no risk assessment"):
        classification_from_record({"release_id": "r3", "stages": {}})
    claims = {"route": "automatic", "assessment": {"route": "peer", "risk": "low", "score": 3}, "release_id": "r1"}
    assert caller_claims(claims) == {
        "route": "automatic",
        "assessment": {"route": "peer", "risk": "low", "change_type": None},
    }
    with pytest.raises(ReleaseRecordError, match="not from assessment, route; drop assessment, route"):
        refuse_claims(claims, "production")
    with pytest.raises(ReleaseRecordError, match="needs release_id"):
        refuse_claims({}, "production")
    refuse_claims({"release_id": "r1"}, "production")
    # The requester comes from the run's identity: a caller naming another person is a claim too.
    with pytest.raises(ReleaseRecordError, match="not from requested_by; drop requested_by"):
        refuse_claims({"release_id": "r1", "requested_by": "dev.two"}, "production")


def _keyring(*keys: ed25519.Ed25519PrivateKey) -> Keyring:
    ring = Keyring()
    for key in keys:
        keyid = key_id(key.public_key())
        ring.keys[keyid] = TrustedKey(keyid=keyid, key=key.public_key(), name="permits")
    return ring


def test_a_permit_covers_exactly_its_environment_hosts_digest_and_time() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    now = utc_now()
    record = {
        "release_id": "r1",
        "service": "svc",
        "environment": "production",
        "version": "1.0.0",
        "digest": DIGEST,
        "change_number": "CHG1",
    }
    envelope = sign_permit(build_permit(record, ["web1", "web2"], now, 600, {"decided_at": "t"}), key)
    ring = _keyring(key)
    good = check_permit(json.dumps(envelope), ring, now, "production", host="web1", digest=DIGEST)
    assert good.valid and good.permit["release_id"] == "r1" and good.permit["change"] == "CHG1"

    def reasons(**kw):  # type: ignore[no-untyped-def]
        args = {"envelope": envelope, "keyring": ring, "now": now, "environment": "production", "host": "web1"}
        args.update({"digest": DIGEST, **kw})
        return " | ".join(check_permit(**args).reasons)  # type: ignore[arg-type]

    assert "for environment production, not staging" in reasons(environment="staging")
    assert "does not cover host web3" in reasons(host="web3")
    assert "is for artifact sha256:abababababababab, not sha256:cdcdcdcdcdcdcdcd" in reasons(
        digest="sha256:" + "cd" * 32
    )
    assert "expired at" in reasons(now=now + datetime.timedelta(seconds=601))
    assert "was revoked (stop)" in reasons(is_revoked=lambda permit_id: "stop")
    assert "valid signature(s) from trusted keys, 1 required" in reasons(
        keyring=_keyring(ed25519.Ed25519PrivateKey.generate())
    )
    forged = {**envelope, "payload": envelope["payload"][:-8] + "AAAAAAA="}
    assert reasons(envelope=forged)
    with pytest.raises(PermitError, match="no release permit: production is an enforced environment"):
        check_permit(None, ring, now, "production")
    with pytest.raises(PermitError, match="not a permit envelope"):
        check_permit("{}", ring, now, "production")


def test_permits_are_stored_and_revoked_once(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        store = ReleaseRecordStore(ledger)
        record, _created = _open(store)
        now = "2026-12-01T10:00:00.000000Z"
        store.save_permit(
            {
                "permit_id": "p1",
                "release_id": record["release_id"],
                "environment": "production",
                "digest": DIGEST,
                "not_before": now,
                "not_after": now,
            }
        )
        assert store.get_permit("p1")["revoked_at"] is None  # type: ignore[index]
        assert store.revoke_permit("p1", "bob", "incident") is True
        assert store.revoke_permit("p1", "bob", "incident") is False
        with pytest.raises(ReleaseRecordError, match="permit p2 is not in this ledger"):
            store.revoke_permit("p2", "bob", "x")
