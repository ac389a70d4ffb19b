"""flagd flag definitions and the gate rule of relops.release.feature_flag, without Ansible."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.flags.flagd import (
    FlagError,
    build_flag,
    validate_document,
)
from ansible_collections.relops.release.plugins.plugin_utils.flags.gate import require_allow
from ansible_collections.relops.release.plugins.plugin_utils.flags.unleash import UnleashState, plan_changes


def test_percentage_builds_a_fractional_rule_on_against_off() -> None:
    flag = build_flag(True, None, None, None, 30, None, "targetingKey")
    assert flag == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {
            "fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}, ["on", 30], ["off", 70]]
        },
    }
    validate_document({"flags": {"f": flag}}, "flags.json")


def test_fractional_percentages_must_sum_to_100() -> None:
    document = {
        "flags": {
            "banner": {
                "state": "ENABLED",
                "variants": {"red": "r", "blue": "b"},
                "defaultVariant": "red",
                "targeting": {"if": [True, {"fractional": [["red", 60], ["blue", 30]]}, None]},
            }
        }
    }
    with pytest.raises(FlagError) as caught:
        validate_document(document, "flags.json")
    message = str(caught.value)
    assert "flags.json: flags.banner.targeting.if[1].fractional: percentages sum to 90 (red 60, blue 30)" in message


def test_buckets_and_default_must_name_declared_variants() -> None:
    with pytest.raises(FlagError, match=r"bucket 'green' names no variant; declared are off, on"):
        build_and_validate(rollout=[{"variant": "on", "percentage": 50}, {"variant": "green", "percentage": 50}])
    with pytest.raises(FlagError, match=r"defaultVariant: 'maybe' is not one of the variants off, on"):
        build_and_validate(default_variant="maybe")
    with pytest.raises(FlagError, match=r"percentage 2\.5 of 'on' must be a whole number"):
        build_and_validate(rollout=[{"variant": "on", "percentage": 2.5}, {"variant": "off", "percentage": 97.5}])


def build_and_validate(**options: object) -> None:
    flag = build_flag(
        True,
        options.get("variants"),  # type: ignore[arg-type]
        options.get("default_variant"),  # type: ignore[arg-type]
        options.get("rollout"),  # type: ignore[arg-type]
        None,
        None,
        "targetingKey",
    )
    validate_document({"flags": {"f": flag}}, "flags.json")


def test_a_file_failing_flagds_own_schema_is_refused_naming_the_field() -> None:
    """flagd's published schema (vendored) is the first check; its errors name the offending field."""
    document = {
        "flags": {
            "a": {"state": "ON", "variants": {"on": True}, "defaultVariant": "on"},
            "b": {"state": "ENABLED", "variants": {"x": True, "y": "mixed"}, "defaultVariant": "x"},
            "c": {"state": "ENABLED", "defaultVariant": "x"},
            "d": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on", "targeting": {"frac": [1]}},
            "e": {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on", "metadata": {"o": {"t": 1}}},
        },
    }
    with pytest.raises(FlagError) as caught:
        validate_document(document, "flags.json")
    lines = str(caught.value).splitlines()[1:]
    assert all(line.endswith("(flagd schema flags.json v0, vendored)") for line in lines), lines
    message = str(caught.value)
    assert "flags.json: flags.a.state: 'ON' is not one of ['ENABLED', 'DISABLED']" in message
    assert "flags.json: flags.b: fits none of Boolean flag, String flag, Numeric flag, Object flag" in message
    assert "Boolean flag: variants.y 'mixed' is not of type 'boolean'" in message
    assert "flags.json: flags.c: fits more than one of Boolean flag" in message
    # targeting.json, which flags.json refers to by "./targeting.json", was found beside it.
    assert "flags.json: flags.d.targeting: {'frac': [1]} is not valid under any of the given schemas" in message
    assert "flags.json: flags.e.metadata.o: {'t': 1} is not of type 'string', 'number', 'boolean'" in message
    assert len(lines) == 5


def test_the_collections_schema_refuses_what_flagds_schema_lets_through() -> None:
    flag = build_flag(True, None, None, None, 30, None, "targetingKey")
    with pytest.raises(FlagError) as caught:
        validate_document({"flags": {"f": flag}, "extra": 1}, "flags.json")
    assert "flags.json: (top): Additional properties are not allowed ('extra' was unexpected)" in str(caught.value)
    assert "flagd schema" not in str(caught.value)


def test_flagd_schema_option_replaces_the_vendored_copy(tmp_path: "os.PathLike[str]") -> None:
    """A copy named by flagd_schema is used instead of the vendored one (here, one that allows any metadata)."""
    permissive = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
    with open(os.path.join(tmp_path, "flags.json"), "w", encoding="utf-8") as handle:
        json.dump(permissive, handle)
    flag = build_flag(True, None, None, None, 30, None, "targetingKey", {"owner": {"team": "payments"}})
    with pytest.raises(FlagError, match=r"flags\.f\.metadata\.owner: .* \(flagd schema flags\.json v0, vendored\)"):
        validate_document({"flags": {"f": flag}}, "flags.json")
    validate_document({"flags": {"f": flag}}, "flags.json", os.path.join(tmp_path, "flags.json"))


def test_a_published_schema_with_a_relative_targeting_reference_is_applied(tmp_path: "os.PathLike[str]") -> None:
    # Shaped like flagd's published pair: flags.json refers to ./targeting.json by a relative $ref.
    flags_schema = {
        "$id": "https://schemas.example/v0/flags.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "flags": {
                "type": "object",
                "additionalProperties": {
                    "properties": {"targeting": {"$ref": "./targeting.json#/definitions/targeting"}}
                },
            }
        },
    }
    targeting_schema = {"definitions": {"targeting": {"type": "object", "maxProperties": 1}}}
    with open(os.path.join(tmp_path, "flags.json"), "w", encoding="utf-8") as handle:
        json.dump(flags_schema, handle)
    with open(os.path.join(tmp_path, "targeting.json"), "w", encoding="utf-8") as handle:
        json.dump(targeting_schema, handle)
    flag = build_flag(True, None, None, None, 10, None, "targetingKey")
    validate_document({"flags": {"f": flag}}, "f.json", os.path.join(tmp_path, "flags.json"))
    flag["targeting"]["if"] = [True, "on", "off"]
    with pytest.raises(FlagError, match=r"f.json: flags.f.targeting: .* has too many properties \(flagd schema "):
        validate_document({"flags": {"f": flag}}, "f.json", os.path.join(tmp_path, "flags.json"))


