"""Reproducible packages and the safe unpacking helper."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from typing import Any

import pytest
from fixtures.signing import demo_manifest

from ansible_collections.relops.release.plugins.module_utils.unpack import (
    UnsafeArchiveError,
    read_member,
    safe_extract,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package


def _build(source: str, compression: str = "tar.gz", **changes: Any) -> bytes:
    out = io.BytesIO()
    write_package(plan_package(source, demo_manifest(**changes)), out, compression)
    return out.getvalue()


@pytest.mark.parametrize("compression", ["tar.gz", "tar.zst"])
def test_same_input_gives_identical_bytes_whatever_the_host_state(demo_tree: str, compression: str) -> None:
    first = _build(demo_tree, compression)
    # Touch times, permissions beyond the executable bit, and umask must not leak into the package.
    for directory, _dirs, files in os.walk(demo_tree):
        for name in files:
            path = os.path.join(directory, name)
            os.utime(path, (1, 1))
            os.chmod(path, os.stat(path).st_mode | stat.S_IWGRP | stat.S_IROTH)
    second = _build(demo_tree, compression)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    with open(os.path.join(demo_tree, "config", "app.json.j2"), "a", encoding="utf-8") as handle:
        handle.write(" ")
    assert _build(demo_tree, compression) != first


def test_layout_metadata_and_sums(demo_tree: str, tmp_path: Any) -> None:
    archive = tmp_path / "demo-app-1.4.0.tar.gz"
    archive.write_bytes(_build(demo_tree))
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        names = [member.name for member in members]
        assert names[:3] == ["manifest.json", "SHA256SUMS", "payload"]
        assert names[3:] == sorted(names[3:])
        assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
        assert {m.mode for m in members} <= {0o644, 0o755}
        script = tar.getmember("payload/bin/healthcheck.sh")
        assert script.mode == 0o755
        sums = tar.extractfile("SHA256SUMS").read().decode()  # type: ignore[union-attr]
        server = tar.extractfile("payload/src/demo_app/server.py").read()  # type: ignore[union-attr]
    assert "%s  payload/src/demo_app/server.py\n" % hashlib.sha256(server).hexdigest() in sums
    assert b'"name": "demo-app"' in read_member(str(archive), "manifest.json")


def test_declared_templates_and_health_scripts_must_be_present(demo_tree: str) -> None:
    os.unlink(os.path.join(demo_tree, "bin", "healthcheck.sh"))
    with pytest.raises(ArtifactError, match=r"health check 'script' script bin/healthcheck\.sh"):
        _build(demo_tree)
    with pytest.raises(ArtifactError, match=r"config template config/missing\.j2"):
        _build(demo_tree, config_templates=["config/missing.j2"], health_checks=demo_manifest()["health_checks"][:1])


def test_refuses_setuid_and_escaping_symlinks(demo_tree: str) -> None:
    os.symlink("/etc/passwd", os.path.join(demo_tree, "passwd"))
    with pytest.raises(ArtifactError, match="outside the package source"):
        _build(demo_tree)
    os.unlink(os.path.join(demo_tree, "passwd"))
    os.symlink("server.py", os.path.join(demo_tree, "src", "demo_app", "main.py"))
    assert _build(demo_tree)
    os.chmod(os.path.join(demo_tree, "bin", "healthcheck.sh"), 0o4755)
    with pytest.raises(ArtifactError, match="setuid or setgid"):
        _build(demo_tree)


def _evil_tar(path: str, *members: tarfile.TarInfo) -> str:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("payload/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        for member in members:
            data = io.BytesIO(b"x" * member.size) if member.isfile() else None
            tar.addfile(member, data)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644, size: int = 0) -> Any:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, link, mode, size
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("/etc/cron.d/evil", size=1), "has an absolute path"),
        (_member("payload/../../evil", size=1), "contains '..'"),
        (_member("payload/link", tarfile.SYMTYPE, "../../etc/shadow"), "is a symlink to '../../etc/shadow'"),
        (_member("payload/abs", tarfile.SYMTYPE, "/etc/shadow"), "links to the absolute path"),
        (_member("payload/hard", tarfile.LNKTYPE, "../outside"), "is a hard link to '../outside'"),
        (_member("payload/dev", tarfile.CHRTYPE), "is a device or FIFO"),
        (_member("payload/fifo", tarfile.FIFOTYPE), "is a device or FIFO"),
        (_member("payload/suid", mode=0o4755, size=1), "has the setuid or setgid bit"),
        (_member("payload/sgid", mode=0o2755, size=1), "has the setuid or setgid bit"),
    ],
)
def test_unsafe_entries_are_refused_before_anything_is_written(tmp_path: Any, member: Any, message: str) -> None:
    archive = _evil_tar(str(tmp_path / "evil.tar.gz"), member)
    dest = str(tmp_path / "slot")
    with pytest.raises(UnsafeArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        safe_extract(archive, dest, max_bytes=1024)
    assert not os.path.exists(dest)
    assert os.listdir(str(tmp_path)) == ["evil.tar.gz"]


def test_payload_over_the_limit_is_refused(tmp_path: Any, demo_tree: str) -> None:
    archive = tmp_path / "demo-app-1.4.0.tar.zst"
    archive.write_bytes(_build(demo_tree, "tar.zst"))
    with pytest.raises(UnsafeArchiveError, match="more than the declared limit of 100 bytes"):
        safe_extract(str(archive), str(tmp_path / "slot"), max_bytes=100)
    assert not (tmp_path / "slot").exists()
    counts = safe_extract(str(archive), str(tmp_path / "slot"), max_bytes=10_000_000)
    assert counts["members"] > 5
    assert (tmp_path / "slot" / "payload" / "src" / "demo_app" / "server.py").is_file()
    assert os.access(tmp_path / "slot" / "payload" / "bin" / "healthcheck.sh", os.X_OK)
    with pytest.raises(UnsafeArchiveError, match="already exists"):
        safe_extract(str(archive), str(tmp_path / "slot"), max_bytes=10_000_000)


def test_in_tree_links_are_unpacked(tmp_path: Any) -> None:
    archive = _evil_tar(
        str(tmp_path / "links.tar.gz"),
        _member("payload/current", tarfile.SYMTYPE, "ok.txt"),
        _member("payload/again", tarfile.LNKTYPE, "payload/ok.txt"),
    )
    safe_extract(archive, str(tmp_path / "slot"), max_bytes=1024)
    assert (tmp_path / "slot" / "payload" / "current").read_text() == "ok"
    assert (tmp_path / "slot" / "payload" / "again").read_text() == "ok"
