# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release manifest (``manifest.json`` in every package): its JSON Schema and its validation.

Errors name the field (as a JSON path such as ``health_checks[0].url``) and the
rule it breaks, and every error is reported at once, not only the first.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:
    HAS_JSONSCHEMA = False

from ansible_collections.relops.release.plugins.module_utils.smoke import SmokeCheckError, normalize_checks
from ansible_collections.relops.release.plugins.module_utils.versions import (
    VersionError,
    check_name,
    check_version,
)

from . import ArtifactError, require_library

SCHEMA_ID = "https://relops.example/schemas/release-manifest/v1.json"
MANDATORY_FIELDS = (
    "name",
    "version",
    "owner",
    "team",
    "service",
    "environments",
    "dependencies",
    "health_checks",
    "rollback_plan",
    "source_revision",
    "created",
)
_NON_EMPTY = {"type": "string", "minLength": 1}
_TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"}
_RELATIVE_PATH = {"type": "string", "pattern": r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._/+-]+$"}

MANIFEST_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "relops.release release manifest",
    "type": "object",
    "required": list(MANDATORY_FIELDS),
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "name": {"type": "string", "pattern": r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
        "version": _NON_EMPTY,
        "version_scheme": {"type": "string", "pattern": r"^(semver|calver:[A-Z0-9._-]+)$"},
        "owner": _NON_EMPTY,
        "team": _NON_EMPTY,
        "service": _NON_EMPTY,
        "description": {"type": "string"},
        "environments": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^[a-z][a-z0-9_-]*$"},
        },
        "dependencies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "version"],
                "additionalProperties": False,
                "properties": {"name": _NON_EMPTY, "version": _NON_EMPTY, "kind": _NON_EMPTY},
            },
        },
        # Each check's fields are those of relops.release.smoke_check; module_utils/smoke.py
        # validates them (in manifest_errors), so the vocabulary is defined in one place.
        "health_checks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _NON_EMPTY, "type": {"enum": ["http", "tcp", "command", "script"]}},
            },
        },
        "config_templates": {"type": "array", "uniqueItems": True, "items": _RELATIVE_PATH},
        "migrations": {
            "type": "object",
            "properties": {"path": _RELATIVE_PATH, "engine": _NON_EMPTY, "target_version": _NON_EMPTY},
            "additionalProperties": False,
        },
        "rollback_plan": {
            "type": "object",
            "required": ["strategy"],
            "properties": {
                "strategy": {"enum": ["redeploy_previous", "blue_green_switch", "manual"]},
                "max_minutes": {"type": "integer", "minimum": 1},
                "notes": {"type": "string"},
                "database": {"enum": ["down_migrations", "restore_backup", "none"]},
            },
            "additionalProperties": False,
        },
        "source_revision": {"type": "string", "pattern": r"^[0-9a-f]{7,64}$"},
        "source_repository": {"type": "string"},
        # When the source revision was committed: where a release's lead time starts (docs/metrics.md).
        "commit_time": _TIMESTAMP,
        # The service's runbook (a URL or a path): the release record keeps it for the review.
        "runbook": _NON_EMPTY,
        "created": _TIMESTAMP,
    },
}


def manifest_errors(manifest: Any) -> List[str]:
    """Return every schema and convention violation as 'field: rule' text (empty when valid)."""
    require_library(HAS_JSONSCHEMA, "jsonschema", "validating a release manifest")
    validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
    errors = sorted(validator.iter_errors(manifest), key=lambda error: (list(error.path), error.validator))
    messages = [message for error in errors for message in _describe(error)]
    if isinstance(manifest, Mapping):
        messages.extend(_convention_errors(manifest))
        messages.extend(_health_check_errors(manifest.get("health_checks")))
    # jsonschema reports one "required" error per missing field, each listing them all.
    return list(dict.fromkeys(messages))


def _health_check_errors(checks: Any) -> List[str]:
    """Check each health check as smoke_check will read it (relative URLs and scripts allowed)."""
    if not isinstance(checks, list) or not checks or not all(isinstance(check, Mapping) for check in checks):
        return []
    try:
        normalize_checks(checks, base_url="http://release.invalid", script_dir="/release")
    except SmokeCheckError as exc:
        return ["health_checks: %s" % exc]
    return []


def check_manifest(manifest: Any, source: str = "manifest") -> Dict[str, Any]:
    """Return the manifest when valid; raise ArtifactError listing every problem otherwise."""
    problems = manifest_errors(manifest)
    if problems:
        raise ArtifactError("%s is not a valid release manifest: %s" % (source, "; ".join(problems)))
    return dict(manifest)


def version_scheme(manifest: Mapping[str, Any]) -> str:
    return str(manifest.get("version_scheme", "semver"))


def canonical_json(document: Any) -> bytes:
    """The one serialisation relops.release hashes and signs: sorted keys, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """manifest.json as stored in a package: readable, and byte-identical for the same manifest."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def load_manifest_text(text: str, source: str) -> Dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ArtifactError("%s is not valid JSON (%s); fix the file" % (source, exc)) from None
    if not isinstance(document, dict):
        raise ArtifactError("%s must hold a JSON object, not %s" % (source, type(document).__name__))
    return document


def _describe(error: Any) -> List[str]:
    field = _field_path(error.absolute_path)
    if error.validator == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [name for name in error.validator_value if name not in instance]
        prefix = field + "." if field else ""
        return ["%s%s: is required (rule: required)" % (prefix, name) for name in missing]
    if error.validator == "additionalProperties":
        return ["%s: %s (rule: additionalProperties)" % (field or "(top level)", error.message)]
    return ["%s: %s (rule: %s)" % (field or "(top level)", error.message, error.validator)]


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def _convention_errors(manifest: Mapping[str, Any]) -> List[str]:
    """Naming and version-scheme rules, for the fields that are present and are strings."""
    problems: List[str] = []
    if isinstance(manifest.get("name"), str):
        try:
            check_name(manifest["name"])
        except VersionError as exc:
            problems.append("name: %s (rule: naming)" % exc)
    if isinstance(manifest.get("version"), str) and manifest["version"]:
        try:
            check_version(manifest["version"], version_scheme(manifest))
        except VersionError as exc:
            problems.append("version: %s (rule: version scheme)" % exc)
    return problems


def artifact_environment_error(manifest: Mapping[str, Any], environment: Optional[str]) -> Optional[str]:
    """Return why ``environment`` is not one the manifest allows, or None."""
    if environment is None:
        return None
    allowed = list(manifest.get("environments", []))
    if environment in allowed:
        return None
    return "environment %r is not in the manifest's environments %s; add it to the manifest and rebuild" % (
        environment,
        allowed,
    )