def test_the_gate_must_allow_recently() -> None:
    now = format_timestamp(utc_now())
    require_allow({"decision": "allow", "decided_at": now, "reasons": []}, True, 3600, "flag f")
    require_allow(None, False, 3600, "flag f")
    with pytest.raises(FlagError, match="pass it as gate, or set require_gate: false"):
        require_allow(None, True, 3600, "flag f")
    with pytest.raises(FlagError, match=r"the change gate decided deny \(blackout 'peak'\); nothing was changed"):
        require_allow({"decision": "deny", "decided_at": now, "reasons": ["blackout 'peak'"]}, True, 3600, "flag f")
    with pytest.raises(FlagError, match="more than gate_max_age 3600"):
        require_allow({"decision": "allow", "decided_at": "2020-01-01T00:00:00Z"}, True, 3600, "flag f")


def test_unleash_steps() -> None:
    missing = UnleashState(exists=False)
    assert plan_changes(missing, True, True, 30, "default") == ["create", "rollout", "enable"]
    assert plan_changes(missing, False, True, 30, "default") == []
    there = UnleashState(exists=True, enabled=True, rollout=30, stickiness="default", strategy_id="s")
    assert plan_changes(there, True, True, 30, "default") == []
    assert plan_changes(there, True, True, 50, "default") == ["rollout"]
    assert plan_changes(there, True, False, None, "default") == ["disable"]
    assert plan_changes(there, False, True, None, "default") == ["archive"]
