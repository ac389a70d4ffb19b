# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Creating release deltas on the controller (applied on the target by module_utils/delta.py).

The delta compresses the new package's tar stream against the previous
package's tar stream. Working on the tar streams rather than the compressed
files is what makes deltas small: one changed byte early in a compressed
stream changes everything after it.

Two encoders produce the same kind of frame (one zstd frame whose matches may
reach into the base, which the decoder holds as history):

- ``patch-from`` (preferred): the ``zstd`` command line with ``--patch-from``
  and ``--long``. It references the base as a *prefix*, which long-distance
  matching covers, so a minor release of a 200 MiB tree costs a few KiB.
- ``dictionary`` (when the controller has no ``zstd`` 1.4.7 or newer): the
  ``zstandard`` library with the base as a raw-content dictionary. Correct,
  but the library attaches large dictionaries without long-distance matching,
  so past a few MiB its deltas grow to a large fraction of the package.

The target decodes both the same way, with the base as a raw-content
dictionary (for the decoder a prefix and a raw-content dictionary are both
just history), so the choice never reaches the host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

try:
    import zstandard

    HAS_ZSTANDARD = True
except ImportError:
    HAS_ZSTANDARD = False

from ansible_collections.relops.release.plugins.module_utils.delta import pack_header, read_tar_stream
from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import decompressing, format_of

from . import ArtifactError, require_library

MIN_WINDOW_LOG = 20
MAX_WINDOW_LOG = 31
# --patch-from appeared in zstd 1.4.7; older command lines are ignored in favour of the library.
MIN_ZSTD_CLI = (1, 4, 7)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1024 * 1024
METHOD_PATCH_FROM = "patch-from"
METHOD_DICTIONARY = "dictionary"


@dataclass
class DeltaInfo:
    path: str
    size: int
    base_sha256: str
    target_sha256: str
    target_size: int
    window_log: int
    method: str = METHOD_PATCH_FROM

    def as_dict(self) -> Dict[str, Any]:
        return {
            "delta_path": self.path,
            "delta_size": self.size,
            "base_sha256": self.base_sha256,
            "target_sha256": self.target_sha256,
            "target_size": self.target_size,
            "window_log": self.window_log,
            "delta_method": self.method,
            "ratio": round(self.size / self.target_size, 4) if self.target_size else None,
        }


def window_log_for(*sizes: int) -> int:
    # As zstd --patch-from: a window twice the larger input, so the whole base stays reachable.
    return max(MIN_WINDOW_LOG, min(MAX_WINDOW_LOG, max(sizes).bit_length() + 1))


def zstd_cli() -> Optional[str]:
    """The path of a ``zstd`` command line that has ``--patch-from``, or None."""
    path = shutil.which("zstd")
    if path is None:
        return None
    try:
        done = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"v(\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        return None
    version = tuple(int(part) for part in found.groups())
    return path if version >= MIN_ZSTD_CLI else None


def create_delta(base: str, target: str, out: str, level: int = 19, method: Optional[str] = None) -> DeltaInfo:
    """Write the delta that rebuilds ``target`` from ``base`` to ``out``.

    ``method`` forces an encoder (``patch-from`` or ``dictionary``); by default
    the zstd command line is used when the controller has it.
    """
    base_format, target_format = format_of(base), format_of(target)
    cli = zstd_cli() if method in (None, METHOD_PATCH_FROM) else None
    if method == METHOD_PATCH_FROM and cli is None:
        raise ArtifactError(
            "delta method patch-from needs the zstd command line (1.4.7 or newer) on the controller's PATH; "
            "install zstd, or leave the method to choose"
        )
    if cli is not None:
        window_log, frame = _frame_with_cli(cli, base, base_format, target, target_format, level, os.path.dirname(out))
        used = METHOD_PATCH_FROM
    else:
        window_log, frame = _frame_with_dictionary(base, base_format, target, target_format, level)
        used = METHOD_DICTIONARY
    base_sha256, target_sha256 = file_digest(base)[0], file_digest(target)[0]
    with open(out, "wb") as handle:
        handle.write(pack_header(base_format, target_format, window_log))
        handle.write(frame)
    return DeltaInfo(out, os.path.getsize(out), base_sha256, target_sha256, os.path.getsize(target), window_log, used)


def _write_tar_stream(path: str, package_format: str, out: str) -> int:
    """Decompress a package's tar stream to ``out`` in chunks; return its size."""
    size = 0
    with open(path, "rb") as raw, open(out, "wb") as handle:
        reader = decompressing(raw, package_format)
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            handle.write(chunk)
            size += len(chunk)
    return size


def _frame_with_cli(
    cli: str, base: str, base_format: str, target: str, target_format: str, level: int, near: str
) -> Tuple[int, bytes]:
    """The magicless frame from ``zstd --patch-from --long`` over the two tar streams, and its window log."""
    with tempfile.TemporaryDirectory(prefix=".relops-delta-", dir=near or None) as workdir:
        base_tar, target_tar, frame_path = (os.path.join(workdir, name) for name in ("base.tar", "target.tar", "f"))
        sizes = (_write_tar_stream(base, base_format, base_tar), _write_tar_stream(target, target_format, target_tar))
        command = [
            cli, "-q", "-f", "-%d" % level, "--long=%d" % window_log_for(*sizes), "--patch-from=" + base_tar,
            # The signed sha256 checks the rebuilt package, so the frame's own checksum and size are dead weight.
            "--no-check", "--no-content-size", target_tar, "-o", frame_path,
        ]  # fmt: skip
        if level > 19:
            command.insert(1, "--ultra")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ArtifactError(
                "zstd --patch-from failed (exit %d): %s; check the disk space next to the delta, or install a "
                "zstd command line of 1.4.7 or newer" % (done.returncode, done.stderr.strip() or done.stdout.strip())
            )
        with open(frame_path, "rb") as handle:
            frame = handle.read()
    return _strip_magic(frame)


def _strip_magic(frame: bytes) -> Tuple[int, bytes]:
    """Drop the 4-byte zstd magic (the delta header replaces it); return the frame's window log too."""
    require_library(HAS_ZSTANDARD, "zstandard", "creating a delta")
    if frame[:4] != ZSTD_MAGIC:
        raise ArtifactError("zstd --patch-from wrote something other than a zstd frame; reinstall zstd")
    window_size = zstandard.get_frame_parameters(frame).window_size
    # The header stores a power of two; round up so the decoder never refuses the frame's window.
    window_log = max(MIN_WINDOW_LOG, (window_size - 1).bit_length())
    if window_log > MAX_WINDOW_LOG:
        raise ArtifactError("zstd chose a window of %d bytes, over the 2 GiB deltas allow" % window_size)
    return window_log, frame[4:]


def _frame_with_dictionary(
    base: str, base_format: str, target: str, target_format: str, level: int
) -> Tuple[int, bytes]:
    """The magicless frame from the zstandard library with the base as a raw-content dictionary."""
    require_library(HAS_ZSTANDARD, "zstandard", "creating a delta")
    base_tar = read_tar_stream(base, base_format)
    target_tar = read_tar_stream(target, target_format)
    window_log = window_log_for(len(base_tar), len(target_tar))
    dictionary = zstandard.ZstdCompressionDict(base_tar, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    parameters = zstandard.ZstdCompressionParameters.from_level(
        level,
        window_log=window_log,
        enable_ldm=True,
        threads=0,
        format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_content_size=False,
    )
    frame = zstandard.ZstdCompressor(dict_data=dictionary, compression_params=parameters).compress(target_tar)
    return window_log, frame
