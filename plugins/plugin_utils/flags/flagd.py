# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""flagd flag definitions: build one flag from task options, validate a whole flag file, merge.

The file format is flagd's flag definition JSON (https://flagd.dev/reference/flag-definitions/):
``{"flags": {key: {"state", "variants", "defaultVariant", "targeting"}}, "$evaluators": {...}}``.
A file is validated first against flagd's own published schema (``flags.json`` with
``targeting.json`` beside it): the copy vendored in ``schemas/`` (see its README for the source),
or the copy the task names. Then against ``FLAGD_SCHEMA``, the collection's stricter JSON Schema of
the documented format (no unknown top-level keys, variants required). On top of the schemas the
collection checks what flagd only finds at evaluation time: the default variant and every
fractional bucket name a declared variant, and fractional percentages are whole numbers summing
to 100.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

try:
    import jsonschema

    HAS_JSONSCHEMA = True
except ImportError:  # reported when a flag file is validated
    HAS_JSONSCHEMA = False

try:
    import referencing
    import referencing.jsonschema

    HAS_REFERENCING = True
except ImportError:  # pragma: no cover - jsonschema >= 4.18 depends on it
    HAS_REFERENCING = False

# flagd's published schema pair, vendored (schemas/README.md says from where and how to refresh it).
VENDORED_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas", "flags.json")
VENDORED_LABEL = "flags.json v0, vendored"

_VARIANT_VALUES = {
    "boolean": {"type": "boolean"},
    "string": {"type": "string"},
    "number": {"type": "number"},
    "object": {"type": "object"},
}

FLAGD_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "flagd flag definitions (as documented at flagd.dev/reference/flag-definitions)",
    "type": "object",
    "required": ["flags"],
    "properties": {
        "$schema": {"type": "string"},
        "metadata": {"type": "object"},
        "flags": {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"$ref": "#/$defs/flag"},
        },
        "$evaluators": {"type": "object", "additionalProperties": {"type": "object"}},
    },
    "additionalProperties": False,
    "$defs": {
        "flag": {
            "type": "object",
            "required": ["state", "variants"],
            "additionalProperties": False,
            "properties": {
                "state": {"enum": ["ENABLED", "DISABLED"]},
                "variants": {
                    "type": "object",
                    "minProperties": 1,
                    "oneOf": [
                        {"additionalProperties": schema, "title": "%s variants" % kind}
                        for kind, schema in _VARIANT_VALUES.items()
                    ],
                },
                "defaultVariant": {"type": ["string", "null"]},
                "targeting": {"type": "object"},
                "metadata": {"type": "object"},
            },
        }
    },
}


class FlagError(Exception):
    """A flag definition or flag file is invalid; the message names the place and the fix."""


def boolean_variants() -> Dict[str, Any]:
    return {"on": True, "off": False}


