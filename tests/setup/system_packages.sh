#!/usr/bin/env bash
# Installs the system packages that `make demo` (set "demo") or `make test`
# (set "test", a superset) need, only when missing, so `make setup` is
# idempotent and works on a fresh Debian machine.
#   bash tests/setup/system_packages.sh [demo|test] [python]
set -euo pipefail

set_name=${1:-test}
python=${2:-python3}
missing=()

# Both sets: git (the Makefile lists sources with it) and a Python that can make a venv.
command -v git >/dev/null || missing+=(git)
"$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# Deploy roles (issue 7): nginx is the demo's router; the tests also drive HAProxy.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
# Signing keys: the demo generates its release key and audit key with openssl (docs/artifacts.md).
command -v openssl >/dev/null || missing+=(openssl)

if [ "$set_name" = test ]; then
  have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null; }
  have_postgres || missing+=(postgresql)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  # The lab fleet (tests/lab): network namespaces with their own sshd.
  command -v ip >/dev/null || missing+=(iproute2)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  # ansible-test sanity skips its shellcheck test, silently, without the program.
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  # Artifacts (issue 3): the baselines of benchmarks/artifacts.py.
  command -v zstd >/dev/null || missing+=(zstd)
  # The audit callback's syslog sink is tested against a real rsyslog.
  command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
  compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null || missing+=(rsyslog-gnutls)
  # The health gate's tests query a real Prometheus scraping the demo app.
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  # app_process's systemd units are checked with systemd's own parser (systemd-analyze verify); no systemd runs.
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  # feature_flag's Unleash backend is tested against a real Unleash server (npm, tests/setup/unleash.sh).
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  # The ServiceNow client's proxy option is tested through a real forwarding proxy.
  command -v tinyproxy >/dev/null || missing+=(tinyproxy)
  # pysnow (the ServiceNow conformance suite) reads upload content types with python-magic, which loads libmagic.
  compgen -G '/usr/lib/*/libmagic.so.1' >/dev/null || missing+=(libmagic1)
  # The delivery reports (issue 11) are opened in a real headless browser.
  command -v chromium >/dev/null || missing+=(chromium)
elif [ "$set_name" != demo ]; then
  echo "unknown package set '$set_name'; use demo or test" >&2
  exit 2
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and run make again" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
