#!/usr/bin/env python
"""Start the demo's nginx on 127.0.0.1:<port>, once: the router the demo releases switch.

Usage: demo_nginx.py <directory> <port>. Writes nginx.conf and, when missing, the upstream file in
the traffic_router module's format (both slots down until the first release). An nginx already
running from this directory's pid file is left alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

SLOTS = {
    "blue": int(os.environ.get("RELOPS_DEMO_BLUE_PORT", "8481")),
    "green": int(os.environ.get("RELOPS_DEMO_GREEN_PORT", "8482")),
}


def running(pid_file: str) -> bool:
    try:
        with open(pid_file, encoding="utf-8") as handle:
            os.kill(int(handle.read().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def write_config(directory: str, port: int) -> str:
    upstream = os.path.join(directory, "upstream.conf")
    if not os.path.exists(upstream):
        lines = ["upstream demo_app {"]
        for slot, slot_port in SLOTS.items():
            lines.append(
                "    server 127.0.0.1:%d weight=1 down; # relops name=localhost-%s state=maint" % (slot_port, slot)
            )
        with open(upstream, "w", encoding="utf-8") as handle:
            handle.write("\n".join([*lines, "}"]) + "\n")
    conf = os.path.join(directory, "nginx.conf")
    user = "user root;\n" if os.geteuid() == 0 else ""
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(
            f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {upstream};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://demo_app;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""
        )
    return conf


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nginx does not listen on 127.0.0.1:%d; see its error.log" % port)


def main() -> None:
    directory, port = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    os.makedirs(directory, exist_ok=True)
    conf = write_config(directory, port)
    if running(os.path.join(directory, "nginx.pid")):
        subprocess.run(["nginx", "-c", conf, "-s", "reload"], check=True)
    else:
        subprocess.run(["nginx", "-c", conf], check=True)
    wait_for_port(port)


if __name__ == "__main__":
    main()
