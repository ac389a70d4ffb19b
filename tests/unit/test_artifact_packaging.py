"""Reproducible packages and the safe unpacking helper."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
from typing import Any

import pytest
from fixtures import archives
from fixtures.signing import demo_manifest

from ansible_collections.relops.release.plugins.module_utils.unpack import (
    DEFAULT_MAX_ENTRIES,
    HAS_DATA_FILTER,
    UnsafeArchiveError,
    read_member,
    safe_extract,
    scan_archive,
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


SOURCE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build", "src")

# Both ways of extracting: tarfile's data filter (this Python has it) and the checks the unpacker does
# itself on a Python without it (Debian 12's 3.11.2), forced here.
EXTRACTION_PATHS = [pytest.param(True, id="data_filter")] * HAS_DATA_FILTER + [pytest.param(False, id="fallback")]


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
@pytest.mark.parametrize("use_data_filter", EXTRACTION_PATHS)
def test_unsafe_entries_are_refused_before_anything_is_written(
    tmp_path: Any, member: Any, message: str, use_data_filter: bool
) -> None:
    archive = _evil_tar(str(tmp_path / "evil.tar.gz"), member)
    dest = str(tmp_path / "slot")
    with pytest.raises(UnsafeArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        safe_extract(archive, dest, max_bytes=1024, use_data_filter=use_data_filter)
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


@pytest.mark.parametrize("use_data_filter", EXTRACTION_PATHS)
def test_in_tree_links_are_unpacked(tmp_path: Any, use_data_filter: bool) -> None:
    archive = _evil_tar(
        str(tmp_path / "links.tar.gz"),
        _member("payload/current", tarfile.SYMTYPE, "ok.txt"),
        _member("payload/again", tarfile.LNKTYPE, "payload/ok.txt"),
    )
    safe_extract(archive, str(tmp_path / "slot"), max_bytes=1024, use_data_filter=use_data_filter)
    assert (tmp_path / "slot" / "payload" / "current").read_text() == "ok"
    assert (tmp_path / "slot" / "payload" / "again").read_text() == "ok"


@pytest.mark.parametrize("use_data_filter", EXTRACTION_PATHS)
@pytest.mark.parametrize("kind", sorted(archives.BROKEN))
def test_broken_and_hostile_archives_are_refused_naming_the_archive(
    tmp_path: Any, kind: str, use_data_filter: bool
) -> None:
    build, reason = archives.BROKEN[kind]
    archive = build(str(tmp_path))
    dest = str(tmp_path / "slot")
    with pytest.raises(UnsafeArchiveError) as refused:
        safe_extract(archive, dest, max_bytes=10_000_000, use_data_filter=use_data_filter)
    assert reason in str(refused.value), refused.value
    # slot_install adds the package and the slot to every refusal (tests/integration/test_artifacts.py).
    assert not os.path.exists(dest) and not os.path.exists(str(tmp_path / "escaped.txt"))
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith(".unpack-")] == []


@pytest.mark.parametrize("use_data_filter", EXTRACTION_PATHS)
def test_the_fallback_gives_what_the_data_filter_gives(tmp_path: Any, demo_tree: str, use_data_filter: bool) -> None:
    os.chmod(os.path.join(demo_tree, "bin", "healthcheck.sh"), 0o775)
    archive = tmp_path / "demo-app-1.4.0.tar.gz"
    archive.write_bytes(_build(demo_tree))
    slot = tmp_path / "slot"
    safe_extract(str(archive), str(slot), max_bytes=10_000_000, use_data_filter=use_data_filter)
    script = os.stat(slot / "payload" / "bin" / "healthcheck.sh")
    assert stat.S_IMODE(script.st_mode) == 0o755 and script.st_uid == os.getuid()
    assert stat.S_IMODE(os.stat(slot / "payload" / "src" / "demo_app" / "server.py").st_mode) == 0o644


def test_an_entry_cap_refuses_a_directory_bomb(tmp_path: Any) -> None:
    bomb = archives.directory_bomb(str(tmp_path), count=3000)
    with pytest.raises(UnsafeArchiveError, match="more than the limit of 1000 entries"):
        safe_extract(bomb, str(tmp_path / "slot"), max_bytes=10_000_000, max_entries=1000)
    assert not (tmp_path / "slot").exists()
    assert scan_archive(bomb, str(tmp_path / "slot"), max_bytes=1000, max_entries=4000)["members"] == 3002
    # The 200,000-directory archive of issue 22 is over the default cap.
    assert DEFAULT_MAX_ENTRIES < 200_000


def test_without_data_filter_on_debian_python_the_same_refusals(tmp_path: Any, demo_tree: str) -> None:
    """The real fallback: /usr/bin/python3 (Debian 12's 3.11.2) has no tarfile.data_filter."""
    python = "/usr/bin/python3"
    probe = subprocess.run(
        [python, "-c", "import tarfile; print(hasattr(tarfile, 'data_filter'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False", "this check needs a Python without tarfile.data_filter at %s" % python
    good = tmp_path / "demo-app-1.4.0.tar.gz"
    good.write_bytes(_build(demo_tree))
    cases = {"good": str(good)}
    cases.update(
        {kind: build(str(tmp_path)) for kind, (build, _reason) in archives.BROKEN.items() if kind != "non-zstd file"}
    )
    cases["escaping symlink"] = _evil_tar(
        str(tmp_path / "evil.tar.gz"), _member("payload/l", tarfile.SYMTYPE, "../../x")
    )
    cases["setuid"] = _evil_tar(str(tmp_path / "suid.tar.gz"), _member("payload/s", mode=0o4755, size=1))
    script = (
        "import json, sys\n"
        "from ansible_collections.relops.release.plugins.module_utils.unpack import HAS_DATA_FILTER, safe_extract\n"
        "out = {'has_data_filter': HAS_DATA_FILTER}\n"
        "for kind, path in json.loads(sys.argv[1]).items():\n"
        "    try:\n"
        "        out[kind] = safe_extract(path, sys.argv[2] + '/' + kind.replace(' ', '-'), 10000000)\n"
        "    except ValueError as exc:\n"
        "        out[kind] = str(exc)\n"
        "print(json.dumps(out))\n"
    )
    ran = subprocess.run(
        [python, "-c", script, json.dumps(cases), str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SOURCE_ROOT, "PATH": os.environ["PATH"]},
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out.pop("has_data_filter") is False
    assert out.pop("good")["members"] > 5 and (tmp_path / "good" / "payload" / "bin" / "healthcheck.sh").is_file()
    assert "outside" in out.pop("symlink chain") and "escapes" in out.pop("escaping symlink")
    assert "setuid or setgid" in out.pop("setuid")
    assert out and all("damaged, truncated or not a tar package" in message for message in out.values()), out
    assert not (tmp_path / "escaped.txt").exists()
