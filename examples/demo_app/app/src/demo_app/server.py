#!/usr/bin/env python
"""The demo service relops.release deploys (standard library only, so any target's python runs it).

Two ways to start it:

    python -m demo_app.server <config.json>      as a release runs it (config written at deploy)
    python server.py --port 8080 [--version 1.0.0] [--error-ratio 0.1] [--latency 0.05]
                                                 as the health-gate and canary tests run it

The config file holds ``port`` and optionally ``bind``, ``database`` (SQLite file for /api/items),
``service``, ``error_ratio`` and ``latency``. What a release reads is in release.json beside this
file (written when the release is built): its version, the columns of ``items`` it selects and
optionally its own ``error_ratio`` / ``latency``. A release that selects a column no migration
created answers /api/items with 500: that is how the demo's broken release fails its smoke test.

Endpoints:
    GET  /              the service's work: JSON, counted in the metrics, subject to the faults
    GET  /api/items     the items table, counted in the metrics
    GET  /health        health document (status, service, version), not counted; /healthz too
    GET  /metrics       Prometheus text format: demo_requests_total{code}, demo_request_duration_seconds
    GET  /admin/faults  the current fault switches
    POST /admin/faults?error_ratio=0.5&latency=0.2   change them while running

Errors are injected deterministically: with an error ratio r, exactly r of every 1/r requests to /
answers 500, so a Prometheus error ratio settles on r.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# Buckets fine enough around the usual 300 ms objective for histogram_quantile to tell 2x apart.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Faults:
    """The injection switches, safe to change while requests are served."""

    def __init__(self, error_ratio: float, latency: float) -> None:
        self._lock = threading.Lock()
        self.error_ratio = 0.0
        self.latency = 0.0
        self._served = 0
        self.set(error_ratio, latency)

    def set(self, error_ratio: float | None = None, latency: float | None = None) -> None:
        with self._lock:
            if error_ratio is not None:
                self.error_ratio = min(max(error_ratio, 0.0), 1.0)
            if latency is not None:
                self.latency = max(latency, 0.0)

    def next_request(self) -> tuple[bool, float]:
        """Whether the next request fails, and how long it should take."""
        with self._lock:
            self._served += 1
            count, ratio = self._served, self.error_ratio
            fails = math.floor(count * ratio) != math.floor((count - 1) * ratio)
            return fails, self.latency

    def as_dict(self) -> dict[str, float]:
        return {"error_ratio": self.error_ratio, "latency": self.latency}


class Metrics:
    """A request counter by status code and a latency histogram, in Prometheus' text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Both codes exist from the start, so an error-ratio query has data before the first error.
        self.requests = {"200": 0, "500": 0}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[str(code)] = self.requests.get(str(code), 0) + 1
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[index] += 1
            self.count += 1
            self.total += seconds

    def render(self) -> bytes:
        with self._lock:
            lines = [
                "# HELP demo_requests_total Requests served, by HTTP status code.",
                "# TYPE demo_requests_total counter",
                *('demo_requests_total{code="%s"} %d' % item for item in sorted(self.requests.items())),
                "# HELP demo_request_duration_seconds Time to serve a request.",
                "# TYPE demo_request_duration_seconds histogram",
                *(
                    'demo_request_duration_seconds_bucket{le="%s"} %d' % (bound, count)
                    for bound, count in zip(LATENCY_BUCKETS, self.buckets, strict=True)
                ),
                'demo_request_duration_seconds_bucket{le="+Inf"} %d' % self.count,
                "demo_request_duration_seconds_sum %r" % self.total,
                "demo_request_duration_seconds_count %d" % self.count,
            ]
        return ("\n".join(lines) + "\n").encode()


