"""Release flow figures (issue 10): wall time of one full governed release (playbooks/release.yml), broken
down by stage from the audit trail, and the collection's own overhead (gates, ledger, audit) as a share of
the total. Prints one JSON object.

- release: one release of the demo app (built and signed with playbooks/demo_build.yml), to the local
  inventory by default (nginx and supervisord on free loopback ports), or with ``--lab-hosts N`` to a lab
  fleet of N hosts (tests/lab/lab.py, forks = N) behind nginx on the controller. The audit callback is on;
  each stage's time is read from the trail: from the ``task_start`` of the release role's first task of the
  stage to the first task of the next stage (tasks of included roles count in the stage that included them).
- overhead: the seconds of the governance stages (verify, risk, change, readiness, gate, CMDB, close) and
  of the ledger stages (run record, lock, unlock) as a share of the release, plus the audit trail's own
  cost: the run's events written again through the audit recorder (same HMAC and fsync) and timed.
- baseline, measured in the same run on a second site with the same fleet shape: the same package
  deployed by the blue_green role alone (no gates, no ledger records of a release, no audit callback).
  ``ratio_release_vs_baseline`` is the release's wall time over the baseline's.

Needs nginx, the collection installed (`make install`) and, for ``--lab-hosts``, root (network namespaces).
The default run (one release to this machine) takes about two minutes on a loaded 2-core machine. The
issue's figures:

    .venv/bin/python benchmarks/release_flow.py                   # 1 host, local inventory
    .venv/bin/python benchmarks/release_flow.py --lab-hosts 3     # lab fleets (the issue's: 1 and 20)
    .venv/bin/python benchmarks/release_flow.py --lab-hosts 20

- enforcement (``--enforcement``): what release permits and the gate's evidence reads cost. The same
  releases (1.0.0, then 1.1.0) on two sites of the same shape, one with its environment enforced (the
  gate decides from the record and signs a permit; every host change checks it) and one with the same
  policy not enforcing it, in alternating order; wall seconds and the CPU seconds of each run's own
  process tree (which the machine's other load barely moves), medians and differences:

    .venv/bin/python benchmarks/release_flow.py --enforcement                  # 1 host
    .venv/bin/python benchmarks/release_flow.py --enforcement --lab-hosts 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# machine.py sits beside this file; the unit tests import this file from elsewhere.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
BIN = os.path.dirname(sys.executable)

import lab as lab_harness  # noqa: E402
import machine  # noqa: E402
from fixtures.lab import lab_backends, lab_release_args  # noqa: E402
from fixtures.playbooks import Ansible  # noqa: E402
from fixtures.routers import Router, free_port, start_nginx  # noqa: E402

from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import (  # noqa: E402
    Recorder,
    RecorderSettings,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor  # noqa: E402

RELEASE = os.path.join(REPO, "playbooks", "release.yml")
ROLE_TASKS = os.path.join(REPO, "roles", "release", "tasks", "main.yml")
VERSION = "1.0.0"

# The release role's own tasks (roles/release/tasks/main.yml) that open a stage, by name prefix (names
# with a template are cut before it). Any other task (an included task file's, or another role's) belongs
# to the stage open when it starts. tests/unit/test_release_flow_bench.py keeps this list true to the role.
STAGE_TASKS: tuple[tuple[str, str], ...] = (
    ("Record the start of the run in the ledger", "ledger_run_start"),
    ("Verify the artifact", "verify"),
    ("Make sure the service is a CI in the CMDB", "assess"),
    ("Open the change for this release", "change"),
    ("Review readiness", "readiness"),
    ("Gate the release", "gate"),
    ("Take the service lock", "lock"),
    ("Apply the expand migrations", "migrate_expand"),
    ("Choose the deployment strategy", "deploy"),
    ("Note that traffic has moved", "smoke"),
    ("Health gate on the release's metrics", "health_gate"),
    ("Apply the contract migrations", "migrate_contract"),
    ("Make sure every host is a CI in the CMDB", "cmdb"),
    ("Close the change as successful", "close_change"),
    ("Record the run as successful", "ledger_run_finish"),
    ("Recover from the failure", "recover"),
    ("Release the service lock", "unlock"),
    ("Summarise the release", "summary"),
)
# What counts as the collection's own overhead; the rest (start-up, migrations, deploy, smoke tests,
# summary) is the delivery work a release needs anyway.
GOVERNANCE_STAGES = ("verify", "assess", "change", "readiness", "gate", "health_gate", "cmdb", "close_change")
LEDGER_STAGES = ("ledger_run_start", "lock", "unlock", "ledger_run_finish")

BASELINE_PLAY = """
- name: Deploy with the blue_green role alone
  hosts: "{{ release_hosts | default('all') }}"
  gather_facts: false
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: relops.release.blue_green
      vars:
        blue_green_artifact: "{{ bench_artifact }}"
        blue_green_checksum: "{{ bench_checksum }}"
        blue_green_envelope: "{{ bench_artifact }}.intoto.json"
        blue_green_keyring: "{{ release_keyring }}"
        blue_green_environment: "{{ release_environment }}"
        blue_green_service: "{{ release_service }}"
