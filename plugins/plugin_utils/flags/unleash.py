# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unleash's admin API for one feature flag in one environment: on/off and a gradual rollout percentage.

The flag is enabled or disabled per environment, and the percentage is one ``flexibleRollout``
strategy (Unleash's "gradual rollout") that this module owns: it creates it, or updates it in place,
keeping its constraints. Other strategies on the flag are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from .flagd import FlagError

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # reported when the Unleash backend is used
    HAS_REQUESTS = False

ROLLOUT_STRATEGY = "flexibleRollout"


@dataclass
class UnleashTarget:
    url: str
    token: str
    project: str
    feature: str
    environment: str
    validate_certs: bool = True
    timeout: float = 10.0


@dataclass
class UnleashState:
    exists: bool
    enabled: bool = False
    rollout: Optional[int] = None
    stickiness: Optional[str] = None
    strategy_id: Optional[str] = None
    constraints: Optional[List[Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"exists": self.exists, "enabled": self.enabled, "rollout": self.rollout, "stickiness": self.stickiness}


class UnleashClient:
    """The few admin API calls the module needs, with errors that name the call and Unleash's message."""

    def __init__(self, target: UnleashTarget) -> None:
        if not HAS_REQUESTS:
            raise FlagError(
                "backend unleash needs the Python package 'requests' on the controller; install it"
                " (pip install requests, or pip install -r requirements.txt from the collection)"
            )
        self.target = target
        self.session = requests.Session()
        self.session.headers.update({"Authorization": target.token, "Accept": "application/json"})
        self.session.verify = target.validate_certs
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def _feature_path(self) -> str:
        return "/api/admin/projects/%s/features/%s" % (
            quote(self.target.project, safe=""),
            quote(self.target.feature, safe=""),
        )

    def _environment_path(self) -> str:
        return "%s/environments/%s" % (self._feature_path(), quote(self.target.environment, safe=""))

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, allow_missing: bool = False) -> Any:
        url = self.target.url.rstrip("/") + path
        self.requests_sent += 1
        try:
            response = self.session.request(method, url, json=body, timeout=self.target.timeout)
        except requests.RequestException as exc:
            raise FlagError(
                "Unleash %s %s failed: %s; check unleash_url and that the server runs" % (method, url, exc)
            ) from None
        if allow_missing and response.status_code == 404:
            return None
        if response.status_code >= 400:
            hint = ""
            if response.status_code in (401, 403):
                hint = "; check unleash_token (an admin or personal access token)"
            raise FlagError(
                "Unleash %s %s answered %d: %s%s" % (method, path, response.status_code, _message(response), hint)
            )
        return response.json() if response.content and "json" in response.headers.get("Content-Type", "") else None

    def read(self) -> UnleashState:
        feature = self.call("GET", self._feature_path(), allow_missing=True)
        if feature is None:
            return UnleashState(exists=False)
        environments = {env.get("name"): env for env in feature.get("environments", [])}
        if self.target.environment not in environments:
            raise FlagError(
                "Unleash project %r has no environment %r; environments are %s"
                % (self.target.project, self.target.environment, ", ".join(sorted(str(n) for n in environments)))
            )
        env = environments[self.target.environment]
        rollouts = [s for s in env.get("strategies", []) if s.get("name") == ROLLOUT_STRATEGY]
        if len(rollouts) > 1:
            raise FlagError(
                "feature %r has %d %s strategies in %r; the module manages exactly one, remove the others"
                % (self.target.feature, len(rollouts), ROLLOUT_STRATEGY, self.target.environment)
            )
        state = UnleashState(exists=True, enabled=bool(env.get("enabled")))
        if rollouts:
            parameters = rollouts[0].get("parameters", {})
            state.rollout = int(parameters.get("rollout", 0))
            state.stickiness = parameters.get("stickiness")
            state.strategy_id = rollouts[0].get("id")
            state.constraints = rollouts[0].get("constraints", [])
        return state

    def create(self, flag_type: str, description: str) -> None:
        self.call(
            "POST",
            "/api/admin/projects/%s/features" % quote(self.target.project, safe=""),
            {"name": self.target.feature, "type": flag_type, "description": description},
        )

    def archive(self) -> None:
        self.call("DELETE", self._feature_path())

    def set_rollout(self, current: UnleashState, rollout: int, stickiness: str) -> None:
        body = {
            "name": ROLLOUT_STRATEGY,
            "constraints": current.constraints or [],
            "parameters": {"rollout": str(rollout), "stickiness": stickiness, "groupId": self.target.feature},
        }
        if current.strategy_id:
            self.call("PUT", "%s/strategies/%s" % (self._environment_path(), quote(current.strategy_id, safe="")), body)
        else:
            self.call("POST", "%s/strategies" % self._environment_path(), body)

    def set_enabled(self, enabled: bool) -> None:
        self.call("POST", "%s/%s" % (self._environment_path(), "on" if enabled else "off"))


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:200]
    if isinstance(body, dict):
        details = body.get("details") or []
        text = body.get("message") or body.get("name") or str(body)
        if details and isinstance(details, list) and isinstance(details[0], dict) and details[0].get("message"):
            text += " (%s)" % details[0]["message"]
        return str(text)
    return str(body)[:200]


def plan_changes(
    current: UnleashState, present: bool, enabled: bool, rollout: Optional[int], stickiness: str
) -> List[str]:
    """The steps that bring Unleash to the desired state, in order; empty when it is there."""
    if not present:
        return ["archive"] if current.exists else []
    steps = [] if current.exists else ["create"]
    if rollout is not None and (current.rollout != rollout or current.stickiness != stickiness):
        steps.append("rollout")
    if current.enabled != enabled:
        steps.append("enable" if enabled else "disable")
    return steps