def build_flag(
    enabled: bool,
    variants: Optional[Mapping[str, Any]],
    default_variant: Optional[str],
    rollout: Optional[Sequence[Mapping[str, Any]]],
    percentage: Optional[int],
    targeting: Optional[Mapping[str, Any]],
    bucket_by: str,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """One flagd flag from the task's options."""
    chosen = dict(variants) if variants else boolean_variants()
    if sum(option is not None for option in (rollout, percentage, targeting)) > 1:
        raise FlagError("give one of rollout, percentage or targeting, not several")
    if percentage is not None:
        if variants and set(chosen) != {"on", "off"}:
            raise FlagError("percentage rolls out variant 'on' against 'off'; with other variants use rollout")
        if not 0 <= percentage <= 100:
            raise FlagError("percentage %r must be between 0 and 100" % percentage)
        rollout = [{"variant": "on", "percentage": percentage}, {"variant": "off", "percentage": 100 - percentage}]
    flag: Dict[str, Any] = {
        "state": "ENABLED" if enabled else "DISABLED",
        "variants": chosen,
        "defaultVariant": default_variant if default_variant is not None else ("off" if "off" in chosen else None),
    }
    if flag["defaultVariant"] is None:
        raise FlagError("default_variant is required with variants %s" % ", ".join(sorted(chosen)))
    if rollout is not None:
        flag["targeting"] = fractional_targeting(rollout, bucket_by)
    elif targeting is not None:
        flag["targeting"] = copy.deepcopy(dict(targeting))
    if metadata:
        flag["metadata"] = dict(metadata)
    return flag


def fractional_targeting(rollout: Sequence[Mapping[str, Any]], bucket_by: str) -> Dict[str, Any]:
    """flagd's fractional operation: a stable hash of flag key and ``bucket_by`` picks the bucket."""
    buckets: List[Any] = []
    for index, item in enumerate(rollout):
        if set(item) - {"variant", "percentage"} or "variant" not in item or "percentage" not in item:
            raise FlagError("rollout[%d] must have exactly variant and percentage, got %s" % (index, dict(item)))
        buckets.append([str(item["variant"]), item["percentage"]])
    bucketing = {"cat": [{"var": "$flagd.flagKey"}, {"var": bucket_by}]}
    return {"fractional": [bucketing, *buckets]}


def validate_document(document: Any, where: str, published_schema: Optional[str] = None) -> None:
    """Raise FlagError listing every problem of a whole flag file.

    flagd's published schema first (``published_schema``, or the vendored copy), then the
    collection's schema, then variant references and percentages; each step runs only when the
    one before found nothing, so every problem is reported once, by the first check that sees it.
    """
    if published_schema:
        schema, label = load_published_schema(published_schema), published_schema
    else:
        schema, label = _vendored_schema(), VENDORED_LABEL
    problems = _schema_problems(schema, document, where, label)
    if not problems:
        problems = _schema_problems(FLAGD_SCHEMA, document, where)
    if not problems:
        for key, flag in document["flags"].items():
            problems.extend(flag_problems(key, flag, "%s: flags.%s" % (where, key)))
    if problems:
        raise FlagError("flag definitions are invalid:\n  " + "\n  ".join(problems))


@functools.lru_cache(maxsize=1)
def _vendored_schema() -> Any:
    return load_published_schema(VENDORED_SCHEMA)


def _schema_problems(schema: Mapping[str, Any], document: Any, where: str, source: str = "") -> List[str]:
    if not HAS_JSONSCHEMA:
        raise FlagError(
            "validating flag definitions needs the Python package 'jsonschema' on the controller; install it"
            " (pip install jsonschema, or pip install -r requirements.txt from the collection)"
        )
    registry = getattr(schema, "registry", None)
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, registry=registry) if registry is not None else validator_class(schema)
    suffix = " (flagd schema %s)" % source if source else ""
    problems: List[str] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend("%s: %s: %s%s" % (where, path, message, suffix) for path, message in _explain(error))
    return problems


def _dotted(error: Any, depth: int = 0) -> str:
    """The error's place in the document as a dotted path (below the first ``depth`` parts)."""
    return ".".join(str(part) for part in list(error.absolute_path)[depth:]) or "(top)"


