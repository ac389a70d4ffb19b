"""Where a canary stands, from the router's servers and the slots' contents."""

from __future__ import annotations

from typing import Optional

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.canary_plan import (
    CanaryPlanError,
    canary_layout,
    canary_servers,
    check_steps,
)

NAMES = {"blue": "web1-blue", "green": "web1-green"}
ADDRESSES = {"blue": "10.0.0.1:8001", "green": "10.0.0.1:8002"}


def servers(blue: tuple[str, int], green: tuple[str, int]) -> list[dict]:
    return [
        {"name": "web1-blue", "address": ADDRESSES["blue"], "state": blue[0], "weight": blue[1]},
        {"name": "web1-green", "address": ADDRESSES["green"], "state": green[0], "weight": green[1]},
    ]


def slots(blue: Optional[str], green: Optional[str]) -> dict:
    return {slot: ({"version": version} if version else None) for slot, version in (("blue", blue), ("green", green))}


def layout(router: list[dict], contents: dict, version: str = "1.1.0") -> dict:
    return canary_layout(router, contents, version, NAMES, ADDRESSES, "web1")


def test_fresh_canary_goes_to_the_idle_slot() -> None:
    found = layout(servers(("ready", 1), ("maint", 0)), slots("1.0.0", None))
    assert (found["stable"], found["canary"], found["weight"], found["promoted"], found["installed"]) == (
        "blue",
        "green",
        0,
        False,
        False,
    )
    assert found["servers"]["green"] == {"name": "web1-green", "address": "10.0.0.1:8002"}


def test_a_canary_under_way_resumes_at_its_weight() -> None:
    found = layout(servers(("ready", 75), ("ready", 25)), slots("1.0.0", "1.1.0"))
    assert (found["canary"], found["weight"], found["installed"]) == ("green", 25, True)


def test_an_aborted_canary_starts_again_from_zero() -> None:
    found = layout(servers(("ready", 100), ("maint", 0)), slots("1.0.0", "1.1.0"))
    assert (found["canary"], found["weight"], found["promoted"]) == ("green", 0, False)


def test_a_version_serving_alone_is_promoted() -> None:
    found = layout(servers(("maint", 0), ("ready", 100)), slots("1.0.0", "1.1.0"))
    assert (found["canary"], found["stable"], found["promoted"]) == ("green", "blue", True)


@pytest.mark.parametrize(
    ("router", "contents", "message"),
    [
        (servers(("maint", 0), ("maint", 0)), slots("1.0.0", None), "no slot on web1 takes traffic"),
        (servers(("ready", 50), ("ready", 50)), slots("1.0.0", "1.0.5"), "another canary"),
        (servers(("ready", 50), ("ready", 50)), slots("1.1.0", "1.1.0"), "both slots on web1 hold 1.1.0"),
        (servers(("maint", 0), ("maint", 0)), slots("1.0.0", "1.1.0"), "the stable slot blue on web1 takes no"),
        (servers(("ready", 1), ("ready", 1))[:1], slots("1.0.0", None), "no server 'web1-green'"),
    ],
)
def test_inconsistent_states_are_refused_with_the_way_out(router: list, contents: dict, message: str) -> None:
    with pytest.raises(CanaryPlanError, match=message):
        layout(router, contents)


def test_servers_split_the_weight_per_host() -> None:
    first = layout(servers(("ready", 1), ("maint", 0)), slots("1.0.0", None))
    second = dict(first, stable="green", canary="blue")
    assert canary_servers([first, second], 25) == [
        {"name": "web1-blue", "address": "10.0.0.1:8001", "weight": 75, "state": "ready"},
        {"name": "web1-green", "address": "10.0.0.1:8002", "weight": 25, "state": "ready"},
        {"name": "web1-green", "address": "10.0.0.1:8002", "weight": 75, "state": "ready"},
        {"name": "web1-blue", "address": "10.0.0.1:8001", "weight": 25, "state": "ready"},
    ]
    full = canary_servers([first], 100)
    assert [(server["weight"], server["state"]) for server in full] == [(0, "maint"), (100, "ready")]
    assert [(server["weight"], server["state"]) for server in canary_servers([first], 0)] == [
        (100, "ready"),
        (0, "maint"),
    ]
    assert [server["weight"] for server in canary_servers([first], 5, total=256)] == [243, 13]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "from 1 to 100"),
        ([0, 50], "from 1 to 100"),
        ([5, 150], "from 1 to 100"),
        ([50, 25], "rise"),
        (["five"], "whole percentages"),
    ],
)
def test_bad_steps_are_refused(steps: list, message: str) -> None:
    with pytest.raises(CanaryPlanError, match=message):
        check_steps(steps)


def test_steps_are_numbers() -> None:
    assert check_steps(["5", 25, 50, 100]) == [5, 25, 50, 100]


def test_an_abort_accepts_a_stable_slot_without_traffic() -> None:
    router = servers(("maint", 0), ("maint", 0))
    found = canary_layout(router, slots("1.0.0", "1.1.0"), "1.1.0", NAMES, ADDRESSES, "web1", aborting=True)
    assert (found["stable"], found["canary"], found["installed"]) == ("blue", "green", True)