"""


@dataclass
class Site:
    """One demo site: its own state root (short: supervisord's socket path must fit in 107 bytes), ports,
    and, on a lab fleet, the nginx router and the lab."""

    state: str
    env: dict[str, str]
    extra: list[str] = field(default_factory=list)
    lab: Optional[lab_harness.Lab] = None
    router: Optional[Router] = None

    @property
    def demo(self) -> str:
        return os.path.join(self.state, "relops", "demo")


def stage_of(task: str) -> Optional[str]:
    """Return the stage a release-role task opens, None for any other task."""
    role, sep, name = task.partition(" : ")
    if not sep or role.rsplit(".", 1)[-1] != "release":
        return None
    for prefix, stage in STAGE_TASKS:
        if name.startswith(prefix):
            return stage
    return None


def parse_ts(value: str) -> float:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def stage_times(events: Sequence[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """Seconds per stage of one run's trail events, and the run's seconds from playbook_start to playbook_end."""
    start = next(parse_ts(e["ts"]) for e in events if e["event"] == "playbook_start")
    end = next(parse_ts(e["ts"]) for e in events if e["event"] == "playbook_end")
    stages: dict[str, float] = {}
    current, since = "startup", start
    for event in events:
        if event["event"] != "task_start":
            continue
        stage = stage_of(str(event.get("task", "")))
        if stage is None or stage == current:
            continue
        moment = parse_ts(event["ts"])
        stages[current] = stages.get(current, 0.0) + moment - since
        current, since = stage, moment
    stages[current] = stages.get(current, 0.0) + end - since
    return {name: round(seconds, 3) for name, seconds in stages.items()}, end - start


def read_run(trail: str) -> list[dict[str, Any]]:
    """The events of the trail's last run."""
    with open(trail, encoding="utf-8") as handle:
        events = [json.loads(line) for line in handle if line.strip()]
    run_id = next(e["run_id"] for e in reversed(events) if e["event"] == "playbook_start")
    return [e for e in events if e.get("run_id") == run_id]


def replay_audit(events: Sequence[dict[str, Any]], hmac_key_file: str, directory: str) -> float:
    """Write the run's events again through the audit recorder (HMAC, fsync per task) and time it."""
    base = {"seq", "prev", "ts", "run_id", "actor", "playbook", "event", "mac"}
    recorder = Recorder(
        RecorderSettings(path=os.path.join(directory, "replay.jsonl"), fsync="task", hmac_key_file=hmac_key_file)
    )
    started = time.monotonic()
    recorder.begin_run(Actor(run_id="replay", user="bench", host="controller"), RELEASE, None)
    for event in events:
        if event["event"] == "checkpoint":
            continue
        boundary = "event" if event["event"].startswith(("runner_", "item_", "module_")) else "task"
        recorder.record(event["event"], boundary, {k: v for k, v in event.items() if k not in base})
    recorder.end_run()
    return time.monotonic() - started


def make_site(name: str) -> Site:
    state = tempfile.mkdtemp(prefix="rf-%s-" % name, dir="/tmp")
    env = {
        "XDG_STATE_HOME": state,
        "RELOPS_DEMO_PORT": str(free_port()),
        "RELOPS_DEMO_BLUE_PORT": str(free_port()),
        "RELOPS_DEMO_GREEN_PORT": str(free_port()),
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
    }
    return Site(state=state, env=env)


def build_releases(ansible: Ansible, site: Site) -> dict[str, list[str]]:
    run = ansible.playbook(os.path.join(REPO, "playbooks", "demo_build.yml"), env=site.env, timeout=1200)
    if run.returncode != 0:
        raise RuntimeError("demo_build.yml failed:\n%s" % run.output[-4000:])
    with open(os.path.join(site.demo, "artifacts", "releases.json"), encoding="utf-8") as handle:
        releases: dict[str, list[str]] = json.load(handle)
    return releases


def share_build(source: Site, target: Site) -> None:
    """Give a second site the same signed packages and keys (paths inside are the source's)."""
    for part in ("artifacts", "keys"):
        shutil.copytree(os.path.join(source.demo, part), os.path.join(target.demo, part), dirs_exist_ok=True)
    os.makedirs(os.path.join(target.demo, "data"), exist_ok=True)


def start_local_router(ansible: Ansible, site: Site) -> None:
    subprocess.run(
        [
            os.path.join(BIN, "python"),
            os.path.join(REPO, "scripts", "demo_nginx.py"),
            os.path.join(site.demo, "nginx"),
            site.env["RELOPS_DEMO_PORT"],
        ],
        check=True,
        env=ansible.environment(site.env),
        capture_output=True,
    )


def start_lab(site: Site, workdir: str, hosts: int, build: Site) -> None:
    """Bring a lab of N hosts up with nginx in front of their slots, and point the release at them."""
    site.lab = lab_harness.up(hosts, os.path.join(workdir, "lab-%d" % time.monotonic_ns()))
    site.router = start_nginx(os.path.join(site.state, "nginx"), "demo_app", lab_backends(site.lab))
    site.extra = lab_release_args(site.lab, site.router, build.demo, site.state)


def stop_site(ansible: Ansible, site: Site) -> None:
    if site.router is not None:
        site.router.stop()
    if site.lab is not None:
        lab_harness.down(site.lab)
    subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "demo_stop.sh")],
        env=ansible.environment(site.env),
        check=False,
        capture_output=True,
    )
    shutil.rmtree(site.state, ignore_errors=True)


