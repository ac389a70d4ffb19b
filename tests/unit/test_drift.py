"""module_utils/drift.py: baselines, scans and remediation on a temporary tree."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.relops.release.plugins.module_utils.drift import (
    DriftError,
    load_baseline,
    remediate,
    scan,
    store_copy,
    take_baseline,
    write_json_atomically,
)


@pytest.fixture
def tree(tmp_path: "os.PathLike[str]") -> str:
    root = os.path.join(str(tmp_path), "etc")
    os.makedirs(root)
    with open(os.path.join(root, "a.conf"), "w", encoding="utf-8") as handle:
        handle.write("a = 1\n")
    os.symlink("a.conf", os.path.join(root, "current"))
    return root


def test_symlink_retarget_is_reported_but_not_remediable(tree: str) -> None:
    baseline = take_baseline([tree], [], [], [])
    assert baseline["files"][os.path.join(tree, "current")] == {
        "state": "link",
        "target": "a.conf",
        "owner": baseline["files"][os.path.join(tree, "a.conf")]["owner"],
        "group": baseline["files"][os.path.join(tree, "a.conf")]["group"],
        "mode": baseline["files"][os.path.join(tree, "current")]["mode"],
    }
    os.unlink(os.path.join(tree, "current"))
    os.symlink("b.conf", os.path.join(tree, "current"))
    findings = scan(baseline)
    assert [(item["field"], item["expected"], item["actual"], item["remediable"]) for item in findings] == [
        ("target", "a.conf", "b.conf", False)
    ]


def test_restoring_content_without_a_stored_copy_names_the_file(tree: str, tmp_path: "os.PathLike[str]") -> None:
    baseline = take_baseline([tree], [], [], [])
    path = os.path.join(tree, "a.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("a = 2\n")
    findings = scan(baseline)
    with pytest.raises(DriftError, match="no stored copy of %s" % path):
        remediate(baseline, findings, os.path.join(str(tmp_path), "empty-store"))


def test_remediation_restores_content_then_metadata(tree: str, tmp_path: "os.PathLike[str]") -> None:
    store = os.path.join(str(tmp_path), "store")
    path = os.path.join(tree, "a.conf")
    os.chmod(path, 0o640)
    baseline = take_baseline([tree], [], [], [])
    assert store_copy(store, path, baseline["files"][path]["sha256"]) is True
    assert store_copy(store, path, baseline["files"][path]["sha256"]) is False
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("tampered\n")
    os.chmod(path, 0o666)
    fixed, left = remediate(baseline, scan(baseline), store)
    assert {item["field"] for item in fixed} == {"sha256", "mode"} and left == []
    with open(path, encoding="utf-8") as handle:
        assert handle.read() == "a = 1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert scan(baseline) == []


def test_baseline_documents_round_trip_and_bad_ones_are_refused(tree: str, tmp_path: "os.PathLike[str]") -> None:
    path = os.path.join(str(tmp_path), "state", "baseline.json")
    assert load_baseline(path) is None
    document = take_baseline([tree], [], [], [])
    write_json_atomically(path, document)
    assert load_baseline(path) == document
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    with pytest.raises(DriftError, match="is not valid JSON"):
        load_baseline(path)
    write_json_atomically(path, {"format": 99})
    with pytest.raises(DriftError, match="has format 99, expected 1"):
        load_baseline(path)


def test_sysctl_keys_cannot_escape_the_root(tmp_path: "os.PathLike[str]") -> None:
    with pytest.raises(DriftError, match=r"sysctl key '\.\./etc/passwd' is not valid"):
        take_baseline([], [], [], ["../etc/passwd"], str(tmp_path))
