"""A tiny release for the deploy tests: answers its version (from the package manifest) on / and
/health, on the port its rendered config names; /health fails when the config says unhealthy."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
with open(sys.argv[1], encoding="utf-8") as handle:
    CONFIG = json.load(handle)
with open(os.path.join(os.path.dirname(HERE), "manifest.json"), encoding="utf-8") as handle:
    VERSION = json.load(handle)["version"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        healthy = CONFIG.get("healthy", True) or self.path != "/health"
        body = json.dumps({"version": VERSION, "host": CONFIG.get("host"), "slot": CONFIG.get("slot")}).encode()
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        del format, args


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("0.0.0.0", int(CONFIG["port"])), Handler).serve_forever()
