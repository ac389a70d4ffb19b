"""Policy loading, schema errors, contradiction detection and rule evaluation."""

from __future__ import annotations

import copy
import datetime
import os

import pytest
import yaml

from ansible_collections.relops.release.plugins.plugin_utils.governance.readiness import roster_gaps
from ansible_collections.relops.release.plugins.plugin_utils.policy import (
    DEFAULT_POLICY_PATH,
    PolicyError,
    assess,
    canonical_digest,
    load_policy,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UTC = datetime.timezone.utc


def _default() -> dict:
    with open(DEFAULT_POLICY_PATH, encoding="utf-8") as handle:
        document: dict = yaml.safe_load(handle)
    return document


def _load(document: dict) -> None:
    load_policy(inline=document)


def test_default_policy_loads_and_the_example_is_the_same_policy() -> None:
    policy = load_policy()
    example = load_policy(os.path.join(REPO, "examples", "policies", "default.yml"))
    assert policy.version == "2026.4" and policy.digest == example.digest
    assert policy.identity == "2026.4@sha256:" + policy.digest


def test_digest_ignores_comments_and_key_order_but_not_content() -> None:
    document = _default()
    reordered = dict(reversed(list(document.items())))
    assert canonical_digest(reordered) == canonical_digest(document)
    changed = copy.deepcopy(document)
    changed["rules"]["risk"][0]["points"]["strategic"] = 16
    assert canonical_digest(changed) != canonical_digest(document)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["rules"]["risk"][2].__setitem__("weight", "heavy"),
            "rules.risk[2].weight: 'heavy' is not of type",
        ),
        (lambda d: d["rules"]["route"][0].__setitem__("route", "board"), "rules.route[0].route: 'board' is not one of"),
        (
            lambda d: d["rules"]["route"][0]["when"].__setitem__("colour", ["red"]),
            "rules.route[0].when: 'colour' is not one of",
        ),
        (lambda d: d.__delitem__("version"), "(top level): 'version' is a required property"),
        (
            lambda d: d["rules"]["risk"][0].__setitem__("bands", [{"points": 1}]),
            "rules.risk[0]: give exactly one of points or bands",
        ),
        (lambda d: d["backends"].__setitem__("itsm", "maybe"), "backends.itsm: 'maybe' is not one of"),
    ],
)
def test_schema_errors_name_the_path_inside_the_file(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    document = _default()
    mutate(document)
    with pytest.raises(PolicyError) as raised:
        _load(document)
    assert expected in str(raised.value) and "docs/governance.md" in str(raised.value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["risk_levels"].__setitem__("high", 20),
            "risk_levels.moderate (30) must be below risk_levels.high (20)",
        ),
        (
            lambda d: d["rules"]["risk"][2].__setitem__(
                "bands", [{"below": 10, "points": 1}, {"below": 5, "points": 2}, {"points": 3}]
            ),
            "rules.risk[2].bands[1].below (5) must be above the previous band's (10)",
        ),
        (
            lambda d: d["rules"]["risk"][2].__setitem__("bands", [{"points": 1}, {"below": 5, "points": 2}]),
            "rules.risk[2].bands[0] has no upper bound but is not the last band",
        ),
        (
            lambda d: d["rules"]["route"][1].__setitem__("id", "very-high-to-cab"),
            "rules.route[1] reuses id 'very-high-to-cab'",
        ),
        (
            lambda d: d["rules"]["change_type"].insert(0, {"id": "all-standard", "type": "standard"}),
            "rules.change_type[1] (emergency-release: emergency) never applies: "
            "rules.change_type[0] (all-standard: standard)",
        ),
        (
            lambda d: (
                d["rules"]["route"].insert(
                    0, {"id": "big-cab", "when": {"blast_radius": {"at_least": 10}}, "route": "cab"}
                )
                or d["rules"]["route"].insert(
                    1,
                    {"id": "huge-auto", "when": {"blast_radius": {"at_least": 50, "below": 80}}, "route": "automatic"},
                )
            ),
            "rules.route[1] (huge-auto: automatic) never applies",
        ),
        (
            lambda d: d["stabilization"].__setitem__("high", 60),
            "stabilization.moderate (3600s) is longer than stabilization.high (60s)",
        ),
    ],
)
def test_contradictory_rules_are_refused(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    document = _default()
    mutate(document)
    with pytest.raises(PolicyError) as raised:
        _load(document)
    assert "contradictory rules" in str(raised.value) and expected in str(raised.value), str(raised.value)


def test_a_later_rule_with_the_same_outcome_is_redundant_not_contradictory() -> None:
    document = _default()
    document["rules"]["route"].insert(
        0, {"id": "tiny-auto", "when": {"blast_radius": {"below": 100}}, "route": "automatic"}
    )
    document["rules"]["route"].insert(
        1, {"id": "tinier-auto", "when": {"blast_radius": {"below": 3}}, "route": "automatic"}
    )
    _load(document)


def test_a_narrower_earlier_rule_does_not_shadow_a_wider_later_one() -> None:
    document = _default()
    document["rules"]["route"].insert(0, {"id": "huge-cab", "when": {"blast_radius": {"at_least": 50}}, "route": "cab"})
    document["rules"]["route"].insert(
        1, {"id": "big-peer", "when": {"blast_radius": {"at_least": 10}}, "route": "peer"}
    )
    _load(document)


def _facts(**overrides: object) -> dict:
    facts = {
        "release_class": "operational",
        "ci_criticality": "3",
        "blast_radius": 1,
        "change_failure_rate": 0.0,
        "tests_passed": True,
        "line_coverage": 90.0,
        "files_changed": 4,
        "migrations": 0,
        "irreversible_migrations": 0,
        "days_since_incident": None,
        "template_match": False,
    }
    facts.update(overrides)
    return facts


def test_low_risk_tested_changes_go_automatic_and_every_rule_contributes() -> None:
    outcome = assess(load_policy(), _facts())
    assert (outcome.risk, outcome.change_type, outcome.route) == ("low", "normal", "automatic")
    assert outcome.route_rule == "low-tested-automatic"
    assert len(outcome.contributions) == len(_default()["rules"]["risk"])
    assert outcome.score == sum(item["points"] for item in outcome.contributions) == 10.0


def test_unknown_facts_count_their_missing_points() -> None:
    outcome = assess(load_policy(), _facts(ci_criticality=None, change_failure_rate=None, line_coverage=None))
    missing = {item["rule"]: item for item in outcome.contributions if item["value"] is None}
    assert {"ci-criticality", "change-failure-rate", "coverage"} <= set(missing)
    assert missing["ci-criticality"]["points"] == 10 and "unknown" in missing["ci-criticality"]["why"]
    assert outcome.risk == "moderate" and outcome.route == "peer"


def test_floors_raise_the_level_and_emergencies_route_to_a_peer() -> None:
    irreversible = assess(load_policy(), _facts(migrations=1, irreversible_migrations=1))
    assert irreversible.risk == "high" and irreversible.floors == [
        {"rule": "irreversible-is-high", "raised_from": "moderate", "to": "high"}
    ]
    assert irreversible.route == "cab" and irreversible.stabilization_seconds == 14400
    emergency = assess(load_policy(), _facts(release_class="emergency"))
    assert emergency.change_type == "emergency" and emergency.route == "peer"
    standard = assess(load_policy(), _facts(template_match=True, files_changed=12))
    assert standard.change_type == "standard" and standard.route == "automatic"
    assert next(item for item in standard.contributions if item["rule"] == "standard-template")["points"] == -15


def test_roster_gaps_cover_the_start_the_middle_and_the_end() -> None:
    at = datetime.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    hour = datetime.timedelta(hours=1)
    window = (at, at + 6 * hour)
    shifts = [
        (at + hour, at + 2 * hour, "a"),
        (at + 3 * hour, at + 5 * hour, "b"),
        (at + 4 * hour, at + 4.5 * hour, "c"),
    ]
    gaps = roster_gaps(shifts, window)
    assert [(gap["start"][11:16], gap["end"][11:16]) for gap in gaps] == [
        ("00:00", "01:00"),
        ("02:00", "03:00"),
        ("05:00", "06:00"),
    ]
    assert roster_gaps([(at - hour, at + 7 * hour, "a")], window) == []
