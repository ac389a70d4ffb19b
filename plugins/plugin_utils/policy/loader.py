# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load a change-governance policy: parse the YAML, validate it, refuse contradictions, digest it.

A policy is code: the decision records carry its declared ``version`` and the
sha256 of its canonical content (the parsed document as sorted, compact
JSON), so an auditor can tell which exact rules decided, even when someone
edited the file without bumping the version.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from ansible_collections.relops.release.plugins.plugin_utils.disk_cache import (
    cache_key,
    file_digests,
    read_entry,
    write_entry,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.errors import LedgerError

from .schema import POLICY_SCHEMA, RISK_LEVELS

# libyaml's loader when PyYAML was built with it: policies are parsed on every gate attempt otherwise.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Validated policies by (path, mtime, size): a gate that waits re-decides without re-validating.
_CACHE: Dict[Tuple[str, int, int], "Policy"] = {}

VALID_POLICIES = "policies"
DEFAULT_POLICY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_policy.yml")

# Settings a policy may leave out, and what they mean then.
GATE_DEFAULTS: Dict[str, Any] = {
    "emergency_during_blackout": "exemption_required",
    "require_readiness": True,
    "require_maintenance_window": False,
    "lower_environments": ["staging"],
    "change_failure_window": 20,
    "wait_timeout": 0,
}
EXEMPTION_DEFAULTS: Dict[str, Any] = {
    "max_days": 14,
    "exemptable": ["blackout", "stabilization", "conflict", "maintenance_window"],
}
BACKEND_DEFAULTS: Dict[str, str] = {"itsm": "fail_closed", "calendar": "fail_closed", "ledger": "fail_closed"}
STABILIZATION_DEFAULTS: Dict[str, int] = {"low": 900, "moderate": 3600, "high": 14400, "very_high": 86400}
# What an environment the policy does not list requires (docs/governance.md, "What is enforced, and where").
ENVIRONMENT_DEFAULTS: Dict[str, Any] = {
    "enforced": False,
    "signatures_required": 0,
    "audit_required": False,
    "quality_required": False,
    "stabilization_required": False,
    # The person who releases may not approve their own change, on every route.
    "segregation_of_duties": True,
    "strategies": ["blue_green", "canary"],
    "permit_lifetime": 14400,
}


class PolicyError(LedgerError):
    """A policy file that cannot be used, worded with the offending path and the fix."""


@dataclass
class Policy:
    """A validated policy with its identity (declared version, content digest, source)."""

    document: Dict[str, Any]
    source: str
    digest: str
    gate: Dict[str, Any] = field(default_factory=dict)
    exemptions: Dict[str, Any] = field(default_factory=dict)
    backends: Dict[str, str] = field(default_factory=dict)
    stabilization: Dict[str, int] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.document["version"])

    @property
    def name(self) -> str:
        return str(self.document.get("name") or os.path.basename(self.source))

    @property
    def identity(self) -> str:
        """What decision records store as ``policy_version``: declared version and content digest."""
        return "%s@sha256:%s" % (self.version, self.digest)

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": "sha256:" + self.digest, "source": self.source}

    def environment(self, name: str) -> Dict[str, Any]:
        """The rules for one environment: the policy's own entry over the defaults."""
        listed = (self.document.get("environments") or {}).get(name) or {}
        return dict(ENVIRONMENT_DEFAULTS, **listed)

    def enforced(self, name: str) -> bool:
        return bool(self.environment(name)["enforced"])

    def fail_open(self, backend: str) -> bool:
        return self.backends.get(backend) == "fail_open"


