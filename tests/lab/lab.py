#!/usr/bin/env python
"""The lab fleet: several hosts made of network namespaces on one bridge, each
with its own address and its own sshd, reached over real SSH.

    python tests/lab/lab.py up --hosts 3 --dir /tmp/relops-lab   # prints the inventory path
    python tests/lab/lab.py up --hosts 3 --dir inventories/lab --router   # the lab inventory, nginx in front
    python tests/lab/lab.py down --dir /tmp/relops-lab
    python tests/lab/lab.py down --all                            # every lab this machine still has

A lab host isolates the network only: the hosts share the controller's file
system and process table, so each gets its own deploy root
(``relops_lab_root``) and every process started over SSH runs inside that
host's namespace, with its own loopback and its own address.

Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside for
benchmarking test networks: lab N is 198.18.N.0/24, the bridge (the
controller's side) is .1 and host i is .(10 + i). The bridge has no uplink and
no route leaves it, so lab traffic never leaves this machine. Needs root,
iproute2, openssh-server and ssh-keygen.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

SSHD = "/usr/sbin/sshd"
STATE_FILE = "lab.json"
REGISTRY = "/run/relops-lab"
_NAMESPACE = re.compile(r"^rl\d+-h\d+$")
_BRIDGE = re.compile(r"^rlbr\d+$")


class LabError(RuntimeError):
    """A lab could not be brought up or torn down; the message says what to do."""


@dataclass
class LabHost:
    name: str
    namespace: str
    address: str
    veth: str
    root: str
    sshd_config: str
    sshd_pid_file: str
    sshd_log: str


@dataclass
class Lab:
    lab_id: int
    directory: str
    bridge: str
    gateway: str
    private_key: str
    inventory: str
    hosts: list[LabHost] = field(default_factory=list)
    # With --router: the nginx on the controller in front of every host's two slots (url, name,
    # upstream_file, conf, pid_file), written into the inventory as relops_lab_router_* and friends.
    router: dict[str, str] = field(default_factory=dict)
    # False when the directory existed before (inventories/lab keeps its group_vars): down then removes
    # only what up wrote there.
    owns_directory: bool = True

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError("lab %d has no host %r; hosts are %s" % (self.lab_id, name, [h.name for h in self.hosts]))

    def save(self) -> None:
        document = json.dumps(asdict(self), indent=2)
        with open(os.path.join(self.directory, STATE_FILE), "w", encoding="utf-8") as handle:
            handle.write(document)
        os.makedirs(REGISTRY, exist_ok=True)
        with open(os.path.join(REGISTRY, "%d.json" % self.lab_id), "w", encoding="utf-8") as handle:
            handle.write(document)


def load_lab(directory: str) -> Lab:
    with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as handle:
        data = json.load(handle)
    hosts = [LabHost(**host) for host in data.pop("hosts")]
    return Lab(hosts=hosts, **data)


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError("%s failed (exit %d): %s" % (" ".join(command), done.returncode, done.stderr.strip()))
    return done


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth, sshd); run the tests as root")
    for tool in ("ip", "ssh-keygen", SSHD):
        if shutil.which(tool) is None and not os.path.exists(tool):
            raise LabError("%s not found; run `make setup` (it installs iproute2 and openssh-server)" % tool)


def _claim_bridge() -> tuple[int, str]:
    """Create the lab's bridge under the first free lab number (several labs may run at once)."""
    for lab_id in range(1, 250):
        bridge = "rlbr%d" % lab_id
        if _run("ip", "link", "add", bridge, "type", "bridge", check=False).returncode == 0:
            return lab_id, bridge
    raise LabError("no free lab number (rlbr1..rlbr249 all exist); run `python tests/lab/lab.py down --all`")


