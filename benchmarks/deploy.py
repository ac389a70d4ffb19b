"""Blue-green deploy figures (issue 7), on the lab fleet behind a real nginx. Prints one JSON object.

- cutover: a bounded load generator sends requests through nginx while the blue_green role switches the
  lab from v1 to v2; reports failed requests (must be 0) and the seconds from the first answer of the new
  version until the last answer of the old one (the mixed window after the switch).
- fleet: wall time of the same v1 deploy on N lab hosts with forks >= N, against 1 host (ratio; 1.0 would be
  perfect parallelism).

Needs root (network namespaces), nginx and the collection installed (`make install`). Default sizes finish
in about two minutes on a quiet machine; the issue's headline figures:

    .venv/bin/python benchmarks/deploy.py --cutover-hosts 3 --fleet 20 --forks 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# machine.py sits beside this file; the unit tests import this file from elsewhere.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
BIN = os.path.dirname(sys.executable)

import lab as lab_harness  # noqa: E402
import machine  # noqa: E402
from fixtures.bg_app import LoadGenerator, build_package  # noqa: E402
from fixtures.playbooks import Ansible  # noqa: E402
from fixtures.routers import Backend, Router, start_nginx  # noqa: E402

PLAY = """
- name: Blue-green
  hosts: lab
  gather_facts: false
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: relops.release.blue_green
"""
SLOTS = {"blue": 8001, "green": 8002}


def role_vars(router: Router, package: dict[str, Any], ledger: str) -> dict[str, Any]:
    return {
        "ansible_python_interpreter": sys.executable,
        "relops_ledger_url": "sqlite:///%s" % ledger,
        "blue_green_artifact": package["path"],
        "blue_green_checksum": package["digest"],
        "blue_green_environment": "staging",
        "blue_green_root": "{{ relops_lab_root }}/bg-app",
        "blue_green_ports": SLOTS,
        "blue_green_command": [
            "/usr/bin/python3",
            "{{ blue_green_slot_dir }}/payload/app.py",
            "{{ blue_green_slot_dir }}/payload/config/app.json",
        ],
        "blue_green_supervisord_binary": os.path.join(BIN, "supervisord"),
        "blue_green_supervisorctl_binary": os.path.join(BIN, "supervisorctl"),
        "blue_green_router": "nginx",
        "blue_green_router_name": router.name,
        "blue_green_router_url": router.url,
        "blue_green_nginx_upstream_file": router.nginx_upstream_file,
        "blue_green_nginx_conf": router.nginx_conf,
        "blue_green_keep_warm_seconds": 0,
    }


def deploy(ansible: Ansible, lab: lab_harness.Lab, variables: dict[str, Any], forks: int) -> tuple[float, float]:
    """Deploy with the role; return the wall seconds and the machine's busy CPU seconds meanwhile."""
    path = os.path.join(ansible.workdir, "vars-%d.json" % time.monotonic_ns())
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(variables, handle)
    playbook = ansible.write_playbook(PLAY, "deploy.yml")
    started, cpu_before = time.monotonic(), machine.busy_cpu_seconds()
    run = ansible.playbook(playbook, "-i", lab.inventory, "-e", "@" + path, "--forks", str(forks), timeout=3600)
    elapsed, busy = time.monotonic() - started, machine.busy_cpu_seconds() - cpu_before
    if run.returncode != 0:
        raise RuntimeError("deploy failed:\n%s" % run.output[-4000:])
    return elapsed, busy


def with_lab(workdir: str, hosts: int) -> tuple[lab_harness.Lab, Router]:
    lab = lab_harness.up(hosts, os.path.join(workdir, "lab-%d" % time.monotonic_ns()))
    backends = [
        Backend("%s-%s" % (host.name, slot), "%s:%d" % (host.address, port))
        for host in lab.hosts
        for slot, port in SLOTS.items()
    ]
    try:
        router = start_nginx(os.path.join(workdir, "nginx-%d" % lab.lab_id), "bg_app", backends)
    except BaseException:
        lab_harness.down(lab)
        raise
    return lab, router


def cutover(ansible: Ansible, packages: dict[str, dict[str, Any]], hosts: int, workdir: str) -> dict[str, Any]:
    lab, router = with_lab(workdir, hosts)
    try:
        ledger = os.path.join(workdir, "cutover.db")
        deploy(ansible, lab, role_vars(router, packages["1.0.0"], ledger), max(hosts, 5))
        with LoadGenerator(router.url + "/", threads=4, max_seconds=1800) as load:
            while load.report.requests < 20:
                time.sleep(0.1)
            deploy(ansible, lab, role_vars(router, packages["2.0.0"], ledger), max(hosts, 5))
            deadline = time.monotonic() + 60
            while load.last_version() != "2.0.0" and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
        timeline = load.report.timeline
        first_new = min((moment for moment, version in timeline if version == "2.0.0"), default=None)
        last_old = max((moment for moment, version in timeline if version == "1.0.0"), default=None)
        window = max(0.0, last_old - first_new) if first_new is not None and last_old is not None else None
        return {
            "hosts": hosts,
            "requests": load.report.requests,
            "failed_requests": load.report.failures,
            "answers_by_version": dict(load.report.versions),
            "seconds_until_all_new": None if window is None else round(window, 3),
        }
    finally:
        router.stop()
        lab_harness.down(lab)


def fleet(ansible: Ansible, packages: dict[str, dict[str, Any]], size: int, forks: int, workdir: str) -> dict[str, Any]:
    times, busy = {}, {}
    for hosts in (1, size):
        lab, router = with_lab(workdir, hosts)
        try:
            ledger = os.path.join(workdir, "fleet-%d.db" % hosts)
            times[hosts], busy[hosts] = deploy(ansible, lab, role_vars(router, packages["1.0.0"], ledger), forks)
        finally:
            router.stop()
            lab_harness.down(lab)
    return {
        "hosts": size,
        "forks": forks,
        "seconds_one_host": round(times[1], 2),
        "seconds_fleet": round(times[size], 2),
        "ratio_fleet_vs_one": round(times[size] / times[1], 2),
        # Busy CPU seconds of the whole machine during each deploy (controller, sshd, modules and apps
        # all run here), and how much of the cores' capacity the fleet deploy used: near 1.0 means the
        # cores, not the role, set the fleet's wall time.
        "cores": machine.cores(),
        "cpu_busy_seconds_one_host": round(busy[1], 2),
        "cpu_busy_seconds_fleet": round(busy[size], 2),
        "cpu_utilisation_fleet": round(busy[size] / (times[size] * machine.cores()), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutover-hosts", type=int, default=2)
    parser.add_argument("--fleet", type=int, default=3, help="hosts in the fleet run (the issue's figure: 20)")
    parser.add_argument("--forks", type=int, default=20)
    args = parser.parse_args()
    collections = os.path.join(REPO, "build", "collections")
    if not os.path.isdir(os.path.join(collections, "ansible_collections", "relops", "release")):
        print("run `make install` first (the collection must be installed in build/collections)", file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix="relops-bench-deploy-")
    try:
        ansible = Ansible(collections_path=collections, workdir=workdir)
        repository = os.path.join(workdir, "repository")
        packages = {version: build_package(ansible, repository, version) for version in ("1.0.0", "2.0.0")}
        result = {
            "cutover": cutover(ansible, packages, args.cutover_hosts, workdir),
            "fleet": fleet(ansible, packages, args.fleet, max(args.forks, args.fleet), workdir),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
