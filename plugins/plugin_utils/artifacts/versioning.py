# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version precedence and bumping: SemVer 2.0.0 through the ``semver`` library, CalVer by its declared scheme."""

from __future__ import annotations

import datetime
import functools
from typing import Any, List, Optional, Sequence, Tuple

try:
    import semver

    HAS_SEMVER = True
except ImportError:
    HAS_SEMVER = False

from ansible_collections.relops.release.plugins.module_utils.versions import (
    CALVER_SPLIT,
    CALVER_TOKENS,
    VersionError,
    calver_tokens,
    check_version,
    parse_calver,
    scheme_kind,
)

SEMVER_PARTS = ("major", "minor", "patch", "prerelease", "build")
COUNTER_TOKENS = ("MAJOR", "MINOR", "MICRO")


def compare(left: str, right: str, scheme: str = "semver") -> int:
    """Return -1, 0 or 1 as ``left`` precedes, equals or follows ``right`` (build metadata is ignored)."""
    check_version(left, scheme)
    check_version(right, scheme)
    if scheme_kind(scheme) == "semver":
        _require_semver()
        return int(semver.Version.parse(left).compare(right))
    left_key, right_key = parse_calver(left, scheme), parse_calver(right, scheme)
    return (left_key > right_key) - (left_key < right_key)


def sort(versions: Sequence[Any], scheme: str = "semver", reverse: bool = False) -> List[str]:
    """Return the versions in precedence order; ties keep their input order."""
    if isinstance(versions, (str, bytes)) or not isinstance(versions, Sequence):
        raise VersionError("version_sort needs a list of versions, got %r" % (versions,))
    texts = [str(version) for version in versions]
    for text in texts:
        check_version(text, scheme)
    ordered = sorted(texts, key=functools.cmp_to_key(lambda a, b: compare(str(a), str(b), scheme)))
    return list(reversed(ordered)) if reverse else ordered


def bump(
    version: str,
    part: str = "patch",
    scheme: str = "semver",
    token: Optional[str] = None,
    today: Optional[datetime.date] = None,
) -> str:
    """Return the next version: SemVer by part, CalVer by today's date (and MICRO/MINOR/MAJOR by part)."""
    check_version(version, scheme)
    if scheme_kind(scheme) == "semver":
        return _bump_semver(version, part, token)
    return _bump_calver(version, part, scheme, today or datetime.datetime.now(datetime.timezone.utc).date())


def _require_semver() -> None:
    if not HAS_SEMVER:
        raise VersionError(
            "SemVer precedence needs the Python package 'semver' on the controller; install it "
            "(pip install semver, or pip install -r requirements.txt from the collection)"
        )


def _bump_semver(version: str, part: str, token: Optional[str]) -> str:
    _require_semver()
    parsed = semver.Version.parse(version)
    if part == "major":
        return str(parsed.bump_major())
    if part == "minor":
        return str(parsed.bump_minor())
    if part == "patch":
        # A pre-release of x.y.z bumps to x.y.z itself, as SemVer precedence expects.
        return str(parsed.finalize_version() if parsed.prerelease else parsed.bump_patch())
    if part == "prerelease":
        return str(parsed.bump_prerelease(token or "rc"))
    if part == "build":
        return str(parsed.bump_build(token or "build"))
    raise VersionError("version part %r is unknown; use one of %s" % (part, ", ".join(SEMVER_PARTS)))


def _bump_calver(version: str, part: str, scheme: str, today: datetime.date) -> str:
    tokens = calver_tokens(scheme)
    counters = [token for token in tokens if token in COUNTER_TOKENS]
    wanted = _calver_counter(scheme, part, counters)
    values = _next_values(tokens, parse_calver(version, scheme), _date_values(tokens, today), wanted)
    candidate = _render_calver(scheme, values)
    if compare(candidate, version, scheme) <= 0:
        raise VersionError(
            "bumping %s by %s on %s gives %s, which does not follow it; the release date went backwards "
            "or the scheme has no counter to bump" % (version, part, today.isoformat(), candidate)
        )
    return candidate


def _calver_counter(scheme: str, part: str, counters: Sequence[str]) -> Optional[str]:
    """Return the counter token a bump of ``part`` increments (None: only the date moves)."""
    if part == "date":
        return None
    if part == "patch" and counters:
        return counters[-1]
    if part.upper() in counters:
        return part.upper()
    raise VersionError(
        "CalVer scheme %s has no %s part; bump one of %s" % (scheme, part, ", ".join([*counters, "date"]))
    )


def _date_values(tokens: Sequence[str], today: datetime.date) -> List[Optional[int]]:
    values: List[Optional[int]] = []
    for token in tokens:
        if token in ("YYYY",):
            values.append(today.year)
        elif token in ("YY", "0Y"):
            values.append(today.year - 2000)
        elif token in ("MM", "0M"):
            values.append(today.month)
        elif token in ("WW", "0W"):
            values.append(int(today.strftime("%W")))
        elif token in ("DD", "0D"):
            values.append(today.day)
        else:
            values.append(None)
    return values


def _next_values(
    tokens: Sequence[str], current: Tuple[int, ...], dates: Sequence[Optional[int]], wanted: Optional[str]
) -> List[int]:
    date_changed = any(date is not None and date != value for date, value in zip(dates, current, strict=True))
    values: List[int] = []
    reset = False
    for token, value, date in zip(tokens, current, dates, strict=True):
        if date is not None:
            values.append(date)
        elif date_changed or reset:
            values.append(0)
        elif token == wanted:
            values.append(value + 1)
            reset = True
        else:
            values.append(value)
    return values


def _render_calver(scheme: str, values: Sequence[int]) -> str:
    numbers = iter(values)
    pieces = []
    for piece in CALVER_SPLIT.split(scheme[len("calver:") :]):
        if piece in CALVER_TOKENS:
            value = next(numbers)
            pieces.append("%02d" % value if piece.startswith("0") else str(value))
        else:
            pieces.append(piece)
    return "".join(pieces)
