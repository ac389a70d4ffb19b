# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one polling/backoff loop of relops.release.

Waiting for a lock, for a change approval or for a flaky HTTP endpoint are the
same loop: try, and if the answer is "not yet", sleep a growing, jittered
interval, never past a deadline. Keeping it in one place keeps the bounds
(count and total time) consistent everywhere.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with proportional jitter, bounded by a total timeout."""

    timeout: float
    initial: float = 0.5
    factor: float = 1.6
    maximum: float = 5.0
    jitter: float = 0.25


@dataclass
class PollResult(Generic[T]):
    """What a poll ended with: the last answer, whether it was final, and the attempts."""

    value: T
    done: bool
    attempts: int
    waited: float


def poll_until(
    attempt: Callable[[], T],
    is_done: Callable[[T], bool],
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Optional[random.Random] = None,
) -> PollResult[T]:
    """Call ``attempt`` until ``is_done`` accepts its answer or the timeout passes.

    Always calls ``attempt`` at least once, and once more right at the deadline,
    so a resource freed during the last sleep is still seen.
    """
    chance = rng or random.Random()
    started = clock()
    deadline = started + backoff.timeout
    delay = backoff.initial
    attempts = 0
    while True:
        value = attempt()
        attempts += 1
        now = clock()
        if is_done(value) or now >= deadline:
            return PollResult(value=value, done=is_done(value), attempts=attempts, waited=now - started)
        spread = delay * backoff.jitter
        pause = min(max(0.0, delay + chance.uniform(-spread, spread)), backoff.maximum, deadline - now)
        sleep(pause)
        delay = min(delay * backoff.factor, backoff.maximum)
