"""relops.release.feature_flag through real ansible-playbook runs: flagd files evaluated with the
OpenFeature SDK's flagd provider (in-process, file mode), and a real Unleash server's admin API."""

from __future__ import annotations

import collections
import functools
import http.server
import json
import os
import threading
from typing import Any, Dict, Iterator

import pytest
import requests
from fixtures.playbooks import Ansible
from fixtures.unleash import UnleashServer
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext

USERS = 10000

FLAG_PLAY = """
- name: Flags
  hosts: localhost
  gather_facts: false
  vars:
    gate_allow:
      decision: allow
      reasons: []
      decided_at: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%S.%fZ') }}"
      subject: checkout/production
  tasks:
    - name: Set the flag
      relops.release.feature_flag:
        name: "{{ flag_name }}"
        path: "{{ flag_file | default(omit) }}"
        backend: "{{ flag_backend | default('flagd') }}"
        state: "{{ flag_state | default('present') }}"
        enabled: "{{ flag_enabled | default(true) | bool }}"
        percentage: "{{ flag_percentage | default(omit) }}"
        variants: "{{ flag_variants | default(omit) }}"
        default_variant: "{{ flag_default | default(omit) }}"
        rollout: "{{ flag_rollout | default(omit) }}"
        unleash_url: "{{ unleash_url | default(omit) }}"
        unleash_token: "{{ unleash_token | default(omit) }}"
        environment: "{{ unleash_environment | default(omit) }}"
        gate: "{{ gate | default(gate_allow) if use_gate | default(true) | bool else omit }}"
      register: outcome
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ outcome | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _flag(ansible: Ansible, *extra: str, variables: Dict[str, Any]) -> Dict[str, Any]:
    playbook = ansible.write_playbook(FLAG_PLAY, "flag.yml")
    result_file = os.path.join(ansible.workdir, "flag-result.json")
    if os.path.exists(result_file):
        os.unlink(result_file)
    run = ansible.playbook(playbook, "-e", json.dumps(dict(variables, result_file=result_file)), *extra)
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def openfeature_file() -> Iterator[Any]:
    """Evaluate a flag file with the OpenFeature SDK's flagd provider in file mode (a fresh provider each call)."""

    def client(path: str) -> Any:
        # Initialisation runs in a thread unless waited for; evaluating before it ends gives the code default.
        api.set_provider_and_wait(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path))
        client = api.get_client()
        details = client.get_boolean_details("new-checkout", False, EvaluationContext(targeting_key="probe"))
        assert details.error_code is None, details
        return client

    yield client
    api.shutdown()


def _assignments(client: Any, flag: str) -> Dict[str, bool]:
    return {
        "user-%d" % i: client.get_boolean_value(flag, False, EvaluationContext(targeting_key="user-%d" % i))
        for i in range(USERS)
    }


def test_flagd_rollout_is_idempotent_gated_and_evaluates_as_intended(ansible: Ansible, openfeature_file: Any) -> None:
    path = os.path.join(ansible.workdir, "flags", "flags.json")
    base = {"flag_name": "new-checkout", "flag_file": path}

    ungated = _flag(ansible, variables=dict(base, flag_percentage=30, use_gate=False))
    assert ungated["failed"] is True and "relops.release.change_gate" in ungated["msg"]
    denied = _flag(
        ansible,
        variables=dict(
            base, flag_percentage=30, gate={"decision": "deny", "reasons": ["blackout 'peak'"], "decided_at": "x"}
        ),
    )
    assert denied["failed"] is True and "decided deny (blackout 'peak')" in denied["msg"]
    assert not os.path.exists(path), "a refused change writes nothing"

    predicted = _flag(ansible, "--check", variables=dict(base, flag_percentage=30, use_gate=False))
    assert predicted["changed"] is True and not os.path.exists(path)

    first = _flag(ansible, "--diff", variables=dict(base, flag_percentage=30))
    assert first["changed"] is True and '"new-checkout"' in first["diff"]["after"]
    again = _flag(ansible, variables=dict(base, flag_percentage=30, use_gate=False))
    assert again["changed"] is False, "an unchanged flag needs no gate and writes nothing"

    other = _flag(
        ansible,
        variables={
            "flag_name": "banner",
            "flag_file": path,
            "flag_variants": {"red": "#c00", "green": "#0c0", "blue": "#00c"},
            "flag_default": "red",
            "flag_rollout": [
                {"variant": "red", "percentage": 50},
                {"variant": "green", "percentage": 25},
                {"variant": "blue", "percentage": 25},
            ],
        },
    )
    assert other["changed"] is True

    client = openfeature_file(path)
    before = _assignments(client, "new-checkout")
    share = sum(before.values()) / USERS
    assert 0.27 <= share <= 0.33, share
    colours = collections.Counter(
        client.get_string_value("banner", "none", EvaluationContext(targeting_key="user-%d" % i)) for i in range(USERS)
    )
    assert set(colours) == {"#c00", "#0c0", "#00c"}
    assert 0.47 <= colours["#c00"] / USERS <= 0.53 and 0.22 <= colours["#0c0"] / USERS <= 0.28, colours
    assert client.get_boolean_value("new-checkout", True, EvaluationContext(targeting_key="user-1")) == before["user-1"]

    widened = _flag(ansible, variables=dict(base, flag_percentage=50))
    assert widened["changed"] is True
    after = _assignments(openfeature_file(path), "new-checkout")
    assert 0.47 <= sum(after.values()) / USERS <= 0.53
    assert all(after[user] for user, on in before.items() if on), "users who had the feature keep it (sticky)"

    off = _flag(ansible, variables=dict(base, flag_percentage=50, flag_enabled=False))
    assert off["changed"] is True and off["flag"]["state"] == "DISABLED"
    with open(path, encoding="utf-8") as handle:
        assert set(json.load(handle)["flags"]) == {"new-checkout", "banner"}


