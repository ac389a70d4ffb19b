"""relops.release.artifact_delta through real ansible-playbook runs: delta, idempotence, fallbacks, wrong base."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from fixtures.artifact_tasks import run_task
from fixtures.playbooks import Ansible
from fixtures.signing import DEMO_APP, demo_manifest

from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package


def _release(tmp_path: Any, version: str, change: str) -> str:
    """Build the demo app at ``version`` with one source change, as a minor release would have."""
    tree = tmp_path / ("src-%s" % version)
    shutil.copytree(os.path.join(DEMO_APP, "app"), tree)
    server = tree / "src" / "demo_app" / "server.py"
    server.write_text(server.read_text().replace('"status": "ok"', '"status": "%s"' % change))
    (tree / "src" / "demo_app" / "__init__.py").write_text('"""demo"""\n\n__version__ = "%s"\n' % version)
    out = tmp_path / "dist" / ("demo-app-%s.tar.zst" % version)
    out.parent.mkdir(exist_ok=True)
    with open(out, "wb") as handle:
        write_package(plan_package(str(tree), demo_manifest(version=version)), handle, "tar.zst")
    return str(out)


def test_delta_rebuilds_the_exact_package_and_falls_back_when_it_must(ansible: Ansible, tmp_path: Any) -> None:
    old, new = _release(tmp_path, "1.4.0", "ok"), _release(tmp_path, "1.5.0", "fine")
    host = tmp_path / "host"
    host.mkdir()
    shutil.copy(old, host / "demo-app-1.4.0.tar.zst")
    args = {"src": new, "base": old, "dest": str(host / "demo-app-1.5.0.tar.zst")}

    code, predicted, output = run_task(ansible, "relops.release.artifact_delta", args, "--check")
    assert code == 0 and predicted["changed"] is True and predicted["method"] == "delta", output
    assert not (host / "demo-app-1.5.0.tar.zst").exists()

    code, shipped, output = run_task(ansible, "relops.release.artifact_delta", args)
    assert code == 0 and shipped["method"] == "delta", output
    # The controller has the zstd command line (bindep), so the delta is a --patch-from frame the host's
    # python-zstandard decodes with the base as a raw-content dictionary.
    assert shipped["delta_method"] == "patch-from"
    assert shipped["delta_size"] < shipped["full_size"] / 5
    with open(new, "rb") as want, open(host / "demo-app-1.5.0.tar.zst", "rb") as got:
        assert want.read() == got.read()

    code, again, output = run_task(ansible, "relops.release.artifact_delta", args)
    assert code == 0 and again["changed"] is False and again["method"] == "none", output

    # No base on the host: the full package travels, and the result says why.
    elsewhere = tmp_path / "fresh-host"
    elsewhere.mkdir()
    code, full, output = run_task(
        ansible, "relops.release.artifact_delta", {**args, "dest": str(elsewhere / "demo-app-1.5.0.tar.zst")}
    )
    assert code == 0 and full["method"] == "full", output
    assert "is not on the target" in full["fallback_reason"] and "shipping the full artifact" in output
    assert (elsewhere / "demo-app-1.5.0.tar.zst").read_bytes() == (host / "demo-app-1.5.0.tar.zst").read_bytes()


def test_host_without_zstandard_gets_the_full_package(ansible: Ansible, tmp_path: Any) -> None:
    old, new = _release(tmp_path, "1.4.0", "ok"), _release(tmp_path, "1.5.0", "fine")
    host = tmp_path / "host"
    host.mkdir()
    shutil.copy(old, host / "demo-app-1.4.0.tar.zst")
    code, full, output = run_task(
        ansible,
        "relops.release.artifact_delta",
        {"src": new, "base": old, "dest": str(host / "demo-app-1.5.0.tar.zst")},
        "-e",
        "ansible_python_interpreter=/usr/bin/python3",
    )
    assert code == 0 and full["method"] == "full", output
    assert "no zstandard package" in full["fallback_reason"]
    with open(new, "rb") as want:
        assert (host / "demo-app-1.5.0.tar.zst").read_bytes() == want.read()


def test_wrong_base_and_wrong_signed_digest_fail_leaving_nothing(ansible: Ansible, tmp_path: Any) -> None:
    old, new = _release(tmp_path, "1.4.0", "ok"), _release(tmp_path, "1.5.0", "fine")
    other = _release(tmp_path, "1.3.0", "old")
    host = tmp_path / "host"
    host.mkdir()
    shutil.copy(other, host / "demo-app-1.4.0.tar.zst")
    args = {"src": new, "base": old, "dest": str(host / "demo-app-1.5.0.tar.zst")}
    code, result, output = run_task(ansible, "relops.release.artifact_delta", args)
    assert code == 0 and result["failed"] is True, output
    assert "delta is against base sha256:" in result["msg"] and "holds another release" in result["msg"]
    assert sorted(os.listdir(host)) == ["demo-app-1.4.0.tar.zst"]

    code, result, output = run_task(ansible, "relops.release.artifact_delta", {**args, "sha256": "sha256:" + "0" * 64})
    assert code == 0 and result["failed"] is True, output
    assert "not the signed sha256:" + "0" * 64 in result["msg"]
    assert json.dumps(sorted(os.listdir(host))) == json.dumps(["demo-app-1.4.0.tar.zst"])


def test_delta_doc_renders(ansible: Ansible) -> None:
    done = ansible.doc("relops.release.artifact_delta")
    assert done.returncode == 0 and "patch-from" in done.stdout, done.report
