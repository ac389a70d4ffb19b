"""The demo service (examples/demo_app/app/src/demo_app/server.py): the one program the demo
releases run and the health-gate and canary tests start with switches."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

SERVER = os.path.join(
    os.path.dirname(__file__), "..", "..", "examples", "demo_app", "app", "src", "demo_app", "server.py"
)


def load_server() -> Any:
    spec = importlib.util.spec_from_file_location("demo_server", SERVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server_module = load_server()


def serve(config: dict[str, Any], release: dict[str, Any]) -> Iterator[str]:
    app = server_module.DemoApp(config, release)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server_module.make_handler(app))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


@pytest.fixture
def database(tmp_path: Any) -> str:
    path = str(tmp_path / "demo.db")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO items VALUES (1, 'teapot')")
    return path


def test_an_error_ratio_settles_exactly_and_is_counted(database: str) -> None:
    for url in serve({"database": database}, {"version": "1.1.0", "error_ratio": 0.25}):
        codes = [get(url + "/")[0] for _request in range(40)]
        assert codes.count(500) == 10 and codes.count(200) == 30
        health = {"status": "ok", "service": "demo-app", "version": "1.1.0"}
        assert get(url + "/health") == (200, json.dumps(health).encode())
        status, body = get(url + "/metrics")
        text = body.decode()
        assert status == 200
        assert 'demo_requests_total{code="500"} 10' in text and 'demo_requests_total{code="200"} 30' in text
        assert 'demo_request_duration_seconds_bucket{le="+Inf"} 40' in text
        assert "demo_request_duration_seconds_count 40" in text


def test_items_answer_500_when_the_release_reads_a_missing_column(database: str) -> None:
    for url in serve({"database": database}, {"version": "1.2.0", "columns": ["id", "name", "price_cents"]}):
        status, body = get(url + "/api/items")
        assert status == 500 and "price_cents" in json.loads(body)["error"]
    for url in serve({"database": database}, {"version": "1.0.0", "columns": ["id", "name"]}):
        assert json.loads(get(url + "/api/items")[1]) == {"version": "1.0.0", "items": [{"id": 1, "name": "teapot"}]}


def test_faults_switch_while_running_and_bad_values_are_refused() -> None:
    for url in serve({}, {"version": "1.0.0"}):
        assert get(url + "/")[0] == 200
        assert json.loads(get(url + "/admin/faults?error_ratio=1", "POST")[1]) == {"error_ratio": 1.0, "latency": 0.0}
        assert get(url + "/")[0] == 500
        status, body = get(url + "/admin/faults?latency=soon", "POST")
        assert status == 400 and "bad switch value" in json.loads(body)["error"]


def test_command_line_switches_and_config_files_give_the_same_config(tmp_path: Any) -> None:
    switches = server_module.parse_arguments(["--port", "9000", "--version", "2.0.0", "--error-ratio", "0.5"])
    assert switches["port"] == 9000 and switches["version"] == "2.0.0" and switches["error_ratio"] == 0.5
    config = tmp_path / "app.json"
    config.write_text(json.dumps({"port": 9001, "database": "/tmp/x.db"}))
    assert server_module.parse_arguments([str(config)]) == {"port": 9001, "database": "/tmp/x.db"}