def test_flag_file_served_over_http_is_what_was_written(ansible: Ansible) -> None:
    directory = os.path.join(ansible.workdir, "served")
    path = os.path.join(directory, "flags.json")
    _flag(ansible, variables={"flag_name": "f", "flag_file": path, "flag_percentage": 10})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        served = requests.get("http://127.0.0.1:%d/flags.json" % server.server_address[1], timeout=30).json()
    finally:
        server.shutdown()
        server.server_close()
    assert served["flags"]["f"]["targeting"]["fractional"][1:] == [["on", 10], ["off", 90]]


def test_bad_flag_input_is_refused(ansible: Ansible) -> None:
    path = os.path.join(ansible.workdir, "flags.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"flags": {"old": {"state": "on", "variants": {"a": True}, "defaultVariant": "a"}}}, handle)
    broken = _flag(ansible, variables={"flag_name": "f", "flag_file": path, "flag_percentage": 10})
    assert broken["failed"] is True and "flags.old.state: 'on' is not one of ['ENABLED', 'DISABLED']" in broken["msg"]
    # Refused by flagd's own published schema (the vendored copy), which names the field.
    expected = "flags.old.state: 'on' is not one of ['ENABLED', 'DISABLED'] (flagd schema flags.json v0, vendored)"
    assert expected in broken["msg"]
    with open(path, encoding="utf-8") as handle:
        assert "f" not in json.load(handle)["flags"], "a refused change must leave the file as it was"

    os.unlink(path)
    uneven = _flag(
        ansible,
        variables={
            "flag_name": "f",
            "flag_file": path,
            "flag_rollout": [{"variant": "on", "percentage": 60}, {"variant": "off", "percentage": 30}],
        },
    )
    assert uneven["failed"] is True and "percentages sum to 90 (on 60, off 30), not 100" in uneven["msg"]
    assert not os.path.exists(path)
    doc = ansible.doc("relops.release.feature_flag")
    assert doc.returncode == 0 and "gate_max_age" in doc.stdout, doc.report


def _playground(server: UnleashServer, flag: str, users: int) -> int:
    """How many of ``users`` Unleash's own evaluation (the admin playground) gives the flag."""
    enabled = 0
    for i in range(users):
        answer = server.post(
            "/api/admin/playground",
            {"environment": "development", "projects": "*", "context": {"appName": "t", "userId": "user-%d" % i}},
        )
        assert answer.status_code == 200, answer.text
        feature = next(f for f in answer.json()["features"] if f["name"] == flag)
        enabled += bool(feature["isEnabled"])
    return enabled


def test_unleash_toggle_and_gradual_rollout(ansible: Ansible, unleash_server: UnleashServer) -> None:
    base = {
        "flag_backend": "unleash",
        "flag_name": "new-checkout",
        "unleash_url": unleash_server.url,
        "unleash_token": unleash_server.token,
        "unleash_environment": "development",
    }
    predicted = _flag(ansible, "--check", variables=dict(base, flag_percentage=25))
    assert predicted["changed"] is True and predicted["steps"] == ["create", "rollout", "enable"]
    assert unleash_server.get("/api/admin/projects/default/features/new-checkout").status_code == 404

    created = _flag(ansible, variables=dict(base, flag_percentage=25))
    assert created["changed"] is True and created["steps"] == ["create", "rollout", "enable"]
    again = _flag(ansible, variables=dict(base, flag_percentage=25, use_gate=False))
    assert again["changed"] is False and again["steps"] == []

    feature = unleash_server.get("/api/admin/projects/default/features/new-checkout").json()
    development = next(env for env in feature["environments"] if env["name"] == "development")
    assert development["enabled"] is True
    rollouts = [s for s in development["strategies"] if s["name"] == "flexibleRollout"]
    assert len(rollouts) == 1 and rollouts[0]["parameters"]["rollout"] == "25"
    enabled = _playground(unleash_server, "new-checkout", 400)
    assert 0.15 <= enabled / 400 <= 0.35, enabled

    widened = _flag(ansible, variables=dict(base, flag_percentage=60))
    assert widened["steps"] == ["rollout"]
    strategies = unleash_server.get(
        "/api/admin/projects/default/features/new-checkout/environments/development/strategies"
    ).json()
    assert [s["parameters"]["rollout"] for s in strategies if s["name"] == "flexibleRollout"] == ["60"]
    assert strategies[0]["id"] == rollouts[0]["id"], "the rollout strategy is updated in place"

    off = _flag(ansible, variables=dict(base, flag_percentage=60, flag_enabled=False))
    assert off["steps"] == ["disable"]
    assert _playground(unleash_server, "new-checkout", 50) == 0

    wrong = _flag(ansible, variables=dict(base, unleash_environment="staging-eu"))
    assert wrong["failed"] is True and "has no environment 'staging-eu'" in wrong["msg"]
    bad_token = _flag(ansible, variables=dict(base, unleash_token="*:*.not-a-token"))
    assert bad_token["failed"] is True and "answered 401" in bad_token["msg"]

    archived = _flag(ansible, variables=dict(base, flag_state="absent"))
    assert archived["steps"] == ["archive"]
    assert unleash_server.get("/api/admin/projects/default/features/new-checkout").status_code == 404