def canonical_digest(document: Any) -> str:
    """sha256 of the document as sorted, compact JSON: comments and key order do not change it."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_policy(path: Optional[str] = None, inline: Optional[Mapping[str, Any]] = None) -> Policy:
    """Load the policy at ``path`` (the collection's default when neither path nor inline is given)."""
    if inline is not None:
        return build_policy(copy.deepcopy(dict(inline)), "inline policy")
    source = path or DEFAULT_POLICY_PATH
    try:
        stat = os.stat(source)
        key = (os.path.abspath(source), stat.st_mtime_ns, stat.st_size)
        if key in _CACHE:
            return copy.deepcopy(_CACHE[key])
        with open(source, encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=SafeLoader)
    except OSError as exc:
        raise PolicyError(
            "cannot read policy file %s (%s); check the path given as policy" % (source, exc.strerror)
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError("policy file %s is not valid YAML: %s; fix the syntax" % (source, exc)) from None
    policy = build_policy(document, source)
    _CACHE[key] = copy.deepcopy(policy)
    return policy


def build_policy(document: Any, source: str) -> Policy:
    if not isinstance(document, dict):
        raise PolicyError(
            "policy %s must be a YAML mapping with version, risk_levels and rules, not %s"
            % (source, type(document).__name__)
        )
    if not _validated_before(document):
        validate_policy(document, source)
        _remember_valid(document)
    return Policy(
        document=document,
        source=source,
        digest=canonical_digest(document),
        gate=dict(GATE_DEFAULTS, **document.get("gate", {})),
        exemptions=dict(EXEMPTION_DEFAULTS, **document.get("exemptions", {})),
        backends=dict(BACKEND_DEFAULTS, **document.get("backends", {})),
        stabilization=dict(STABILIZATION_DEFAULTS, **document.get("stabilization", {})),
    )


def validate_policy(document: Mapping[str, Any], source: str) -> None:
    """Raise PolicyError naming every schema violation, or else every contradiction, and the fix."""
    problems = schema_problems(document)
    if problems:
        raise PolicyError(
            "policy %s does not match the policy schema: %s; see docs/governance.md for the policy language"
            % (source, "; ".join(problems))
        )
    contradictions = find_contradictions(document)
    if contradictions:
        raise PolicyError(
            "policy %s has contradictory rules: %s; remove or reorder the rules so each case has one outcome"
            % (source, "; ".join(contradictions))
        )


def _validation_key(document: Mapping[str, Any]) -> str:
    """The policy's content, with each value's type, plus the validating code (this file and the schema)."""
    here = os.path.dirname(os.path.abspath(__file__))
    typed = json.dumps(_typed(document), separators=(",", ":"))
    return cache_key("relops-policy-valid/1", [typed, *file_digests(here, ("loader.py", "schema.py"))])


def _typed(value: Any) -> Any:
    """A JSON form that keeps types apart: a YAML date is not its text, nor the key 1 the key "1"."""
    if isinstance(value, Mapping):
        return ["dict", sorted(([_typed(key), _typed(item)] for key, item in value.items()), key=repr)]
    if isinstance(value, (list, tuple)):
        return ["list", [_typed(item) for item in value]]
    return [type(value).__name__, repr(value)]


def _validated_before(document: Mapping[str, Any]) -> bool:
    """Whether a policy with exactly this content passed this exact validation in an earlier run.

    Validation needs jsonschema, whose import alone costs each ansible-playbook run tens of
    milliseconds; the verdict is a pure function of the content and the code, so it is kept on disk
    (plugin_utils/disk_cache.py) and only policies that passed are remembered.
    """
    return read_entry(VALID_POLICIES, _validation_key(document)) == {"valid": True}


def _remember_valid(document: Mapping[str, Any]) -> None:
    write_entry(VALID_POLICIES, _validation_key(document), {"valid": True})


def schema_problems(document: Mapping[str, Any]) -> List[str]:
    """Every schema violation, each naming its path inside the file (``rules.risk[2].weight``)."""
    # Imported here, not at the top: jsonschema and its referencing/rpds stack take tens of milliseconds to load,
    # and a policy whose exact content already validated (see _validated_before) never needs them.
    try:
        import jsonschema  # noqa: PLC0415
    except ImportError:  # pragma: no cover - jsonschema is in requirements.txt
        raise PolicyError(
            "the jsonschema Python library is required to validate policies; pip install jsonschema"
        ) from None
    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    errors = sorted(validator.iter_errors(document), key=lambda error: [str(p) for p in error.absolute_path])
    return list(dict.fromkeys(_describe(error) for error in errors))


def _describe(error: Any) -> str:
    where = path_text(error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and isinstance(error.instance, dict) and "fact" in error.instance:
        return "%s: give exactly one of points or bands" % where
    return "%s: %s" % (where, error.message)


def path_text(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def find_contradictions(document: Mapping[str, Any]) -> List[str]:
    """Rules that cannot all hold: unordered thresholds, overlapping bands, shadowed rules with other outcomes."""
    found: List[str] = []
    levels = document["risk_levels"]
    for lower, higher in itertools.pairwise(RISK_LEVELS):
        if levels[lower] >= levels[higher]:
            found.append(
                "risk_levels.%s (%s) must be below risk_levels.%s (%s)" % (lower, levels[lower], higher, levels[higher])
            )
    rules = document["rules"]
    for index, rule in enumerate(rules["risk"]):
        found.extend(_band_problems("rules.risk[%d]" % index, rule))
    ids: Dict[str, str] = {}
    for section in ("risk", "floors", "change_type", "route"):
        for index, rule in enumerate(rules.get(section, [])):
            where = "rules.%s[%d]" % (section, index)
            if rule["id"] in ids:
                found.append("%s reuses id %r of %s" % (where, rule["id"], ids[rule["id"]]))
            ids.setdefault(rule["id"], where)
    found.extend(_shadowed("change_type", rules["change_type"], "type"))
    found.extend(_shadowed("route", rules["route"], "route"))
    stabilization = document.get("stabilization", {})
    known = [level for level in RISK_LEVELS if level in stabilization]
    for lower, higher in itertools.pairwise(known):
        if stabilization[lower] > stabilization[higher]:
            found.append(
                "stabilization.%s (%ss) is longer than stabilization.%s (%ss); riskier changes need at least as long"
                % (lower, stabilization[lower], higher, stabilization[higher])
            )
    return found


def _band_problems(where: str, rule: Mapping[str, Any]) -> List[str]:
    bands = rule.get("bands") or []
    problems: List[str] = []
    previous: Optional[float] = None
    for index, band in enumerate(bands):
        below = band.get("below")
        if below is None and index != len(bands) - 1:
            problems.append("%s.bands[%d] has no upper bound but is not the last band" % (where, index))
        if below is not None and previous is not None and below <= previous:
            problems.append(
                "%s.bands[%d].below (%s) must be above the previous band's (%s)" % (where, index, below, previous)
            )
        previous = below if below is not None else previous
    return problems


def _shadowed(section: str, rules: Sequence[Mapping[str, Any]], outcome: str) -> List[str]:
    """Rules the first-match order makes unreachable while they name a different outcome."""
    problems: List[str] = []
    for later_index, later in enumerate(rules):
        for earlier_index, earlier in enumerate(rules[:later_index]):
            if earlier[outcome] != later[outcome] and covers(earlier.get("when", {}), later.get("when", {})):
                problems.append(
                    "rules.%s[%d] (%s: %s) never applies: rules.%s[%d] (%s: %s) matches every case it matches"
                    % (
                        section,
                        later_index,
                        later["id"],
                        later[outcome],
                        section,
                        earlier_index,
                        earlier["id"],
                        earlier[outcome],
                    )
                )
                break
    return problems


def covers(general: Mapping[str, Any], specific: Mapping[str, Any]) -> bool:
    """Whether every fact set matching ``specific`` also matches ``general``."""
    for fact, allowed in general.items():
        if fact not in specific:
            return False
        narrow = specific[fact]
        if isinstance(allowed, list):
            if not isinstance(narrow, list) or not set(map(_key, narrow)) <= set(map(_key, allowed)):
                return False
            continue
        if isinstance(narrow, list):
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and in_range(v, allowed) for v in narrow
            ):
                return False
            continue
        low, high = allowed.get("at_least"), allowed.get("below")
        if low is not None and (narrow.get("at_least") is None or narrow["at_least"] < low):
            return False
        if high is not None and (narrow.get("below") is None or narrow["below"] > high):
            return False
    return True


def in_range(value: float, bounds: Mapping[str, Any]) -> bool:
    low, high = bounds.get("at_least"), bounds.get("below")
    return (low is None or value >= low) and (high is None or value < high)


def _key(value: Any) -> str:
    """Compare condition values as text: YAML ``true`` and the string "true" name the same case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
