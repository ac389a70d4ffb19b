"""The governed release flow (playbooks/release.yml) on the lab fleet: three hosts, each a network namespace
with its own sshd, reached over real SSH, behind nginx on the controller; the ledger on PostgreSQL and the
ITSM on the ServiceNow stand-in (issue 10: "the whole flow ... on the lab").

The tests share one lab and run in file order: 1.0.0 released to every host; a gate denial and a failed
migration that leave it serving; 1.1.0 killed with kill -9 mid-switch then rerun, under a request watcher;
1.2.0 failing its smoke tests and rolled back on every host.
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fixtures.demo_site import Site, SiteWatcher, kill_at_switch, running_demo_site, wait_for
from fixtures.lab import lab_backends, lab_harness, lab_release_args
from fixtures.playbooks import PlaybookRun
from fixtures.postgres import PostgresServer
from fixtures.routers import Router, start_nginx
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import (
    build_permit,
    load_permit_key,
    sign_permit,
)

pytestmark = pytest.mark.xdist_group("release_lab")

HOSTS = 3
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class LabSite:
    """The demo releases (built on the controller) going to a lab behind ``router``."""

    site: Site
    lab: lab_harness.Lab
    router: Router
    standin: ServiceNowStandIn
    args: list[str]

    def release(self, version: str, *extra: str, package: str = "") -> PlaybookRun:
        return self.site.release(version, *self.args, *extra, package=package)

    def versions_by_host(self) -> dict[str, str]:
        """The version each host's live slot answers with, asked directly (not through the router):
        the live slot is the server nginx's upstream does not mark down."""
        with open(str(self.router.nginx_upstream_file), encoding="utf-8") as handle:
            live = [line.split()[1] for line in handle if line.strip().startswith("server ") and " down" not in line]
        versions: dict[str, str] = {}
        for host in self.lab.hosts:
            addresses = [address for address in live if address.startswith(host.address + ":")]
            assert len(addresses) == 1, "one live slot on %s: %s" % (host.name, live)
            with urllib.request.urlopen("http://%s/" % addresses[0], timeout=10) as response:
                versions[host.name] = str(json.load(response)["version"])
        return versions

    def change(self, number: str) -> dict[str, Any]:
        found = self.standin.records("change_request", "number=%s" % number)
        assert len(found) == 1, "change %s in the stand-in: %r" % (number, found)
        return found[0]

    def incident_of(self, change: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """The failed release's incident in ServiceNow (the ITSM of this lab), checked against its ledger copy
        and its release record: linked to the change, the service CI and the record; resolved at restore."""
        found = self.standin.records("incident", "caused_by=%s" % change["sys_id"])
        assert len(found) == 1, "one incident caused by %s in the stand-in: %r" % (change["number"], found)
        incident = found[0]
        (ci,) = self.standin.records("cmdb_ci_appl", "sys_id=%s" % incident["cmdb_ci"])
        assert ci["name"] == "demo-app (local)", "the CI the release's cmdb task registered (per environment)"
        assert incident["correlation_id"] == "relops-release-" + summary["release_id"]
        assert summary["release_id"] in incident["description"]
        assert (incident["state"], incident["close_code"]) == ("6", "Workaround provided"), incident
        assert incident["close_notes"].startswith("Service restored.") and incident["resolved_at"]
        with self.site.ledger() as ledger:
            copies = ledger.find_incidents(correlation_id=incident["correlation_id"])
            record = ReleaseRecordStore(ledger).get_record(summary["release_id"])
        assert [(c["source"], c["external_id"], c["status"]) for c in copies] == [
            ("servicenow", incident["number"], "resolved")
        ]
        assert record is not None
        stage, rollback = record["stages"]["incident"], record["stages"]["rollback"]
        assert (stage["itsm"], stage["number"], stage["sys_id"]) == (
            "servicenow",
            incident["number"],
            incident["sys_id"],
        )
        assert (copies[0]["opened_at"], copies[0]["resolved_at"]) == (rollback["detected_at"], rollback["restored_at"])
        return incident

    def last_run(self) -> dict[str, Any]:
        with self.site.ledger() as ledger:
            run: dict[str, Any] = ledger.list_runs(limit=1)[0]
        return run

    def deployments(self) -> list[tuple[str, str]]:
        with self.site.ledger() as ledger:
            return [(d["version"], d["status"]) for d in ledger.list_deployments("demo-app", "local")]


@pytest.fixture(scope="module")
def lab_site(
    collections_path: str, tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[LabSite]:
    workdir = str(tmp_path_factory.mktemp("release-lab"))
    database = "relops_lab_%d" % os.getpid()
    with postgres_server.admin() as admin:
        admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % database)
        admin.execute("CREATE DATABASE %s" % database)
    standin = ServiceNowStandIn().start()
    env = {"SN_HOST": standin.url, "SN_USERNAME": "admin", "SN_PASSWORD": "admin-secret"}
    lab = None
    router = None
    try:
        with running_demo_site(collections_path, workdir, env, postgres_server.url(database)) as site:
            lab = lab_harness.up(HOSTS, os.path.join(workdir, "lab"))
            router = start_nginx(os.path.join(site.state, "lab-nginx"), "demo_app", lab_backends(lab))
            args = lab_release_args(lab, router, site.demo, site.state)
            # The site's own URL is the lab's router, so the watcher and site.get() go through it.
            site.url = router.url
            yield LabSite(site, lab, router, standin, args)
    finally:
        if router is not None:
            router.stop()
        if lab is not None:
            lab_harness.down(lab)
        standin.stop()
        with postgres_server.admin() as admin:
            admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % database)


