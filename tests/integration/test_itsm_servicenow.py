"""ServiceNow-specific behaviour through real ansible-playbook runs: credentials, reachability and a full
release flow while the stand-in injects faults into 30% of the requests."""

from __future__ import annotations

import json
import os
import socket

from fixtures.itsm_tasks import run_task
from fixtures.playbooks import Ansible
from fixtures.servicenow import ItsmWorld
from servicenow.server import ServiceNowStandIn

FLOW = """
- name: Release flow on a flaky instance
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/relops.release.itsm:
      backend: servicenow
      instance:
        max_retries: 12
        max_retry_time: 120
  tasks:
    - name: Hosts in one batch
      relops.release.cmdb_ci:
        ci_class: cmdb_ci_linux_server
        items:
{items}
      register: node_cis
    - name: The application's production CI on two of them
      relops.release.cmdb_ci:
        ci_class: cmdb_ci_appl
        name: payments-api (production)
        attributes: {{version: "2.0.0", environment: production}}
        relations:
          - {{type: "Runs on::Runs", target: node01}}
          - {{type: "Runs on::Runs", target: node02}}
      register: app
    - name: Open the change
      relops.release.change_request:
        correlation_id: release-2.0.0
        short_description: Deploy payments-api 2.0.0
        configuration_items: [payments-api]
        environment: production
        state: authorize
      register: opened
    - name: CAB approves
      relops.release.change_request:
        correlation_id: release-2.0.0
        approval: approved
        approval_comments: go
      register: approved
    - name: Implement and close
      relops.release.change_request:
        correlation_id: release-2.0.0
        state: closed
        close_code: successful
        close_notes: deployed
      register: closed
    - name: Record the deployment
      relops.release.cmdb_deployment:
        service: payments-api
        version: 2.0.0
        environment: production
        hosts: [node01, node02]
        change: "{{{{ closed.change.number }}}}"
      register: deployed
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{{{ {{'hosts': node_cis, 'app': app, 'opened': opened, 'approved': approved, 'closed': closed,
                     'deployed': deployed}} | to_nice_json }}}}"
        dest: {result_file}
        mode: "0600"
"""


def _flow(ansible: Ansible, standin: ServiceNowStandIn, name: str) -> tuple[int, dict, str]:
    items = "\n".join(
        "          - {name: node%02d, serial_number: SN-%02d, ip_address: 10.1.0.%d}" % (i, i, i) for i in range(20)
    )
    result_file = os.path.join(ansible.workdir, name + ".json")
    playbook = ansible.write_playbook(FLOW.format(items=items, result_file=json.dumps(result_file)), name + ".yml")
    env = {
        "SN_HOST": standin.url,
        "SN_USERNAME": "admin",
        "SN_PASSWORD": "admin-secret",
        "RELOPS_LEDGER_URL": "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/"),
    }
    run = ansible.playbook(playbook, env=env, timeout=600)
    result = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    return run.returncode, result, run.output


def test_full_flow_survives_30_percent_faults_without_duplicates(
    ansible: Ansible, servicenow: ServiceNowStandIn
) -> None:
    faults = servicenow.instance.faults
    faults.rate = 0.3
    code, result, output = _flow(ansible, servicenow, "first")
    assert code == 0, output
    assert result["closed"]["change"]["state"] == "closed" and result["closed"]["change"]["close_code"] == "successful"
    assert sum(faults.injected.values()) >= 20 and faults.injected.get("reset_after", 0) >= 1, faults.injected
    changes = servicenow.records("change_request", "correlation_id=release-2.0.0")
    assert len(changes) == 1
    names = [ci["name"] for ci in servicenow.records("cmdb_ci", "")]
    assert len(names) == len(set(names)) == 21, sorted(names)
    relations = servicenow.records("cmdb_rel_ci", "")
    assert len({(r["parent"], r["child"], r["type"]) for r in relations}) == len(relations) == 2
    assert len(servicenow.records("task_ci", "task=%s" % changes[0]["sys_id"])) == 3

    code, again, output = _flow(ansible, servicenow, "second")
    assert code == 0, output
    assert [again[k]["changed"] for k in ("hosts", "app", "opened", "approved", "closed", "deployed")] == [False] * 6
    assert len(servicenow.records("change_request", "")) == 1 and len(servicenow.records("cmdb_ci", "")) == 21


def test_wrong_credentials_name_the_method_and_variables(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    world = ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), servicenow)
    result = run_task(
        ansible, world, "change_request_info", {"number": "CHG0010001"}, env={"SN_PASSWORD": "correct-horse-wrong"}
    )
    assert result["failed"] is True
    assert "basic authentication" in result["msg"] and "SN_USERNAME, SN_PASSWORD" in result["msg"], result["msg"]
    assert "correct-horse-wrong" not in result["_output"]


def test_unreachable_instance(ansible: Ansible) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world = ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), None)
    result = run_task(
        ansible,
        world,
        "cmdb_ci_info",
        {
            "backend": "servicenow",
            "instance": {
                "host": "http://127.0.0.1:%d" % port,
                "username": "u",
                "password": "p",
                "max_retries": 1,
                "max_retry_time": 5,
            },
        },
    )
    assert result["failed"] is True and "unreachable after 2 attempts" in result["msg"], result["msg"]


def test_check_mode_sends_no_writes(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    world = ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), servicenow)
    result = run_task(ansible, world, "change_request", {"correlation_id": "dry", "state": "assess"}, "--check")
    assert result["changed"] is True
    assert {method for method, _path in servicenow.instance.requests} == {"GET"}


def test_ire_through_the_module(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    world = ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), servicenow)
    args = {
        "ci_class": "cmdb_ci_linux_server",
        "name": "web07",
        "use_ire": True,
        "identity": ["serial_number"],
        "attributes": {"serial_number": "SN-7"},
    }
    first = run_task(ansible, world, "cmdb_ci", args)
    assert first["changed"] is True and first["operation"] == "INSERT", first
    assert ("POST", "/api/now/identifyreconcile") in servicenow.instance.requests
    second = run_task(ansible, world, "cmdb_ci", args)
    assert second["changed"] is False and second["operation"] == "NO_CHANGE"
    assert len(servicenow.records("cmdb_ci", "name=web07")) == 1


def test_cmdb_ci_looks_each_ci_up_once(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    """Issue 22: cmdb_ci sent its identity lookup twice (once to plan, once again to write)."""
    world = ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), servicenow)
    lookups = ("GET", "/api/now/table/cmdb_ci_appl")
    for attributes, operation in (({"version": "1.0.0"}, "INSERT"), ({"version": "1.1.0"}, "UPDATE")):
        servicenow.instance.requests.clear()
        result = run_task(
            ansible, world, "cmdb_ci", {"ci_class": "cmdb_ci_appl", "name": "billing", "attributes": attributes}
        )
        assert result["changed"] is True and result["operation"] == operation, result
        assert servicenow.instance.requests.count(lookups) == 1, servicenow.instance.requests
    assert [ci["version"] for ci in servicenow.records("cmdb_ci_appl", "name=billing")] == ["1.1.0"]
