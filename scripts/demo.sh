#!/usr/bin/env bash
# `make demo`: three governed releases of the demo app on this machine (README "What the demo does").
# State lives under $XDG_STATE_HOME/relops (default ~/.local/state/relops); running it again works.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${REPO}/.venv/bin"
STATE="${XDG_STATE_HOME:-$HOME/.local/state}/relops"
DEMO="${STATE}/demo"
PORT="${RELOPS_DEMO_PORT:-8480}"
INVENTORY="${REPO}/inventories/local/hosts.yml"
export PATH="${BIN}:${PATH}"
export ANSIBLE_CONFIG="${REPO}/ansible.cfg"
export ANSIBLE_CALLBACKS_ENABLED=relops.release.audit
export RELOPS_AUDIT_PATH="${STATE}/audit/audit.jsonl"
export RELOPS_AUDIT_HMAC_KEY_FILE="${STATE}/audit/hmac.key"
export RELOPS_DEMO_PORT="${PORT}"
export ANSIBLE_STDOUT_CALLBACK="${ANSIBLE_STDOUT_CALLBACK:-default}"
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
export ANSIBLE_DISPLAY_OK_HOSTS="${ANSIBLE_DISPLAY_OK_HOSTS:-false}"
LOG="${DEMO}/demo.log"
START=$(date +%s)

step() { printf '\n\033[1m[%3ss] %s\033[0m\n' "$(( $(date +%s) - START ))" "$*"; }
playbook() { "${BIN}/ansible-playbook" -i "${INVENTORY}" "$@" >>"${LOG}" 2>&1; }
field() { "${BIN}/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][int(sys.argv[3])])' "${DEMO}/artifacts/releases.json" "$1" "$2"; }

mkdir -p "${DEMO}/nginx" "${STATE}/audit"
: >"${LOG}"
test -s "${RELOPS_AUDIT_HMAC_KEY_FILE}" || (umask 077 && openssl rand -hex 32 >"${RELOPS_AUDIT_HMAC_KEY_FILE}")

step "Building demo-app 1.0.0, 1.1.0 and 1.2.0 from examples/demo_app, signed with a fresh demo key"
playbook "${REPO}/playbooks/demo_build.yml"

step "Starting nginx on http://127.0.0.1:${PORT} (the router the releases switch)"
"${BIN}/python" "${REPO}/scripts/demo_nginx.py" "${DEMO}/nginx" "${PORT}" >>"${LOG}" 2>&1

# The demo's second identity: the CAB member who approves each release's change. The local ITSM
# records the login of whoever decides, and the policy (examples/policies/local.yml) denies a change
# its releaser approved; so the approver runs as its own login while the release waits for it.
CAB_LOGIN="${RELOPS_DEMO_APPROVER:-relops-cab}"
approve() {
  env LOGNAME="${CAB_LOGIN}" USER="${CAB_LOGIN}" "${BIN}/ansible-playbook" -i "${INVENTORY}" \
    "${REPO}/playbooks/approve.yml" -e "approve_correlation_prefix=relops-demo-app-local-$1" \
    -e approve_wait=300 -e "approve_comments='CAB approval of demo-app $1, by the demo approver'" >>"${LOG}" 2>&1
}

release() {
  local version=$1 approver status=0
  approve "${version}" &
  approver=$!
  "${BIN}/ansible-playbook" -i "${INVENTORY}" "${REPO}/playbooks/release.yml" \
    -e "release_artifact=$(field "${version}" 0)" -e "release_checksum=$(field "${version}" 1)" \
    -e "release_envelope=$(field "${version}" 0).intoto.json" -e release_approval_timeout=300 >>"${LOG}" 2>&1 || status=$?
  if ! wait "${approver}"; then
    echo "the demo's approver did not decide ${version}'s change (see ${LOG})" >&2
    return 1
  fi
  return "${status}"
}

step "Releasing 1.0.0 (verify, risk, change approved by relops-cab, gate, lock, migrate, blue-green, smoke, CMDB, close)"
release 1.0.0
step "Releasing 1.1.0 blue-green, with an expand migration"
release 1.1.0
step "Releasing 1.2.0, which is broken: its smoke tests fail and it is rolled back automatically"
if release 1.2.0; then
  echo "1.2.0 was expected to fail its smoke tests, but the release succeeded" >&2
  exit 1
fi
echo "  1.2.0 failed as expected and was rolled back"

step "Verifying the audit trail and writing the report"
verdict=""
# The verifying run itself is not recorded: its own lines would be unsealed while it reads them.
env -u ANSIBLE_CALLBACKS_ENABLED ANSIBLE_DISPLAY_OK_HOSTS=true "${BIN}/ansible-playbook" -i "${INVENTORY}" "${REPO}/playbooks/audit_verify.yml" -e audit_trail="${RELOPS_AUDIT_PATH}" \
  -e audit_hmac_key_file="${RELOPS_AUDIT_HMAC_KEY_FILE}" >"${DEMO}/audit_verify.log" 2>&1 || verdict="NOT VERIFIED (see ${DEMO}/audit_verify.log)"
cat "${DEMO}/audit_verify.log" >>"${LOG}"
verdict="${verdict:-$(grep -o 'audit trail verified: [^"]*' "${DEMO}/audit_verify.log" | tail -1)}"
report="${DEMO}/reports/dashboard.html"
playbook "${REPO}/playbooks/report.yml" -e report_dest="${DEMO}/reports" \
  -e '{"report_environment": "local", "report_reports": ["dashboard"], "report_formats": ["html", "md"]}' || report="not written (see ${LOG})"

step "Summary"
"${BIN}/python" "${REPO}/scripts/demo_summary.py" "${STATE}" "http://127.0.0.1:${PORT}" "${LOG}" "${verdict}" "${report}"
case "${verdict}" in "audit trail verified"*) ;; *) exit 1 ;; esac