def test_on_the_lab_a_release_reaches_every_host(lab_site: LabSite) -> None:
    world, site = lab_site, lab_site.site
    run = world.release("1.0.0")
    assert run.returncode == 0, run.report
    # Every task that touches a host ran on the three lab hosts, over SSH.
    for host in world.lab.hosts:
        assert "[%s]" % host.name in run.output, host.name
    assert world.versions_by_host() == {host.name: "1.0.0" for host in world.lab.hosts}
    assert site.get("/api/items")[0] == 200 and site.schema_version() == "1"
    last = world.last_run()
    assert last["status"] == "successful"
    number = last["summary"]["change"]
    change = world.change(number)
    assert change["state"] == "3" and change["close_code"] == "successful", change
    with site.ledger() as ledger:
        assert ledger.backend.dialect == "postgresql"
        deployments = ledger.list_deployments("demo-app", "local")
        assert [(d["version"], d["status"], d["change_id"]) for d in deployments] == [("1.0.0", "successful", number)]
        assert ledger.get_lock("demo-app") is None
    servers = {record["name"] for record in world.standin.records("cmdb_ci_server", "")}
    assert servers >= {host.name for host in world.lab.hosts}, "every lab host is a CI in the CMDB: %s" % servers
    # On ServiceNow too the service has its CI in the environment, at the version, running on the lab hosts.
    apps = world.standin.records("cmdb_ci_appl", "")
    assert [(a["name"], a["environment"], a["version"]) for a in apps] == [("demo-app (local)", "local", "1.0.0")], apps
    children = {r["child"] for r in world.standin.records("cmdb_rel_ci", "parent=%s" % apps[0]["sys_id"])}
    runs_on = {r["name"] for r in world.standin.records("cmdb_ci_server", "") if r["sys_id"] in children}
    assert {host.name for host in world.lab.hosts} <= runs_on <= servers, runs_on


BYPASS_PLAY = """
- name: Try to change the lab hosts without going through the gate
  hosts: lab
  gather_facts: false
  vars:
    # The hosts' environment and policy, as a production inventory declares them next to its hosts.
    relops_environment: local
    relops_policy: "{policy}"
  tasks:
    - name: Deploy 1.1.0 with the blue_green role directly
      block:
        - name: Run blue_green without a permit
          ansible.builtin.include_role:
            name: relops.release.blue_green
          vars:
            blue_green_artifact: "{package}"
            blue_green_checksum: "{digest}"
            blue_green_environment: local
            blue_green_service: demo-app
      rescue:
        - name: Keep why it stopped
          ansible.builtin.set_fact:
            # A run_once task's failure stops every host; only the host it ran for has its result.
            bypass_blue_green: "{{{{ (ansible_failed_result | default({{}})).msg | default('stopped') }}}}"
    - name: Switch the router directly
      relops.release.traffic_router:
        router: nginx
        name: "{router_name}"
        nginx_upstream_file: "{upstream}"
        nginx_conf: "{nginx_conf}"
        servers: [{{name: "{{{{ inventory_hostname }}}}-green", address: "{{{{ ansible_host }}}}:8002"}}]
      delegate_to: localhost
      register: bypass_router
      ignore_errors: true
    - name: Migrate the schema directly
      relops.release.db_migrate:
        db_url: "sqlite:///{database}"
        migrations_dir: "{migrations}"
      delegate_to: localhost
      run_once: true
      register: bypass_migrate
      ignore_errors: true
    - name: Install 1.1.0 under a permit for 1.0.0's digest (a valid permit for another package)
      relops.release.slot_install:
        src: "{package}"
        checksum: "{digest}"
        dest: "{{{{ relops_lab_root }}}}/bypass-slot"
        permit: {wrong_digest}
      register: bypass_other_package
      ignore_errors: true
    - name: Install 1.1.0 under an expired permit for it
      relops.release.slot_install:
        src: "{package}"
        dest: "{{{{ relops_lab_root }}}}/bypass-slot"
        permit: {expired}
      register: bypass_expired
      ignore_errors: true
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{{{ {{'blue_green': bypass_blue_green | default('ran'), 'router': bypass_router,
                     'migrate': bypass_migrate, 'other_package': bypass_other_package,
                     'expired': bypass_expired}} | to_json }}}}"
        dest: "{{{{ relops_lab_root }}}}/bypass.json"
        mode: "0600"
      delegate_to: localhost
"""


