"""relops.release.traffic_router against real nginx and HAProxy, and relops.release.app_process with a real
supervisord, through ansible-playbook on localhost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fixtures.artifact_tasks import run_task
from fixtures.demo_site import wait_for
from fixtures.playbooks import Ansible
from fixtures.routers import Backend, RouterFactory, free_port

from ansible_collections.relops.release.plugins.module_utils.procman import Systemd
from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp

VENV_BIN = os.path.dirname(sys.executable)

APP = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
NAME, PORT = sys.argv[1], int(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": NAME}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
"""


def _process_args(tmp_path: object, name: str, port: int, state: str = "started") -> dict[str, object]:
    app = os.path.join(str(tmp_path), "app.py")
    if not os.path.exists(app):
        with open(app, "w", encoding="utf-8") as handle:
            handle.write(APP)
    return {
        "name": name,
        "state": state,
        "command": [sys.executable, app, name, str(port)],
        "supervisor_dir": os.path.join(str(tmp_path), "supervisor"),
        "supervisord_binary": os.path.join(VENV_BIN, "supervisord"),
        "supervisorctl_binary": os.path.join(VENV_BIN, "supervisorctl"),
        "wait_port": port,
    }


@pytest.fixture
def two_apps(ansible: Ansible, tmp_path: object) -> "dict[str, int]":
    """Two app processes (blue, green) started through app_process under supervisord; stopped afterwards."""
    ports = {"blue": free_port(), "green": free_port()}
    for slot, port in ports.items():
        code, result, output = run_task(ansible, "relops.release.app_process", _process_args(tmp_path, slot, port))
        assert code == 0 and result["changed"] and result["running"], output
    yield ports
    _stop_supervisord(tmp_path)


def _supervisor_status(tmp_path: object, name: str) -> str:
    conf = os.path.join(str(tmp_path), "supervisor", "supervisord.conf")
    done = subprocess.run(
        [os.path.join(VENV_BIN, "supervisorctl"), "-c", conf, "status", name],
        check=False,
        capture_output=True,
        text=True,
    )
    fields = done.stdout.split()
    return fields[1] if len(fields) > 1 else "ABSENT"


def _stop_supervisord(tmp_path: object) -> None:
    """Stop the test's supervisord (and so its programs), waiting until it has exited."""
    pid_file = os.path.join(str(tmp_path), "supervisor", "supervisord.pid")
    if not os.path.exists(pid_file):
        return
    with open(pid_file, encoding="ascii") as handle:
        os.kill(int(handle.read().strip()), 15)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(pid_file):
        time.sleep(0.1)


def _servers(ports: dict[str, int], live: str) -> list[dict[str, object]]:
    return [
        {"name": slot, "address": "127.0.0.1:%d" % port, "state": "ready" if slot == live else "maint", "weight": 1}
        for slot, port in sorted(ports.items())
    ]


def _versions_through(router_get: object, count: int = 8) -> set[str]:
    seen = set()
    for _attempt in range(count):
        status, body = router_get()  # type: ignore[operator]
        assert status == 200, body
        seen.add(json.loads(body)["version"])
    return seen


def _wait_versions(router: object, wanted: set[str], timeout: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = _versions_through(router.get)  # type: ignore[attr-defined]
        if seen == wanted:
            return seen
        time.sleep(0.2)
    return seen


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_switch_check_mode_idempotence_and_query(
    ansible: Ansible, router_factory: RouterFactory, two_apps: dict[str, int], kind: str
) -> None:
    backends = [Backend(slot, "127.0.0.1:%d" % port) for slot, port in sorted(two_apps.items())]
    router = router_factory(kind, "app", backends)
    base = {"router": kind, "name": "app", **_router_options(router)}

    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": _servers(two_apps, "blue")}, "--check", "--diff"
    )
    assert code == 0 and result["changed"], output
    assert "blue" in output and "ready" in output
    assert router.get()[0] in (502, 503), "check mode must not change the router"

    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": _servers(two_apps, "blue")}
    )
    assert code == 0 and result["changed"], output
    assert _wait_versions(router, {"blue"}) == {"blue"}

    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": _servers(two_apps, "blue")}
    )
    assert code == 0 and not result["changed"], output

    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": _servers(two_apps, "green")}
    )
    assert code == 0 and result["changed"], output
    assert _wait_versions(router, {"green"}) == {"green"}

    code, result, output = run_task(ansible, "relops.release.traffic_router", {**base, "state": "query"})
    assert code == 0 and not result["changed"], output
    states = {server["name"]: server["state"] for server in result["servers"]}
    assert states == {"blue": "maint", "green": "ready"}

    # An operator's reload must not undo the switch: nginx reads the file, HAProxy its state file.
    router.reload()
    time.sleep(1)
    assert _wait_versions(router, {"green"}) == {"green"}
    code, result, output = run_task(ansible, "relops.release.traffic_router", {**base, "state": "query"})
    assert {server["name"]: server["state"] for server in result["servers"]} == {"blue": "maint", "green": "ready"}


