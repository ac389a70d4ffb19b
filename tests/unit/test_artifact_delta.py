"""Delta creation and application without Ansible: exact rebuild, wrong base, damage, missing digests."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import pytest
from fixtures.signing import demo_manifest

from ansible_collections.relops.release.plugins.module_utils.delta import DeltaError, apply_delta
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.delta import create_delta, window_log_for
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package


def _build(tree: str, path: str, version: str) -> str:
    with open(path, "wb") as handle:
        write_package(plan_package(tree, demo_manifest(version=version)), handle, path.split(".", 1)[1])
    return path


@pytest.fixture
def pair(tmp_path: Any, demo_tree: str) -> tuple[str, str]:
    old = _build(demo_tree, str(tmp_path / "old.tar.gz"), "1.4.0")
    with open(os.path.join(demo_tree, "src", "demo_app", "server.py"), "a", encoding="utf-8") as handle:
        handle.write("\n# handles HEAD too\n")
    new = _build(demo_tree, str(tmp_path / "new.tar.gz"), "1.4.1")
    return old, new


def _sha(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_rebuilds_byte_identical_gzip_package(tmp_path: Any, pair: tuple[str, str]) -> None:
    old, new = pair
    info = create_delta(old, new, str(tmp_path / "d"))
    assert info.size < os.path.getsize(new) / 4
    out = str(tmp_path / "rebuilt.tar.gz")
    assert apply_delta(old, _sha(old), info.path, out, _sha(new)) == _sha(new)
    assert _sha(out) == _sha(new)


def test_wrong_base_names_both_digests(tmp_path: Any, pair: tuple[str, str]) -> None:
    old, new = pair
    info = create_delta(old, new, str(tmp_path / "d"))
    expected = "delta is against base sha256:%s but %s has sha256:%s" % (_sha(old), new, _sha(new))
    with pytest.raises(DeltaError, match=re.escape(expected)):
        apply_delta(new, _sha(old), info.path, str(tmp_path / "out.tar.gz"), _sha(new))
    assert not (tmp_path / "out.tar.gz").exists()


def test_damaged_delta_and_wrong_target_leave_nothing(tmp_path: Any, pair: tuple[str, str]) -> None:
    old, new = pair
    info = create_delta(old, new, str(tmp_path / "d"))
    with pytest.raises(DeltaError, match="not the signed sha256:" + "1" * 64):
        apply_delta(old, _sha(old), info.path, str(tmp_path / "out.tar.gz"), "1" * 64)
    data = bytearray((tmp_path / "d").read_bytes())
    data[20] ^= 0xFF
    (tmp_path / "d").write_bytes(bytes(data))
    with pytest.raises(DeltaError):
        apply_delta(old, _sha(old), info.path, str(tmp_path / "out.tar.gz"), _sha(new))
    (tmp_path / "d").write_bytes(b"PK\x03\x04 not a delta")
    with pytest.raises(DeltaError, match=r"is not a relops\.release delta"):
        apply_delta(old, _sha(old), info.path, str(tmp_path / "out.tar.gz"), _sha(new))
    assert sorted(os.listdir(tmp_path)) == ["d", "demo_app", "new.tar.gz", "old.tar.gz"]


def test_window_covers_twice_the_larger_input() -> None:
    assert window_log_for(1000, 2000) == 20
    assert window_log_for(200 * 1024 * 1024, 1) == 29
    assert window_log_for(2**40) == 31


@pytest.mark.parametrize("method", ["patch-from", "dictionary"])
def test_both_encoders_rebuild_the_exact_zstd_package(tmp_path: Any, demo_tree: str, method: str) -> None:
    old = _build(demo_tree, str(tmp_path / "old.tar.zst"), "1.4.0")
    with open(os.path.join(demo_tree, "src", "demo_app", "server.py"), "a", encoding="utf-8") as handle:
        handle.write("\n# handles HEAD too\n")
    new = _build(demo_tree, str(tmp_path / "new.tar.zst"), "1.4.1")
    info = create_delta(old, new, str(tmp_path / "d"), method=method)
    assert info.method == method
    assert info.as_dict()["delta_method"] == method
    out = str(tmp_path / "rebuilt.tar.zst")
    assert apply_delta(old, _sha(old), info.path, out, _sha(new)) == _sha(new)
    assert _sha(out) == _sha(new)


def test_patch_from_reaches_across_the_whole_base(tmp_path: Any, demo_tree: str) -> None:
    # Incompressible files: the delta can only be small if its matches reach back across the whole base.
    tree = tmp_path / demo_tree
    (tree / "data").mkdir()
    for number in range(12):
        (tree / "data" / ("blob%02d.bin" % number)).write_bytes(os.urandom(512 * 1024))
    old = _build(str(tree), str(tmp_path / "old.tar.gz"), "1.4.0")
    (tree / "data" / "blob11.bin").write_bytes(os.urandom(1000) + (tree / "data" / "blob11.bin").read_bytes()[1000:])
    new = _build(str(tree), str(tmp_path / "new.tar.gz"), "1.4.1")
    info = create_delta(old, new, str(tmp_path / "d"), level=3)
    assert info.method == "patch-from"
    assert info.size < os.path.getsize(new) / 100
    assert apply_delta(old, _sha(old), info.path, str(tmp_path / "rebuilt.tar.gz"), _sha(new)) == _sha(new)


def test_without_a_zstd_command_line_the_library_makes_the_delta(
    tmp_path: Any, pair: tuple[str, str], monkeypatch: Any
) -> None:
    old, new = pair
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    info = create_delta(old, new, str(tmp_path / "d"))
    assert info.method == "dictionary"
    assert apply_delta(old, _sha(old), info.path, str(tmp_path / "rebuilt.tar.gz"), _sha(new)) == _sha(new)
    with pytest.raises(ArtifactError, match="delta method patch-from needs the zstd command line"):
        create_delta(old, new, str(tmp_path / "d2"), method="patch-from")
