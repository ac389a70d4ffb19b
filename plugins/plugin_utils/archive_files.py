# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving items into the archive directory and back, with a sha256 per file.

An item is archived as plain files (``compression: none``) or as one
``.tar.gz`` / ``.tar.zst`` holding its files by name. Every archive file is
written under a temporary name, read back and checked against the original's
sha256, then renamed into place; only when every item of a run is written and
indexed are the originals removed, so a failure leaves the sources untouched
and removes what the run had written. A restore works the same way backwards:
every file is extracted next to its original place under a temporary name and
checked against the index before any is renamed into place.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set

from ansible_collections.relops.release.plugins.module_utils.digests import CHUNK_SIZE, file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import compressing, require_zstandard
from ansible_collections.relops.release.plugins.plugin_utils.retention import Decision, RetentionError

COMPRESSIONS = ("none", "tar.gz", "tar.zst")


@dataclass
class Placed:
    """One file of an item: where it is, where it goes (a file, or a member of the item's tar)."""

    original_path: str
    archive_path: str
    member: Optional[str]
    sha256: str = ""
    size: int = 0
    mtime: float = 0.0


@dataclass
class Move:
    archive_id: str
    decision: Decision
    target: str
    files: List[Placed] = field(default_factory=list)

    def index_rows(self) -> List[Dict[str, Any]]:
        """What the ledger's archive index records for this item, one row per file."""
        candidate = self.decision.candidate
        return [
            {
                "archive_id": self.archive_id,
                "kind": candidate.kind,
                "original_path": placed.original_path,
                "archive_path": placed.archive_path,
                "member": placed.member,
                "sha256": placed.sha256,
                "size": placed.size,
                "service": candidate.service,
                "version": candidate.version,
                "reason": self.decision.reason,
                "first_seq": candidate.first_seq,
                "last_seq": candidate.last_seq,
                "last_hash": candidate.last_hash,
                "details": {"mtime": placed.mtime},
            }
            for placed in self.files
        ]

    def describe(self) -> Dict[str, Any]:
        shown = self.decision.describe()
        shown.update(archive_id=self.archive_id, archive_path=self.target)
        shown["files"] = [
            {
                "original_path": placed.original_path,
                "archive_path": placed.archive_path,
                "member": placed.member,
                "sha256": placed.sha256 or None,
                "size": placed.size,
            }
            for placed in self.files
        ]
        return shown


def plan_moves(decisions: Sequence[Decision], dest: str, compression: str) -> List[Move]:
    """Where each item to archive goes; refuse targets that exist or collide before anything moves."""
    if compression not in COMPRESSIONS:
        raise RetentionError("compression %r is unknown; use one of %s" % (compression, ", ".join(COMPRESSIONS)))
    if compression == "tar.zst":
        require_zstandard("compression tar.zst")
    moves: List[Move] = []
    seen: Set[str] = set()
    for decision in decisions:
        candidate = decision.candidate
        folder = os.path.join(dest, candidate.kind, os.path.basename(candidate.source.rstrip(os.sep)) or "root")
        relative = os.path.relpath(candidate.path, candidate.source)
        if compression == "none":
            target = os.path.join(folder, relative)
            files = [
                Placed(name, os.path.join(os.path.dirname(target), os.path.basename(name)), None)
                for name in candidate.files
            ]
            targets = [placed.archive_path for placed in files]
        else:
            target = os.path.join(folder, "%s.%s" % (relative, compression))
            files = [Placed(name, target, os.path.basename(name)) for name in candidate.files]
            targets = [target]
        for path in targets:
            if path in seen or os.path.lexists(path):
                raise RetentionError(
                    "archive path %s already exists (for %s); nothing was archived. Give another dest, or move the"
                    " old archive file aside" % (path, candidate.path)
                )
            seen.add(path)
        moves.append(Move("arc-" + uuid.uuid4().hex[:16], decision, target, files))
    return moves


def write_archives(moves: Sequence[Move], compression: str) -> None:
    """Write every item's archive file(s), checked against the originals; on failure remove what was written."""
    written: List[str] = []
    try:
        for move in moves:
            for placed in move.files:
                placed.sha256, placed.size = file_digest(placed.original_path)
                placed.mtime = os.stat(placed.original_path).st_mtime
            if compression == "none":
                for placed in move.files:
                    _copy_checked(placed, written)
            else:
                _tar_checked(move, compression, written)
    except BaseException:
        remove_files(written)
        raise


def remove_originals(moves: Iterable[Move]) -> None:
    for move in moves:
        for placed in move.files:
            os.unlink(placed.original_path)


def remove_archives(moves: Iterable[Move]) -> None:
    remove_files(sorted({placed.archive_path for move in moves for placed in move.files}))


