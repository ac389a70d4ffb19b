#!/usr/bin/env bash
# Installs the system packages the tests and the demo need, only when missing,
# so that `make setup` is idempotent and works on a fresh Debian machine.
set -euo pipefail

missing=()
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null; }
have_postgres || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v git >/dev/null || missing+=(git)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
# ansible-test sanity skips its shellcheck test, silently, without the program.
command -v shellcheck >/dev/null || missing+=(shellcheck)
# The audit callback's syslog sink is tested against a real rsyslog.
command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null || missing+=(rsyslog-gnutls)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]}) and run make again" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
