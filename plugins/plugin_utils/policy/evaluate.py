# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply a policy's rules to the facts about one change: score, risk level, change type, route.

Risk rules add points (``weight`` times the points of the fact's value or
band); ``floors`` raise the level whatever the score; change-type and route
rules are ordered, first match wins. Every step is listed so a person can
see why a change got its route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from .loader import Policy, _key, in_range
from .schema import RISK_LEVELS


@dataclass
class Assessment:
    score: float
    risk: str
    change_type: str
    route: str
    contributions: List[Dict[str, Any]] = field(default_factory=list)
    floors: List[Dict[str, Any]] = field(default_factory=list)
    change_type_rule: str = ""
    route_rule: str = ""
    stabilization_seconds: int = 0

    def as_dict(self) -> Dict[str, Any]:
        return {
            "score": self.score,
            "risk": self.risk,
            "change_type": self.change_type,
            "route": self.route,
            "contributions": self.contributions,
            "floors": self.floors,
            "change_type_rule": self.change_type_rule,
            "route_rule": self.route_rule,
            "stabilization_seconds": self.stabilization_seconds,
        }


def matches(when: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """A condition holds when every fact it names has one of the listed values or lies in the range."""
    for fact, allowed in when.items():
        value = facts.get(fact)
        if value is None:
            return False
        if isinstance(allowed, list):
            if _key(value) not in {_key(item) for item in allowed}:
                return False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not in_range(value, allowed):
            return False
    return True


def assess(policy: Policy, facts: Mapping[str, Any]) -> Assessment:
    rules = policy.document["rules"]
    contributions = [_contribution(rule, facts.get(rule["fact"])) for rule in rules["risk"]]
    score = round(sum(item["points"] for item in contributions), 2)
    levels = policy.document["risk_levels"]
    risk = [level for level in RISK_LEVELS if score >= levels[level]][-1] if score >= levels["low"] else "low"
    floors = []
    for floor in rules.get("floors", []):
        if matches(floor["when"], facts) and RISK_LEVELS.index(floor["at_least"]) > RISK_LEVELS.index(risk):
            floors.append({"rule": floor["id"], "raised_from": risk, "to": floor["at_least"]})
            risk = floor["at_least"]
    typed = dict(facts, risk=risk, score=score)
    change_rule = _first(rules["change_type"], typed)
    change_type = change_rule["type"] if change_rule else "normal"
    typed["change_type"] = change_type
    route_rule = _first(rules["route"], typed)
    route = route_rule["route"] if route_rule else "cab"
    return Assessment(
        score=score,
        risk=risk,
        change_type=change_type,
        route=route,
        contributions=contributions,
        floors=floors,
        change_type_rule=change_rule["id"] if change_rule else "(none matched: normal)",
        route_rule=route_rule["id"] if route_rule else "(none matched: cab)",
        stabilization_seconds=int(policy.stabilization[risk]),
    )


def _first(rules: List[Mapping[str, Any]], facts: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    for rule in rules:
        if matches(rule.get("when", {}), facts):
            return rule
    return None


def _contribution(rule: Mapping[str, Any], value: Any) -> Dict[str, Any]:
    weight = float(rule.get("weight", 1))
    base: Optional[float]
    if value is None:
        base = float(rule.get("missing", 0))
        why = "unknown, counted as %g" % base
    elif "points" in rule:
        table = {_key(k): v for k, v in rule["points"].items()}
        base = table.get(_key(value), table.get("other"))
        why = "value %s" % _key(value) if base is not None else "value %s not listed, counted as 0" % _key(value)
        base = float(base or 0)
    else:
        base, why = _band(rule["bands"], float(value))
    return {
        "rule": rule["id"],
        "fact": rule["fact"],
        "value": value,
        "weight": weight,
        "points": round(weight * base, 2),
        "why": why,
    }


def _band(bands: List[Mapping[str, Any]], value: float) -> "tuple[float, str]":
    for band in bands:
        if band.get("below") is None or value < band["below"]:
            limit = "below %g" % band["below"] if band.get("below") is not None else "at or above every bound"
            return float(band["points"]), "%g is %s" % (value, limit)
    return 0.0, "%g is above every band, counted as 0" % value
