# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The package compression settings, shared by the builder (controller) and delta reconstruction (target).

A package is a tar stream compressed with fixed settings, so the target can
rebuild the exact bytes from the tar stream alone: gzip level 9 with no file
name and mtime 0, or zstd level 19, single-threaded, with a content checksum.
Target-safe: standard library, plus the optional ``zstandard`` package for zstd.
"""

from __future__ import annotations

import contextlib
import gzip
from typing import IO, Any, Iterator

try:
    import zstandard

    HAS_ZSTANDARD = True
except ImportError:
    HAS_ZSTANDARD = False

FORMATS = ("tar.gz", "tar.zst")
GZIP_LEVEL = 9
ZSTD_LEVEL = 19
# Releases change little between versions; one fixed entry time (1980-01-01, the ZIP epoch reproducible
# builds commonly use) keeps tar headers identical across releases, which keeps deltas small.
DEFAULT_MTIME = 315532800


class FormatError(ValueError):
    """An unknown package format, or a format this host cannot handle."""


def format_of(path: str) -> str:
    for name in FORMATS:
        if path.endswith("." + name):
            return name
    raise FormatError("%s is neither .tar.gz nor .tar.zst; relops.release packages use one of those" % path)


def require_zstandard(what: str) -> None:
    if not HAS_ZSTANDARD:
        raise FormatError(
            "%s needs the Python zstandard package, which this host lacks; install it (pip install zstandard)" % what
        )


@contextlib.contextmanager
def compressing(output: Any, package_format: str) -> Iterator[Any]:
    """Yield a writable stream that compresses into ``output`` with the package settings."""
    if package_format == "tar.gz":
        with gzip.GzipFile(filename="", mode="wb", fileobj=output, compresslevel=GZIP_LEVEL, mtime=0) as zipped:
            yield zipped
    elif package_format == "tar.zst":
        require_zstandard("writing .tar.zst")
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0, write_checksum=True)
        with compressor.stream_writer(output, closefd=False) as zipped:
            yield zipped
    else:
        raise FormatError("package format %r is not supported; use tar.gz or tar.zst" % package_format)


def decompressing(source: IO[bytes], package_format: str) -> Any:
    """Return a readable stream of the tar bytes inside a package."""
    if package_format == "tar.gz":
        return gzip.GzipFile(fileobj=source, mode="rb")
    if package_format == "tar.zst":
        require_zstandard("reading .tar.zst")
        return zstandard.ZstdDecompressor().stream_reader(source)
    raise FormatError("package format %r is not supported; use tar.gz or tar.zst" % package_format)