@contextmanager
def sites(ansible: Ansible) -> Iterator[tuple[Site, Site]]:
    release_site, baseline_site = make_site("rel"), make_site("base")
    try:
        yield release_site, baseline_site
    finally:
        for site in (release_site, baseline_site):
            stop_site(ansible, site)


def timed_playbook(
    ansible: Ansible, site: Site, playbook: str, *args: str, env: Optional[dict[str, str]] = None
) -> tuple[float, float]:
    """Run a playbook; return its wall seconds and the machine's busy CPU seconds meanwhile."""
    elapsed, busy, _own = timed_playbook_cpu(ansible, site, playbook, *args, env=env)
    return elapsed, busy


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_playbook_cpu(
    ansible: Ansible, site: Site, playbook: str, *args: str, env: Optional[dict[str, str]] = None
) -> tuple[float, float, float]:
    """Run a playbook; return its wall seconds, the machine's busy CPU seconds meanwhile, and the CPU
    seconds of the playbook's own process tree (ansible-playbook, its workers and the modules they ran;
    not the daemons it started), which other load on a shared machine barely moves."""
    started, cpu_before, own_before = time.monotonic(), machine.busy_cpu_seconds(), children_cpu_seconds()
    run = ansible.playbook(playbook, *site.extra, *args, env={**site.env, **(env or {})}, timeout=3600)
    elapsed, busy = time.monotonic() - started, machine.busy_cpu_seconds() - cpu_before
    own = children_cpu_seconds() - own_before
    if run.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (os.path.basename(playbook), run.output[-6000:]))
    return elapsed, busy, own