def _router_options(router: object) -> dict[str, object]:
    values = router.role_vars()  # type: ignore[attr-defined]
    return {
        key: value
        for key, value in values.items()
        if key in ("nginx_upstream_file", "nginx_conf", "haproxy_socket", "haproxy_state_file")
    }


def test_nginx_rejected_config_restores_previous_file(
    ansible: Ansible, router_factory: RouterFactory, two_apps: dict[str, int]
) -> None:
    backends = [Backend(slot, "127.0.0.1:%d" % port) for slot, port in sorted(two_apps.items())]
    router = router_factory("nginx", "app", backends)
    base = {"router": "nginx", "name": "app", **_router_options(router)}
    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": _servers(two_apps, "blue")}
    )
    assert code == 0, output
    with open(str(router.nginx_upstream_file), encoding="utf-8") as handle:
        good = handle.read()
    bad = {**base, "servers": _servers(two_apps, "green"), "nginx_directives": ["no_such_directive on"]}
    code, result, output = run_task(ansible, "relops.release.traffic_router", bad)
    assert result.get("failed"), output
    assert "nginx -t rejected" in result["msg"] and "restored" in result["msg"]
    with open(str(router.nginx_upstream_file), encoding="utf-8") as handle:
        assert handle.read() == good
    assert _wait_versions(router, {"blue"}) == {"blue"}


def test_haproxy_unknown_server_changes_nothing(
    ansible: Ansible, router_factory: RouterFactory, two_apps: dict[str, int]
) -> None:
    backends = [Backend(slot, "127.0.0.1:%d" % port) for slot, port in sorted(two_apps.items())]
    router = router_factory("haproxy", "app", backends)
    base = {"router": "haproxy", "name": "app", **_router_options(router)}
    servers = [*_servers(two_apps, "blue"), {"name": "orange", "address": "127.0.0.1:1", "state": "ready"}]
    _code, result, output = run_task(ansible, "relops.release.traffic_router", {**base, "servers": servers})
    assert result.get("failed"), output
    assert "no server orange" in result["msg"]
    code, result, output = run_task(ansible, "relops.release.traffic_router", {**base, "state": "query"})
    assert code == 0 and {server["state"] for server in result["servers"]} == {"maint"}, output


def test_app_process_lifecycle(ansible: Ansible, tmp_path: object) -> None:
    port = free_port()
    args = _process_args(tmp_path, "solo", port)
    code, result, output = run_task(ansible, "relops.release.app_process", args, "--check", "--diff")
    assert code == 0 and result["changed"] and not os.path.exists(os.path.join(str(tmp_path), "supervisor")), output
    try:
        code, result, output = run_task(ansible, "relops.release.app_process", args)
        assert code == 0 and result["changed"] and result["running"], output
        first_pid = result["pid"]
        code, result, output = run_task(ansible, "relops.release.app_process", args)
        assert code == 0 and not result["changed"] and result["pid"] == first_pid, output
        code, result, output = run_task(ansible, "relops.release.app_process", {**args, "environment": {"X": "1"}})
        assert code == 0 and result["changed"] and result["running"] and result["pid"] != first_pid, output
        code, result, output = run_task(ansible, "relops.release.app_process", {**args, "state": "stopped"})
        assert code == 0 and result["changed"] and not result["running"], output
        code, result, output = run_task(ansible, "relops.release.app_process", {**args, "state": "stopped"})
        assert code == 0 and not result["changed"], output
        code, result, output = run_task(
            ansible, "relops.release.app_process", {**args, "command": ["/bin/false"], "wait_port": None}
        )
        assert result.get("failed") and "could not start solo" in result["msg"], output
    finally:
        _stop_supervisord(tmp_path)


