"""traffic_router on nginx after a run was killed between writing the upstream file and reloading nginx
(kill -9 mid-switch, issue 10): the next task on that upstream finishes the change, so the file and
what nginx serves agree again and a rerun's blue-green flow reads the truth."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures.artifact_tasks import run_task
from fixtures.playbooks import Ansible
from fixtures.routers import Backend, RouterFactory

from ansible_collections.relops.release.plugins.module_utils.routers import (
    nginx_pending_marker,
    normalize_servers,
    render_nginx_upstream,
)


def serve(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": name}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def slots() -> Iterator[dict[str, int]]:
    servers = {name: serve(name) for name in ("blue", "green")}
    yield {name: int(server.server_address[1]) for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


def servers_for(ports: dict[str, int], live: str) -> list[dict[str, object]]:
    return [
        {"name": slot, "address": "127.0.0.1:%d" % port, "state": "ready" if slot == live else "maint", "weight": 1}
        for slot, port in sorted(ports.items())
    ]


def version_through(router: object) -> str:
    status, body = router.get()  # type: ignore[attr-defined]
    return str(json.loads(body)["version"]) if status == 200 else "HTTP %d" % status


def wait_version(router: object, wanted: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = version_through(router)
        if seen == wanted:
            return seen
        time.sleep(0.2)
    return seen


def interrupt_switch(upstream: str, name: str, servers: list[dict[str, object]]) -> None:
    """Leave what a run killed after writing the upstream file and before the reload leaves."""
    with open(upstream, encoding="utf-8") as handle:
        before = handle.read()
    with open(nginx_pending_marker(upstream), "w", encoding="utf-8") as handle:
        handle.write(before)
    with open(upstream, "w", encoding="utf-8") as handle:
        handle.write(render_nginx_upstream(name, normalize_servers(servers, "nginx"), []))


@pytest.mark.parametrize("next_task", ["query", "present"])
def test_the_next_task_finishes_a_switch_a_killed_run_left_unloaded(
    ansible: Ansible, router_factory: RouterFactory, slots: dict[str, int], next_task: str
) -> None:
    router = router_factory("nginx", "app", [Backend(s, "127.0.0.1:%d" % p) for s, p in sorted(slots.items())])
    upstream = str(router.nginx_upstream_file)
    base = {"router": "nginx", "name": "app", "nginx_upstream_file": upstream, "nginx_conf": router.nginx_conf}
    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": servers_for(slots, "blue")}
    )
    assert code == 0 and result["changed"] and not result["interrupted_change"], output
    assert wait_version(router, "blue") == "blue"

    interrupt_switch(upstream, "app", servers_for(slots, "green"))
    assert version_through(router) == "blue", "the file says green, nginx still serves blue"

    args = {**base, "state": "query"} if next_task == "query" else {**base, "servers": servers_for(slots, "green")}
    code, result, output = run_task(ansible, "relops.release.traffic_router", args)
    assert code == 0 and result["changed"] and result["interrupted_change"], output
    assert {s["name"]: s["state"] for s in result["servers"]} == {"blue": "maint", "green": "ready"}
    assert wait_version(router, "green") == "green", "nginx now serves what the file says"

    code, result, output = run_task(ansible, "relops.release.traffic_router", {**base, "state": "query"})
    assert code == 0 and not result["changed"] and not result["interrupted_change"], output


def test_check_mode_reports_the_interrupted_switch_without_finishing_it(
    ansible: Ansible, router_factory: RouterFactory, slots: dict[str, int]
) -> None:
    router = router_factory("nginx", "app", [Backend(s, "127.0.0.1:%d" % p) for s, p in sorted(slots.items())])
    upstream = str(router.nginx_upstream_file)
    base = {"router": "nginx", "name": "app", "nginx_upstream_file": upstream, "nginx_conf": router.nginx_conf}
    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": servers_for(slots, "blue")}
    )
    assert code == 0, output
    assert wait_version(router, "blue") == "blue"
    interrupt_switch(upstream, "app", servers_for(slots, "green"))
    code, result, output = run_task(
        ansible, "relops.release.traffic_router", {**base, "servers": servers_for(slots, "green")}, "--check"
    )
    assert code == 0 and result["changed"] and result["interrupted_change"], output
    time.sleep(1)
    assert version_through(router) == "blue", "check mode reloads nothing"
