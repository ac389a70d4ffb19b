# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Creating release deltas on the controller (applied on the target by module_utils/delta.py).

The delta compresses the new package's tar stream with the previous package's
tar stream as a raw-content dictionary, long-distance matching on and a window
covering both, which is what ``zstd --patch-from --long`` does. Working on the
tar streams rather than the compressed files is what makes deltas small: one
changed byte early in a compressed stream changes everything after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict

try:
    import zstandard

    HAS_ZSTANDARD = True
except ImportError:
    HAS_ZSTANDARD = False

from ansible_collections.relops.release.plugins.module_utils.delta import pack_header, read_tar_stream
from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import format_of

from . import require_library

MIN_WINDOW_LOG = 20
MAX_WINDOW_LOG = 31


@dataclass
class DeltaInfo:
    path: str
    size: int
    base_sha256: str
    target_sha256: str
    target_size: int
    window_log: int

    def as_dict(self) -> Dict[str, Any]:
        return {
            "delta_path": self.path,
            "delta_size": self.size,
            "base_sha256": self.base_sha256,
            "target_sha256": self.target_sha256,
            "target_size": self.target_size,
            "window_log": self.window_log,
            "ratio": round(self.size / self.target_size, 4) if self.target_size else None,
        }


def window_log_for(*sizes: int) -> int:
    # As zstd --patch-from: a window twice the larger input, so the whole dictionary stays reachable.
    return max(MIN_WINDOW_LOG, min(MAX_WINDOW_LOG, max(sizes).bit_length() + 1))


def create_delta(base: str, target: str, out: str, level: int = 19) -> DeltaInfo:
    """Write the delta that rebuilds ``target`` from ``base`` to ``out``."""
    require_library(HAS_ZSTANDARD, "zstandard", "creating a delta")
    base_format, target_format = format_of(base), format_of(target)
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
    base_sha256, target_sha256 = file_digest(base)[0], file_digest(target)[0]
    with open(out, "wb") as handle:
        handle.write(pack_header(base_format, target_format, window_log))
        handle.write(frame)
    return DeltaInfo(out, os.path.getsize(out), base_sha256, target_sha256, os.path.getsize(target), window_log)
