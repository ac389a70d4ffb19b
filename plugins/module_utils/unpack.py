# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe unpacking of release packages on the target.

Every member is checked before anything is written: absolute names, ``..``,
links that leave the destination, device and FIFO entries, setuid/setgid bits
and a payload over the declared limit are refused, naming the entry. The
extraction itself then runs with the standard library's ``data`` filter, into
a staging directory renamed into place only when every entry is out, so a
failure leaves no half-written destination. Target-safe: standard library
only; ``.tar.zst`` needs the optional ``zstandard`` package.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import sys
import tarfile
import tempfile
from typing import IO, Any, Callable, Dict, Iterator, List, Optional

from ansible_collections.relops.release.plugins.module_utils.packformat import FormatError, decompressing, format_of


class UnsafeArchiveError(ValueError):
    """An archive entry that would escape or abuse the destination."""


def open_members(archive: str) -> "Iterator[tarfile.TarFile]":
    """Yield the archive opened as a tar stream (gzip or zstd by file name)."""
    try:
        package_format = format_of(archive)
        with open(archive, "rb") as raw, tarfile.open(fileobj=decompressing(raw, package_format), mode="r|") as tar:
            yield tar
    except FormatError as exc:
        raise UnsafeArchiveError(str(exc)) from None


def check_member(member: tarfile.TarInfo, dest: str) -> None:
    """Raise UnsafeArchiveError naming the entry when it is not a plain in-tree file, directory or link."""
    name = member.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError("archive entry %r has an absolute path; packages hold relative paths only" % name)
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchiveError("archive entry %r contains '..' and would escape %s" % (name, dest))
    if member.ischr() or member.isblk() or member.isfifo():
        raise UnsafeArchiveError(
            "archive entry %r is a device or FIFO; packages hold files and directories only" % name
        )
    if member.mode & (stat.S_ISUID | stat.S_ISGID):
        raise UnsafeArchiveError(
            "archive entry %r has the setuid or setgid bit (mode %o); rebuild the package without it"
            % (name, member.mode)
        )
    if member.issym() or member.islnk():
        _check_link(member, dest)
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError("archive entry %r has an unsupported type %r" % (name, member.type))


def _check_link(member: tarfile.TarInfo, dest: str) -> None:
    target = member.linkname
    if target.startswith("/"):
        raise UnsafeArchiveError(
            "archive entry %r links to the absolute path %r, outside %s" % (member.name, target, dest)
        )
    # A symlink resolves from its own directory, a hard link from the archive root.
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        kind = "symlink" if member.issym() else "hard link"
        raise UnsafeArchiveError("archive entry %r is a %s to %r, which escapes %s" % (member.name, kind, target, dest))


def scan_archive(archive: str, dest: str, max_bytes: int) -> Dict[str, Any]:
    """Check every entry and the total size without writing anything; return counts."""
    total = 0
    members = 0
    for tar in open_members(archive):
        for member in tar:
            check_member(member, dest)
            members += 1
            total += member.size if member.isfile() else 0
            if total > max_bytes:
                raise UnsafeArchiveError(
                    "%s unpacks to more than the declared limit of %d bytes (reached %d at entry %r); "
                    "raise the limit if the package is meant to be this large"
                    % (archive, max_bytes, total, member.name)
                )
    return {"members": members, "bytes": total}


def safe_extract(archive: str, dest: str, max_bytes: int) -> Dict[str, Any]:
    """Unpack ``archive`` into the new directory ``dest``; refuse unsafe entries before writing."""
    if not hasattr(tarfile, "data_filter"):
        raise UnsafeArchiveError(
            "this Python (%s) lacks tarfile's 'data' extraction filter; use Python 3.8.17, 3.9.17, 3.10.12, "
            "3.11.4 or newer on the target" % sys.version.split()[0]
        )
    if os.path.lexists(dest):
        raise UnsafeArchiveError("%s already exists; unpack into a new directory (e.g. a fresh release slot)" % dest)
    counts = scan_archive(archive, dest, max_bytes)
    parent = os.path.dirname(os.path.abspath(dest))
    staging = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
    try:
        for tar in open_members(archive):
            _extract_all(tar, staging, _guard_filter(dest))
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _guard_filter(dest: str) -> Callable[[tarfile.TarInfo, str], Optional[tarfile.TarInfo]]:
    def guarded(member: tarfile.TarInfo, path: str) -> Optional[tarfile.TarInfo]:
        # Re-check during extraction: the archive could have changed since the scan.
        check_member(member, dest)
        return tarfile.data_filter(member, path)

    return guarded


def _extract_all(
    tar: tarfile.TarFile, staging: str, member_filter: Callable[[tarfile.TarInfo, str], Optional[tarfile.TarInfo]]
) -> None:
    # Stream mode: extract member by member as they arrive.
    for member in tar:
        tar.extract(member, staging, filter=member_filter)


def list_archive(archive: str) -> List[str]:
    names: List[str] = []
    for tar in open_members(archive):
        names.extend(member.name for member in tar)
    return names


def read_member(archive: str, name: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """Return one small member's content (e.g. manifest.json), refusing anything over ``limit`` bytes."""
    for tar in open_members(archive):
        for member in tar:
            if member.name != name:
                continue
            if not member.isfile() or member.size > limit:
                raise UnsafeArchiveError("%s in %s is not a regular file under %d bytes" % (name, archive, limit))
            handle: Optional[IO[bytes]] = tar.extractfile(member)
            if handle is None:
                break
            return handle.read()
    raise UnsafeArchiveError("%s holds no %s; build it with relops.release.package" % (archive, name))
