"""tests/setup/bundled_collections.py: requirements.yml's collections copied out of the pinned ansible wheel."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zipfile
from types import ModuleType
from typing import Any

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bundled_collections", os.path.join(REPO, "tests", "setup", "bundled_collections.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(directory: str, version: str) -> str:
    path = os.path.join(directory, "ansible-12.3.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as wheel:
        prefix = "ansible_collections/community/hashi_vault/"
        wheel.writestr(prefix + "MANIFEST.json", json.dumps({"collection_info": {"version": version}}))
        wheel.writestr(prefix + "plugins/lookup/vault_kv2_get.py", "# lookup\n")
        wheel.writestr("ansible_collections/community/general/MANIFEST.json", "{}")
    return path


def _pin(directory: str, wheel: str) -> str:
    with open(wheel, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    path = os.path.join(directory, "pin.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("ansible==12.3.0 --hash=sha256:%s\n" % digest)
    return path


def _requirements(directory: str, version: str) -> str:
    path = os.path.join(directory, "requirements.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("collections:\n  - {name: community.hashi_vault, version: '%s'}\n" % version)
    return path


def test_only_the_listed_collection_is_copied_from_a_wheel_already_there(tmp_path: Any) -> None:
    installer = _installer()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = _wheel(str(wheels), "7.1.0")
    target = str(tmp_path / "collections")
    # The wheel with the pinned digest is present, so no download is attempted (pip would fail: no index here).
    installer.main([_requirements(str(tmp_path), "7.1.0"), _pin(str(tmp_path), wheel), str(wheels), target])
    root = os.path.join(target, "ansible_collections")
    assert os.path.isfile(os.path.join(root, "community", "hashi_vault", "plugins", "lookup", "vault_kv2_get.py"))
    assert not os.path.exists(os.path.join(root, "community", "general"))


def test_a_version_that_the_wheel_does_not_bundle_is_refused(tmp_path: Any) -> None:
    installer = _installer()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = _wheel(str(wheels), "7.1.0")
    with pytest.raises(SystemExit, match=r"pins community.hashi_vault 7.0.0 but .* bundles 7.1.0; align the two"):
        installer.main(
            [_requirements(str(tmp_path), "7.0.0"), _pin(str(tmp_path), wheel), str(wheels), str(tmp_path / "c")]
        )