def remove_files(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _copy_checked(placed: Placed, written: List[str]) -> None:
    temporary = _temporary_beside(placed.archive_path)
    written.append(temporary)
    shutil.copyfile(placed.original_path, temporary)
    shutil.copystat(placed.original_path, temporary)
    _check_digest(temporary, placed.sha256, placed.original_path)
    os.replace(temporary, placed.archive_path)
    written.append(placed.archive_path)


def _tar_checked(move: Move, compression: str, written: List[str]) -> None:
    temporary = _temporary_beside(move.target)
    written.append(temporary)
    with open(temporary, "wb") as raw:
        with compressing(raw, compression) as stream, tarfile.open(fileobj=stream, mode="w|") as tar:
            for placed in move.files:
                tar.add(placed.original_path, arcname=placed.member, recursive=False)
        raw.flush()
        os.fsync(raw.fileno())
    found: Dict[str, str] = {}
    read_members(
        temporary,
        {str(placed.member) for placed in move.files},
        lambda name, data: found.update({name: _hash_stream(data)}),
        compression,
    )
    for placed in move.files:
        if found.get(str(placed.member)) != placed.sha256:
            raise RetentionError(
                "archive %s does not hold %s as read (sha256 %s, read back %s); nothing was archived"
                % (move.target, placed.original_path, placed.sha256, found.get(str(placed.member)))
            )
    os.replace(temporary, move.target)
    written.append(move.target)


def _temporary_beside(path: str) -> str:
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    os.close(handle)
    return temporary


def _check_digest(path: str, expected: str, original: str) -> None:
    actual = file_digest(path)[0]
    if actual != expected:
        raise RetentionError(
            "the copy of %s at %s has sha256 %s, not %s (the source changed while it was copied); retry"
            % (original, path, actual, expected)
        )


def _hash_stream(stream: IO[bytes], out: Optional[IO[bytes]] = None) -> str:
    hasher = hashlib.sha256()
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return hasher.hexdigest()
        hasher.update(chunk)
        if out is not None:
            out.write(chunk)


def read_members(
    path: str, wanted: Set[str], sink: Callable[[str, IO[bytes]], None], compression: Optional[str] = None
) -> Set[str]:
    """Stream a .tar.gz/.tar.zst and hand each wanted regular member to ``sink``; return the names seen."""
    compression = compression or ("tar.zst" if path.endswith(".tar.zst") else "tar.gz")
    try:
        return _read_members(path, wanted, sink, compression)
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        raise RetentionError("archive %s cannot be read as %s (%s); it is damaged" % (path, compression, exc)) from None
    except OSError as exc:
        if not isinstance(exc, gzip.BadGzipFile) and exc.errno is not None:
            raise
        raise RetentionError("archive %s cannot be read as %s (%s); it is damaged" % (path, compression, exc)) from None
    except Exception as exc:  # zstandard.ZstdError derives from Exception only
        if type(exc).__name__ != "ZstdError":
            raise
        raise RetentionError("archive %s cannot be read as %s (%s); it is damaged" % (path, compression, exc)) from None


def _read_members(path: str, wanted: Set[str], sink: Callable[[str, IO[bytes]], None], compression: str) -> Set[str]:
    seen: Set[str] = set()
    with open(path, "rb") as raw:
        if compression == "tar.zst":
            require_zstandard("reading %s" % path)
            import zstandard  # noqa: PLC0415 - optional, checked just above

            stream: Any = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if member.name not in wanted or not member.isfile() or member.name in seen:
                    continue
                data = tar.extractfile(member)
                if data is not None:
                    seen.add(member.name)
                    sink(member.name, data)
    return seen


def digest_archived(row: Mapping[str, Any]) -> str:
    """The sha256 of an archived file as it is now in the archive (a file or a tar member)."""
    if not os.path.exists(row["archive_path"]):
        raise RetentionError(
            "archive file %s (archive id %s) is missing; the archive index cannot be honoured"
            % (row["archive_path"], row["archive_id"])
        )
    if not row.get("member"):
        return file_digest(row["archive_path"])[0]
    found: Dict[str, str] = {}
    read_members(row["archive_path"], {row["member"]}, lambda name, data: found.update({name: _hash_stream(data)}))
    if row["member"] not in found:
        raise RetentionError("archive %s no longer holds %s" % (row["archive_path"], row["member"]))
    return found[row["member"]]


def extract_checked(rows: Sequence[Mapping[str, Any]], workdir: Optional[str] = None) -> Dict[int, str]:
    """Extract archived files to temporary files, each checked against the index's sha256.

    Files go next to their original path (``workdir`` None, for a restore, so
    the final rename stays on one file system) or into ``workdir``. Returns
    index row id -> temporary path. On a mismatch every temporary file is
    removed and the error names the archive file, the member and both digests.
    """
    made: Dict[int, str] = {}
    try:
        for row in rows:
            directory = workdir or os.path.dirname(row["original_path"])
            os.makedirs(directory, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".relops-restore.", dir=directory)
            os.close(handle)
            made[int(row["id"])] = temporary
            actual = extract_one(row, temporary)
            if actual != row["sha256"]:
                raise RetentionError(
                    "archived file %s%s (archive id %s) has sha256 %s, but the archive index recorded %s: it changed"
                    " after archiving; nothing was restored"
                    % (
                        row["archive_path"],
                        (" member " + row["member"]) if row.get("member") else "",
                        row["archive_id"],
                        actual,
                        row["sha256"],
                    )
                )
    except RetentionError as exc:
        remove_files(made.values())
        text = str(exc)
        raise RetentionError(text if "nothing was restored" in text else text + "; nothing was restored") from None
    except BaseException:
        remove_files(made.values())
        raise
    return made


def extract_one(row: Mapping[str, Any], temporary: str) -> str:
    if not os.path.exists(row["archive_path"]):
        raise RetentionError(
            "archive file %s (archive id %s) is missing; nothing was restored"
            % (row["archive_path"], row["archive_id"])
        )
    with open(temporary, "wb") as out:
        if not row.get("member"):
            with open(row["archive_path"], "rb") as source:
                return _hash_stream(source, out)
        found: Dict[str, str] = {}
        read_members(
            row["archive_path"], {row["member"]}, lambda name, data: found.update({name: _hash_stream(data, out)})
        )
    if row["member"] not in found:
        raise RetentionError(
            "archive %s no longer holds %s (archive id %s); nothing was restored"
            % (row["archive_path"], row["member"], row["archive_id"])
        )
    return found[row["member"]]
