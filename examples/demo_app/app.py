#!/usr/bin/env python
"""The demo service that relops.release deploys: a small HTTP service with
Prometheus metrics and switches that inject errors and latency.

    python examples/demo_app/app.py --port 8080 [--version 1.0.0] [--error-ratio 0.1] [--latency 0.05]

Endpoints:
    GET  /              the service's work: answers JSON, counted in the metrics
    GET  /healthz       health document (status, service, version), not counted
    GET  /metrics       Prometheus metrics (prometheus_client)
    GET  /admin/faults  the current switches
    POST /admin/faults?error_ratio=0.5&latency=0.2
                        change the switches while running (either or both)

Errors are injected deterministically: with an error ratio r, exactly r of
every 1/r requests answers 500, so a Prometheus error ratio settles on r.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# Buckets fine enough around the usual 300 ms objective for histogram_quantile to tell 2x apart.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0)


class Faults:
    """The injection switches, safe to change while requests are served."""

    def __init__(self, error_ratio: float, latency: float) -> None:
        self._lock = threading.Lock()
        self.error_ratio = error_ratio
        self.latency = latency
        self._served = 0

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


class DemoApp:
    def __init__(self, service: str, version: str, faults: Faults) -> None:
        self.service = service
        self.version = version
        self.faults = faults
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "demo_requests", "Requests served, by HTTP status code.", ["code"], registry=self.registry
        )
        self.duration = Histogram(
            "demo_request_duration_seconds", "Time to serve a request.", buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Both series exist from the start, so an error-ratio query has data before the first error.
        for code in ("200", "500"):
            self.requests.labels(code=code)


def make_handler(app: DemoApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/metrics":
                self._send_bytes(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send_json(200, {"status": "ok", "service": app.service, "version": app.version})
            elif path == "/admin/faults":
                self._send_json(200, app.faults.as_dict())
            elif path == "/":
                self._serve_work()
            else:
                self._send_json(404, {"error": "no such path %s" % path})

        def do_POST(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path != "/admin/faults":
                self._send_json(404, {"error": "no such path %s" % parts.path})
                return
            query = urllib.parse.parse_qs(parts.query)
            try:
                app.faults.set(
                    error_ratio=float(query["error_ratio"][0]) if "error_ratio" in query else None,
                    latency=float(query["latency"][0]) if "latency" in query else None,
                )
            except ValueError as exc:
                self._send_json(400, {"error": "bad switch value: %s" % exc})
                return
            self._send_json(200, app.faults.as_dict())

        def _serve_work(self) -> None:
            started = time.monotonic()
            fails, latency = app.faults.next_request()
            if latency:
                time.sleep(latency)
            code = 500 if fails else 200
            document: dict[str, Any] = {"service": app.service, "version": app.version}
            if fails:
                document["error"] = "injected failure"
            self._send_json(code, document)
            app.requests.labels(code=str(code)).inc()
            app.duration.observe(time.monotonic() - started)

        def _send_json(self, status: int, document: dict[str, Any]) -> None:
            self._send_bytes(status, json.dumps(document).encode(), "application/json")

        def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Service-Version", app.version)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--service", default="demo-app")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--error-ratio", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request to /")
    options = parser.parse_args(argv)
    app = DemoApp(options.service, options.version, Faults(options.error_ratio, options.latency))
    server = ThreadingHTTPServer((options.host, options.port), make_handler(app))
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
