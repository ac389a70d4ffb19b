# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic routers for the deploy roles: an nginx upstream file and HAProxy's runtime API.

Target-safe: standard library only. Both routers take the same server list
(``name``, ``address``, ``weight``, ``state`` in ready/drain/maint, ``backup``)
and answer the same way: what the servers are now, what they would be, and
whether anything changes, so the module can report check mode and diff before
it touches the router.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

STATES = ("ready", "drain", "maint")
MARKER = "# Managed by relops.release.traffic_router; changes made by hand are overwritten."
_NGINX_SERVER = re.compile(
    r"^\s*server\s+(?P<address>\S+)(?P<flags>[^;]*);\s*#\s*relops\s+name=(?P<name>\S+)\s+state=(?P<state>\S+)\s*$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
# HAProxy's srv_admin_state bits (include/haproxy/server-t.h): forced, inherited, resolver and hostname
# maintenance; forced and inherited drain. The "configured" bits (0x04, 0x20) only record that
# haproxy.cfg said `disabled`/`drain`: they stay set after `set server ... state ready` puts it in service.
_MAINT_BITS = 0x01 | 0x02 | 0x40 | 0x80
_DRAIN_BITS = 0x08 | 0x10


class RouterError(RuntimeError):
    """The router refused a change or could not be read; the message names the value and the fix."""


Server = Dict[str, Any]


def normalize_servers(servers: Sequence[Mapping[str, Any]], router: str) -> List[Server]:
    """Check and complete the server list; raise RouterError naming the offending entry."""
    result: List[Server] = []
    seen = set()
    for index, raw in enumerate(servers):
        name = str(raw.get("name") or "")
        if not _NAME.match(name):
            raise RouterError(
                "servers[%d] has the name %r; use letters, digits, '_', '.', ':' or '-' (e.g. web1-blue)"
                % (index, name)
            )
        if name in seen:
            raise RouterError(
                "servers[%d]: the name %r is listed twice; each server needs its own name" % (index, name)
            )
        seen.add(name)
        state = str(raw.get("state") or "ready")
        if state not in STATES:
            raise RouterError("server %s has state %r; use one of %s" % (name, state, ", ".join(STATES)))
        weight = raw.get("weight", 1)
        if weight is None:
            weight = 1
        try:
            weight = int(weight)
        except (TypeError, ValueError):
            raise RouterError("server %s has weight %r; use a whole number from 0 to 256" % (name, weight)) from None
        if not 0 <= weight <= 256:
            raise RouterError("server %s has weight %d; use a whole number from 0 to 256" % (name, weight))
        address = raw.get("address")
        if address is not None:
            split_address(str(address), name)
        elif router == "nginx":
            raise RouterError("server %s has no address; nginx needs host:port for every server" % name)
        result.append(
            {
                "name": name,
                "address": None if address is None else str(address),
                "weight": weight,
                "state": state,
                "backup": bool(raw.get("backup", False)),
            }
        )
    return result


def split_address(address: str, name: str = "") -> Tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RouterError("server %s has the address %r; write host:port, e.g. 10.0.0.5:8001" % (name, address))
    return host.strip("[]"), int(port)


def describe(servers: Sequence[Mapping[str, Any]]) -> str:
    """One line per server, sorted by name: the text the diff shows."""
    lines = []
    for server in sorted(servers, key=lambda item: str(item["name"])):
        lines.append(
            "%s %s state=%s weight=%s%s"
            % (
                server["name"],
                server.get("address") or "-",
                server["state"],
                server["weight"],
                " backup" if server.get("backup") else "",
            )
        )
    return "\n".join(lines) + ("\n" if lines else "")


# nginx


def render_nginx_upstream(name: str, servers: Sequence[Mapping[str, Any]], directives: Sequence[str] = ()) -> str:
    """The upstream block. nginx has no drain: drain and maint both render ``down``, and a graceful
    reload lets requests already in flight finish on the old workers."""
    if not _NAME.match(name):
        raise RouterError("upstream name %r is not valid; use letters, digits, '_', '.', ':' or '-'" % name)
    lines = [MARKER, "upstream %s {" % name]
    for directive in directives:
        lines.append("    %s;" % directive.strip().rstrip(";"))
    for server in servers:
        flags = " weight=%d" % max(int(server["weight"]), 1)
        if server["state"] != "ready" or int(server["weight"]) == 0:
            flags += " down"
        if server.get("backup"):
            flags += " backup"
        lines.append(
            "    server %s%s; # relops name=%s state=%s" % (server["address"], flags, server["name"], server["state"])
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def parse_nginx_upstream(text: Optional[str]) -> List[Server]:
    """Read back the servers of an upstream file this module wrote."""
    servers: List[Server] = []
    for line in (text or "").splitlines():
        match = _NGINX_SERVER.match(line)
        if not match:
            continue
        flags = match.group("flags").split()
        weight = 1
        for flag in flags:
            if flag.startswith("weight="):
                weight = int(flag.split("=", 1)[1])
        servers.append(
            {
                "name": match.group("name"),
                "address": match.group("address"),
                "weight": weight,
                "state": match.group("state"),
                "backup": "backup" in flags,
            }
        )
    return servers


def nginx_command(binary: str, conf: Optional[str], *extra: str) -> List[str]:
    command = [binary]
    if conf:
        command += ["-c", conf]
    return command + list(extra)


def run(command: Sequence[str]) -> Tuple[int, str]:
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        raise RouterError("%s is not installed or not on PATH; install it or set its path" % command[0]) from None
    return done.returncode, (done.stdout + done.stderr).strip()


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".relops-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def nginx_pending_marker(path: str) -> str:
    """The file that says an upstream change was written but nginx may not have loaded it yet."""
    return path + ".relops-pending"


def apply_nginx(path: str, text: str, binary: str, conf: Optional[str], reload: bool) -> None:
    """Write the upstream file, test the whole config, reload; put the old file back if the test fails.

    A marker is written before the upstream file and removed after the reload, so a run killed in
    between (kill -9 mid-switch) leaves it behind, and the next run knows that the file may say more
    than nginx serves (finish_nginx_change).
    """
    before = read_text(path)
    marker = nginx_pending_marker(path)
    write_atomically(marker, before or "")
    write_atomically(path, text)
    code, output = run(nginx_command(binary, conf, "-t", "-q"))
    if code != 0:
        if before is None:
            os.unlink(path)
        else:
            write_atomically(path, before)
        os.unlink(marker)
        raise RouterError(
            "nginx -t rejected the configuration with the new upstream %s, so the previous file was restored: %s"
            % (path, output)
        )
    _reload_nginx(path, binary, conf, reload)
    os.unlink(marker)


def finish_nginx_change(path: str, binary: str, conf: Optional[str], reload: bool) -> None:
    """Finish the change an interrupted run left: test and reload nginx with the upstream file as it is.

    The file was written only after the new servers passed their checks, so nginx is brought to it
    rather than the file back to what nginx may still serve; either way file and nginx agree again.
    """
    code, output = run(nginx_command(binary, conf, "-t", "-q"))
    if code != 0:
        raise RouterError(
            "an interrupted change left %s, which nginx -t rejects: %s; fix the file or put the previous one back "
            "(kept in %s), then remove that file" % (path, output, nginx_pending_marker(path))
        )
    _reload_nginx(path, binary, conf, reload)
    os.unlink(nginx_pending_marker(path))


def _reload_nginx(path: str, binary: str, conf: Optional[str], reload: bool) -> None:
    if not reload:
        return
    code, output = run(nginx_command(binary, conf, "-s", "reload"))
    if code != 0:
        raise RouterError(
            "nginx accepted %s but the graceful reload failed: %s; is nginx running with this config%s?"
            % (path, output, " (%s)" % conf if conf else "")
        )


# HAProxy


def haproxy_command(socket_path: str, command: str, timeout: float = 10.0) -> str:
    """Send one command to HAProxy's admin socket (non-interactive mode) and return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(socket_path)
            conn.sendall(command.encode("ascii") + b"\n")
            chunks = []
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        raise RouterError(
            "cannot talk to HAProxy's admin socket %s (%s); set `stats socket %s level admin` in its global "
            "section and check that HAProxy runs" % (socket_path, exc, socket_path)
        ) from None
    return b"".join(chunks).decode("utf-8", "replace")


def parse_server_states(text: str) -> List[Dict[str, str]]:
    """Rows of ``show servers state`` as dicts keyed by the header's column names."""
    columns: List[str] = []
    rows: List[Dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("# "):
            columns = line[2:].split()
            continue
        fields = line.split()
        if not columns or len(fields) < 8:
            continue
        rows.append(dict(zip(columns, fields, strict=False)))
    return rows


def admin_state(admin: int) -> str:
    """ready, drain or maint from HAProxy's srv_admin_state bit field."""
    return "maint" if admin & _MAINT_BITS else "drain" if admin & _DRAIN_BITS else "ready"


def haproxy_servers(socket_path: str, backend: str) -> List[Server]:
    answer = haproxy_command(socket_path, "show servers state %s" % backend)
    if "Can't find backend" in answer or "No such backend" in answer:
        raise RouterError("HAProxy has no backend %r; declare it in haproxy.cfg with its servers" % backend)
    servers = []
    for row in parse_server_states(answer):
        if row.get("be_name") != backend:
            continue
        state = admin_state(int(row.get("srv_admin_state", "0")))
        port = row.get("srv_port", "0")
        servers.append(
            {
                "name": row["srv_name"],
                "address": "%s:%s" % (row["srv_addr"], port),
                "weight": int(row.get("srv_uweight", "1")),
                "state": state,
                "backup": False,
            }
        )
    return servers


def haproxy_plan(backend: str, current: Sequence[Server], wanted: Sequence[Server]) -> List[str]:
    """Runtime API commands taking ``current`` to ``wanted``: servers becoming ready first, so the
    backend never has fewer ready servers in between than before or after."""
    by_name = {server["name"]: server for server in current}
    missing = [server["name"] for server in wanted if server["name"] not in by_name]
    if missing:
        raise RouterError(
            "HAProxy backend %s has no server %s; declare each in haproxy.cfg (e.g. `server %s 127.0.0.1:1 disabled`) "
            "and reload it once; the runtime API can only change servers that exist"
            % (backend, ", ".join(missing), missing[0])
        )
    first: List[str] = []
    then: List[str] = []
    for server in wanted:
        now = by_name[server["name"]]
        target = "%s/%s" % (backend, server["name"])
        commands: List[str] = []
        if server["address"] and server["address"] != now["address"]:
            host, port = split_address(server["address"], server["name"])
            commands.append("set server %s addr %s port %d" % (target, host, port))
        if server["weight"] != now["weight"]:
            commands.append("set weight %s %d" % (target, server["weight"]))
        if server["state"] != now["state"]:
            commands.append("set server %s state %s" % (target, server["state"]))
        (first if server["state"] == "ready" else then).extend(commands)
    return first + then


def apply_haproxy(socket_path: str, commands: Sequence[str], state_file: Optional[str]) -> None:
    for command in commands:
        answer = haproxy_command(socket_path, command).strip()
        # Successful set commands answer nothing, or an informational "IP changed from" line.
        if answer and not answer.startswith(("IP changed from", "no need to change", "port changed from")):
            raise RouterError("HAProxy refused `%s`: %s" % (command, answer))
    if state_file:
        persist_haproxy_state(socket_path, state_file)


def persist_haproxy_state(socket_path: str, state_file: str) -> bool:
    """Write every backend's server state where ``server-state-file`` points, so a reload keeps it."""
    text = haproxy_command(socket_path, "show servers state")
    if not text.startswith("1"):
        raise RouterError("HAProxy answered `show servers state` with %r; expected format version 1" % text[:80])
    if read_text(state_file) == text:
        return False
    write_atomically(state_file, text, 0o640)
    return True
