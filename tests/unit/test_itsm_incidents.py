"""A failed release's incident in the ITSM it uses (plugin_utils/itsm/incidents.py): opened once, linked to
the change, the CI and the release record, resolved when service is restored, with the ledger row the
metrics count; on the local ITSM (SQLite, PostgreSQL) and on the ServiceNow stand-in (Table API)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.plugin_utils.itsm import incidents
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import ServiceNowBackend
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    Ledger,
    LedgerError,
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "unit-incidents"})
RELEASE = "payments@1.2.0/staging/0123456789ab"
DETECTED, RESTORED = "2026-03-02T12:00:00.000000Z", "2026-03-02T12:03:30.500000Z"


@dataclass
class World:
    backend: ItsmBackend
    ledger: Ledger
    standin: ServiceNowStandIn | None
    change: str


@pytest.fixture(params=["local-sqlite", pytest.param("local-postgresql", marks=pytest.mark.postgres), "servicenow"])
def world(request: pytest.FixtureRequest, tmp_path: "os.PathLike[str]") -> Iterator[World]:
    url = "sqlite:///" + os.path.join(str(tmp_path), "ledger.db").lstrip("/")
    if request.param == "local-postgresql":
        url = str(request.getfixturevalue("postgres_database"))
    with open_ledger(parse_ledger_url(url)) as ledger:
        if request.param.startswith("local"):
            backend: ItsmBackend = LocalBackend(ledger, ACTOR)
            yield World(backend, ledger, None, _change(backend))
            return
        standin = ServiceNowStandIn().start()
        standin.instance.change_api = False
        try:
            config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
            backend = ServiceNowBackend(ServiceNowClient(config))
            # The release's cmdb task made the service CI; the incident names it.
            backend.upsert_ci("cmdb_ci_appl", ["name"], {"name": "payments (staging)"}, check_mode=False)
            yield World(backend, ledger, standin, _change(backend))
        finally:
            standin.stop()


def _change(backend: ItsmBackend) -> str:
    change, _created = backend.ensure_change("normal", {"correlation_id": RELEASE, "short_description": "x"}, None)
    return str(change["number"])


def _incident(world: World, **overrides: Any) -> dict[str, Any]:
    return {
        "service": "payments",
        "environment": "staging",
        "ci": "payments (staging)",
        "title": "Release 1.2.0 failed at smoke: items API answers",
        "severity": "high",
        "source": "relops",
        "external_id": None,
        "opened_at": DETECTED,
        "resolved_at": None,
        "details": {"release_id": RELEASE, "failed_task": "items API answers"},
        "correlation_id": "relops-release-" + RELEASE,
        "caused_by": world.change,
        "version": "1.2.0",
        **overrides,
    }


def test_a_failed_release_opens_its_incident_once_in_the_itsm_linked_to_change_ci_and_record(world: World) -> None:
    opened = incidents.open_incident(world.backend, world.ledger, ACTOR, _incident(world))
    assert opened.changed and opened.warnings == []
    itsm = opened.itsm
    assert itsm is not None and itsm["number"].startswith("INC") and itsm["state"] == "new"
    assert (itsm["cmdb_ci"], itsm["caused_by"], itsm["correlation_id"]) == (
        "payments (staging)",
        world.change,
        "relops-release-" + RELEASE,
    )
    assert itsm["severity"] == "high" and itsm["resolved_at"] == ""
    row = opened.row
    assert (row["service"], row["environment"], row["ci"], row["version"]) == (
        "payments",
        "staging",
        "payments (staging)",
        "1.2.0",
    )
    assert (row["opened_at"], row["status"], row["caused_by"]) == (DETECTED, "open", world.change)
    if world.standin is not None:
        (stored,) = world.standin.records("incident")
        assert stored["number"] == itsm["number"] and RELEASE in stored["description"]
        # The ledger copy is what `incident state=imported` would have added: it is not imported twice.
        assert (row["source"], row["external_id"]) == ("servicenow", itsm["number"])
        assert row["details"]["itsm_incident"] == {
            "backend": "servicenow",
            "number": itsm["number"],
            "sys_id": itsm["sys_id"],
        }
    else:
        assert incidents.itsm_number(world.backend, row) == itsm["number"]
        assert (row["source"], row["external_id"]) == ("relops", "relops-release-" + RELEASE)

    again = incidents.open_incident(world.backend, world.ledger, ACTOR, _incident(world, title="a rerun"))
    assert not again.changed and again.row["id"] == row["id"]
    assert again.itsm is not None and again.itsm["number"] == itsm["number"]
    assert len(world.ledger.find_incidents(service="payments")) == 1
    assert [i["number"] for i in world.backend.list_incidents({"caused_by": world.change}, None, 10)] == [
        itsm["number"]
    ]


def test_the_incident_is_resolved_in_the_itsm_when_service_is_restored(world: World) -> None:
    opened = incidents.open_incident(world.backend, world.ledger, ACTOR, _incident(world))
    resolution = {"close_code": "Workaround provided", "close_notes": "Application: rolled back to 1.1.0."}
    with pytest.raises(LedgerError, match="needs close_code and close_notes"):
        incidents.resolve_incident(world.backend, world.ledger, opened.row, RESTORED, {"close_code": "x"})

    resolved = incidents.resolve_incident(world.backend, world.ledger, opened.row, RESTORED, resolution)
    assert resolved.changed and resolved.warnings == []
    assert (resolved.row["status"], resolved.row["resolved_at"]) == ("resolved", RESTORED)
    assert resolved.row["details"]["close_code"] == "Workaround provided"
    itsm = resolved.itsm
    assert itsm is not None and itsm["state"] == "resolved" and itsm["resolved_at"].endswith("Z")
    assert (itsm["close_code"], itsm["close_notes"]) == ("Workaround provided", "Application: rolled back to 1.1.0.")
    if world.standin is not None:
        (stored,) = world.standin.records("incident")
        assert stored["state"] == "6" and stored["resolved_by"], "the instance stamps who resolved it"

    again = incidents.resolve_incident(world.backend, world.ledger, resolved.row, "2026-03-02T13:00:00Z", resolution)
    assert not again.changed and again.row["resolved_at"] == RESTORED
    assert again.itsm is not None and again.itsm["state"] == "resolved"


def test_ensure_incident_resolved_names_an_unknown_number(world: World) -> None:
    with pytest.raises(ITSMError, match=r"incident INC0999999 does not exist on the (local|servicenow) backend"):
        world.backend.ensure_incident_resolved("INC0999999", "Workaround provided", "rolled back", RESTORED)
    with pytest.raises(ITSMError, match="needs close_code and close_notes"):
        world.backend.ensure_incident_resolved("INC0999999", "", "rolled back", RESTORED)


def test_an_instance_that_refuses_leaves_the_incident_in_the_ledger_with_a_warning(tmp_path: Any) -> None:
    """A CI the instance does not hold (or an instance that is down) must not stop the recovery."""
    standin = ServiceNowStandIn().start()
    standin.instance.change_api = False
    url = "sqlite:///" + os.path.join(str(tmp_path), "ledger.db").lstrip("/")
    try:
        config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
        backend = ServiceNowBackend(ServiceNowClient(config))
        with open_ledger(parse_ledger_url(url)) as ledger:
            world = World(backend, ledger, standin, _change(backend))
            opened = incidents.open_incident(backend, ledger, ACTOR, _incident(world, ci="no-such-ci"))
            assert opened.itsm is None and opened.changed
            assert "could not be opened" in opened.warnings[0] and "no-such-ci" in opened.warnings[0]
            assert "no-such-ci" in opened.row["details"]["itsm_error"] and standin.records("incident") == []
            assert (opened.row["source"], opened.row["external_id"]) == ("relops", "relops-release-" + RELEASE)

            again = incidents.open_incident(backend, ledger, ACTOR, _incident(world))
            assert not again.changed and again.itsm is None and "in the ledger only" in again.warnings[0]

            resolution = {"close_code": "Workaround provided", "close_notes": "rolled back"}
            resolved = incidents.resolve_incident(backend, ledger, opened.row, RESTORED, resolution)
            assert resolved.changed and resolved.row["resolved_at"] == RESTORED
            assert "in the ledger only" in resolved.warnings[0]
    finally:
        standin.stop()