def up(count: int, directory: str, router: bool = False) -> Lab:
    """Bring up ``count`` hosts (and, with ``router``, nginx in front of them); write their inventory;
    return the lab."""
    check_prerequisites()
    owns_directory = not os.path.exists(directory)
    os.makedirs(directory, exist_ok=True)
    lab_id, bridge = _claim_bridge()
    lab = Lab(
        lab_id=lab_id,
        directory=os.path.abspath(directory),
        bridge=bridge,
        gateway="198.18.%d.1" % lab_id,
        private_key=os.path.join(os.path.abspath(directory), "id_ed25519"),
        inventory=os.path.join(os.path.abspath(directory), "hosts.yml"),
        owns_directory=owns_directory,
    )
    try:
        lab.save()
        _run("ip", "addr", "add", "%s/24" % lab.gateway, "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        _make_keys(lab)
        for number in range(1, count + 1):
            lab.hosts.append(_add_host(lab, number))
            lab.save()
        for host in lab.hosts:
            start_sshd(host)
        for host in lab.hosts:
            wait_for_ssh(host)
        if router:
            lab.router = start_router(lab)
        write_inventory(lab)
        lab.save()
    except BaseException:
        down(lab)
        raise
    return lab


def start_router(lab: Lab) -> dict[str, str]:
    """nginx on a free 127.0.0.1 port in front of every host's blue and green slot (the ports of
    inventories/lab/group_vars/lab.yml), named demo_app as the blue_green role expects there."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fixtures.lab import lab_backends  # noqa: PLC0415 (only --router needs nginx and the fixtures)
    from fixtures.routers import start_nginx  # noqa: PLC0415

    nginx = start_nginx(os.path.join(lab.directory, "nginx"), "demo_app", lab_backends(lab))
    return {
        "url": nginx.url,
        "name": nginx.name,
        "upstream_file": str(nginx.nginx_upstream_file),
        "conf": str(nginx.nginx_conf),
        "pid_file": os.path.join(lab.directory, "nginx", "nginx.pid"),
    }


def stop_router(lab: Lab) -> None:
    pid = read_pid(lab.router["pid_file"]) if lab.router else None
    if pid is not None and is_running(pid):
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and is_running(pid):
            time.sleep(0.05)


def _make_keys(lab: Lab) -> None:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "relops-lab-%d" % lab.lab_id, "-f", lab.private_key)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(lab.directory, "ssh_host_ed25519_key"))
    shutil.copyfile(lab.private_key + ".pub", os.path.join(lab.directory, "authorized_keys"))


def _add_host(lab: Lab, number: int) -> LabHost:
    name = "lab%d" % number
    folder = os.path.join(lab.directory, name)
    os.makedirs(os.path.join(folder, "root"), exist_ok=True)
    host = LabHost(
        name=name,
        namespace="rl%d-h%d" % (lab.lab_id, number),
        address="198.18.%d.%d" % (lab.lab_id, 10 + number),
        veth="rl%dh%d" % (lab.lab_id, number),
        root=os.path.join(folder, "root"),
        sshd_config=os.path.join(folder, "sshd_config"),
        sshd_pid_file=os.path.join(folder, "sshd.pid"),
        sshd_log=os.path.join(folder, "sshd.log"),
    )
    _run("ip", "netns", "add", host.namespace)
    _run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
    _run("ip", "link", "set", host.veth, "master", lab.bridge)
    _run("ip", "link", "set", host.veth, "up")
    inside = ("ip", "netns", "exec", host.namespace)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", "%s/24" % host.address, "dev", "eth0")
    _run(*inside, "ip", "link", "set", "eth0", "up")
    _write_sshd_config(lab, host)
    return host


def _write_sshd_config(lab: Lab, host: LabHost) -> None:
    settings = [
        "Port 22",
        "ListenAddress %s" % host.address,
        "HostKey %s" % os.path.join(lab.directory, "ssh_host_ed25519_key"),
        "PidFile %s" % host.sshd_pid_file,
        "AuthorizedKeysFile %s" % os.path.join(lab.directory, "authorized_keys"),
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The lab's files live in a temporary directory whose modes sshd's strict checks reject.
        "StrictModes no",
        "PrintMotd no",
        "MaxStartups 200",
        "MaxSessions 50",
        "Subsystem sftp internal-sftp",
    ]
    with open(host.sshd_config, "w", encoding="utf-8") as handle:
        handle.write("\n".join(settings) + "\n")


def start_sshd(host: LabHost) -> None:
    """Start (or restart) the host's sshd inside its namespace."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    _run("ip", "netns", "exec", host.namespace, SSHD, "-f", host.sshd_config, "-E", host.sshd_log)


def stop_sshd(host: LabHost) -> None:
    """Stop the host's sshd, making the host unreachable over SSH."""
    pid = read_pid(host.sshd_pid_file)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_running(pid):
        time.sleep(0.05)
    if os.path.exists(host.sshd_pid_file):
        os.unlink(host.sshd_pid_file)


def wait_for_ssh(host: LabHost, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, 22), timeout=1) as conn:
                if conn.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    log = "(no log)"
    if os.path.exists(host.sshd_log):
        with open(host.sshd_log, encoding="utf-8") as handle:
            log = handle.read()
    raise LabError("sshd of %s (%s) did not answer within %ss: %s" % (host.name, host.address, timeout, log[-500:]))


