"""The governance ledger tables (schema V7) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "governance"})


def _exemption(name: str, days: float, **scope: str) -> dict:
    return {
        "name": name,
        "rule": "blackout",
        "approver": "head.of.ops",
        "reason": "hotfix",
        "requested_by": "dev.one",
        "expires_at": format_timestamp(utc_now() + datetime.timedelta(days=days)),
        **scope,
    }


def test_exemptions_scope_expiry_revocation_and_uses(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        active, created = ledger.create_exemption(ACTOR, _exemption("svc", 1, service="payments-api"))
        assert created is True and active["service"] == "payments-api"
        again, created = ledger.create_exemption(ACTOR, _exemption("svc", 5, service="payments-api"))
        assert created is False and again["expires_at"] == active["expires_at"]
        ledger.create_exemption(ACTOR, _exemption("team", 1, team="payments"))
        ledger.create_exemption(ACTOR, _exemption("old", -1, service="payments-api"))
        ledger.create_exemption(ACTOR, _exemption("other", 1, service="orders-api"))
        in_scope = ledger.list_exemptions(rule="blackout", service="payments-api", team="payments")
        assert sorted(row["name"] for row in in_scope) == ["old", "svc", "team"]
        current = ledger.list_exemptions(rule="blackout", service="payments-api", include_inactive=False)
        assert [row["name"] for row in current] == ["svc"]
        ledger.record_exemption_use(ACTOR, int(active["id"]), "change_gate", "CHG0001")
        assert [use["subject"] for use in ledger.exemption_uses(int(active["id"]))] == ["CHG0001"]
        revoked = ledger.revoke_exemption(ACTOR, "svc", "dev.two", "done")
        assert revoked is not None and revoked["revoked_by"] == "dev.two"
        assert ledger.revoke_exemption(ACTOR, "svc", "dev.two", "done") is None
        assert ledger.list_exemptions(service="payments-api", include_inactive=False) == []


def test_an_exemption_without_scope_is_refused_by_the_database(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger, pytest.raises(LedgerError):
        ledger.create_exemption(ACTOR, _exemption("nowhere", 1))


def test_deployment_reads_for_risk_and_readiness(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        for status in ("successful", "failed", "rolled_back", "successful", "in_progress"):
            ledger.record_deployment(ACTOR, "payments-api", "2.0.0", "production", status)
        ledger.record_deployment(ACTOR, "payments-api", "2.0.0", "staging", "rolled_back")
        outcomes = ledger.finished_deployment_outcomes("payments-api", "production", 10)
        assert sorted(outcomes) == ["failed", "rolled_back", "successful", "successful"]
        assert len(ledger.finished_deployment_outcomes("payments-api", "production", 2)) == 2
        assert [row["environment"] for row in ledger.rollback_rehearsals("payments-api", "2.0.0", ["staging"])] == [
            "staging"
        ]
        assert ledger.rollback_rehearsals("payments-api", "2.0.1", ["staging"]) == []
        assert ledger.deployed_versions("payments-api", "production") == ["2.0.0"]
        assert ledger.last_incident_at("payments-api") is None
        ledger.breach_stabilization(ACTOR, None, "payments-api", "production", "errors up")
        assert ledger.last_incident_at("payments-api") is not None
