#!/usr/bin/env bash
# Run `ansible-test sanity` on a clean copy of the collection, offline.
#
# Usage: bash tests/sanity/run_sanity.sh [extra ansible-test sanity args...]
#   e.g. bash tests/sanity/run_sanity.sh --test validate-modules
# Exits with ansible-test's status.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${RELOPS_VENV:-$repo/.venv}
python_version=3.11
# ansible-test only recognises a collection by its path, so the copy must sit
# under ansible_collections/<namespace>/<name>.
build_root=$repo/build/sanity
collection=$build_root/ansible_collections/relops/release

# --venv needs a pip bootstrap script whose download host is unreachable here.
"$venv/bin/python" "$repo/tests/sanity/install_get_pip_cache.py" --python "$python_version"

# A copy rather than the work tree, so sanity sees only what git would ship and
# not .venv, caches or build/ (whose build/src symlink points back at the repo).
rm -rf "$build_root"
mkdir -p "$collection"
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' path; do
      case $path in
        # Never ship these, even if .gitignore stops covering them.
        .venv/* | build/* | tests/output/* | */__pycache__/* | *.pyc) continue ;;
      esac
      # --cached still lists tracked files that were deleted in the work tree.
      if [[ -f $path || -L $path ]]; then printf '%s\0' "$path"; fi
    done \
  | tar --null --files-from=- --create --file=- \
  | tar --extract --file=- --directory="$collection"

cd "$collection"
# Otherwise ansible-test walks up to the repo's .git and asks git for the file
# list, which comes back empty because build/ is git-ignored, and every test
# then passes on zero files. Pinning the content root makes it list the copy's
# files from disk instead.
export ANSIBLE_TEST_CONTENT_ROOT=$collection

# No test is skipped: every sanity test's requirements come from PyPI, which
# is reachable. shellcheck and pslint only warn and skip themselves when their
# program (shellcheck, pwsh) is not installed.
exec "$venv/bin/ansible-test" sanity \
  --venv \
  --python "$python_version" \
  --color no \
  "$@"
