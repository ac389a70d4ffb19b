"""The canary role on a fleet of two hosts (two inventory hosts on this machine, each with its own deploy
root, slots and supervisord) behind one nginx: one router change per step for the whole fleet."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time

import yaml
from fixtures.canary import ROLE_PLAY, build_package
from fixtures.playbooks import Ansible
from fixtures.routers import Backend, RouterFactory, free_port

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

HOSTS = ("web1", "web2")

STABLE_PLAY = """
- name: The stable release on every host
  hosts: all
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
        directory: "{{ canary_root }}/slots/blue"
        supervisor_dir: "{{ canary_root }}/supervisor"
        supervisord_binary: "{{ canary_supervisord_binary }}"
        supervisorctl_binary: "{{ canary_supervisorctl_binary }}"
        wait_port: "{{ canary_slot_ports.blue }}"
        wait_timeout: 120
    - name: Send it all traffic
      relops.release.traffic_router:
        router: nginx
        name: demo_app
        nginx_upstream_file: "{{ canary_nginx_upstream_file }}"
        nginx_conf: "{{ canary_nginx_conf }}"
        servers: "{{ stable_servers }}"
      delegate_to: localhost
      run_once: true
"""


def stop_supervisord(root: str) -> None:
    pid_file = os.path.join(root, "supervisor", "supervisord.pid")
    if not os.path.exists(pid_file):
        return
    with open(pid_file, encoding="ascii") as handle:
        os.kill(int(handle.read().strip()), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(pid_file):
        time.sleep(0.1)


def test_two_hosts_take_the_canary_together(ansible: Ansible, router_factory: RouterFactory) -> None:
    ports = {host: {"blue": free_port(), "green": free_port()} for host in HOSTS}
    backends = [
        Backend("%s-%s" % (host, slot), "127.0.0.1:%d" % port) for host in HOSTS for slot, port in ports[host].items()
    ]
    router = router_factory("nginx", "demo_app", backends)
    work = ansible.workdir
    stable, canary = build_package(work, "1.0.0"), build_package(work, "1.1.0")
    # Short roots: supervisord's socket path must fit AF_UNIX's 108 bytes, pytest's tmp paths may not.
    short = tempfile.mkdtemp(prefix="canary-fleet-")
    roots = {host: os.path.join(short, host) for host in HOSTS}
    bin_dir = os.path.dirname(sys.executable)
    ledger = "sqlite:///" + os.path.join(work, "ledger.db").lstrip("/")
    servers = [
        {
            "name": "%s-%s" % (host, slot),
            "address": "127.0.0.1:%d" % port,
            "state": "ready" if slot == "blue" else "maint",
        }
        for host in HOSTS
        for slot, port in ports[host].items()
    ]
    inventory = {
        "all": {
            "hosts": {
                host: {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    "canary_root": roots[host],
                    "canary_slot_ports": ports[host],
                }
                for host in HOSTS
            },
            "vars": {
                "stable_servers": servers,
                "stable_package": stable.path,
                "stable_checksum": stable.checksum,
                "canary_service": "demo-app",
                "canary_version": "1.1.0",
                "canary_environment": "staging",
                "canary_package_src": canary.path,
                "canary_package_checksum": canary.checksum,
                "canary_host_address": "127.0.0.1",
                "canary_command": [sys.executable, "{{ canary_slot_dir }}/start.py", "{{ canary_slot_port }}"],
                "canary_supervisord_binary": os.path.join(bin_dir, "supervisord"),
                "canary_supervisorctl_binary": os.path.join(bin_dir, "supervisorctl"),
                "canary_router_name": "demo_app",
                "canary_nginx_upstream_file": router.nginx_upstream_file,
                "canary_nginx_conf": router.nginx_conf,
                "canary_ledger_url": ledger,
                "canary_steps": [50, 100],
                "canary_analysis": {"interval": 0.5, "count": 2},
            },
        }
    }
    inventory_file = os.path.join(work, "fleet.yml")
    with open(inventory_file, "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    try:
        setup = ansible.playbook(ansible.write_playbook(STABLE_PLAY, "stable.yml"), "-i", inventory_file)
        assert setup.returncode == 0, setup.report
        rollout = ansible.playbook(
            ansible.write_playbook(ROLE_PLAY.replace("hosts: localhost", "hosts: all"), "canary.yml"),
            "-i",
            inventory_file,
            timeout=600,
        )
        assert rollout.returncode == 0, rollout.report
        # One router change per step for both hosts: the upstream lists all four servers, the green ones live.
        with open(str(router.nginx_upstream_file), encoding="utf-8") as handle:
            upstream = handle.read()
        for host in HOSTS:
            assert "name=%s-green state=ready" % host in upstream and "name=%s-blue state=maint" % host in upstream
        answers = set()
        for _request in range(30):
            status, body = router.get("/")
            assert status == 200
            answers.add(json.loads(body)["version"])
        assert answers == {"1.1.0"}
        with open_ledger(parse_ledger_url(ledger)) as opened:
            (deployment,) = opened.list_deployments("demo-app", "staging")
        assert deployment["status"] == "successful" and deployment["details"]["hosts"] == list(HOSTS)
        assert deployment["details"]["slots"] == {"web1": "green", "web2": "green"}
    finally:
        for root in roots.values():
            stop_supervisord(root)
        shutil.rmtree(short, ignore_errors=True)
