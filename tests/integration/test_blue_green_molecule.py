"""The blue_green role's Molecule scenario (default driver, managed: false, localhost) with its
idempotence step, run the way CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from fixtures.playbooks import Ansible
from fixtures.routers import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def test_molecule_default_scenario_converges_idempotently(ansible: Ansible) -> None:
    port_base = free_port()
    env = ansible.environment(
        {
            "RELOPS_MOLECULE_PORT_BASE": str(port_base),
            "RELOPS_MOLECULE_BIN": VENV_BIN,
            "RELOPS_MOLECULE_PYTHON": sys.executable,
            "MOLECULE_NO_LOG": "false",
        }
    )
    env.pop("ANSIBLE_INVENTORY", None)
    done = subprocess.run(
        [os.path.join(VENV_BIN, "molecule"), "test", "-s", "default"],
        cwd=os.path.join(REPO, "roles", "blue_green"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "idempotence" in output.lower()
    assert "Idempotence completed successfully" in output or "idempotence" in output
