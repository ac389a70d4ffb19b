"""The manifest schema: every mandatory field, and errors that name the field and the rule."""

from __future__ import annotations

import pytest
from fixtures.signing import demo_manifest

from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.manifest import (
    MANDATORY_FIELDS,
    check_manifest,
    manifest_errors,
)


def test_demo_manifest_is_valid() -> None:
    assert manifest_errors(demo_manifest()) == []


@pytest.mark.parametrize("field", MANDATORY_FIELDS)
def test_each_missing_mandatory_field_is_named(field: str) -> None:
    manifest = demo_manifest()
    del manifest[field]
    assert manifest_errors(manifest) == ["%s: is required (rule: required)" % field]
    with pytest.raises(ArtifactError, match="%s: is required" % field):
        check_manifest(manifest)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"environments": []}, "environments: [] should be non-empty (rule: minItems)"),
        ({"source_revision": "HEAD"}, "source_revision: 'HEAD' does not match"),
        ({"created": "yesterday"}, "created: 'yesterday' does not match"),
        ({"rollback_plan": {"strategy": "pray"}}, "rollback_plan.strategy: 'pray' is not one of"),
        (
            {"health_checks": [{"name": "tcp", "type": "tcp"}]},
            "health_checks: check 'tcp': port None is not a TCP port",
        ),
        (
            {"health_checks": [{"name": "web", "url": "/", "expect": 200}]},
            "check 'web' (http): unknown field(s) expect",
        ),
        ({"config_templates": ["../etc/passwd"]}, "config_templates[0]: '../etc/passwd' does not match"),
        ({"colour": "blue"}, "(top level): Additional properties are not allowed ('colour' was unexpected)"),
        ({"version": "1.4"}, "version: version '1.4' is not SemVer 2.0.0"),
        ({"version": "2026.11.2", "version_scheme": "calver:YYYY.0M.MICRO"}, None),
        ({"version": "2026.1.2", "version_scheme": "calver:YYYY.0M.MICRO"}, "does not follow the declared scheme"),
    ],
)
def test_rule_violations_name_field_and_rule(changes: dict, expected: str) -> None:
    errors = manifest_errors(demo_manifest(**changes))
    if expected is None:
        assert errors == []
    else:
        assert len(errors) == 1, errors
        assert expected in errors[0]


def test_all_problems_are_reported_at_once() -> None:
    manifest = demo_manifest(team="")
    del manifest["owner"]
    errors = manifest_errors(manifest)
    assert "owner: is required (rule: required)" in errors
    assert any(error.startswith("team:") and "(rule: minLength)" in error for error in errors)
