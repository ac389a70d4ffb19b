"""relops.release.env_compare through real ansible-playbook runs: two inventory groups of local hosts,
facts gathered for real (local facts from a per-host fact_path), configuration declared in the inventory."""

from __future__ import annotations

import json
import os

import yaml
from fixtures.playbooks import Ansible

PLAY = """
- name: Gather facts on both environments
  hosts: staging:production
  gather_facts: false
  tasks:
    - name: Gather a small subset plus the local facts
      ansible.builtin.setup:
        gather_subset: [min]
        fact_path: "{{ fact_dir }}"

- name: Compare
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Compare staging with production
      relops.release.env_compare:
        left: "{{ left | default('staging') }}"
        right: production
        facts: [distribution, ansible_local.app]
        config: [app_settings]
        allow: "{{ allow | default([]) }}"
        fail_on_deviation: "{{ strict | default(false) | bool }}"
      register: outcome
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def _inventory(ansible: Ansible) -> str:
    hosts = {
        "stg1": ({"build": "2.4.0", "tls": "1.3"}, {"workers": 4, "log_level": "debug"}),
        "stg2": ({"build": "2.4.0", "tls": "1.3"}, {"workers": 4, "log_level": "info"}),
        "prd1": ({"build": "2.4.0", "tls": "1.2"}, {"workers": 16, "log_level": "warn"}),
    }
    inventory: dict = {
        "all": {
            "children": {"staging": {"hosts": {}}, "production": {"hosts": {}}},
            "hosts": {"localhost": {"ansible_connection": "local"}},
        }
    }
    for host, (local, settings) in hosts.items():
        fact_dir = os.path.join(ansible.workdir, "facts", host)
        os.makedirs(fact_dir)
        with open(os.path.join(fact_dir, "app.fact"), "w", encoding="utf-8") as handle:
            json.dump(local, handle)
        group = "staging" if host.startswith("stg") else "production"
        inventory["all"]["children"][group]["hosts"][host] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "fact_dir": fact_dir,
            "app_settings": settings,
        }
    inventory["all"]["hosts"]["localhost"]["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
    path = os.path.join(ansible.workdir, "hosts.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    return path


def _compare(ansible: Ansible, **extra: object) -> tuple[int, dict, str]:
    inventory = (
        _inventory(ansible)
        if not os.path.exists(os.path.join(ansible.workdir, "hosts.yml"))
        else (os.path.join(ansible.workdir, "hosts.yml"))
    )
    playbook = ansible.write_playbook(PLAY, "compare.yml")
    result_file = os.path.join(ansible.workdir, "result.json")
    if os.path.exists(result_file):
        os.unlink(result_file)
    run = ansible.playbook(playbook, "-i", inventory, "-e", json.dumps({"result_file": result_file, **extra}))
    result = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    return run.returncode, result, run.output


def _paths(items: list) -> set[str]:
    return {item["path"] for item in items}


def test_deviations_outside_the_allow_list_are_reported(ansible: Ansible) -> None:
    allow = [
        {"path": "config.app_settings.workers", "reason": "production is sized for its load"},
        {"path": "facts.ansible_local.app.tls", "right": "1.1", "reason": "only a TLS 1.1 exemption is accepted"},
        {"path": "config.app_settings.threads", "reason": "no longer used"},
    ]
    code, result, output = _compare(ansible, allow=allow)
    assert code == 0, output
    assert result["left"]["hosts"] == ["stg1", "stg2"] and result["right"]["hosts"] == ["prd1"]
    assert _paths(result["deviations"]) == {"config.app_settings.log_level", "facts.ansible_local.app.tls"}
    tls = next(item for item in result["deviations"] if item["path"] == "facts.ansible_local.app.tls")
    assert (tls["left"], tls["right"]) == ("1.3", "1.2")
    assert result["accepted"] == [
        {"path": "config.app_settings.workers", "left": 4, "right": 16, "reason": "production is sized for its load"}
    ]
    assert [entry["path"] for entry in result["stale_allowances"]] == [
        "facts.ansible_local.app.tls",
        "config.app_settings.threads",
    ]
    log_level = next(item for item in result["deviations"] if item["path"] == "config.app_settings.log_level")
    assert log_level["left"] == {"differs_within": ["debug", "info"]} and log_level["right"] == "warn"
    assert "facts.ansible_local.app.tls: 1.3" in result["report"]["before"]


def test_strict_mode_fails_naming_the_deviations(ansible: Ansible) -> None:
    allow = [
        {"path": "config.app_settings.*", "reason": "production tuning"},
    ]
    code, result, output = _compare(ansible, allow=allow, strict=True)
    assert code != 0
    assert (
        "1 deviation(s) between staging and production" in output
        and "facts.ansible_local.app.tls (1.3 vs 1.2)" in output
    )
    allow.append(
        {"path": "facts.ansible_local.app.tls", "left": "1.3", "right": "1.2", "reason": "CHG0042 moves prod to 1.3"}
    )
    code, result, output = _compare(ansible, allow=allow, strict=True)
    assert code == 0, output
    assert result["deviations"] == [] and len(result["accepted"]) == 3


def test_a_single_host_compares_and_an_unknown_name_is_refused(ansible: Ansible) -> None:
    code, result, output = _compare(ansible, left="stg1")
    assert code == 0, output
    assert result["left"]["hosts"] == ["stg1"]
    log_level = next(item for item in result["deviations"] if item["path"] == "config.app_settings.log_level")
    assert log_level["left"] == "debug"
    code, result, output = _compare(ansible, left="all_stg", strict=False)
    assert code != 0 and "left 'all_stg' is neither a group nor a host of the inventory" in output


def test_allowance_without_reason_is_refused(ansible: Ansible) -> None:
    code, _result, output = _compare(ansible, allow=[{"path": "config.app_settings.workers", "reason": " "}])
    assert code != 0 and "'config.app_settings.workers' has an empty reason" in output
    code, _result, output = _compare(ansible, allow=[{"path": "app_settings.workers", "reason": "sized"}])
    assert code != 0 and "start it with 'facts.' or 'config.'" in output
