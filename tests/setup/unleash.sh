#!/usr/bin/env bash
# Install the Unleash server the feature_flag tests run against (npm, into build/unleash), only when missing.
# Unleash 7.5.1 is the newest release that supports Node.js 20 (Debian 13's nodejs); 7.6 and later need Node 22.
set -euo pipefail
VERSION="${UNLEASH_VERSION:-7.5.1}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${UNLEASH_PREFIX:-$ROOT/build/unleash}"
if [ -f "$PREFIX/node_modules/unleash-server/package.json" ] &&
    grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/unleash-server/package.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "npm is missing: apt-get install -y nodejs npm" >&2; exit 1; }
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "unleash-server@$VERSION"
