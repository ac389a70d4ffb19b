# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe unpacking of release packages on the target.

Every member is checked before anything is written: absolute names, ``..``,
links that leave the destination, device and FIFO entries, setuid/setgid bits,
a payload over the declared byte limit and more entries than the entry limit
are refused, naming the entry. The extraction itself then runs with the
standard library's ``data`` filter (or, on a Python without it, such as
Debian 12's 3.11.2, with the same checks done here), into a staging directory
renamed into place only when every entry is out, so a failure leaves no
half-written destination. A damaged, truncated or non-tar file is refused
with the archive's name, never surfaced as a raw tar/gzip/zstd exception.
Target-safe: standard library only; ``.tar.zst`` needs the optional
``zstandard`` package.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

from ansible_collections.relops.release.plugins.module_utils.packformat import FormatError, decompressing, format_of

try:
    from zstandard import ZstdError

    _ZSTD_ERRORS: Tuple[Type[BaseException], ...] = (ZstdError,)
except ImportError:
    _ZSTD_ERRORS = ()

# Python 3.8.17, 3.9.17, 3.10.12, 3.11.4 and newer have it; Debian 12's python3 (3.11.2) does not.
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
# A package is an application, not a file system image: 200,000 empty directories are an attack on the
# host's inodes and time, which the byte limit alone does not see.
DEFAULT_MAX_ENTRIES = 100000
# What a damaged, truncated or non-package file raises while it is read (gzip.BadGzipFile is an OSError).
_READ_ERRORS: Tuple[Type[BaseException], ...] = (tarfile.TarError, EOFError, OSError, zlib.error, *_ZSTD_ERRORS)


class UnsafeArchiveError(ValueError):
    """An archive entry that would escape or abuse the destination, or an archive that cannot be read."""


@contextlib.contextmanager
def open_members(archive: str) -> Iterator[tarfile.TarFile]:
    """Open the archive as a tar stream (gzip or zstd by file name); whatever goes wrong while the caller
    reads or extracts it becomes an UnsafeArchiveError naming the archive."""
    try:
        package_format = format_of(archive)
        with open(archive, "rb") as raw, tarfile.open(fileobj=decompressing(raw, package_format), mode="r|") as tar:
            yield tar
    except FormatError as exc:
        raise UnsafeArchiveError(str(exc)) from None
    except _READ_ERRORS as exc:
        raise UnsafeArchiveError(_describe_read_error(archive, exc)) from None


