# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming file digests and the checksum forms relops.release accepts.

Target-safe: standard library only. Files are hashed through one reused
buffer, so memory stays constant whatever the artifact's size.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Dict, Optional, Sequence, Tuple

ALGORITHMS: Dict[str, int] = {"sha256": 64, "sha512": 128}
CHUNK_SIZE = 1024 * 1024
_PREFIXED = re.compile(r"^(?P<algorithm>[a-z0-9]+):(?P<hex>[0-9A-Fa-f]+)$")
# sha256sum / sha512sum text and binary mode lines: "<hex>  name" or "<hex> *name".
_GNU_LINE = re.compile(r"^\\?(?P<hex>[0-9A-Fa-f]+) [ *](?P<name>.+)$")
# BSD / `sha256sum --tag` lines: "SHA256 (name) = <hex>".
_BSD_LINE = re.compile(r"^(?P<algorithm>SHA256|SHA512) \((?P<name>.+)\) = (?P<hex>[0-9A-Fa-f]+)$")


class ChecksumError(ValueError):
    """A checksum that cannot be read, or that names no line for the artifact."""


def file_digest(path: str, algorithm: str = "sha256", chunk_size: int = CHUNK_SIZE) -> Tuple[str, int]:
    """Hash a file in constant memory; return (lowercase hex digest, bytes read)."""
    digests, size = file_digests(path, [algorithm], chunk_size)
    return digests[algorithm], size


def file_digests(path: str, algorithms: Sequence[str], chunk_size: int = CHUNK_SIZE) -> Tuple[Dict[str, str], int]:
    """Hash a file with one or more algorithms in one pass through one reused buffer."""
    for algorithm in algorithms:
        require_algorithm(algorithm)
    hashers = {name: hashlib.new(name) for name in dict.fromkeys(algorithms)}
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            chunk = view[:count]
            for hasher in hashers.values():
                hasher.update(chunk)
            size += count
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}, size


def require_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ChecksumError(
            "digest algorithm %r is not supported; use one of %s" % (algorithm, ", ".join(sorted(ALGORITHMS)))
        )


def parse_prefixed(text: str) -> Tuple[str, str]:
    """Parse ``sha256:<hex>`` or ``sha512:<hex>``; return (algorithm, lowercase hex)."""
    match = _PREFIXED.match(text.strip())
    if match is None:
        raise ChecksumError(
            "checksum %r is not in the form <algorithm>:<hex>; write e.g. sha256:9f2c... "
            "(64 hex digits) or sha512:... (128 hex digits)" % _shorten(text)
        )
    algorithm = match.group("algorithm")
    if algorithm not in ALGORITHMS:
        raise ChecksumError(
            "checksum %r uses the algorithm %r; use sha256:<hex> or sha512:<hex>" % (_shorten(text), algorithm)
        )
    return algorithm, _check_hex(algorithm, match.group("hex"), text)


def parse_sums_file(text: str, name: str) -> Tuple[str, str]:
    """Find ``name``'s line in sha256sum/sha512sum output (GNU or BSD style); return (algorithm, hex)."""
    seen = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        seen += 1
        bsd = _BSD_LINE.match(line)
        if bsd is not None:
            if os.path.basename(bsd.group("name")) == name:
                algorithm = bsd.group("algorithm").lower()
                return algorithm, _check_hex(algorithm, bsd.group("hex"), line)
            continue
        gnu = _GNU_LINE.match(line)
        if gnu is None:
            raise ChecksumError(
                "checksum line %r is neither '<hex>  <name>' (sha256sum) nor 'SHA256 (<name>) = <hex>'; "
                "produce the file with sha256sum or sha512sum" % _shorten(line)
            )
        if os.path.basename(gnu.group("name")) == name:
            algorithm = algorithm_for_length(gnu.group("hex"), line)
            return algorithm, _check_hex(algorithm, gnu.group("hex"), line)
    if seen == 0:
        raise ChecksumError("the checksum file is empty; it must hold a line for %s" % name)
    raise ChecksumError("the checksum file has no line for %s; add one with sha256sum %s" % (name, name))


def algorithm_for_length(hex_text: str, context: str) -> str:
    for algorithm, length in ALGORITHMS.items():
        if len(hex_text) == length:
            return algorithm
    raise ChecksumError(
        "checksum %r has %d hex digits; sha256 needs 64 and sha512 needs 128" % (_shorten(context), len(hex_text))
    )


def digests_equal(expected: str, actual: str) -> bool:
    """Compare two hex digests in constant time."""
    return hmac.compare_digest(expected.lower(), actual.lower())


def mismatch_message(name: str, algorithm: str, expected: str, actual: str, size: Optional[int] = None) -> str:
    sized = "" if size is None else " after %d bytes" % size
    return "artifact %s: %s mismatch (expected %s, got %s%s); the file changed after it was checksummed or signed" % (
        name,
        algorithm,
        expected,
        actual,
        sized,
    )


def _check_hex(algorithm: str, hex_text: str, context: str) -> str:
    length = ALGORITHMS[algorithm]
    if len(hex_text) != length or re.fullmatch(r"[0-9A-Fa-f]+", hex_text) is None:
        raise ChecksumError(
            "checksum %r is not a %s digest: it needs %d hex digits, it has %d"
            % (_shorten(context), algorithm, length, len(hex_text))
        )
    return hex_text.lower()


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
