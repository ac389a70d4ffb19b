"""The collection as a user gets it: built, installed, documented."""

from __future__ import annotations

import json
import os

import pytest
from fixtures.playbooks import Ansible

MODULES = [
    "release_lock",
    "ledger_info",
    "ledger_run",
    "change_request",
    "change_request_info",
    "cmdb_ci",
    "cmdb_ci_info",
    "cmdb_deployment",
    "cmdb_impact",
    "release_record",
    "release_record_info",
    "release_review",
    "release_review_info",
]


def test_the_installed_collection_is_listed(ansible: Ansible) -> None:
    manifest = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release", "MANIFEST.json")
    with open(manifest, encoding="utf-8") as handle:
        info = json.load(handle)["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("relops", "release", "0.1.0")
    assert info["license"] == ["GPL-3.0-or-later"]
    installed = os.listdir(os.path.join(ansible.collections_path, "ansible_collections", "relops", "release"))
    for excluded in ("tests", "benchmarks", ".venv", ".hypothesis", "Makefile", "pyproject.toml", "build"):
        assert excluded not in installed


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_a_full_page_with_examples(ansible: Ansible, module: str) -> None:
    page = ansible.doc("relops.release.%s" % module)
    assert page.returncode == 0, page.report
    assert "EXAMPLES:" in page.stdout and "RETURN VALUES:" in page.stdout
    assert "ledger_url" in page.stdout
    data = json.loads(ansible.doc("--json", "relops.release.%s" % module).stdout)["relops.release.%s" % module]
    assert data["examples"].strip().startswith("- name:")
    assert data["doc"]["attributes"]["check_mode"]["support"] == "full"


def test_ansible_doc_lists_every_module(ansible: Ansible) -> None:
    listing = ansible.doc("--list", "relops.release")
    assert listing.returncode == 0, listing.report
    for module in MODULES:
        assert "relops.release.%s" % module in listing.stdout


def test_the_license_ships_with_the_collection(ansible: Ansible) -> None:
    path = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release", "LICENSE")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert "(at your option) any later version" in text  # the headers say v3.0+


def test_every_module_documents_its_requirements(ansible: Ansible) -> None:
    collection = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release")
    modules_dir = os.path.join(collection, "plugins", "modules")
    names = sorted("relops.release." + name[:-3] for name in os.listdir(modules_dir) if name.endswith(".py"))
    assert len(names) > 40
    docs = ansible.doc("--json", "-t", "module", *names)
    assert docs.returncode == 0, docs.report
    data = json.loads(docs.stdout)
    missing = [name for name in names if not data[name]["doc"].get("requirements")]
    assert not missing, "modules without requirements: %s" % missing


def test_the_shipped_canary_scenario_says_what_it_needs(ansible: Ansible) -> None:
    """The canary role's Molecule scenario deploys to a site it is given; run without one, its converge
    stops at once and names the variable and the page that explain it."""
    collection = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release")
    converge = os.path.join(collection, "roles", "canary", "molecule", "default", "converge.yml")
    run = ansible.playbook(converge, env={"CANARY_MOLECULE_VARS": ""})
    assert run.returncode != 0
    assert "CANARY_MOLECULE_VARS is not set" in run.output and 'roles/canary/README.md, "Molecule"' in run.output
    assert "Roll the canary out" not in run.output
