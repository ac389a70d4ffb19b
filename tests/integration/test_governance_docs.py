"""The governance modules as a user reads them (ansible-doc) and configures them (the ledger action group)."""

from __future__ import annotations

import json
import os

import pytest
from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

MODULES = ["risk_assess", "change_gate", "readiness_check", "exemption"]

GROUP_PLAY = """
- name: The ledger group sets ledger_url once for the governance modules
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/relops.release.ledger:
      ledger_url: "{ledger_url}"
  tasks:
    - name: Gate an automatic change
      relops.release.change_gate:
        service: payments-api
        version: 1.0.0
        # staging: production is enforced and takes no route from its caller (docs/governance.md)
        environment: staging
        route: automatic
        readiness: {{rollback: {{not_needed: config only}}}}
        fail_on_deny: false
    - name: List exemptions
      relops.release.exemption:
        state: list
"""


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_each_governance_page(ansible: Ansible, module: str) -> None:
    page = ansible.doc("relops.release.%s" % module)
    assert page.returncode == 0, page.report
    assert "EXAMPLES:" in page.stdout and "RETURN VALUES:" in page.stdout and "ledger_url" in page.stdout
    data = json.loads(ansible.doc("--json", "relops.release.%s" % module).stdout)["relops.release.%s" % module]
    assert data["examples"].strip().startswith("- name:")
    assert data["doc"]["attributes"]["check_mode"]["support"] == "full"


def test_the_ledger_group_reaches_the_gate_and_the_exemptions(ansible: Ansible) -> None:
    ledger_url = "sqlite:///" + os.path.join(ansible.workdir, "grouped.db").lstrip("/")
    playbook = ansible.write_playbook(GROUP_PLAY.format(ledger_url=ledger_url), "group.yml")
    run = ansible.playbook(playbook)
    assert run.returncode == 0, run.report
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        decisions = ledger.list_decisions(subject="payments-api/staging/1.0.0")
    # Readiness without a roster or runbook fails, so the automatic change is denied, and said so in the ledger.
    assert [row["decision"] for row in decisions] == ["deny"]
    assert any(reason.startswith("readiness deny") for reason in decisions[0]["reasons"])
