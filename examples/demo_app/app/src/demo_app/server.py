"""The demo service: /health, / and /api/items over a SQLite database (standard library only).

What a release reads is in release.json beside this file (written when the release is built):
its version and the columns of ``items`` it selects. A release that selects a column no
migration created answers /api/items with 500, which is how the demo's broken release fails.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def load_release() -> dict[str, Any]:
    with open(os.path.join(HERE, "release.json"), encoding="utf-8") as handle:
        release: dict[str, Any] = json.load(handle)
    return release


def read_items(database: str, columns: list[str]) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT %s FROM items ORDER BY id" % ", ".join(columns)).fetchall()
    return [dict(row) for row in rows]


def make_handler(config: dict[str, Any], release: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            """Keep the process manager's log quiet."""

        def answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            version = release["version"]
            if self.path in ("/", "/health"):
                self.answer(200, {"status": "ok", "service": "demo-app", "version": version})
            elif self.path == "/api/items":
                try:
                    items = read_items(config["database"], release["columns"])
                except sqlite3.Error as error:
                    self.answer(500, {"error": str(error), "version": version})
                    return
                self.answer(200, {"version": version, "items": items})
            else:
                self.answer(404, {"error": "not found", "version": version})

    return Handler


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    handler = make_handler(config, load_release())
    ThreadingHTTPServer((config.get("bind", "127.0.0.1"), int(config["port"])), handler).serve_forever()


if __name__ == "__main__":
    main()
