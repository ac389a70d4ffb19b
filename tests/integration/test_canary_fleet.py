"""The canary role on the lab fleet: three hosts, each a network namespace with its own sshd, reached
over real SSH, behind one router on the controller (nginx, then HAProxy): one router change per step
for the whole fleet, every host promoted together."""

from __future__ import annotations

import json
import urllib.request

import pytest
from fixtures.canary import ROLE_PLAY, start_lab_canary
from fixtures.lab import LAB_SLOTS, lab_backends
from fixtures.playbooks import Ansible
from fixtures.routers import RouterFactory

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

HOSTS = 3


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
    world = start_lab_canary(ansible, lab, router, kind)
    rollout = ansible.playbook(
        ansible.write_playbook(ROLE_PLAY.replace("hosts: localhost", "hosts: lab"), "canary-%s.yml" % kind),
        *world.args,
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
    with open_ledger(parse_ledger_url(world.ledger_url)) as opened:
        (deployment,) = opened.list_deployments("demo-app", "staging")
    names = [host.name for host in lab.hosts]
    assert deployment["status"] == "successful" and deployment["details"]["hosts"] == names
    assert deployment["details"]["slots"] == dict.fromkeys(names, "green")
