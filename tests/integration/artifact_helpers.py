"""Runs one relops.release artifact task through ansible-playbook and returns its registered result."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

import yaml
from fixtures.playbooks import Ansible


def run_task(
    ansible: Ansible,
    module: str,
    args: dict[str, Any],
    *extra: str,
    hosts: str = "localhost",
    task_options: Optional[dict[str, Any]] = None,
) -> tuple[int, dict[str, Any], str]:
    """Run ``module`` with ``args`` in a one-task play; return (exit code, registered result, output)."""
    result_file = os.path.join(ansible.workdir, "result-%d.json" % time.monotonic_ns())
    play = [
        {
            "name": "Artifact task",
            "hosts": hosts,
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Run %s" % module,
                    module: args,
                    "register": "outcome",
                    "ignore_errors": True,
                    **(task_options or {}),
                },
                {
                    "name": "Keep the result for the test",
                    "ansible.builtin.copy": {
                        "content": "{{ outcome | to_nice_json }}",
                        "dest": result_file,
                        "mode": "0600",
                    },
                    "delegate_to": "localhost",
                    "check_mode": False,
                },
            ],
        }
    ]
    path = os.path.join(ansible.workdir, "artifact-play-%d.yml" % time.monotonic_ns())
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    run = ansible.playbook(path, *extra)
    result: dict[str, Any] = {}
    if os.path.exists(result_file):
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    return run.returncode, result, run.output