def _permit(site: Site, hosts: list[str], digest: str, age: float, lifetime: int) -> str:
    """A permit signed with the demo's trusted permit key, as change_gate would sign it."""
    record = {"release_id": "bypass", "service": "demo-app", "environment": "local", "version": "1.1.0"}
    key = load_permit_key(os.path.join(site.demo, "keys", "demo-permits.pem"))
    issued = utc_now() - datetime.timedelta(seconds=age)
    statement = build_permit(dict(record, digest=digest), hosts, issued, lifetime, {})
    return json.dumps(json.dumps(sign_permit(statement, key)))


def test_on_the_lab_nothing_changes_a_host_without_a_permit(lab_site: LabSite) -> None:
    """blue_green, traffic_router and db_migrate run directly against the enforced lab hosts are refused on
    every host, changing nothing; a valid permit for another package, or an expired one, is refused too."""
    world, site = lab_site, lab_site.site
    with open(os.path.join(site.demo, "artifacts", "releases.json"), encoding="utf-8") as handle:
        releases = json.load(handle)
    package, digest = releases["1.1.0"]
    names = [host.name for host in world.lab.hosts]
    with open(str(world.router.nginx_upstream_file), "rb") as handle:
        upstream_before = handle.read()
    versions_before, schema_before = world.versions_by_host(), site.schema_version()
    play = BYPASS_PLAY.format(
        package=package,
        digest=digest,
        policy=os.path.join(REPO, "examples", "policies", "local.yml"),
        router_name=world.router.name,
        upstream=world.router.nginx_upstream_file,
        nginx_conf=world.router.nginx_conf,
        database=os.path.join(site.demo, "data", "demo-app.db"),
        migrations=os.path.join(site.demo, "build", "1.1.0", "migrations"),
        wrong_digest=_permit(site, names, releases["1.0.0"][1], 0, 600),
        expired=_permit(site, names, digest, 1200, 600),
    )
    run = site.ansible.playbook(site.ansible.write_playbook(play, "bypass.yml"), *world.args, env=site.env)
    assert run.returncode == 0, run.report
    for host in world.lab.hosts:
        with open(os.path.join(host.root, "bypass.json"), encoding="utf-8") as handle:
            tried = json.load(handle)
        refused = "no release permit: local is an enforced environment" if host.name == names[0] else "stopped"
        assert refused in tried["blue_green"], tried["blue_green"]
        assert tried["router"]["failed"] and "traffic_router on %s refused" % host.name in tried["router"]["msg"]
        assert "is for artifact sha256:%s" % releases["1.0.0"][1].split(":")[1][:16] in tried["other_package"]["msg"]
        assert "nor was that artifact ever released" in tried["other_package"]["msg"]
        assert "expired at" in tried["expired"]["msg"], tried["expired"]
        assert not os.path.exists(os.path.join(host.root, "bypass-slot")), "no slot was written on %s" % host.name
    with open(os.path.join(world.lab.hosts[0].root, "bypass.json"), encoding="utf-8") as handle:
        migrate = json.load(handle)["migrate"]
    assert migrate["failed"] and "no release permit" in migrate["msg"], migrate
    with open(str(world.router.nginx_upstream_file), "rb") as handle:
        assert handle.read() == upstream_before, "the router's upstream file is byte-identical"
    assert world.versions_by_host() == versions_before and site.schema_version() == schema_before


