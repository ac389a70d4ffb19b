#!/usr/bin/env python
"""Seed ansible-test's cached pip bootstrap script so ``--venv`` works offline.

``ansible-test sanity --venv`` (and ``--local``) bootstraps pip into each fresh
virtual environment by running a get-pip.py that it downloads from a host this
machine cannot reach. It looks for a cached copy first, so we put a small
stand-in there that installs pip from the Python's own ensurepip and then from
the configured package index.

Run it with the Python that has ansible-test installed (the repo's .venv), so
the pip version matches the ansible-test that will read the cache.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import tempfile
import types
from pathlib import Path

# ansible-test builds this path inside a function of its setup script, so it
# cannot be imported; check_cache_layout() confirms the installed copy uses it.
CACHE_TEMPLATE = "~/.ansible/test/cache/get_pip_%s.py"
SETUP_SCRIPT = "_util/target/setup/requirements.py"
# Holds the pip version as a literal inside get_venv_packages(); calling it is
# the closest thing to a public constant.
VENV_PACKAGES_MODULE = "ansible_test._internal.python_requirements"

# Runs as __main__ under quiet_pip.py with get-pip.py's arguments, e.g.
# ``--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel``.
BOOTSTRAP_SCRIPT = '''\
"""Offline stand-in for get-pip.py, written by relops.release's
tests/sanity/install_get_pip_cache.py. Delete it to let ansible-test download
the real one again."""
import ensurepip
import importlib
import importlib.util
import os
import subprocess
import sys

# get-pip.py options that `pip install` does not understand.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main():
    args = sys.argv[1:]
    had_setuptools = importlib.util.find_spec("setuptools") is not None
    # ensurepip strips PIP_* from os.environ and points PIP_CONFIG_FILE at
    # os.devnull for good; without restoring it the install below would lose
    # this machine's index, find-links, constraint and CA certificate settings.
    saved_env = dict(os.environ)
    try:
        ensurepip.bootstrap(default_pip=True)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)

    pip = [sys.executable, "-m", "pip"]
    install_args = [a for a in args if a not in GET_PIP_ONLY]
    rc = subprocess.call(pip + ["install"] + install_args)
    if rc:
        sys.exit(rc)

    # Older ensurepip bundles setuptools, which get-pip.py --no-setuptools
    # would not have installed; keep the venv as ansible-test expects it.
    importlib.invalidate_caches()
    added_setuptools = not had_setuptools and importlib.util.find_spec("setuptools")
    if "--no-setuptools" in args and added_setuptools:
        sys.exit(subprocess.call(pip + ["uninstall", "-y", "-q", "setuptools"]))


main()
'''


def ansible_test_pip_version(python_version: str) -> str:
    """Return the pip version ansible-test bootstraps into a venv for that Python."""
    where = f"{VENV_PACKAGES_MODULE}.get_venv_packages()['pip']"
    try:
        get_venv_packages = importlib.import_module(VENV_PACKAGES_MODULE).get_venv_packages
    except (ImportError, AttributeError) as ex:
        sys.exit(f"error: cannot find {where} with {sys.executable}: {ex}")

    # It only reads .version; a full PythonConfig needs ansible-test's CLI state.
    packages = get_venv_packages(types.SimpleNamespace(version=python_version))
    pip_version = packages.get("pip")
    if not isinstance(pip_version, str):
        sys.exit(f"error: {where} gave no pip version for Python {python_version}")
    return pip_version


def check_cache_layout() -> None:
    """Fail loudly if ansible-test no longer reads the cache path we write."""
    spec = importlib.util.find_spec("ansible_test")
    if spec is None or spec.origin is None:
        sys.exit(f"error: ansible_test is not importable with {sys.executable}")
    setup = Path(spec.origin).parent / SETUP_SCRIPT
    try:
        text = setup.read_text(encoding="utf-8")
    except OSError as ex:
        sys.exit(f"error: cannot read {setup} to confirm the cache path: {ex}")
    if CACHE_TEMPLATE not in text:
        sys.exit(f"error: {setup} no longer reads {CACHE_TEMPLATE!r}; {Path(__file__).name} needs updating")


def main() -> int:
    """Write the cached bootstrap script unless one is already there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python",
        default="{}.{}".format(*sys.version_info[:2]),
        help="Python version passed to ansible-test --python (default: this one's)",
    )
    opts = parser.parse_args()

    pip_version = ansible_test_pip_version(opts.python)
    check_cache_layout()
    cache_path = Path(CACHE_TEMPLATE % pip_version.replace(".", "_")).expanduser()

    # Leave any existing file alone: it may be the real get-pip.py.
    if cache_path.exists():
        print(f"pip {pip_version} bootstrap already cached: {cache_path}")
        return 0

    cache_path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename so a concurrent ansible-test never runs a half-written file.
    with tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        dir=cache_path.parent,
        prefix=cache_path.name,
        suffix=".tmp",
        delete=False,
    ) as tmp:
        tmp.write(BOOTSTRAP_SCRIPT)
    Path(tmp.name).replace(cache_path)
    print(f"wrote offline pip {pip_version} bootstrap: {cache_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