class DemoApp:
    def __init__(self, config: dict[str, Any], release: dict[str, Any]) -> None:
        self.service = str(config.get("service", "demo-app"))
        self.version = str(config.get("version") or release.get("version", "0.0.0"))
        self.database = str(config.get("database") or "")
        self.columns: list[str] = list(release.get("columns", ["id", "name"]))
        # The release's own behaviour (a deliberately faulty build) wins over the deploy-time config.
        self.faults = Faults(
            float(release.get("error_ratio", config.get("error_ratio", 0.0))),
            float(release.get("latency", config.get("latency", 0.0))),
        )
        self.metrics = Metrics()

    def read_items(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute("SELECT %s FROM items ORDER BY id" % ", ".join(self.columns)).fetchall()
        return [dict(row) for row in rows]


def make_handler(app: DemoApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep the process manager's log quiet."""

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path in ("/health", "/healthz"):
                self.send_json(200, {"status": "ok", "service": app.service, "version": app.version})
            elif path == "/metrics":
                self.send_bytes(200, app.metrics.render(), METRICS_TYPE)
            elif path == "/admin/faults":
                self.send_json(200, app.faults.as_dict())
            elif path == "/":
                self.counted(self.serve_work)
            elif path == "/api/items":
                self.counted(self.serve_items)
            else:
                self.send_json(404, {"error": "no such path %s" % path, "version": app.version})

        def do_POST(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path != "/admin/faults":
                self.send_json(404, {"error": "no such path %s" % parts.path})
                return
            query = urllib.parse.parse_qs(parts.query)
            try:
                app.faults.set(
                    error_ratio=float(query["error_ratio"][0]) if "error_ratio" in query else None,
                    latency=float(query["latency"][0]) if "latency" in query else None,
                )
            except ValueError as exc:
                self.send_json(400, {"error": "bad switch value: %s" % exc})
                return
            self.send_json(200, app.faults.as_dict())

        def counted(self, serve: Any) -> None:
            started = time.monotonic()
            code = serve()
            app.metrics.observe(code, time.monotonic() - started)

        def serve_work(self) -> int:
            fails, latency = app.faults.next_request()
            if latency:
                time.sleep(latency)
            document: dict[str, Any] = {"status": "ok", "service": app.service, "version": app.version}
            if fails:
                document = {"error": "injected failure", "service": app.service, "version": app.version}
            return self.send_json(500 if fails else 200, document)

        def serve_items(self) -> int:
            if not app.database:
                return self.send_json(404, {"error": "no database configured", "version": app.version})
            try:
                items = app.read_items()
            except sqlite3.Error as error:
                return self.send_json(500, {"error": str(error), "version": app.version})
            return self.send_json(200, {"version": app.version, "items": items})

        def send_json(self, status: int, document: dict[str, Any]) -> int:
            return self.send_bytes(status, json.dumps(document).encode(), "application/json")

        def send_bytes(self, status: int, body: bytes, content_type: str) -> int:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Service-Version", app.version)
            self.end_headers()
            self.wfile.write(body)
            return status

    return Handler


def load_release() -> dict[str, Any]:
    """release.json beside this file, or nothing when the program runs outside a release tree."""
    try:
        with open(os.path.join(HERE, "release.json"), encoding="utf-8") as handle:
            release: dict[str, Any] = json.load(handle)
    except FileNotFoundError:
        return {}
    return release


def parse_arguments(argv: list[str]) -> dict[str, Any]:
    """The config: a JSON file (as a release runs it) or command-line switches (as tests run it)."""
    if len(argv) == 1 and not argv[0].startswith("-"):
        with open(argv[0], encoding="utf-8") as handle:
            config: dict[str, Any] = json.load(handle)
        return config
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", dest="bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--service", default="demo-app")
    parser.add_argument("--version", default="")
    parser.add_argument("--database", default="")
    parser.add_argument("--error-ratio", dest="error_ratio", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request to /")
    return vars(parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    config = parse_arguments(sys.argv[1:] if argv is None else argv)
    release = load_release() if not config.get("version") else {}
    app = DemoApp(config, release)
    server = ThreadingHTTPServer((config.get("bind") or "127.0.0.1", int(config["port"])), make_handler(app))
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
