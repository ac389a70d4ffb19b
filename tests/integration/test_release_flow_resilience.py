"""The governed release flow under stress (issue 10): `kill -9` of ansible-playbook mid-switch then a rerun,
and the whole flow on the PostgreSQL ledger with the ServiceNow stand-in, with canary values in every
credential the flow reads, none of which may show up in the output, the audit trail, its spool or the ledger.

Two independent scenarios, each on its own demo site and in its own xdist group (the tests of one
scenario build on each other and run in order in one worker; `--dist loadgroup` in the Makefile), so
the two can run side by side.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.sql
import pytest
from fixtures.demo_site import Site, SiteWatcher, kill_at_switch, running_demo_site, wait_for
from fixtures.postgres import PostgresServer, password_database
from fixtures.routers import free_port
from servicenow.server import ServiceNowStandIn

KILL_GROUP = pytest.mark.xdist_group("release_flow_kill")
PG_GROUP = pytest.mark.xdist_group("release_flow_pg_servicenow")


# kill -9 mid-switch, then a rerun


@pytest.fixture(scope="module")
def kill_site(collections_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_demo_site(collections_path, str(tmp_path_factory.mktemp("release-kill"))) as site:
        yield site


@KILL_GROUP
def test_kill_9_mid_switch_then_a_rerun_converges_and_the_site_serves_throughout(kill_site: Site) -> None:
    site = kill_site
    first = site.release("1.0.0")
    assert first.returncode == 0, first.report
    with SiteWatcher(site.url) as watcher:
        kill_at_switch(site, "1.1.0", os.path.join(site.demo, "nginx", "upstream.conf"))
        with site.ledger() as ledger:
            killed = [run for run in ledger.list_runs(limit=10) if run["status"] == "running"]
            assert len(killed) == 1, "the killed run is left running, not successful: %r" % killed
            killed_id = killed[0]["run_id"]
            lock = ledger.get_lock("demo-app")
            assert lock is not None and lock.owner_run_id == killed_id, "the dead run still holds the lock"
            in_flight = ledger.list_deployments("demo-app", "local")[0]
            assert (in_flight["version"], in_flight["status"]) == ("1.1.0", "in_progress"), in_flight
        status, body = site.get("/")
        assert status == 200 and body["version"] in ("1.0.0", "1.1.0"), "one of the two versions serves"
        rerun = site.release("1.1.0")
        assert rerun.returncode == 0, rerun.report
        assert "no longer running" in rerun.output, "the rerun says it took the dead run's lock over"
        # A last look after the rerun, for the watcher to see the final state too.
        wait_for(lambda: "1.1.0" in watcher.versions, 60, "the watcher to see 1.1.0", 0.1)
    assert watcher.failures == [], "the site must answer 200 throughout: %s" % watcher.failures[:20]
    assert watcher.requests > 50, "the watcher kept asking from before the kill until after the rerun"
    assert site.get("/api/items")[0] == 200 and site.get("/")[1]["version"] == "1.1.0"
    assert site.schema_version() == "2"
    with site.ledger() as ledger:
        assert ledger.get_lock("demo-app") is None, "the rerun released the lock it took over"
        takeover = [event for event in ledger.lock_events("demo-app") if event["event"] == "taken_over"]
        assert takeover and takeover[0]["previous_run_id"] == killed_id
        dead = ledger.get_run(killed_id)
        assert dead is not None and dead["status"] == "aborted"
        last = ledger.list_runs(limit=1)[0]
        assert last["status"] == "successful"
        change = ledger.itsm_get_change(number=last["summary"]["change"])
        fields = {**(change.get("fields") or {}), **change}
        assert fields["state"] == "closed" and fields["close_code"] == "successful"
        deployments = ledger.list_deployments("demo-app", "local")
        assert deployments[0]["version"] == "1.1.0" and deployments[0]["status"] == "successful"
        assert not [d for d in deployments if d["status"] == "in_progress"], "the killed run's record is settled"


# PostgreSQL ledger + ServiceNow stand-in, with canary secrets


class CanarySite:
    """A demo site on a password-protected PostgreSQL ledger and the ServiceNow stand-in, every credential a canary."""

    def __init__(self, site: Site, standin: ServiceNowStandIn, canaries: dict[str, str], audit_dir: str) -> None:
        self.site = site
        self.standin = standin
        self.canaries = canaries
        self.audit_dir = audit_dir
        # What each release printed (stdout and stderr), for the final canary scan.
        self.outputs: dict[str, str] = {}

    def change(self, number: str) -> dict[str, Any]:
        found = self.standin.records("change_request", "number=%s" % number)
        assert len(found) == 1, "change %s in the stand-in: %r" % (number, found)
        return found[0]


def canary(name: str) -> str:
    return "canary-%s-%s" % (name, secrets.token_hex(12))


@pytest.fixture(scope="module")
def canary_site(
    collections_path: str, tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[CanarySite]:
    canaries = {name: canary(name) for name in ("sn-password", "sn-client-secret", "ledger-password", "audit-hmac-key")}
    workdir = str(tmp_path_factory.mktemp("release-pg-sn"))
    audit_dir = os.path.join(workdir, "audit")
    standin = ServiceNowStandIn().start()
    # The stand-in's integration user and OAuth client take the canaries as their credentials, so a
    # release succeeds only if the flow really sends them (OAuth password grant: both travel).
    standin.instance.users["admin"] = canaries["sn-password"]
    standin.instance.oauth_clients["relops"] = canaries["sn-client-secret"]
    env = {
        "SN_HOST": standin.url,
        "SN_USERNAME": "admin",
        "SN_PASSWORD": canaries["sn-password"],
        "SN_CLIENT_ID": "relops",
        "SN_CLIENT_SECRET": canaries["sn-client-secret"],
        "ANSIBLE_CALLBACKS_ENABLED": "relops.release.audit",
        "RELOPS_AUDIT_PATH": os.path.join(audit_dir, "audit.jsonl"),
        "RELOPS_AUDIT_HMAC_KEY": canaries["audit-hmac-key"],
        # A syslog sink that is down, so lines wait in the spool (<trail>.spool) and the spool is scanned too.
        "RELOPS_AUDIT_SYSLOG_URL": "tcp://127.0.0.1:%d" % free_port(),
    }
    try:
        with (
            password_database(postgres_server, canaries["ledger-password"]) as database,
            running_demo_site(collections_path, workdir, env, database.url) as site,
        ):
            yield CanarySite(site, standin, canaries, audit_dir)
    finally:
        standin.stop()


@PG_GROUP
def test_on_postgresql_and_servicenow_a_release_succeeds(canary_site: CanarySite) -> None:
    world, site = canary_site, canary_site.site
    run = site.release("1.0.0", "-vvv")
    world.outputs["1.0.0"] = run.output
    assert run.returncode == 0, run.output[-20000:]
    assert site.get("/")[1]["version"] == "1.0.0" and site.schema_version() == "1"
    with site.ledger() as ledger:
        assert ledger.backend.dialect == "postgresql"
        last = ledger.list_runs(limit=1)[0]
        assert last["status"] == "successful"
        number = last["summary"]["change"]
        deployments = ledger.list_deployments("demo-app", "local")
        assert [(d["version"], d["status"], d["change_id"]) for d in deployments] == [("1.0.0", "successful", number)]
        assert ledger.get_lock("demo-app") is None
    change = world.change(number)
    assert change["state"] == "3" and change["close_code"] == "successful", change
    assert change["correlation_id"] == "relops-demo-app-local-1.0.0"
    assert world.standin.instance.oauth_grants and set(world.standin.instance.oauth_grants) <= {
        "password",
        "refresh_token",
    }, "the flow authenticated with the canary OAuth client and password"


@PG_GROUP
def test_on_postgresql_and_servicenow_a_failed_smoke_test_rolls_back_and_opens_an_incident(
    canary_site: CanarySite,
) -> None:
    world, site = canary_site, canary_site.site
    run = site.release("1.2.0", "-vvv")
    world.outputs["1.2.0"] = run.output
    assert run.returncode != 0
    assert "items API answers" in run.output
    assert site.get("/")[1]["version"] == "1.0.0" and site.schema_version() == "1"
    with site.ledger() as ledger:
        last = ledger.list_runs(limit=1)[0]
        assert last["status"] == "failed" and last["summary"]["failed_stage"] == "smoke"
        number = last["summary"]["change"]
        statuses = [(d["version"], d["status"]) for d in ledger.list_deployments("demo-app", "local")]
        assert ("1.2.0", "rolled_back") in statuses and statuses[0] == ("1.0.0", "successful")
        assert ledger.get_lock("demo-app") is None
    change = world.change(number)
    assert change["state"] == "3" and change["close_code"] == "unsuccessful", change
    assert "smoke" in change["close_notes"] and "rolled back to 1.0.0" in change["close_notes"], change
    # The flow opens its incident in the ITSM it uses (issue 18): ServiceNow's incident table, caused by the
    # change and resolved once the rollback restored service; the ledger keeps the copy the metrics count.
    with site.ledger() as ledger:
        incidents = ledger.list_incidents(service="demo-app")
    assert len(incidents) == 1 and incidents[0]["details"]["change"] == number, incidents
    assert incidents[0]["details"]["version"] == "1.2.0" and incidents[0]["caused_by"] == number
    (opened,) = world.standin.records("incident", "caused_by=%s" % change["sys_id"])
    assert (incidents[0]["source"], incidents[0]["external_id"]) == ("servicenow", opened["number"])
    assert (opened["state"], incidents[0]["status"]) == ("6", "resolved"), opened


def ledger_dump(site: Site) -> str:
    """Every row of every table of the ledger's schema, every column, as text."""
    rows: list[str] = []
    with psycopg.connect(site.ledger_url) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        assert len(tables) > 10, tables
        for schema, table in tables:
            for row in connection.execute(
                psycopg.sql.SQL("SELECT * FROM {}.{}").format(
                    psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
                )
            ):
                rows.append("%s.%s %r" % (schema, table, row))
    return "\n".join(rows)


def files_under(path: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                found[os.path.join(root, name)] = handle.read()
    return found


@PG_GROUP
def test_no_canary_secret_shows_up_in_output_audit_trail_spool_or_ledger(canary_site: CanarySite) -> None:
    world = canary_site
    assert set(world.outputs) == {"1.0.0", "1.2.0"}, "the two releases above ran"
    audit = files_under(world.audit_dir)
    assert any(path.endswith("audit.jsonl") for path in audit), sorted(audit)
    assert any(".spool" in path for path in audit), "the down syslog sink left lines in the spool: %s" % sorted(audit)
    places = {
        **{"ansible-playbook -vvv output of %s" % version: output for version, output in world.outputs.items()},
        **{path: content.decode("utf-8", "replace") for path, content in audit.items()},
        "ledger (every table, every column)": ledger_dump(world.site),
    }
    leaks = [
        "%s in %s" % (name, place)
        for name, value in world.canaries.items()
        for place, text in places.items()
        if value in text
    ]
    assert leaks == []