def write_inventory(lab: Lab) -> None:
    """Write a YAML inventory (JSON is YAML) for the lab's hosts."""
    hosts = {host.name: {"ansible_host": host.address, "relops_lab_root": host.root} for host in lab.hosts}
    inventory = {
        "all": {
            "children": {
                "lab": {
                    "hosts": hosts,
                    "vars": {
                        "ansible_user": "root",
                        "ansible_ssh_private_key_file": lab.private_key,
                        "ansible_ssh_common_args": (
                            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                            " -o ConnectTimeout=5"
                        ),
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "relops_lab_gateway": lab.gateway,
                        **_router_vars(lab),
                    },
                }
            }
        }
    }
    with open(lab.inventory, "w", encoding="utf-8") as handle:
        json.dump(inventory, handle, indent=2)


def _router_vars(lab: Lab) -> dict[str, str]:
    if not lab.router:
        return {}
    return {
        "relops_lab_router_url": lab.router["url"],
        "relops_lab_nginx_upstream_file": lab.router["upstream_file"],
        "relops_lab_nginx_conf": lab.router["conf"],
    }


def down(lab: Lab) -> None:
    """Tear a lab down completely: router, sshds, namespaces, links, bridge, files."""
    stop_router(lab)
    for host in lab.hosts:
        stop_sshd(host)
        _kill_namespace_processes(host.namespace)
        _run("ip", "netns", "del", host.namespace, check=False)
        _run("ip", "link", "del", host.veth, check=False)
    _run("ip", "link", "del", lab.bridge, check=False)
    registry_entry = os.path.join(REGISTRY, "%d.json" % lab.lab_id)
    if os.path.exists(registry_entry):
        os.unlink(registry_entry)
    if lab.owns_directory:
        shutil.rmtree(lab.directory, ignore_errors=True)
        return
    for name in (STATE_FILE, "hosts.yml", "authorized_keys", "id_ed25519", "ssh_host_ed25519_key"):
        if os.path.exists(os.path.join(lab.directory, name)):
            os.unlink(os.path.join(lab.directory, name))
        if os.path.exists(os.path.join(lab.directory, name + ".pub")):
            os.unlink(os.path.join(lab.directory, name + ".pub"))
    for folder in ["nginx"] + [host.name for host in lab.hosts]:
        shutil.rmtree(os.path.join(lab.directory, folder), ignore_errors=True)


def down_all() -> int:
    """Remove every lab this machine still has (after a crashed test run)."""
    removed = 0
    for entry in glob.glob(os.path.join(REGISTRY, "*.json")):
        with open(entry, encoding="utf-8") as handle:
            data = json.load(handle)
        hosts = [LabHost(**host) for host in data.pop("hosts")]
        down(Lab(hosts=hosts, **data))
        removed += 1
    for namespace in _run("ip", "netns", "list", check=False).stdout.split():
        if _NAMESPACE.match(namespace):
            _kill_namespace_processes(namespace)
            _run("ip", "netns", "del", namespace, check=False)
    for line in _run("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        name = line.split(":")[1].strip()
        if _BRIDGE.match(name):
            _run("ip", "link", "del", name, check=False)
    return removed


def _kill_namespace_processes(namespace: str) -> None:
    """Processes started over SSH (app slots, supervisord) would outlive the namespace's name otherwise."""
    pids = _run("ip", "netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def read_pid(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """Whether pid runs. A daemon that exited stays a zombie until init reaps it, which the init of these
    machines does only every few seconds; a zombie has exited, so it counts as gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
            # The state follows the command name in parentheses, which may itself hold spaces.
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Bring the relops.release lab fleet up or down.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="bring up N hosts and write their inventory")
    start.add_argument("--hosts", type=int, default=3)
    start.add_argument("--dir", required=True)
    start.add_argument(
        "--router", action="store_true", help="also start nginx on 127.0.0.1 in front of every host's slots"
    )
    stop = commands.add_parser("down", help="tear a lab down")
    target = stop.add_mutually_exclusive_group(required=True)
    target.add_argument("--dir")
    target.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            lab = up(args.hosts, args.dir, router=args.router)
            print(lab.inventory)
        elif args.all:
            print("removed %d lab(s)" % down_all())
        else:
            down(load_lab(args.dir))
    except LabError as error:
        print("lab: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
