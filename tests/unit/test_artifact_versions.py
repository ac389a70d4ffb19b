"""SemVer/CalVer precedence, bumping, the naming convention and the filters."""

from __future__ import annotations

import datetime
import itertools

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.filter.version import FilterModule
from ansible_collections.relops.release.plugins.module_utils.versions import (
    VersionError,
    check_file_name,
    check_version,
    render_name,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import versioning

# The precedence chain from the SemVer 2.0.0 specification, section 11.
SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
    "2.10.0",
]
FILTERS = FilterModule().filters()


def test_semver_precedence_follows_the_specification() -> None:
    shuffled = list(reversed(SPEC_ORDER))
    assert versioning.sort(shuffled) == SPEC_ORDER
    assert versioning.sort(shuffled, reverse=True) == shuffled
    for older, newer in itertools.pairwise(SPEC_ORDER):
        assert versioning.compare(older, newer) == -1
        assert versioning.compare(newer, older) == 1


def test_build_metadata_does_not_change_precedence() -> None:
    assert versioning.compare("1.0.0+20130313144700", "1.0.0+exp.sha.5114f85") == 0


@pytest.mark.parametrize("bad", ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3+", "", "1.2.3.4"])
def test_bad_semver_is_refused_naming_the_version(bad: str) -> None:
    with pytest.raises(VersionError, match=r"is not SemVer 2\.0\.0"):
        check_version(bad)
    with pytest.raises(AnsibleFilterError, match="version_compare"):
        FILTERS["version_compare"](bad, "1.0.0")


@pytest.mark.parametrize(
    ("version", "part", "expected"),
    [
        ("1.4.2", "major", "2.0.0"),
        ("1.4.2", "minor", "1.5.0"),
        ("1.4.2", "patch", "1.4.3"),
        ("1.4.2-rc.1", "patch", "1.4.2"),
        ("1.4.2", "prerelease", "1.4.2-rc.1"),
        ("1.4.2-rc.1", "prerelease", "1.4.2-rc.2"),
    ],
)
def test_semver_bump(version: str, part: str, expected: str) -> None:
    assert FILTERS["version_bump"](version, part) == expected


def test_calver_compare_sort_and_bump() -> None:
    scheme = "calver:YYYY.0M.MICRO"
    assert versioning.sort(["2026.10.2", "2025.12.9", "2026.09.10"], scheme) == ["2025.12.9", "2026.09.10", "2026.10.2"]
    assert versioning.bump("2026.10.3", scheme=scheme, today=datetime.date(2026, 10, 20)) == "2026.10.4"
    assert versioning.bump("2026.10.3", scheme=scheme, today=datetime.date(2026, 11, 2)) == "2026.11.0"
    assert FILTERS["version_bump"]("2026.10.3", scheme=scheme, today="2026-11-02") == "2026.11.0"
    with pytest.raises(VersionError, match="does not follow"):
        versioning.bump("2026.10.3", scheme=scheme, today=datetime.date(2026, 9, 1))
    with pytest.raises(VersionError, match="does not follow the declared scheme"):
        check_version("2026.13.1", scheme)
    with pytest.raises(VersionError, match="is unknown"):
        check_version("1.0.0", "romver")


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=12))
def test_sort_agrees_with_numeric_order_for_plain_releases(triples: list) -> None:
    versions = ["%d.%d.%d" % triple for triple in triples]
    expected = ["%d.%d.%d" % triple for triple in sorted(triples)]
    assert versioning.sort(versions) == expected


def test_naming_convention() -> None:
    assert render_name("demo-app", "1.4.0-rc.1+b7", "tar.zst") == "demo-app-1.4.0-rc.1+b7.tar.zst"
    assert render_name("demo-app", "1.4.0", "tar.gz", "{name}_{version}.{ext}") == "demo-app_1.4.0.tar.gz"
    check_file_name("demo-app-1.4.0.tar.gz", "demo-app", "1.4.0")
    for bad_name in ["Demo", "demo app", "../etc", "-demo", "demo;rm"]:
        with pytest.raises(VersionError, match="breaks the naming convention"):
            render_name(bad_name, "1.0.0", "tar.gz")
    with pytest.raises(VersionError, match=r"should be 'demo-app-1\.4\.0\.tar\.gz'"):
        check_file_name("demo-app-latest.tar.gz", "demo-app", "1.4.0")
    with pytest.raises(VersionError, match="must end in"):
        check_file_name("demo-app-1.4.0.zip", "demo-app", "1.4.0")
    with pytest.raises(VersionError, match="not a safe file name"):
        render_name("demo-app", "1.4.0", "tar.gz", "{name} {version}.{ext}")