def _explain(error: Any) -> List[Tuple[str, str]]:
    """(path, message) pairs that name the offending field of a schema error.

    flagd's schema says "one of four typed flags" (``oneOf``) and "any of the JsonLogic rules"
    (``anyOf``), so its errors are mostly "X is not valid under any of the given schemas" at the
    flag. What every alternative found wrong (a bad ``state`` fails them all) is the real
    problem; when the alternatives disagree (variants of mixed types), each one's complaint is
    listed under its title.
    """
    if error.validator not in ("oneOf", "anyOf"):
        return [(_dotted(error), error.message)]
    titles = [option.get("title", "option %d" % (index + 1)) for index, option in enumerate(error.validator_value)]
    if not error.context:
        # oneOf with several matches: flagd's schema cannot tell which typed flag this is.
        return [(_dotted(error), "fits more than one of %s, and must fit exactly one" % ", ".join(titles))]
    branches: Dict[Any, List[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    found = [{(_dotted(sub), sub.message) for sub in subs} for subs in branches.values()]
    common: Set[Tuple[str, str]] = set.intersection(*found)
    if common and len(branches) == len(error.validator_value):
        return sorted(common)
    depth = len(error.absolute_path)
    complaints = "; ".join(
        "%s: %s" % (titles[index], ", ".join("%s %s" % (_dotted(sub, depth), sub.message) for sub in subs))
        for index, subs in sorted(branches.items())
        if len(subs) <= 3
    )
    if not complaints:
        return [(_dotted(error), error.message)]
    return [(_dotted(error), "fits none of %s (%s)" % (", ".join(titles), complaints))]


def flag_problems(key: str, flag: Mapping[str, Any], where: str) -> List[str]:
    variants = flag.get("variants", {})
    problems = []
    default = flag.get("defaultVariant")
    if default is not None and default not in variants:
        problems.append(
            "%s.defaultVariant: %r is not one of the variants %s" % (where, default, ", ".join(sorted(variants)))
        )
    for path, arguments in _fractionals(flag.get("targeting", {}), where + ".targeting"):
        problems.extend(_fractional_problems(arguments, variants, path))
    return problems


def _fractionals(node: Any, path: str) -> Iterator[Tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "fractional":
                yield path + ".fractional", value
            yield from _fractionals(value, "%s.%s" % (path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _fractionals(value, "%s[%d]" % (path, index))


def _fractional_problems(arguments: Any, variants: Mapping[str, Any], path: str) -> List[str]:
    if not isinstance(arguments, list) or not arguments:
        return ["%s: needs a list of [variant, percentage] buckets" % path]
    buckets = arguments[1:] if not isinstance(arguments[0], list) else arguments
    problems = []
    total = 0
    for bucket in buckets:
        if not (isinstance(bucket, list) and len(bucket) == 2 and isinstance(bucket[0], str)):
            problems.append("%s: bucket %r must be [variant, percentage]" % (path, bucket))
            continue
        variant, weight = bucket
        if variant not in variants:
            problems.append(
                "%s: bucket %r names no variant; declared are %s" % (path, variant, ", ".join(sorted(variants)))
            )
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            problems.append("%s: percentage %r of %r must be a whole number from 0 to 100" % (path, weight, variant))
            continue
        total += weight
    if not problems and total != 100:
        shares = ", ".join("%s %s" % (bucket[0], bucket[1]) for bucket in buckets)
        problems.append("%s: percentages sum to %d (%s), not 100; adjust them to add up to 100" % (path, total, shares))
    return problems


def load_published_schema(path: str) -> Any:
    """flagd's published flags.json, with targeting.json from the same directory for its relative $ref."""
    if not HAS_REFERENCING:
        raise FlagError("flagd_schema needs the referencing package (installed with jsonschema 4.18 or later)")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8") as handle:
            schema = json.load(handle)
    except (OSError, ValueError) as exc:
        raise FlagError("flagd_schema %s cannot be read as JSON: %s" % (path, exc)) from None

    def retrieve(uri: str) -> Any:
        name = uri.rsplit("/", 1)[-1]
        candidate = os.path.join(directory, name)
        try:
            with open(candidate, encoding="utf-8") as handle:
                return referencing.Resource.from_contents(
                    json.load(handle), default_specification=referencing.jsonschema.DRAFT7
                )
        except (OSError, ValueError) as exc:
            raise FlagError("flagd_schema refers to %s, expected at %s: %s" % (uri, candidate, exc)) from None

    registry = referencing.Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return _SchemaWithRegistry(schema, registry)


class _SchemaWithRegistry(dict):  # type: ignore[type-arg]
    """A schema mapping that carries the registry resolving its relative references."""

    def __init__(self, schema: Mapping[str, Any], registry: Any) -> None:
        super().__init__(schema)
        self.registry = registry


def read_document(path: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """The current flag file (an empty one when missing) and its raw text."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {"flags": {}}, None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FlagError("flag file %s is not JSON (%s); fix or remove it" % (path, exc)) from None
    return document, text


def render_document(document: Mapping[str, Any]) -> str:
    """Stable text: sorted keys, so an unchanged definition is byte-for-byte unchanged."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