def test_on_the_lab_a_gate_denial_deploys_nothing(lab_site: LabSite) -> None:
    world, site = lab_site, lab_site.site
    calendar = site.write_freeze("lab freeze")
    run = world.release("1.1.0", "-e", json.dumps({"release_calendars": [{"type": "yaml", "path": calendar}]}))
    assert run.returncode != 0 and "lab freeze" in run.output, run.report
    summary = world.last_run()["summary"]
    assert summary["failed_task"] == "Gate the release" and summary["application"] == "not needed"
    assert world.change(summary["change"])["state"] == "-1", "the change stays in implement, untouched"
    assert world.versions_by_host() == {host.name: "1.0.0" for host in world.lab.hosts}
    assert world.deployments() == [("1.0.0", "successful")]
    # The operator withdraws the blocked change, in ServiceNow; the next release opens its own.
    site.cancel_change(summary["change"], "withdrawn during the lab freeze")
    assert world.change(summary["change"])["state"] == "4"


def test_on_the_lab_a_failed_migration_keeps_every_host_on_the_previous_release(lab_site: LabSite) -> None:
    world, site = lab_site, lab_site.site

    package = site.build_broken_migration_variant()
    run = world.release("1.1.1", package=package)
    assert run.returncode != 0 and "no_such_table" in run.output, run.report
    summary = world.last_run()["summary"]
    assert summary["failed_stage"] == "migrate expand" and summary["schema"] == "schema 2 -> 1"
    assert site.schema_version() == "1"
    assert world.versions_by_host() == {host.name: "1.0.0" for host in world.lab.hosts}
    change = world.change(summary["change"])
    assert change["state"] == "3" and change["close_code"] == "unsuccessful", change
    assert "1.1.1" not in [version for version, _status in world.deployments()]
    incident = world.incident_of(change, summary)
    assert "Schema: schema 2 -> 1." in incident["close_notes"], incident["close_notes"]


def test_on_the_lab_kill_9_mid_switch_then_a_rerun_converges_with_no_failed_request(lab_site: LabSite) -> None:
    world, site = lab_site, lab_site.site
    with SiteWatcher(site.url) as watcher:
        kill_at_switch(site, "1.1.0", str(world.router.nginx_upstream_file), *world.args)
        status, body = site.get("/")
        assert status == 200 and body["version"] in ("1.0.0", "1.1.0"), "one of the two versions serves"
        rerun = world.release("1.1.0")
        assert rerun.returncode == 0, rerun.report
        assert "no longer running" in rerun.output, "the rerun says it took the dead run's lock over"
        wait_for(lambda: "1.1.0" in watcher.versions, 60, "the watcher to see 1.1.0", 0.1)
    assert watcher.failures == [], "the site must answer 200 throughout: %s" % watcher.failures[:20]
    assert watcher.requests > 50
    assert world.versions_by_host() == {host.name: "1.1.0" for host in world.lab.hosts}
    assert site.schema_version() == "2"
    with site.ledger() as ledger:
        assert ledger.get_lock("demo-app") is None
        runs = ledger.list_runs(limit=2)
        assert [run["status"] for run in runs] == ["successful", "aborted"], "the killed run is marked aborted"
    assert world.deployments()[0] == ("1.1.0", "successful")
    assert "in_progress" not in [status for _version, status in world.deployments()]


def test_on_the_lab_a_failed_smoke_test_rolls_every_host_back(lab_site: LabSite) -> None:
    world, site = lab_site, lab_site.site
    run = world.release("1.2.0")
    assert run.returncode != 0 and "items API answers" in run.output, run.report
    summary = world.last_run()["summary"]
    assert summary["failed_stage"] == "smoke" and summary["application"] == "rolled back to 1.1.0", run.report
    assert world.versions_by_host() == {host.name: "1.1.0" for host in world.lab.hosts}
    assert site.get("/api/items")[0] == 200 and site.schema_version() == "2"
    change = world.change(summary["change"])
    assert change["state"] == "3" and change["close_code"] == "unsuccessful", change
    assert ("1.2.0", "rolled_back") in world.deployments() and world.deployments()[0] == ("1.1.0", "successful")
    incident = world.incident_of(change, summary)
    assert "Application: rolled back to 1.1.0." in incident["close_notes"], incident["close_notes"]
    with site.ledger() as ledger:
        incidents = ledger.list_incidents(service="demo-app")
        assert [incident["details"]["version"] for incident in incidents].count("1.2.0") == 1
        assert ledger.get_lock("demo-app") is None
