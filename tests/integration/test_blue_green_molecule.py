"""The blue_green role's Molecule scenarios (default driver, managed: false): `default` on localhost and
`lab` on three lab hosts over SSH, each with its idempotence step, run the way CI runs them."""

from __future__ import annotations

import os
import sys

import pytest
import yaml
from fixtures.lab import lab_harness
from fixtures.molecule import run_molecule
from fixtures.playbooks import BIN, REPO, Ansible
from fixtures.routers import free_port

# The two Molecule scenarios run one after the other, in one xdist worker (`--dist loadgroup`):
# run at the same time, the canary scenario failed.
pytestmark = pytest.mark.xdist_group("molecule")


def test_molecule_default_scenario_converges_idempotently(ansible: Ansible, short_home: str) -> None:
    port_base = free_port()
    run = run_molecule(
        ansible,
        "blue_green",
        "default",
        {
            "RELOPS_MOLECULE_PORT_BASE": str(port_base),
            "RELOPS_MOLECULE_BIN": BIN,
            "RELOPS_MOLECULE_PYTHON": sys.executable,
            "MOLECULE_NO_LOG": "false",
            # The test's own home, so nothing Ansible writes under ~/.ansible reaches the tester's (the
            # scenarios have prerun: false, so ansible-compat installs no collection there), and short:
            # the scenario's supervisord socket lives under it, and AF_UNIX paths hold 107 bytes.
            "HOME": short_home,
            "XDG_CACHE_HOME": os.path.join(ansible.workdir, "cache"),
        },
        timeout=1200,
    )
    output = run.output
    assert run.returncode == 0, output[-6000:]
    # Molecule fails the run when the second converge reports a change, so a zero exit with the idempotence
    # step in the sequence is the idempotence check.
    with open(
        os.path.join(REPO, "roles", "blue_green", "molecule", "default", "molecule.yml"), encoding="utf-8"
    ) as handle:
        sequence = yaml.safe_load(handle)["scenario"]["test_sequence"]
    assert sequence.index("converge") < sequence.index("idempotence") < sequence.index("verify")
    assert "idempotence" in output


def test_molecule_lab_scenario_deploys_to_three_ssh_hosts(
    ansible: Ansible, short_home: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The lab scenario: three namespace hosts over SSH with nginx in front (lab.py --router), converge,
    idempotence, and a verify that asks every host's live slot and the router."""
    lab = lab_harness.up(3, str(tmp_path_factory.mktemp("molecule-lab")), router=True)
    try:
        run = run_molecule(
            ansible,
            "blue_green",
            "lab",
            {
                "RELOPS_LAB_INVENTORY": lab.inventory,
                "MOLECULE_NO_LOG": "false",
                "HOME": short_home,
                "XDG_CACHE_HOME": os.path.join(ansible.workdir, "cache-lab"),
            },
            timeout=1200,
        )
    finally:
        lab_harness.down(lab)
    output = run.output
    assert run.returncode == 0, output[-6000:]
    assert "idempotence" in output and "Verify - every lab host serves" in output
    for host in ("lab1", "lab2", "lab3"):
        assert "ok: [%s]" % host in output or "changed: [%s]" % host in output, host
