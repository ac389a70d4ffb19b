#!/usr/bin/env bash
# Stop the demo's nginx and supervisord (only the ones started from the demo's state directory).
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO="${XDG_STATE_HOME:-$HOME/.local/state}/relops/demo"
if [ -f "${DEMO}/nginx/nginx.pid" ]; then
  nginx -c "${DEMO}/nginx/nginx.conf" -s quit 2>/dev/null || true
fi
if [ -S "${DEMO}/site/supervisor/supervisor.sock" ]; then
  "${REPO}/.venv/bin/supervisorctl" -c "${DEMO}/site/supervisor/supervisord.conf" shutdown >/dev/null 2>&1 || true
fi
echo "demo stopped (state kept in ${DEMO})"
