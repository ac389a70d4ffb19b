"""Install the collections of requirements.yml from the pinned `ansible` wheel, without Galaxy.

    python tests/setup/bundled_collections.py REQUIREMENTS_YML PIN_FILE WHEEL_DIR COLLECTIONS_DIR

The wheel named in PIN_FILE (a pip requirements file with --hash) is fetched once with
``pip download --require-hashes`` into WHEEL_DIR; each collection listed in REQUIREMENTS_YML is
then copied out of it into COLLECTIONS_DIR/ansible_collections/<namespace>/<name>, after checking
that the copy's MANIFEST.json carries the version requirements.yml pins. Idempotent.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Dict, List

import yaml


def read_requirements(path: str) -> List[Dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        document: Any = yaml.safe_load(handle) or {}
    wanted = []
    for entry in document.get("collections") or []:
        if not isinstance(entry, dict) or "name" not in entry or "version" not in entry:
            raise SystemExit("%s: collection entry %r needs name and an exact version" % (path, entry))
        wanted.append({"name": str(entry["name"]), "version": str(entry["version"])})
    return wanted


def fetch_wheel(pin_file: str, wheel_dir: str) -> str:
    """The pinned wheel, downloaded only when no copy with the pinned digest is there (so reruns are offline)."""
    with open(pin_file, encoding="utf-8") as handle:
        digests = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", handle.read()))
    for existing in glob.glob(os.path.join(wheel_dir, "ansible-[0-9]*.whl")):
        if _sha256(existing) in digests:
            return existing
        os.unlink(existing)
    os.makedirs(wheel_dir, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "-r",
            pin_file,
            "-d",
            wheel_dir,
        ],
        check=True,
    )
    wheels = sorted(glob.glob(os.path.join(wheel_dir, "ansible-[0-9]*.whl")))
    if len(wheels) != 1:
        raise SystemExit(
            "expected one ansible wheel in %s, found %s; empty the folder and run again" % (wheel_dir, wheels)
        )
    return wheels[0]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_collection(wheel: zipfile.ZipFile, name: str, version: str, collections_dir: str) -> None:
    namespace, short = name.split(".", 1)
    prefix = "ansible_collections/%s/%s/" % (namespace, short)
    target = os.path.join(collections_dir, "ansible_collections", namespace, short)
    try:
        bundled = json.loads(wheel.read(prefix + "MANIFEST.json"))["collection_info"]["version"]
    except KeyError:
        raise SystemExit(
            "%s is not bundled in %s; pick another ansible release in the pin file" % (name, wheel.filename)
        ) from None
    if bundled != version:
        raise SystemExit(
            "requirements.yml pins %s %s but %s bundles %s; align the two" % (name, version, wheel.filename, bundled)
        )
    if _installed_version(target) == version:
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".%s." % short, dir=os.path.dirname(target))
    try:
        for member in wheel.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                wheel.extract(member, staging)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(os.path.join(staging, prefix), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print("installed %s %s into %s" % (name, version, collections_dir))


def _installed_version(target: str) -> str:
    try:
        with open(os.path.join(target, "MANIFEST.json"), encoding="utf-8") as handle:
            return str(json.load(handle)["collection_info"]["version"])
    except (OSError, ValueError, KeyError):
        return ""


def main(argv: List[str]) -> None:
    if len(argv) != 4:
        raise SystemExit(__doc__)
    requirements, pin_file, wheel_dir, collections_dir = argv
    wanted = read_requirements(requirements)
    if not wanted:
        return
    with zipfile.ZipFile(fetch_wheel(pin_file, wheel_dir)) as wheel:
        for entry in wanted:
            install_collection(wheel, entry["name"], entry["version"], collections_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
