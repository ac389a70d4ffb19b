# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reproducible release packages: the same directory and manifest give byte-identical archives.

Layout: ``manifest.json``, ``SHA256SUMS`` (of every payload file) and
``payload/...``. Entries are sorted; mtime is one fixed value (1980-01-01
unless given, so tar headers do not change between releases); owner and
group are 0 with empty names; modes are normalised to 0644/0755; compression
settings are fixed (module_utils/packformat.py) so a target can rebuild the
exact bytes from the tar stream when it applies a delta.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.packformat import DEFAULT_MTIME, FormatError, compressing

from . import ArtifactError
from .manifest import manifest_bytes

PAYLOAD_ROOT = "payload"


@dataclass
class PayloadEntry:
    """One file system entry of the payload, by its path relative to the source directory."""

    relative: str
    kind: str
    path: str
    link: Optional[str] = None
    executable: bool = False


@dataclass
class PackagePlan:
    """What a build will contain, computed before anything is written."""

    entries: List[PayloadEntry]
    sums: bytes
    manifest: Dict[str, Any]
    mtime: int
    files: int = 0
    payload_bytes: int = 0
    digests: Dict[str, str] = field(default_factory=dict)


def plan_package(source: str, manifest: Mapping[str, Any], mtime: Optional[int] = None) -> PackagePlan:
    """Walk the source directory, hash its files and check the manifest's declared paths exist."""
    if not os.path.isdir(source):
        raise ArtifactError("package source %s is not a directory; point src at the built application" % source)
    entries = list(_walk(source))
    digests: Dict[str, str] = {}
    total = 0
    for entry in entries:
        if entry.kind == "file":
            digests[entry.relative], size = _hash_file(entry.path)
            total += size
    _check_declared_paths(manifest, entries)
    sums = "".join("%s  %s/%s\n" % (digests[name], PAYLOAD_ROOT, name) for name in sorted(digests))
    return PackagePlan(
        entries=entries,
        sums=sums.encode("utf-8"),
        manifest=dict(manifest),
        mtime=DEFAULT_MTIME if mtime is None else mtime,
        files=len(digests),
        payload_bytes=total,
        digests=digests,
    )


def write_package(plan: PackagePlan, output: Any, compression: str) -> None:
    """Write the archive for the plan to an open binary stream."""
    try:
        with compressing(output, compression) as stream:
            _write_tar(plan, stream)
    except FormatError as exc:
        raise ArtifactError(str(exc)) from None


def _write_tar(plan: PackagePlan, stream: Any) -> None:
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "manifest.json", manifest_bytes(plan.manifest), plan.mtime)
        _add_bytes(tar, "SHA256SUMS", plan.sums, plan.mtime)
        tar.addfile(_info(PAYLOAD_ROOT, tarfile.DIRTYPE, 0o755, plan.mtime))
        for entry in plan.entries:
            name = "%s/%s" % (PAYLOAD_ROOT, entry.relative)
            if entry.kind == "dir":
                tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, plan.mtime))
            elif entry.kind == "symlink":
                info = _info(name, tarfile.SYMTYPE, 0o777, plan.mtime)
                info.linkname = entry.link or ""
                tar.addfile(info)
            else:
                info = _info(name, tarfile.REGTYPE, 0o755 if entry.executable else 0o644, plan.mtime)
                info.size = os.path.getsize(entry.path)
                with open(entry.path, "rb") as handle:
                    tar.addfile(info, handle)


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes, mtime: int) -> None:
    info = _info(name, tarfile.REGTYPE, 0o644, mtime)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _info(name: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _walk(source: str) -> Iterator[PayloadEntry]:
    """Yield the source's entries in a fixed (sorted) order, refusing what a package must not hold."""
    root = os.path.realpath(source)
    for directory, subdirs, files in os.walk(source):
        subdirs.sort()
        names = sorted([*files, *[d for d in subdirs if os.path.islink(os.path.join(directory, d))]])
        relative_dir = os.path.relpath(directory, source)
        if relative_dir != ".":
            yield PayloadEntry(relative_dir.replace(os.sep, "/"), "dir", directory)
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.normpath(os.path.join(relative_dir, name)).replace(os.sep, "/")
            yield _entry(root, path, relative)
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]


def _entry(root: str, path: str, relative: str) -> PayloadEntry:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        link = os.readlink(path)
        resolved = os.path.realpath(path)
        if os.path.isabs(link) or os.path.commonpath([root, resolved]) != root:
            raise ArtifactError(
                "%s is a symlink to %r, outside the package source; copy the file in instead" % (path, link)
            )
        return PayloadEntry(relative, "symlink", path, link=link)
    if not stat.S_ISREG(info.st_mode):
        raise ArtifactError("%s is not a regular file, directory or symlink; remove it from the payload" % path)
    if info.st_mode & (stat.S_ISUID | stat.S_ISGID):
        raise ArtifactError("%s has the setuid or setgid bit; packages never carry them, clear it" % path)
    return PayloadEntry(relative, "file", path, executable=bool(info.st_mode & stat.S_IXUSR))


def _hash_file(path: str) -> Tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def _check_declared_paths(manifest: Mapping[str, Any], entries: List[PayloadEntry]) -> None:
    present = {entry.relative for entry in entries if entry.kind in ("file", "symlink")}
    missing = ["config template %s" % path for path in manifest.get("config_templates", []) if path not in present]
    missing.extend(
        "health check %r script %s" % (check["name"], check["script"])
        for check in manifest.get("health_checks", [])
        if check.get("type") == "script" and check.get("script") not in present
    )
    if missing:
        raise ArtifactError(
            "the manifest declares paths the payload does not hold: %s; add them to the source directory "
            "or fix the manifest" % ", ".join(missing)
        )
