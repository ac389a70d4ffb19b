"""The validation plugins' and role's documentation renders with ansible-doc from the installed collection."""

from __future__ import annotations

import json

import pytest
from fixtures.playbooks import Ansible

MODULES = {"smoke_check": "partial", "quality_gate": "full", "health_gate": "full", "stabilization": "full"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_ansible_doc_renders_each_validation_page(ansible: Ansible, module: str) -> None:
    page = ansible.doc("relops.release.%s" % module)
    assert page.returncode == 0, page.report
    assert "EXAMPLES:" in page.stdout and "RETURN VALUES:" in page.stdout
    data = json.loads(ansible.doc("--json", "relops.release.%s" % module).stdout)["relops.release.%s" % module]
    assert data["examples"].strip().startswith("- name:")
    assert data["doc"]["attributes"]["check_mode"]["support"] == MODULES[module]


def test_the_smoke_test_role_documents_both_entry_points(ansible: Ansible) -> None:
    page = ansible.doc("-t", "role", "--json", "relops.release.smoke_test")
    assert page.returncode == 0, page.report
    entry_points = json.loads(page.stdout)["relops.release.smoke_test"]["entry_points"]
    assert set(entry_points) == {"main", "stabilize"}
    assert "smoke_test_rollback_tasks" in entry_points["stabilize"]["options"]
