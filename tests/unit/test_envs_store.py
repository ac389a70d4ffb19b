"""The ledger's ephemeral environments (schema V15), on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

ACTOR = Actor(run_id="run-envs", user="tester", host="ctl")


def test_ports_are_lowest_free_and_reused_after_teardown(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        first = ledger.provision_env(ACTOR, "a", (40000, 40002), 600, "eph_a", "/srv/a")
        second = ledger.provision_env(ACTOR, "b", (40000, 40002), 600, None, "/srv/b")
        assert (first["port"], second["port"]) == (40000, 40001)
        assert ledger.active_env("a")["db_name"] == "eph_a"
        ended = ledger.end_env(int(first["id"]), "torn_down")
        assert ended["status"] == "torn_down" and ended["ended_at"]
        third = ledger.provision_env(ACTOR, "c", (40000, 40002), 600, None, "/srv/c")
        assert third["port"] == 40000
        with pytest.raises(LedgerError, match="is not active in the ledger"):
            ledger.end_env(int(first["id"]), "reaped")


def test_an_active_name_cannot_be_provisioned_twice(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.provision_env(ACTOR, "dup", (40100, 40105), 600, None, "/srv/dup")
        with pytest.raises(LedgerError, match="'dup' is already active"):
            ledger.provision_env(ACTOR, "dup", (40100, 40105), 600, None, "/srv/dup")
        assert [row["name"] for row in ledger.list_envs(status="active")] == ["dup"]


def test_expired_environments_are_listed_oldest_first(ledger_url: str) -> None:
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        ledger.provision_env(ACTOR, "live", (40200, 40205), 3600, None, "/srv/live")
        with ledger.backend.transaction(write=True) as cursor:
            for name, expiry, port in (
                ("old", "2020-01-01T00:00:00.000000Z", 40203),
                ("older", "2019-01-01T00:00:00.000000Z", 40204),
            ):
                cursor.execute(
                    "INSERT INTO ephemeral_envs (run_id, name, status, port, slot_dir, created_at, expires_at)"
                    " VALUES (?, ?, 'active', ?, ?, ?, ?)",
                    ("run-envs", name, port, "/srv/" + name, expiry, expiry),
                )
        assert [row["name"] for row in ledger.expired_envs()] == ["older", "old"]


def test_environments_started_at_once_get_distinct_ports(ledger_url: str) -> None:
    url = parse_ledger_url(ledger_url)
    with open_ledger(url):
        pass  # create the schema once, before the racers start

    def provision(index: int) -> int:
        with open_ledger(url) as ledger:
            row = ledger.provision_env(ACTOR, "race-%d" % index, (40300, 40320), 600, None, "/srv/race")
            return int(row["port"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        ports = list(pool.map(provision, range(6)))
    assert sorted(ports) == list(range(40300, 40306))
