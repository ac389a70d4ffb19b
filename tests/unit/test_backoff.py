from __future__ import annotations

import random

from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff, poll_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_at_once_when_the_first_answer_is_final() -> None:
    clock = FakeClock()
    result = poll_until(lambda: 7, lambda value: value == 7, Backoff(timeout=10), clock.sleep, clock)
    assert (result.value, result.done, result.attempts, clock.sleeps) == (7, True, 1, [])


def test_stops_at_the_deadline_and_tries_once_more_there() -> None:
    clock = FakeClock()
    result = poll_until(lambda: None, lambda value: False, Backoff(timeout=10, jitter=0), clock.sleep, clock)
    assert not result.done
    assert clock.now == 10
    assert sum(clock.sleeps) == 10
    assert max(clock.sleeps) <= 5.0
    assert result.attempts == len(clock.sleeps) + 1


def test_delays_grow_and_stay_within_jitter() -> None:
    clock = FakeClock()
    poll_until(
        lambda: None,
        lambda value: False,
        Backoff(timeout=60, initial=1, factor=2, maximum=8, jitter=0.25),
        clock.sleep,
        clock,
        random.Random(1),
    )
    nominal = [1, 2, 4, 8, 8, 8]
    for pause, expected in zip(clock.sleeps, nominal, strict=False):
        assert expected * 0.75 <= pause <= min(expected * 1.25, 8)


def test_zero_timeout_tries_exactly_once() -> None:
    clock = FakeClock()
    result = poll_until(lambda: "busy", lambda value: False, Backoff(timeout=0), clock.sleep, clock)
    assert result.attempts == 1 and clock.sleeps == []


def test_answer_that_arrives_later_is_returned() -> None:
    clock = FakeClock()
    answers = iter(["busy", "busy", "free"])
    result = poll_until(lambda: next(answers), lambda value: value == "free", Backoff(timeout=30), clock.sleep, clock)
    assert (result.value, result.done, result.attempts) == ("free", True, 3)
