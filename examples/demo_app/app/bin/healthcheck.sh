#!/bin/sh
# Exit 0 when the demo app answers on its health endpoint.
exec curl -fsS "http://127.0.0.1:${DEMO_APP_PORT:-8080}/health" >/dev/null