def write_unenforced_policy(ansible: Ansible, directory: str) -> str:
    """The tests' policy for the local inventory with `local` not enforced: no permits issued or checked,
    the gate free to take the caller's word; everything else equal."""
    with open(ansible.environment()["RELOPS_TEST_POLICY"], encoding="utf-8") as handle:
        policy = yaml.safe_load(handle)
    policy["environments"]["local"]["enforced"] = False
    path = os.path.join(directory, "unenforced-policy.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(policy, handle, sort_keys=False)
    return path


def measure_enforcement(ansible: Ansible, workdir: str, lab_hosts: int, repeats: int) -> dict[str, Any]:
    """The same release with the environment enforced (evidence reads, permit signed and checked on every
    host change) and not enforced, on two sites with the same fleet shape, in turns (ABBA...), so both
    meet the same machine. Reports wall and own-CPU medians and the enforced/unenforced differences."""
    unenforced = write_unenforced_policy(ansible, workdir)
    with sites(ansible) as (enforced_site, open_site):
        releases = build_releases(ansible, enforced_site)
        share_build(enforced_site, open_site)
        for site in (enforced_site, open_site):
            if lab_hosts:
                start_lab(site, workdir, lab_hosts, enforced_site)
            else:
                start_local_router(ansible, site)
        samples: dict[str, list[tuple[float, float]]] = {"enforced": [], "unenforced": []}
        versions = [version for version in ("1.0.0", "1.1.0") if version in releases][: max(repeats, 1)]
        for index, version in enumerate(versions):
            artifact, checksum = releases[version]
            args = (
                "-e",
                "release_artifact_repository=%s" % os.path.dirname(artifact),
                "-e",
                "release_artifact=%s" % artifact,
                "-e",
                "release_checksum=%s" % checksum,
                "-e",
                "release_envelope=%s.intoto.json" % artifact,
            )
            order = [("enforced", enforced_site, ()), ("unenforced", open_site, ("-e", "release_policy=" + unenforced))]
            for name, site, extra in order if index % 2 == 0 else list(reversed(order)):
                elapsed, _busy, own = timed_playbook_cpu(ansible, site, RELEASE, *args, *extra)
                samples[name].append((elapsed, own))
    wall = {name: statistics.median(value[0] for value in pairs) for name, pairs in samples.items()}
    cpu = {name: statistics.median(value[1] for value in pairs) for name, pairs in samples.items()}
    return {
        "hosts": lab_hosts or 1,
        "target": "lab" if lab_hosts else "local",
        "releases_each": len(samples["enforced"]),
        "samples_wall_cpu_seconds": {
            name: [[round(a, 2), round(b, 2)] for a, b in pairs] for name, pairs in samples.items()
        },
        "enforced_wall_seconds": round(wall["enforced"], 2),
        "unenforced_wall_seconds": round(wall["unenforced"], 2),
        "enforcement_wall_seconds": round(wall["enforced"] - wall["unenforced"], 2),
        "ratio_wall_enforced_vs_unenforced": round(wall["enforced"] / wall["unenforced"], 3),
        "enforced_own_cpu_seconds": round(cpu["enforced"], 2),
        "unenforced_own_cpu_seconds": round(cpu["unenforced"], 2),
        "enforcement_own_cpu_seconds": round(cpu["enforced"] - cpu["unenforced"], 2),
        "ratio_own_cpu_enforced_vs_unenforced": round(cpu["enforced"] / cpu["unenforced"], 3),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def measure(ansible: Ansible, workdir: str, lab_hosts: int) -> dict[str, Any]:
    with sites(ansible) as (release_site, baseline_site):
        releases = build_releases(ansible, release_site)
        share_build(release_site, baseline_site)
        artifact, checksum = releases[VERSION]
        for site in (release_site, baseline_site):
            if lab_hosts:
                start_lab(site, workdir, lab_hosts, release_site)
            else:
                start_local_router(ansible, site)
        common = ("-e", "release_artifact_repository=%s" % os.path.dirname(artifact))
        baseline_play = ansible.write_playbook(BASELINE_PLAY, "baseline.yml")
        baseline, _baseline_cpu = timed_playbook(
            ansible,
            baseline_site,
            baseline_play,
            *common,
            "-e",
            "bench_artifact=%s" % artifact,
            "-e",
            "bench_checksum=%s" % checksum,
            "-e",
            "release_keyring=%s" % os.path.join(release_site.demo, "keys", "keyring.yml"),
        )
        audit_dir = os.path.join(release_site.state, "audit")
        os.makedirs(audit_dir)
        hmac_key = os.path.join(audit_dir, "hmac.key")
        with open(hmac_key, "w", encoding="utf-8") as handle:
            handle.write(os.urandom(32).hex())
        trail = os.path.join(audit_dir, "audit.jsonl")
        audit_env = {
            "ANSIBLE_CALLBACKS_ENABLED": "relops.release.audit",
            "RELOPS_AUDIT_PATH": trail,
            "RELOPS_AUDIT_HMAC_KEY_FILE": hmac_key,
        }
        release, release_cpu = timed_playbook(
            ansible,
            release_site,
            RELEASE,
            *common,
            "-e",
            "release_artifact=%s" % artifact,
            "-e",
            "release_checksum=%s" % checksum,
            "-e",
            "release_envelope=%s.intoto.json" % artifact,
            env=audit_env,
        )
        events = read_run(trail)
        stages, trail_seconds = stage_times(events)
        audit_seconds = replay_audit(events, hmac_key, workdir)
    governance = sum(stages.get(name, 0.0) for name in GOVERNANCE_STAGES)
    ledger = sum(stages.get(name, 0.0) for name in LEDGER_STAGES)
    overhead = governance + ledger + audit_seconds
    return {
        "hosts": lab_hosts or 1,
        "target": "lab" if lab_hosts else "local",
        "forks": max(lab_hosts, 5),
        "version": VERSION,
        "release_seconds": round(release, 2),
        "release_seconds_in_trail": round(trail_seconds, 2),
        "stages_seconds": stages,
        "audit_events": len(events),
        "overhead": {
            "governance_seconds": round(governance, 2),
            "ledger_seconds": round(ledger, 2),
            "audit_seconds_replayed": round(audit_seconds, 3),
            "total_seconds": round(overhead, 2),
            "share_of_release": round(overhead / release, 3),
        },
        "baseline_blue_green_alone_seconds": round(baseline, 2),
        "ratio_release_vs_baseline": round(release / baseline, 2),
        # The whole machine's busy CPU seconds during the release, and the share of the cores' capacity
        # it used (near 1.0: the cores, not waiting, set the wall time).
        "cores": machine.cores(),
        "release_cpu_busy_seconds": round(release_cpu, 2),
        "release_cpu_utilisation": round(release_cpu / (release * machine.cores()), 2),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-hosts", type=int, default=0, help="release to a lab fleet of N hosts (0: local)")
    parser.add_argument(
        "--enforcement",
        action="store_true",
        help="instead: the release with its environment enforced (permits) against the same release not enforced",
    )
    parser.add_argument("--repeats", type=int, default=2, help="with --enforcement: releases of each kind (1 or 2)")
    args = parser.parse_args()
    collections = os.path.join(REPO, "build", "collections")
    if not os.path.isdir(os.path.join(collections, "ansible_collections", "relops", "release")):
        print("run `make install` first (the collection must be installed in build/collections)", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="relops-bench-release-")
    load_before = [round(value, 2) for value in os.getloadavg()]
    try:
        ansible = Ansible(collections_path=collections, workdir=workdir)
        if args.enforcement:
            result = measure_enforcement(ansible, workdir, args.lab_hosts, args.repeats)
        else:
            result = measure(ansible, workdir, args.lab_hosts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_average_before"] = load_before
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
