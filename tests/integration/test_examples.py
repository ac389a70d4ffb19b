"""Examples are tests: the EXAMPLES of the modules listed in docs/examples.md, run as written, in order,
in one ansible-playbook process against a fresh ledger, with the fixtures that page states.

A module enters COVERED once its examples run; an example that needs a service outside this machine
(a ServiceNow instance, Unleash, a shared PostgreSQL ledger) is named in EXTERNAL with the reason, and
docs/examples.md lists the same. Anything else that fails to run fails the test.
"""

from __future__ import annotations

import ast
import os
from typing import Any

import yaml
from fixtures.governance import write_cobertura, write_junit, write_yaml
from fixtures.playbooks import REPO, Ansible

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


def seed_ledger(directory: str) -> None:
    """The ledger history docs/examples.md states: payments-api 2.4.0's rollback rehearsed in staging."""
    path = os.path.join(directory, "state", "relops", "ledger.db")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open_ledger(parse_ledger_url("sqlite:///" + path.lstrip("/"))) as ledger:
        actor = current_actor(environ={"RELOPS_RUN_ID": "staging-rehearsal"})
        ledger.record_deployment(actor, "payments-api", "2.4.0", "staging", "rolled_back")


def write_fixtures(directory: str) -> None:
    """What docs/examples.md says the examples may assume, beside the playbook."""
    seed_ledger(directory)
    os.makedirs(os.path.join(directory, "calendars"), exist_ok=True)
    with open(os.path.join(directory, "calendars", "freezes.ics"), "w", encoding="utf-8") as handle:
        handle.write(FREEZES_ICS.replace("\n", "\r\n"))
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


def examples_playbook(collections_path: str) -> tuple[list[dict[str, Any]], list[str]]:
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
                "vars": FIXTURE_VARS,
                "tasks": tasks,
            }
        )
    return plays, excluded


def test_the_examples_run_as_written(ansible: Ansible) -> None:
    write_fixtures(ansible.workdir)
    plays, excluded = examples_playbook(ansible.collections_path)
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