def test_app_process_stop_after_stops_on_the_host_and_a_start_cancels_it(ansible: Ansible, tmp_path: object) -> None:
    port = free_port()
    args = _process_args(tmp_path, "warm", port)
    query = {**args, "state": "query"}
    # Long enough that no Ansible run below races the timer, even on a loaded machine (at a load of 20 on two
    # cores, 120 s ran out before the start that cancels it); the firing is checked with a short one.
    later = {**args, "state": "stopped", "stop_after": 900}
    timer_file = os.path.join(str(tmp_path), "supervisor", "programs", "warm-stop-timer.conf")
    try:
        code, result, output = run_task(ansible, "relops.release.app_process", args)
        assert code == 0 and result["running"], output
        pid = result["pid"]

        code, result, output = run_task(ansible, "relops.release.app_process", later, "--check")
        assert code == 0 and result["changed"] and result["running"], output
        code, result, output = run_task(ansible, "relops.release.app_process", query)
        assert result["stop_at"] is None and not os.path.exists(timer_file), output

        code, result, output = run_task(ansible, "relops.release.app_process", later)
        assert code == 0 and result["changed"] and result["running"] and result["pid"] == pid, output
        deadline = parse_timestamp(result["stop_at"]).timestamp()
        assert abs(deadline - (time.time() + 900)) < 60, output
        # A pending stop is kept: the same task again changes nothing and reports the same time.
        code, again, output = run_task(ansible, "relops.release.app_process", later)
        assert code == 0 and not again["changed"] and again["stop_at"] == result["stop_at"], output
        # The process keeps its definition until the stop, so a different one is refused.
        code, result, output = run_task(ansible, "relops.release.app_process", {**later, "environment": {"X": "1"}})
        assert result.get("failed") and "stop_after keeps warm running as it is defined" in result["msg"], output

        # Starting the process again cancels the pending stop: the timer program is gone.
        code, result, output = run_task(ansible, "relops.release.app_process", args, "--diff")
        assert code == 0 and result["changed"] and result["pid"] == pid and result["stop_at"] is None, output
        assert "stop scheduled: yes" in output
        code, result, output = run_task(ansible, "relops.release.app_process", query)
        assert result["running"] and result["stop_at"] is None and not os.path.exists(timer_file), output

        # The host stops it: no Ansible run is connected while the timer runs out.
        code, result, output = run_task(ansible, "relops.release.app_process", {**later, "stop_after": 3})
        assert code == 0 and result["changed"] and result["stop_at"], output

        # Asked straight from supervisord, so the polling does not load the machine with Ansible runs.
        wait_for(lambda: _supervisor_status(tmp_path, "warm") == "STOPPED", 60, "the timer to stop the process", 0.2)
        code, result, output = run_task(ansible, "relops.release.app_process", query)
        assert result["status"] == "STOPPED" and result["stop_at"] is None, output
        # The next start clears the fired timer's program.
        code, result, output = run_task(ansible, "relops.release.app_process", args)
        assert code == 0 and result["changed"] and result["running"] and not os.path.exists(timer_file), output

        # The module fails with its argument checks' message; the other checks (a negative stop_after, a name
        # ending in -stop-timer) are unit tests of the same function (tests/unit/test_routers.py), which spares
        # an ansible-playbook run each.
        code, result, output = run_task(ansible, "relops.release.app_process", {**args, "stop_after": 5})
        assert result.get("failed") and "stop_after only goes with state=stopped" in result["msg"], output
    finally:
        _stop_supervisord(tmp_path)


def test_systemd_unit_passes_systemd_s_own_parser(tmp_path: object) -> None:
    """No systemd runs here (PID 1 is not systemd), but systemd-analyze verify parses a unit as systemd would:
    unknown keys, bad quoting and a missing executable are reported."""
    unit_dir = str(tmp_path)
    text = Systemd(unit_dir).program_config(
        "app-green",
        [sys.executable, "my app.py", "$HOME", "100%", 'say "hi"'],
        unit_dir,
        {"GREETING": "a b", "RATIO": "50%"},
        1,
        10,
        "root",
    )
    unit = os.path.join(unit_dir, "app-green.service")
    with open(unit, "w", encoding="utf-8") as handle:
        handle.write(text)
    done = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and unit not in done.stdout + done.stderr, done.stdout + done.stderr

    # The same parser does catch a broken unit, so the check above can fail.
    broken = os.path.join(unit_dir, "broken.service")
    with open(broken, "w", encoding="utf-8") as handle:
        handle.write(text.replace("KillMode=control-group", "KillMode=control-group\nBogusKey=1"))
    done = subprocess.run(["systemd-analyze", "verify", broken], capture_output=True, text=True, check=False)
    assert "Unknown key 'BogusKey'" in done.stdout + done.stderr
