"""ansible-doc renders the environment modules and roles of issue 12 from the installed collection."""

from __future__ import annotations

import json

import pytest
from fixtures.playbooks import Ansible

MODULES = ["config_baseline", "drift_scan", "env_compare", "ephemeral_slot"]


@pytest.mark.parametrize("module", MODULES)
def test_module_page_renders_with_examples(ansible: Ansible, module: str) -> None:
    name = "relops.release.%s" % module
    page = ansible.doc("--json", name)
    assert page.returncode == 0, page.report
    data = json.loads(page.stdout)[name]
    assert data["examples"].strip().startswith("- name:")
    assert data["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert data["return"]


@pytest.mark.parametrize(
    ("role", "entry_points"), [("config_drift", {"main"}), ("ephemeral_env", {"main", "teardown", "reap"})]
)
def test_role_argument_specs_render(ansible: Ansible, role: str, entry_points: set[str]) -> None:
    page = ansible.doc("-t", "role", "--json", "relops.release.%s" % role)
    assert page.returncode == 0, page.report
    assert set(json.loads(page.stdout)["relops.release.%s" % role]["entry_points"]) == entry_points
