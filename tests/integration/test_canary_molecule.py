"""The canary role's Molecule scenarios (default driver, managed: false): `default` on localhost and `lab`
on three lab hosts over SSH; converge, the idempotence step (a second converge changes nothing) and
verify, against a real nginx and supervisord."""

from __future__ import annotations

import json
import os
import sys

import pytest
from fixtures.canary import start_lab_canary
from fixtures.lab import lab_backends
from fixtures.molecule import run_molecule
from fixtures.playbooks import Ansible
from fixtures.routers import RouterFactory

# The two Molecule scenarios run one after the other, in one xdist worker (`--dist loadgroup`):
# run at the same time, the canary scenario failed.
pytestmark = pytest.mark.xdist_group("molecule")


def test_molecule_default_scenario(canary_site, ansible: Ansible, short_home: str) -> None:
    site = canary_site("nginx")
    site.package("1.1.0")
    settings = dict(site.role_vars("1.1.0"), canary_molecule_router_url=site.router.url)
    vars_file = os.path.join(ansible.workdir, "molecule-vars.json")
    with open(vars_file, "w", encoding="utf-8") as handle:
        json.dump(settings, handle)
    run = run_molecule(
        ansible,
        "canary",
        "default",
        {
            "CANARY_MOLECULE_VARS": vars_file,
            "MOLECULE_PYTHON": sys.executable,
            "XDG_CACHE_HOME": os.path.join(ansible.workdir, "cache"),
            # The test's own home, so nothing Ansible writes under ~/.ansible reaches the tester's (the
            # scenarios have prerun: false, so ansible-compat installs no collection there), and short:
            # the scenario's supervisord socket lives under it, and AF_UNIX paths hold 107 bytes.
            "HOME": short_home,
        },
        timeout=900,
        keep_ansible_inventory=True,
    )
    output = run.output
    assert run.returncode == 0, output
    assert "idempotence" in output.lower()
    assert site.versions_through_router() == {"1.1.0": 20}


def test_molecule_lab_scenario(ansible: Ansible, short_home: str, router_factory: RouterFactory, lab_fleet) -> None:
    """The lab scenario: three namespace hosts over SSH, 1.0.0 in every blue slot behind nginx; converge
    rolls 1.1.0 out as a canary, the idempotence step finds nothing to change, verify asks the router
    and the ledger."""
    lab = lab_fleet(3)
    router = router_factory("nginx", "demo_app", lab_backends(lab))
    world = start_lab_canary(ansible, lab, router, "molecule")
    run = run_molecule(
        ansible,
        "canary",
        "lab",
        {
            "RELOPS_LAB_INVENTORY": lab.inventory,
            "CANARY_MOLECULE_VARS": world.settings_file,
            "XDG_CACHE_HOME": os.path.join(ansible.workdir, "cache-lab"),
            "HOME": short_home,
        },
        timeout=900,
    )
    output = run.output
    assert run.returncode == 0, output[-6000:]
    assert "idempotence" in output.lower() and "Verify - every lab host serves" in output
    for host in ("lab1", "lab2", "lab3"):
        assert "[%s]" % host in output, host
