"""The blue_green role's Molecule scenarios (default driver, managed: false): `default` on localhost and
`lab` on three lab hosts over SSH, each with its idempotence step, run the way CI runs them."""

from __future__ import annotations

import os

import pytest
import yaml
from fixtures.lab import lab_harness
from fixtures.molecule import install_for_user, run_installed_molecule, run_molecule
from fixtures.playbooks import BIN, Ansible
from fixtures.routers import free_port

# The two Molecule scenarios run one after the other, in one xdist worker (`--dist loadgroup`):
# run at the same time, the canary scenario failed.
pytestmark = pytest.mark.xdist_group("molecule")


def test_molecule_default_scenario_converges_idempotently(collection_tarball: str, short_home: str) -> None:
    """As someone who installed the collection runs it: the tarball installed into the default
    ~/.ansible/collections of a fresh HOME, `molecule test` from the role's directory there, with no
    ansible.cfg of this repository, no ANSIBLE_COLLECTIONS_PATH and the scenario's default target Python."""
    collection = install_for_user(collection_tarball, short_home)
    run = run_installed_molecule(
        collection,
        "blue_green",
        "default",
        short_home,
        {
            "RELOPS_MOLECULE_PORT_BASE": str(free_port()),
            # supervisord is a Python package of this venv; a user has it on PATH, which BIN is here too.
            "RELOPS_MOLECULE_BIN": BIN,
            "MOLECULE_NO_LOG": "false",
            # The home is short: the scenario's supervisord socket lives under it, and AF_UNIX paths hold
            # 107 bytes.
        },
        timeout=1200,
    )
    output = run.output
    assert run.returncode == 0, output[-6000:]
    # Molecule fails the run when the second converge reports a change, so a zero exit with the idempotence
    # step in the sequence is the idempotence check.
    with open(
        os.path.join(collection, "roles", "blue_green", "molecule", "default", "molecule.yml"), encoding="utf-8"
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
