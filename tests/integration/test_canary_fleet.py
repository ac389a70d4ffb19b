"""The canary role on the lab fleet: three hosts, each a network namespace with its own sshd, reached
over real SSH, behind one router on the controller (nginx, then HAProxy): one router change per step
for the whole fleet, every host promoted together."""

from __future__ import annotations

import json
import os
import sys
import urllib.request

import pytest
import yaml
from fixtures.canary import ROLE_PLAY, build_package
from fixtures.lab import LAB_SLOTS, lab_backends
from fixtures.playbooks import Ansible
from fixtures.routers import RouterFactory

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

HOSTS = 3

STABLE_PLAY = """
- name: The stable release on every host
  hosts: lab
  gather_facts: false
  tasks:
    - name: Install the stable release into the blue slot
      relops.release.slot_install:
        src: "{{ stable_package }}"
        checksum: "{{ stable_checksum }}"
        dest: "{{ canary_root }}/slots/blue"
    - name: Run it
      relops.release.app_process:
        name: demo-app-blue
        command:
          - "{{ ansible_python_interpreter }}"
          - "{{ canary_root }}/slots/blue/start.py"
          - "{{ canary_slot_ports.blue }}"
          - 0.0.0.0
        directory: "{{ canary_root }}/slots/blue"
        supervisor_dir: "{{ canary_root }}/supervisor"
        supervisord_binary: "{{ canary_supervisord_binary }}"
        supervisorctl_binary: "{{ canary_supervisorctl_binary }}"
        wait_port: "{{ canary_slot_ports.blue }}"
        wait_timeout: 120
    - name: Send it all traffic
      relops.release.traffic_router:
        router: "{{ canary_router }}"
        name: demo_app
        nginx_upstream_file: "{{ canary_nginx_upstream_file | default(omit) }}"
        nginx_conf: "{{ canary_nginx_conf | default(omit) }}"
        haproxy_socket: "{{ canary_haproxy_socket | default(omit) }}"
        haproxy_state_file: "{{ canary_haproxy_state_file | default(omit) }}"
        servers: "{{ stable_servers }}"
      delegate_to: localhost
      run_once: true
"""


def answers_directly(address: str) -> str:
    with urllib.request.urlopen("http://%s/" % address, timeout=10) as response:
        return str(json.load(response)["version"])


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_three_lab_hosts_take_the_canary_together(
    kind: str, ansible: Ansible, router_factory: RouterFactory, lab_fleet
) -> None:
    lab = lab_fleet(HOSTS)
    backends = lab_backends(lab)
    router = router_factory(kind, "demo_app", backends)
    work = ansible.workdir
    stable, canary = build_package(work, "1.0.0"), build_package(work, "1.1.0")
    bin_dir = os.path.dirname(sys.executable)
    ledger = "sqlite:///" + os.path.join(work, "ledger-%s.db" % kind).lstrip("/")
    servers = [
        {
            "name": backend.name,
            "address": backend.address,
            "state": "ready" if backend.name.endswith("-blue") else "maint",
        }
        for backend in backends
    ]
    settings = {
        # Lab hosts share the controller's file system: its virtualenv's Python runs modules and app.
        "ansible_python_interpreter": sys.executable,
        "canary_root": "{{ relops_lab_root }}",
        "canary_slot_ports": LAB_SLOTS,
        "canary_host_address": "{{ ansible_host }}",
        "stable_servers": servers,
        "stable_package": stable.path,
        "stable_checksum": stable.checksum,
        "canary_service": "demo-app",
        "canary_version": "1.1.0",
        "canary_environment": "staging",
        "canary_package_src": canary.path,
        "canary_package_checksum": canary.checksum,
        "canary_command": [sys.executable, "{{ canary_slot_dir }}/start.py", "{{ canary_slot_port }}", "0.0.0.0"],
        "canary_supervisord_binary": os.path.join(bin_dir, "supervisord"),
        "canary_supervisorctl_binary": os.path.join(bin_dir, "supervisorctl"),
        **{"canary_" + name: value for name, value in router.role_vars().items()},
        "canary_ledger_url": ledger,
        "canary_steps": [50, 100],
        "canary_analysis": {"interval": 0.5, "count": 2},
    }
    settings_file = os.path.join(work, "fleet-%s.yml" % kind)
    with open(settings_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump(settings, handle)
    fleet = ["-i", lab.inventory, "-e", "@" + settings_file, "--forks", "5"]
    setup = ansible.playbook(ansible.write_playbook(STABLE_PLAY, "stable-%s.yml" % kind), *fleet, timeout=600)
    assert setup.returncode == 0, setup.report
    rollout = ansible.playbook(
        ansible.write_playbook(ROLE_PLAY.replace("hosts: localhost", "hosts: lab"), "canary-%s.yml" % kind),
        *fleet,
        timeout=600,
    )
    assert rollout.returncode == 0, rollout.report
    for host in lab.hosts:
        # Every host ran the canary over SSH, and each took the same steps.
        assert "[%s]" % host.name in rollout.output
        assert answers_directly("%s:%d" % (host.address, LAB_SLOTS["green"])) == "1.1.0", host.name
    assert rollout.output.count("Route traffic to the canary, percent 50") == 1, "one router change per step"
    answers = set()
    for _request in range(30):
        status, body = router.get("/")
        assert status == 200
        answers.add(json.loads(body)["version"])
    assert answers == {"1.1.0"}
    if kind == "nginx":
        with open(str(router.nginx_upstream_file), encoding="utf-8") as handle:
            upstream = handle.read()
        for host in lab.hosts:
            assert "name=%s-green state=ready" % host.name in upstream, upstream
            assert "name=%s-blue state=maint" % host.name in upstream, upstream
    with open_ledger(parse_ledger_url(ledger)) as opened:
        (deployment,) = opened.list_deployments("demo-app", "staging")
    names = [host.name for host in lab.hosts]
    assert deployment["status"] == "successful" and deployment["details"]["hosts"] == names
    assert deployment["details"]["slots"] == dict.fromkeys(names, "green")
