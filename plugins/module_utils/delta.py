# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release deltas: the file format and their application on the target.

A delta is a 5-byte header (magic ``RD``, base and target package formats,
zstd window log) and a magicless zstd frame of the target's tar
stream compressed with the base's tar stream as a raw-content dictionary (like
``zstd --patch-from``). Applying it rebuilds the tar stream, recompresses it
with the package settings, and keeps the result only when its sha256 equals
the signed target digest, which the caller passes with the base digest.
Target-safe: standard library, plus the optional ``zstandard`` package,
which applying a delta needs.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from typing import IO, Any, Dict

from ansible_collections.relops.release.plugins.module_utils.digests import digests_equal, file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import (
    FORMATS,
    HAS_ZSTANDARD,
    compressing,
    decompressing,
    require_zstandard,
)

if HAS_ZSTANDARD:
    import zstandard

MAGIC = b"RD"
# magic, base format, target format, window log. The digests travel as task arguments, not in the file,
# and the zstd frame omits its own magic number, because for a small release every byte counts.
HEADER = struct.Struct(">2sBBB")
CHUNK = 1024 * 1024


class DeltaError(ValueError):
    """A delta that cannot be applied: wrong base, damaged file, or a result with the wrong digest."""


def pack_header(base_format: str, target_format: str, window_log: int) -> bytes:
    return HEADER.pack(MAGIC, FORMATS.index(base_format), FORMATS.index(target_format), window_log)


def read_header(handle: IO[bytes], source: str) -> Dict[str, Any]:
    """Read and check the header; leave ``handle`` at the start of the zstd frame."""
    raw = handle.read(HEADER.size)
    if len(raw) != HEADER.size or raw[: len(MAGIC)] != MAGIC:
        raise DeltaError(
            "%s is not a relops.release delta (bad header); create it with relops.release.artifact_delta" % source
        )
    magic, base_index, target_index, window_log = HEADER.unpack(raw)
    del magic
    if base_index >= len(FORMATS) or target_index >= len(FORMATS) or not 10 <= window_log <= 31:
        raise DeltaError("%s has a damaged header; create the delta again" % source)
    return {
        "base_format": FORMATS[base_index],
        "target_format": FORMATS[target_index],
        "window_log": window_log,
    }


def read_tar_stream(path: str, package_format: str) -> bytes:
    """The uncompressed tar stream of a package (the delta's dictionary)."""
    with open(path, "rb") as raw:
        return bytes(decompressing(raw, package_format).read())


class _HashingFile:
    """Writes through to a file while hashing, so the result needs no second read."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.hasher = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def check_base(base: str, base_sha256: str) -> None:
    """Raise DeltaError naming both digests when ``base`` is not the release the delta was made from."""
    actual, _size = file_digest(base)
    if not digests_equal(base_sha256, actual):
        raise DeltaError(
            "delta is against base sha256:%s but %s has sha256:%s; the host holds another release than the "
            "controller's base (give the right base, or ship the full artifact)" % (base_sha256, base, actual)
        )


def apply_delta(base: str, base_sha256: str, delta: str, dest: str, expected_sha256: str, mode: int = 0o644) -> str:
    """Rebuild the target package at ``dest`` from ``base`` and ``delta``; return its sha256.

    Nothing is written at ``dest`` unless the rebuilt package's sha256 equals
    ``expected_sha256`` (the signed digest).
    """
    require_zstandard("applying a delta")
    with open(delta, "rb") as handle:
        header = read_header(handle, delta)
        check_base(base, base_sha256)
        dictionary = zstandard.ZstdCompressionDict(
            read_tar_stream(base, header["base_format"]), dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        decompressor = zstandard.ZstdDecompressor(
            dict_data=dictionary,
            max_window_size=1 << int(header["window_log"]),
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        )
        directory = os.path.dirname(os.path.abspath(dest))
        fd, temporary = tempfile.mkstemp(prefix=".delta-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out:
                hashing = _HashingFile(out)
                with compressing(hashing, header["target_format"]) as packed:
                    reader = decompressor.stream_reader(handle)
                    for chunk in iter(lambda: reader.read(CHUNK), b""):
                        packed.write(chunk)
            actual = hashing.hasher.hexdigest()
            if not digests_equal(expected_sha256, actual):
                raise DeltaError(
                    "the package rebuilt from the delta has sha256:%s, not the signed sha256:%s; this host's "
                    "compression library produces other bytes (ship the full artifact)" % (actual, expected_sha256)
                )
            os.chmod(temporary, mode)
            os.replace(temporary, dest)
        except zstandard.ZstdError as exc:
            raise DeltaError("delta %s cannot be decompressed against %s (%s)" % (delta, base, exc)) from None
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return actual
