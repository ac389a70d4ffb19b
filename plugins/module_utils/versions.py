# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version schemes and the artifact naming convention.

A version is SemVer 2.0.0 or follows a declared CalVer scheme such as
``YYYY.0M.MICRO``. Target-safe: standard library only; SemVer precedence on
the controller uses the ``semver`` library (plugin_utils/versioning.py).
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

# The regular expression published with the SemVer 2.0.0 specification.
SEMVER_PATTERN = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# CalVer tokens (https://calver.org): what each matches and whether it is a date part.
CALVER_TOKENS = {
    "YYYY": r"[1-9]\d{3}",
    "YY": r"[1-9]\d?|0",
    "0Y": r"\d{2}",
    "MM": r"1[0-2]|[1-9]",
    "0M": r"1[0-2]|0[1-9]",
    "WW": r"5[0-3]|[1-4]\d|[0-9]",
    "0W": r"5[0-3]|[0-4]\d",
    "DD": r"3[01]|[12]\d|[1-9]",
    "0D": r"3[01]|[12]\d|0[1-9]",
    "MAJOR": r"0|[1-9]\d*",
    "MINOR": r"0|[1-9]\d*",
    "MICRO": r"0|[1-9]\d*",
}
DEFAULT_NAME_PATTERN = "{name}-{version}.{ext}"
EXTENSIONS = ("tar.gz", "tar.zst")
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Safe in a file name, a URL path and a shell word without quoting.
FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
CALVER_SPLIT = re.compile(r"(YYYY|YY|0Y|MM|0M|WW|0W|DD|0D|MAJOR|MINOR|MICRO)")


class VersionError(ValueError):
    """A version, version scheme or artifact name that breaks the rules."""


def scheme_kind(scheme: str) -> str:
    """Return ``semver`` or ``calver`` for a scheme string (``semver`` or ``calver:<format>``)."""
    if scheme == "semver":
        return "semver"
    if scheme.startswith("calver:"):
        calver_tokens(scheme)
        return "calver"
    raise VersionError(
        "version scheme %r is unknown; use 'semver' or 'calver:<format>' such as 'calver:YYYY.0M.MICRO'" % scheme
    )


def calver_tokens(scheme: str) -> List[str]:
    """Split a ``calver:<format>`` scheme into its tokens; separators are '.', '-' or '_'."""
    layout = scheme[len("calver:") :]
    parts = [part for part in CALVER_SPLIT.split(layout) if part]
    tokens = [part for part in parts if part in CALVER_TOKENS]
    separators = [part for part in parts if part not in CALVER_TOKENS]
    if not tokens or any(sep not in (".", "-", "_") for sep in separators) or len(parts) != 2 * len(tokens) - 1:
        raise VersionError(
            "CalVer scheme %r is not a list of tokens (%s) joined by '.', '-' or '_'; write e.g. calver:YYYY.0M.MICRO"
            % (scheme, ", ".join(CALVER_TOKENS))
        )
    return tokens


def calver_regex(scheme: str) -> "re.Pattern[str]":
    layout = scheme[len("calver:") :]
    pattern = "".join(
        "(%s)" % CALVER_TOKENS[part] if part in CALVER_TOKENS else re.escape(part)
        for part in CALVER_SPLIT.split(layout)
        if part
    )
    return re.compile("^%s$" % pattern)


def parse_calver(version: str, scheme: str) -> Tuple[int, ...]:
    """Return the version's numbers in order, for comparison; raise VersionError when it does not match."""
    calver_tokens(scheme)
    match = calver_regex(scheme).match(version)
    if match is None:
        raise VersionError(
            "version %r does not follow the declared scheme %s; write it like %s"
            % (version, scheme, scheme[len("calver:") :])
        )
    return tuple(int(group) for group in match.groups())


def check_version(version: str, scheme: str = "semver") -> None:
    """Raise VersionError naming the version and the rule when it does not follow the scheme."""
    if not isinstance(version, str):
        raise VersionError("version %r is not a string; quote it in YAML (e.g. version: '1.2.0')" % (version,))
    if scheme_kind(scheme) == "semver":
        if SEMVER_PATTERN.match(version) is None:
            raise VersionError(
                "version %r is not SemVer 2.0.0 (MAJOR.MINOR.PATCH with optional -prerelease and +build, "
                "no leading zeros); write e.g. 1.4.0 or 1.4.0-rc.1" % version
            )
        return
    parse_calver(version, scheme)


def check_name(name: str) -> None:
    if not isinstance(name, str) or NAME_PATTERN.match(name) is None:
        raise VersionError(
            "artifact name %r breaks the naming convention: use 1 to 64 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. payments-api)" % (name,)
        )


def render_name(name: str, version: str, ext: str, pattern: str = DEFAULT_NAME_PATTERN, scheme: str = "semver") -> str:
    """Return the artifact file name the convention gives for name, version and extension."""
    check_name(name)
    check_version(version, scheme)
    if ext not in EXTENSIONS:
        raise VersionError("artifact extension %r is not one of %s" % (ext, ", ".join(EXTENSIONS)))
    try:
        rendered = pattern.format(name=name, version=version, ext=ext)
    except (KeyError, IndexError, ValueError) as exc:
        raise VersionError(
            "name pattern %r is not valid (%s); it may use only {name}, {version} and {ext}" % (pattern, exc)
        ) from None
    if FILE_NAME_PATTERN.match(rendered) is None or not rendered.endswith("." + ext):
        raise VersionError(
            "name pattern %r gives %r, which is not a safe file name ending in .%s; use letters, digits, '.', "
            "'_', '+' and '-' only" % (pattern, rendered, ext)
        )
    return rendered


def extension_of(file_name: str) -> Optional[str]:
    for ext in EXTENSIONS:
        if file_name.endswith("." + ext):
            return ext
    return None


def check_file_name(
    file_name: str, name: str, version: str, pattern: str = DEFAULT_NAME_PATTERN, scheme: str = "semver"
) -> None:
    """Raise VersionError unless file_name is exactly what the convention gives for the manifest's name/version."""
    ext = extension_of(file_name)
    if ext is None:
        raise VersionError(
            "artifact file %r breaks the naming convention: it must end in %s"
            % (file_name, " or ".join("." + e for e in EXTENSIONS))
        )
    expected = render_name(name, version, ext, pattern, scheme)
    if file_name != expected:
        raise VersionError(
            "artifact file %r breaks the naming convention %r: the manifest says it should be %r"
            % (file_name, pattern, expected)
        )
