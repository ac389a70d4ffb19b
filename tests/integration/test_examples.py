"""Examples are tests: the EXAMPLES of the modules listed in docs/examples.md, run as written, in order,
in one ansible-playbook process against a fresh ledger, with the fixtures that page states.

A module enters COVERED once its examples run; an example that needs a service outside this machine
(a ServiceNow instance, Unleash, a shared PostgreSQL ledger) is named in EXTERNAL with the reason, and
docs/examples.md lists the same. Anything else that fails to run fails the test.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import uuid
from typing import Any

import yaml
from fixtures.governance import write_cobertura, write_junit, write_yaml
from fixtures.playbooks import REPO, Ansible
from fixtures.signing import write_key_pair

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

# Run order: an example may use what an earlier one created (cmdb_ci's CIs for risk_assess).
COVERED = [
    "ledger_run",
    "ledger_info",
    "release_lock",
    "cmdb_ci",
    "cmdb_ci_info",
    "cmdb_impact",
    "change_request_info",
    "incident",
    "exemption",
    "quality_gate",
    "risk_assess",
    "feature_flag",
    "change_gate",
    "dora_metrics",
    # A release's own steps: package, sign, verify and record (package's `built` feeds the later ones).
    "package",
    "artifact_sign",
    "artifact_verify",
    "deployment_record",
    "release_record",
    "release_record_info",
    # change_request reopens change_gate's change (same correlation id) and closes it, so it runs after.
    "change_request",
    "cmdb_deployment",
    "stabilization",
    "readiness_check",
    "release_plan",
    "release_report",
    "blackout_check",
]

EXTERNAL = {
    ("ledger_info", "Last five production deployments of one service, from the shared ledger"): "PostgreSQL ledger",
    ("release_lock", "Point every ledger task of the play at a shared PostgreSQL ledger"): "PostgreSQL ledger",
    ("cmdb_ci", "Through IRE on ServiceNow"): "ServiceNow instance",
    ("cmdb_ci_info", "Web servers by encoded query, on ServiceNow"): "ServiceNow instance",
    ("feature_flag", "The same flag in Unleash, production at 10 percent"): "Unleash server",
    ("change_request_info", "Open emergency changes on ServiceNow"): "ServiceNow instance",
    ("incident", "Import ServiceNow's production incidents of the service"): "ServiceNow instance",
    ("dora_metrics", "One service's daily series for March, in local time, lead time from git"): "git checkout",
    # Production's evidence flow needs a signed release package and a permit key; it runs for real in
    # tests/integration/test_evidence_gate.py.
    ("change_gate", "Verify the package and open its release record (production is enforced by the default policy)"): (
        "a signed release package"
    ),
    ("change_gate", "Assess, into the record"): "a signed release package",
    ("change_gate", "Gate the production deployment"): "a signed release package and a permit key",
    ("change_gate", "Every host change below runs under the permit"): "a signed release package and a permit key",
    ("change_gate", "Gate the production deployment, permit signed by OpenBao"): (
        "a signed release package and an OpenBao server"
    ),
    ("artifact_sign", "Sign with a key that stays in OpenBao (BAO_ADDR and BAO_TOKEN come from the environment)"): (
        "OpenBao server"
    ),
    ("artifact_verify", "Check the copy on the host against a published SHA256SUMS"): "artifact server",
    ("blackout_check", "The freezes the change board publishes as an iCalendar feed"): "calendar server",
    ("blackout_check", "Read the ServiceNow year-end blackout schedule"): "ServiceNow instance",
    ("change_request", "A standard change from its template, on ServiceNow with OAuth"): "ServiceNow instance",
    (
        "stabilization",
        "Record a breach and open the incident in ServiceNow too, tied to the release's change",
    ): "ServiceNow instance",
}

# Variables every example play has, as a release's playbook would.
FIXTURE_VARS = {"release_version": "2.4.0", "release_class": "operational"}

ROSTER = {"shifts": [{"who": "alice", "start": "2020-01-01T00:00:00Z", "end": "2099-12-31T23:59:59Z"}]}


def module_examples(collections_path: str, module: str) -> list[dict[str, Any]]:
    """The module's EXAMPLES as tasks, read from the installed collection without importing it."""
    modules = os.path.join(collections_path, "ansible_collections", "relops", "release", "plugins", "modules")
    path = os.path.join(modules, module + ".py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "EXAMPLES" for t in node.targets):
            tasks = yaml.safe_load(ast.literal_eval(node.value))
            assert isinstance(tasks, list) and tasks, "%s: EXAMPLES is not a list of tasks" % module
            return tasks
    raise AssertionError("%s has no EXAMPLES" % module)


FREEZES_ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//relops//examples//EN
BEGIN:VEVENT
UID:freeze-2020@example.com
DTSTAMP:20200101T000000Z
DTSTART:20201221T000000Z
DTEND:20210104T000000Z
SUMMARY:Year-end freeze 2020
END:VEVENT
END:VCALENDAR
"""

# The same freeze, as a YAML calendar (docs/calendars.md).
FREEZES_YML = {
    "timezone": "UTC",
    "kind": "blackout",
    "windows": [{"name": "Year-end freeze 2020", "start": "2020-12-21", "end": "2021-01-03"}],
}


def seed_ledger(directory: str) -> None:
    """The ledger history docs/examples.md states: payments-api 2.4.0's rollback rehearsed in staging,
    ledger-api 3.1.0 in production, and in the CMDB the database server db01 (docs/planning.md's plan names it)
    and the host the examples run on, localhost (cmdb_deployment records on the play's hosts)."""
    path = os.path.join(directory, "state", "relops", "ledger.db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/"))) as ledger:
        actor = current_actor(environ={"RELOPS_RUN_ID": "staging-rehearsal"})
        ledger.record_deployment(actor, "payments-api", "2.4.0", "staging", "rolled_back")
        ledger.record_deployment(actor, "ledger-api", "3.1.0", "production", "successful")
        ledger.itsm_save_ci(uuid.uuid4().hex, "cmdb_ci_linux_server", "db01", {}, create=True)
        ledger.itsm_save_ci(uuid.uuid4().hex, "cmdb_ci_server", "localhost", {}, create=True)


def documented_plan() -> str:
    """The plan of docs/planning.md, "The plan": its first YAML block, which the release_plan examples read."""
    with open(os.path.join(REPO, "docs", "planning.md"), encoding="utf-8") as handle:
        page = handle.read()
    found = re.search(r"^```yaml\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert found, "docs/planning.md has no YAML plan"
    return found.group(1)


def write_signing_fixtures(directory: str) -> dict[str, str]:
    """keys/release-bot.pem, the security team's key with its passphrase (as the play variables
    security_signing_key and security_signing_passphrase) and keys/keyring.yml trusting both."""
    keys = os.path.join(directory, "keys")
    os.makedirs(keys, exist_ok=True)
    bot = write_key_pair(keys, "ed25519", "release-bot")
    security = write_key_pair(keys, "ed25519", "security-team", passphrase="examples-passphrase")
    keyring = {
        "keys": [
            {"name": "release-bot", "public_key": bot.public_pem},
            {"name": "security-team", "public_key": security.public_pem},
        ]
    }
    write_yaml(os.path.join(keys, "keyring.yml"), keyring)
    return {"security_signing_key": security.private_pem(), "security_signing_passphrase": "examples-passphrase"}


def write_fixtures(directory: str) -> dict[str, str]:
    """What docs/examples.md says the examples may assume, beside the playbook; returns the play variables."""
    seed_ledger(directory)
    shutil.copytree(os.path.join(REPO, "examples", "demo_app"), os.path.join(directory, "demo_app"))
    os.makedirs(os.path.join(directory, "plans"), exist_ok=True)
    with open(os.path.join(directory, "plans", "2027.yml"), "w", encoding="utf-8") as handle:
        handle.write(documented_plan())
    os.makedirs(os.path.join(directory, "calendars"), exist_ok=True)
    with open(os.path.join(directory, "calendars", "freezes.ics"), "w", encoding="utf-8") as handle:
        handle.write(FREEZES_ICS.replace("\n", "\r\n"))
    write_yaml(os.path.join(directory, "calendars", "freezes.yml"), FREEZES_YML)
    for folder in ("reports", "oncall", "flagd"):
        os.makedirs(os.path.join(directory, folder), exist_ok=True)
    write_junit(os.path.join(directory, "reports", "unit.xml"), tests=120, suite="unit")
    write_junit(os.path.join(directory, "reports", "integration-api.xml"), tests=30, suite="integration")
    for shard in (1, 2):
        path = os.path.join(directory, "reports", "integration-shard-%d.xml" % shard)
        write_junit(path, tests=15, suite="integration")
    write_junit(os.path.join(directory, "reports", "long.xml"), tests=5, suite="long")
    write_cobertura(os.path.join(directory, "reports", "coverage.xml"), covered=85, valid=100)
    write_cobertura(os.path.join(directory, "reports", "coverage-api.xml"), covered=85, valid=100)
    for service in ("payments", "checkout"):
        write_yaml(os.path.join(directory, "oncall", service + ".yml"), ROSTER)
    with open(os.path.join(directory, "deploy.yml"), "w", encoding="utf-8") as handle:
        handle.write("- name: Deploy\n  ansible.builtin.debug:\n    msg: deploying\n")
    return {**FIXTURE_VARS, **write_signing_fixtures(directory)}


def examples_playbook(collections_path: str, play_vars: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    plays: list[dict[str, Any]] = []
    excluded: list[str] = []
    for module in COVERED:
        tasks = []
        for task in module_examples(collections_path, module):
            if (module, task.get("name")) in EXTERNAL:
                excluded.append("%s: %s" % (module, task["name"]))
                continue
            tasks.append(task)
        plays.append(
            {
                "name": "Examples of relops.release.%s" % module,
                "hosts": "localhost",
                "gather_facts": False,
                "vars": play_vars,
                "tasks": tasks,
            }
        )
    return plays, excluded


def test_the_examples_run_as_written(ansible: Ansible) -> None:
    play_vars = write_fixtures(ansible.workdir)
    plays, excluded = examples_playbook(ansible.collections_path, play_vars)
    assert len(excluded) == len(EXTERNAL), "EXTERNAL names an example that no longer exists: %s" % excluded
    playbook = ansible.write_playbook(yaml.safe_dump(plays, sort_keys=False), "examples.yml")
    run = ansible.playbook(playbook)
    assert run.returncode == 0, run.report
    for module in COVERED:
        assert "PLAY [Examples of relops.release.%s]" % module in run.stdout


def test_docs_examples_md_lists_what_the_test_covers_and_excludes() -> None:
    with open(os.path.join(REPO, "docs", "examples.md"), encoding="utf-8") as handle:
        page = handle.read()
    for module in COVERED:
        assert "`%s`" % module in page, module
    for (module, name), reason in EXTERNAL.items():
        assert name in page and reason in page, (module, name)
