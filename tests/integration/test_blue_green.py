"""The relops.release.blue_green role on the lab fleet (three namespace hosts with their own sshd, real SSH),
behind a real nginx or HAProxy on the controller: switch, rerun, rollback, a failing health check, a host lost
mid-deploy, and zero failed requests under load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

import pytest
from fixtures.bg_app import LoadGenerator, build_package
from fixtures.playbooks import Ansible, PlaybookRun
from fixtures.routers import Backend, Router, RouterFactory

from ansible_collections.relops.release.plugins.module_utils.routers import haproxy_servers
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

VENV_BIN = os.path.dirname(sys.executable)
SLOTS = {"blue": 8001, "green": 8002}

PLAY = """
- name: Blue-green
  hosts: lab
  gather_facts: false
  tasks:
    - name: Run the role's entry point
      ansible.builtin.include_role:
        name: relops.release.blue_green
        tasks_from: "{{ entry | default('main') }}"
"""

HANG_HOOK = """
- name: Hold this host until the test takes it away
  ansible.builtin.wait_for:
    path: /nonexistent/relops-never
    timeout: 300
  when: inventory_hostname == hang_host | default('')
"""


class Fleet:
    """A lab, a router in front of it, the packages v1/v2 and the role's variables."""

    def __init__(self, ansible: Ansible, lab: Any, router: Router, repository: str, packages: dict[str, dict]):
        self.ansible = ansible
        self.lab = lab
        self.router = router
        self.repository = repository
        self.packages = packages
        self.ledger_url = "sqlite:///%s" % os.path.join(ansible.workdir, "ledger.db")
        self.playbook = ansible.write_playbook(PLAY, "blue_green.yml")
        self.hook = ansible.write_playbook(HANG_HOOK, "hang_hook.yml")

    def variables(self, version: str, **extra: Any) -> dict[str, Any]:
        router_vars = self.router.role_vars()
        package = self.packages[version]
        values: dict[str, Any] = {
            "relops_ledger_url": self.ledger_url,
            # The hosts share the controller's file system; Debian's python3 (3.11.2) lacks tarfile's data
            # filter, which the safe unpacking helper requires, so the lab hosts run the venv's Python.
            "ansible_python_interpreter": sys.executable,
            "blue_green_artifact": package["path"],
            "blue_green_checksum": package["digest"],
            "blue_green_environment": "staging",
            "blue_green_artifact_repository": self.repository,
            "blue_green_root": "{{ relops_lab_root }}/bg-app",
            "blue_green_ports": SLOTS,
            "blue_green_command": [
                "/usr/bin/python3",
                "{{ blue_green_slot_dir }}/payload/app.py",
                "{{ blue_green_slot_dir }}/payload/config/app.json",
            ],
            "blue_green_supervisord_binary": os.path.join(VENV_BIN, "supervisord"),
            "blue_green_supervisorctl_binary": os.path.join(VENV_BIN, "supervisorctl"),
            "blue_green_router": router_vars["router"],
            "blue_green_router_name": router_vars["router_name"],
            "blue_green_router_url": router_vars["router_url"],
            "blue_green_keep_warm_seconds": 0,
        }
        for key in ("nginx_upstream_file", "nginx_conf", "haproxy_socket", "haproxy_state_file"):
            if key in router_vars:
                values["blue_green_" + key] = router_vars[key]
        values.update(extra)
        return values

    def run(self, version: str, *args: str, **extra: Any) -> PlaybookRun:
        path = os.path.join(self.ansible.workdir, "vars-%d.json" % time.monotonic_ns())
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.variables(version, **extra), handle)
        return self.ansible.playbook(self.playbook, "-i", self.lab.inventory, "-e", "@" + path, *args, timeout=900)

    def versions_through_router(self, count: int = 12) -> dict[str, int]:
        seen: dict[str, int] = {}
        for _attempt in range(count):
            status, body = self.router.get()
            key = json.loads(body)["version"] if status == 200 else "HTTP %d" % status
            seen[key] = seen.get(key, 0) + 1
        return seen

    def live_slots(self) -> dict[str, str]:
        """host -> slot the router sends traffic to, read from the router's own state."""
        if self.router.kind == "nginx":
            with open(str(self.router.nginx_upstream_file), encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            ready = [line.split("name=")[1].split()[0] for line in lines if "state=ready" in line]
        else:
            servers = haproxy_servers(str(self.router.haproxy_socket), self.router.name)
            ready = [server["name"] for server in servers if server["state"] == "ready"]
        return dict(name.rsplit("-", 1) for name in ready)

    def deployments(self) -> list[dict[str, Any]]:
        with open_ledger(parse_ledger_url(self.ledger_url)) as ledger:
            return ledger.list_deployments("bg-app", "staging", 50)


@pytest.fixture(scope="module")
def bg_packages(
    collections_path: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, dict[str, Any]]]:
    """bg-app 1.0.0 and 2.0.0, packaged once for the module (once per xdist worker that runs its tests): the tests
    only read the packages (the role copies them to the hosts), and packaging them for each test cost two
    ansible-playbook runs a test."""
    builder = Ansible(collections_path=collections_path, workdir=str(tmp_path_factory.mktemp("bg-packages")))
    repository = os.path.join(builder.workdir, "repository")
    return repository, {version: build_package(builder, repository, version) for version in ("1.0.0", "2.0.0")}


