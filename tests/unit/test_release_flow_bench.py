"""benchmarks/release_flow.py reads stage times from the audit trail by the release role's task names:
its stage list must match roles/release/tasks/main.yml, and the stage arithmetic must be right."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "release_flow_bench", os.path.join(REPO, "benchmarks", "release_flow.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def role_task_names() -> list[str]:
    """Names of the release role's own tasks in main.yml, blocks opened (block, rescue, always)."""
    with open(os.path.join(REPO, "roles", "release", "tasks", "main.yml"), encoding="utf-8") as handle:
        pending: list[Any] = list(yaml.safe_load(handle))
    names = []
    while pending:
        task = pending.pop(0)
        names.append(task["name"])
        for part in ("block", "rescue", "always"):
            pending[:0] = task.get(part, [])
    return names


def test_every_stage_opens_at_exactly_one_task_of_the_role(bench: ModuleType) -> None:
    names = role_task_names()
    for prefix, stage in bench.STAGE_TASKS:
        matching = [name for name in names if name.startswith(prefix)]
        assert len(matching) == 1, "stage %s: %r matches %r in roles/release/tasks/main.yml" % (stage, prefix, matching)


def test_every_stage_is_classified(bench: ModuleType) -> None:
    stages = {stage for _prefix, stage in bench.STAGE_TASKS}
    overhead = set(bench.GOVERNANCE_STAGES) | set(bench.LEDGER_STAGES)
    assert overhead <= stages
    assert not set(bench.GOVERNANCE_STAGES) & set(bench.LEDGER_STAGES)


def test_stage_of_reads_role_prefixed_names(bench: ModuleType) -> None:
    assert bench.stage_of("relops.release.release : Gate the release") == "gate"
    assert bench.stage_of("release : Deploy with the chosen strategy, {{ release_chosen_strategy }}") is None
    assert bench.stage_of("release : Choose the deployment strategy") == "deploy"
    # Another role's task, or a task of an included task file, opens no stage.
    assert bench.stage_of("relops.release.blue_green : Gate the release") is None
    assert bench.stage_of("release : Find or open the change") is None
    assert bench.stage_of("Gate the release") is None


def event(kind: str, ts: str, task: str = "") -> dict[str, Any]:
    return {"event": kind, "ts": "2026-11-26T10:00:%sZ" % ts, "task": task}


def test_stage_times_span_from_stage_to_stage(bench: ModuleType) -> None:
    events = [
        event("playbook_start", "00.000000"),
        event("task_start", "01.000000", "relops.release.release : Record the start of the run in the ledger"),
        event("runner_ok", "01.500000", "relops.release.release : Record the start of the run in the ledger"),
        event("task_start", "02.000000", "relops.release.release : Verify the artifact (digest, signatures)"),
        event("task_start", "04.000000", "relops.release.release : Take the release's identity from its manifest"),
        event("task_start", "05.000000", "relops.release.release : Choose the deployment strategy"),
        event("task_start", "06.000000", "relops.release.blue_green : Install the package into the idle slot"),
        event("task_start", "15.000000", "relops.release.release : Record the run as successful"),
        event("task_start", "16.500000", "relops.release.release : Release the service lock"),
        event("playbook_end", "17.000000"),
    ]
    stages, total = bench.stage_times(events)
    assert stages == {
        "startup": 1.0,
        "ledger_run_start": 1.0,
        "verify": 3.0,
        "deploy": 10.0,
        "ledger_run_finish": 1.5,
        "unlock": 0.5,
    }
    assert total == pytest.approx(17.0)
    assert sum(stages.values()) == pytest.approx(total)