def _describe_read_error(archive: str, exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.filename != archive:
        return "%s cannot be unpacked: %s" % (archive, exc)
    if isinstance(exc, tarfile.TarError) and getattr(exc, "tarinfo", None) is not None:
        # tarfile's data filter refused an entry (e.g. a link that leaves through an earlier link).
        return "%s holds an entry that escapes the destination: %s" % (archive, exc)
    return "%s is damaged, truncated or not a tar package (%s: %s); build it with relops.release.package" % (
        archive,
        type(exc).__name__,
        exc or "no detail",
    )


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


def scan_archive(archive: str, dest: str, max_bytes: int, max_entries: int = DEFAULT_MAX_ENTRIES) -> Dict[str, Any]:
    """Check every entry, the total size and the number of entries without writing anything; return counts."""
    total = 0
    members = 0
    with open_members(archive) as tar:
        for member in tar:
            check_member(member, dest)
            members += 1
            if members > max_entries:
                raise UnsafeArchiveError(
                    "%s holds more than the limit of %d entries (reached it at entry %r); "
                    "raise max_entries if the package is meant to hold this many files"
                    % (archive, max_entries, member.name)
                )
            total += member.size if member.isfile() else 0
            if total > max_bytes:
                raise UnsafeArchiveError(
                    "%s unpacks to more than the declared limit of %d bytes (reached %d at entry %r); "
                    "raise the limit if the package is meant to be this large"
                    % (archive, max_bytes, total, member.name)
                )
    return {"members": members, "bytes": total}


def safe_extract(
    archive: str,
    dest: str,
    max_bytes: int,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    use_data_filter: bool = HAS_DATA_FILTER,
) -> Dict[str, Any]:
    """Unpack ``archive`` into the new directory ``dest``; refuse unsafe entries before writing.

    ``use_data_filter`` false does the ``data`` filter's checks here instead (the path a Python without
    tarfile.data_filter takes; tests force it on any Python)."""
    if os.path.lexists(dest):
        raise UnsafeArchiveError("%s already exists; unpack into a new directory (e.g. a fresh release slot)" % dest)
    counts = scan_archive(archive, dest, max_bytes, max_entries)
    parent = os.path.dirname(os.path.abspath(dest))
    staging = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
    try:
        with open_members(archive) as tar:
            _extract_all(tar, staging, dest, use_data_filter)
        os.rename(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _extract_all(tar: tarfile.TarFile, staging: str, dest: str, use_data_filter: bool) -> None:
    # Stream mode: extract member by member as they arrive, re-checking each (the archive could have
    # changed since the scan).
    guarded = _guard_filter(dest)
    for member in tar:
        if use_data_filter:
            tar.extract(member, staging, filter=guarded)
        else:
            check_member(member, dest)
            _extract_trusted(tar, data_filter_fallback(member, staging, dest), staging)


def _guard_filter(dest: str) -> Callable[[tarfile.TarInfo, str], Optional[tarfile.TarInfo]]:
    def guarded(member: tarfile.TarInfo, path: str) -> Optional[tarfile.TarInfo]:
        check_member(member, dest)
        return tarfile.data_filter(member, path)

    return guarded


def _extract_trusted(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: str) -> None:
    """Extract a member the fallback already checked and sanitised."""
    if HAS_DATA_FILTER:
        # The forced fallback on a Python that has filters: say so, rather than take its default.
        tar.extract(member, staging, filter="fully_trusted")
    else:
        tar.extract(member, staging)


def data_filter_fallback(member: tarfile.TarInfo, staging: str, dest: str) -> tarfile.TarInfo:
    """The checks and changes of tarfile.data_filter (PEP 706) for a Python that lacks it.

    Beyond check_member's look at the names, it resolves them on disk: a path or a link that leaves
    ``staging`` through a link extracted before it (a symlink chain) is refused. Returns a copy with
    the data filter's attributes: no setuid/setgid/sticky or group/other write bits, files readable and
    writable by their owner, directories 0755, owned by whoever unpacks."""
    root = os.path.realpath(staging)
    target = os.path.realpath(os.path.join(root, member.name))
    if not _inside(target, root):
        raise UnsafeArchiveError(
            "archive entry %r would be written outside %s, through a link earlier in the archive" % (member.name, dest)
        )
    if member.issym() or member.islnk():
        base = os.path.join(root, os.path.dirname(member.name)) if member.issym() else root
        if not _inside(os.path.realpath(os.path.join(base, member.linkname)), root):
            kind = "symlink" if member.issym() else "hard link"
            raise UnsafeArchiveError(
                "archive entry %r is a %s to %r, which resolves outside %s through a link earlier in the archive"
                % (member.name, kind, member.linkname, dest)
            )
    safe = copy.copy(member)
    mode = member.mode & 0o755
    if member.isfile() or member.islnk():
        if not mode & 0o100:
            mode &= ~0o111
        mode |= 0o600
    elif member.isdir():
        mode = 0o755
    safe.mode = mode
    safe.uid, safe.gid, safe.uname, safe.gname = os.getuid(), os.getgid(), "", ""
    return safe


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def list_archive(archive: str) -> List[str]:
    names: List[str] = []
    with open_members(archive) as tar:
        names.extend(member.name for member in tar)
    return names


def read_member(archive: str, name: str, limit: int = 16 * 1024 * 1024) -> bytes:
    """Return one small member's content (e.g. manifest.json), refusing anything over ``limit`` bytes."""
    with open_members(archive) as tar:
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