@pytest.fixture
def fleet_factory(
    ansible: Ansible,
    lab_fleet: Callable[[int], Any],
    router_factory: RouterFactory,
    bg_packages: tuple[str, dict[str, dict[str, Any]]],
) -> Callable[[str], Fleet]:
    repository, packages = bg_packages
    started_labs: list[Any] = []

    def make(kind: str) -> Fleet:
        lab = lab_fleet(3)
        started_labs.append(lab)
        backends = [
            Backend("%s-%s" % (host.name, slot), "%s:%d" % (host.address, port))
            for host in lab.hosts
            for slot, port in SLOTS.items()
        ]
        router = router_factory(kind, "bg_app", backends)
        return Fleet(ansible, lab, router, repository, packages)

    yield make
    # The lab's teardown kills every process in the hosts' namespaces; supervisord is one of them.


def _wait_for(predicate: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %ss" % timeout)
        time.sleep(0.2)


def _changed_count(output: str) -> Optional[int]:
    total = 0
    for line in output.splitlines():
        if "changed=" in line and "ok=" in line:
            total += int(line.split("changed=")[1].split()[0])
    return total


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_switch_rerun_rollback_with_zero_failed_requests(fleet_factory: Callable[[str], Fleet], kind: str) -> None:
    fleet = fleet_factory(kind)
    run = fleet.run("1.0.0")
    assert run.returncode == 0, run.report
    assert fleet.versions_through_router() == {"1.0.0": 12}
    first_slots = fleet.live_slots()
    assert set(first_slots) == {"lab1", "lab2", "lab3"} and set(first_slots.values()) == {"blue"}

    # Check mode names the slot that would change and shows the router diff, and changes nothing.
    run = fleet.run("2.0.0", "--check", "--diff")
    assert run.returncode == 0, run.report
    assert "deploys 2.0.0 into slot green" in run.output
    assert "lab1-green" in run.output and "state=ready" in run.output
    assert fleet.live_slots() == first_slots

    # The fleet barrier is router-independent, so one router's run covers it; it runs on this fleet with 1.0.0
    # live (the state it needs) rather than on a lab of its own, which cost a lab and a 1.0.0 deploy more.
    if kind == "haproxy":
        _check_one_failing_health_check_leaves_every_host_on_v1(fleet)

    # The previous slot stays warm after the switch, so the rollback below is instant. (On haproxy, green already
    # holds 2.0.0 from the failed attempt above, so this deploy restarts lab2's re-rendered slot and switches; the
    # nginx run installs into an empty slot.)
    with LoadGenerator(fleet.router.url + "/", max_seconds=600) as load:
        _wait_for(lambda: load.report.requests > 20)
        run = fleet.run("2.0.0", blue_green_keep_warm_seconds=600)
        assert run.returncode == 0, run.report
        _wait_for(lambda: load.last_version() == "2.0.0")
    assert load.report.failures == 0, load.report.errors
    assert load.report.versions["1.0.0"] > 0 and load.report.versions["2.0.0"] > 0
    assert fleet.versions_through_router() == {"2.0.0": 12}
    assert set(fleet.live_slots().values()) == {"green"}
    status, warm_pid = _slot_process(fleet, "lab1", "blue")
    assert status == "RUNNING" and warm_pid, "the previous slot must stay warm"
    # ...with a timer on the host that will stop it once its warm time is over.
    assert _slot_process(fleet, "lab1", "blue-stop-timer")[0] == "RUNNING"

    rerun = fleet.run("2.0.0", blue_green_keep_warm_seconds=600)
    assert rerun.returncode == 0, rerun.report
    assert _changed_count(rerun.output) == 0, rerun.report

    with LoadGenerator(fleet.router.url + "/", max_seconds=600) as load:
        _wait_for(lambda: load.report.requests > 20)
        run = fleet.run("2.0.0", entry="rollback", blue_green_keep_warm_seconds=20)
        assert run.returncode == 0, run.report
        _wait_for(lambda: load.last_version() == "1.0.0")
    assert load.report.failures == 0, load.report.errors
    assert load.report.versions["2.0.0"] > 0 and load.report.versions["1.0.0"] > 0
    assert fleet.versions_through_router() == {"1.0.0": 12}
    assert set(fleet.live_slots().values()) == {"blue"}
    # Instant: the warm process itself took the traffic back, it was neither reinstalled nor restarted,
    # and starting it again cancelled its stop timer.
    assert _slot_process(fleet, "lab1", "blue") == ("RUNNING", warm_pid)
    assert not os.path.exists(_timer_file(fleet, "lab1", "blue"))

    statuses = [(row["version"], row["status"], row["strategy"]) for row in fleet.deployments()]
    assert statuses == [
        ("1.0.0", "successful", "blue_green_rollback"),
        ("2.0.0", "rolled_back", "blue_green"),
        ("1.0.0", "successful", "blue_green"),
    ]

    # The warm slot's timer and retire do not depend on the router: the nginx run covers them.
    if kind == "nginx":
        _check_the_warm_slot_stops_and_retires(fleet, warm_pid)


def _check_the_warm_slot_stops_and_retires(fleet: Fleet, warm_pid: Optional[int]) -> None:
    """After a rollback onto blue (warm, pid warm_pid), green is warm: its timer stops it, retire forgets it."""
    # Green, warm after the rollback, is stopped by its host's timer with no Ansible run connected.
    for host in ("lab1", "lab2", "lab3"):
        assert _slot_process(fleet, host, "green")[0] == "RUNNING"
        assert _slot_process(fleet, host, "green-stop-timer")[0] == "RUNNING"
    _wait_for(lambda: all(_slot_process(fleet, host, "green")[0] == "STOPPED" for host in ("lab1", "lab2", "lab3")))
    assert _slot_process(fleet, "lab1", "blue") == ("RUNNING", warm_pid)
    # retire then forgets the warm slot.
    run = fleet.run("1.0.0", entry="retire")
    assert run.returncode == 0, run.report
    for host in ("lab1", "lab2", "lab3"):
        assert _slot_process(fleet, host, "green")[0] == "STOPPED"
        assert _slot_process(fleet, host, "blue")[0] == "RUNNING"
        assert not os.path.exists(os.path.join(fleet.lab.host(host).root, "bg-app", "warm.json"))
    assert fleet.versions_through_router() == {"1.0.0": 12}

    # A note left naming the slot that is live (a rollback that failed after its switch) never stops it.
    with open(os.path.join(fleet.lab.host("lab1").root, "bg-app", "warm.json"), "w", encoding="utf-8") as handle:
        json.dump({"slot": "blue", "process": "bg-app-blue", "until": 0}, handle)
    run = fleet.run("1.0.0", entry="retire")
    assert run.returncode == 0, run.report
    assert _slot_process(fleet, "lab1", "blue") == ("RUNNING", warm_pid)
    assert not os.path.exists(os.path.join(fleet.lab.host("lab1").root, "bg-app", "warm.json"))


def _check_one_failing_health_check_leaves_every_host_on_v1(fleet: Fleet) -> None:
    """With 1.0.0 live everywhere and nothing else in the ledger: one host failing its pre-switch health check
    keeps the whole fleet on 1.0.0, and the failed release is never a rollback target."""
    before = fleet.live_slots()
    # lab2 renders its config unhealthy: its idle slot fails the pre-switch health check.
    host_vars = os.path.join(os.path.dirname(fleet.lab.inventory), "host_vars")
    os.makedirs(host_vars, exist_ok=True)
    with open(os.path.join(host_vars, "lab2.yml"), "w", encoding="utf-8") as handle:
        handle.write("bg_app_healthy: false\n")
    run = fleet.run("2.0.0")
    assert run.returncode != 0, run.report
    assert "fleet barrier: 1 of 3 hosts (lab2)" in run.output
    assert fleet.live_slots() == before
    assert fleet.versions_through_router() == {"1.0.0": 12}
    assert [row["status"] for row in fleet.deployments()] == ["successful"]

    # A failed release is never a rollback target: rolling back from v1 finds nothing.
    os.unlink(os.path.join(host_vars, "lab2.yml"))
    run = fleet.run("1.0.0", entry="rollback")
    assert run.returncode != 0 and "no rollback target" in run.output, run.report


@pytest.mark.parametrize("tolerance", [0, 34])
def test_host_lost_mid_deploy_leaves_fleet_consistent(fleet_factory: Callable[[str], Fleet], tolerance: int) -> None:
    fleet = fleet_factory("nginx")
    assert fleet.run("1.0.0").returncode == 0
    lab2 = fleet.lab.host("lab2")
    marker = os.path.join(lab2.root, "bg-app", "slots", "green", ".relops-slot.json")
    process = fleet.ansible.start_playbook(
        fleet.playbook,
        "-i",
        fleet.lab.inventory,
        "-e",
        json.dumps(
            fleet.variables(
                "2.0.0",
                blue_green_hooks={"after_install": fleet.hook},
                hang_host="lab2",
                blue_green_max_fail_percentage=tolerance,
            )
        ),
    )
    try:
        _wait_for(lambda: os.path.exists(marker), timeout=300)
        time.sleep(1)
        _kill_sshd(lab2.namespace)
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    output = stdout + stderr
    live = fleet.live_slots()
    seen = fleet.versions_through_router()
    if tolerance == 0:
        assert process.returncode != 0, output
        assert "fleet barrier: 1 of 3 hosts (lab2)" in output
        assert live == {"lab1": "blue", "lab2": "blue", "lab3": "blue"} and seen == {"1.0.0": 12}
    else:
        assert "UNREACHABLE" in output or "unreachable=1" in output, output
        # lab2 is out of rotation; every answer comes from the new version.
        assert live == {"lab1": "green", "lab3": "green"} and seen == {"2.0.0": 12}
        assert fleet.deployments()[0]["details"]["excluded"] == ["lab2"]


def _kill_sshd(namespace: str) -> None:
    """Stop every sshd of one lab host (the listener and the sessions Ansible holds open)."""
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False)
    for pid in pids.stdout.split():
        try:
            with open("/proc/%s/comm" % pid, encoding="utf-8") as handle:
                if handle.read().strip() == "sshd":
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def _timer_file(fleet: Fleet, host: str, slot: str) -> str:
    """The supervisord program file of the timer that stops a warm slot."""
    return os.path.join(
        fleet.lab.host(host).root, "bg-app", "supervisor", "programs", "bg-app-%s-stop-timer.conf" % slot
    )


def _slot_process(fleet: Fleet, host: str, slot: str) -> tuple[str, Optional[int]]:
    """(status, pid) of a slot's process, asked from the host's supervisord over its UNIX socket."""
    root = os.path.join(fleet.lab.host(host).root, "bg-app")
    conf = os.path.join(root, "supervisor", "supervisord.conf")
    done = subprocess.run(
        [os.path.join(VENV_BIN, "supervisorctl"), "-c", conf, "status", "bg-app-%s" % slot],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = done.stdout.split()
    pid = int(fields[3].rstrip(",")) if len(fields) > 3 and fields[2] == "pid" else None
    return (fields[1] if len(fields) > 1 else "ABSENT"), pid
