"""X12 control numbers (ISA13; GS06 and ST02 may reuse it): unique across replicas, 1..999999999.

The 270 builder is pure and takes the number; this module obtains it.  ``RedisControlNumbers``
uses one atomic ``INCR`` shared by every replica, so two never hand out the same number until the
counter wraps (a billion interchanges later).  A counter that does not exist yet (a new or
flushed Redis) starts from a clock-derived value instead of 1, so a Redis restart does not replay
recent numbers.  When Redis is unavailable it falls back to an in-memory
sequence started at a random point: replicas could then collide only if their ranges overlap,
which for a sequence of *n* numbers has odds of about 2n / 10⁹ per pair of replicas.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from eligibility_svc.cache import CacheUnavailable, RedisGate
from eligibility_svc.redis_keys import RedisKeys

MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits; zero is not used

# SET the seed only if the counter is missing, then INCR, in one atomic step.
_NEXT = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


def wrap(counter: int) -> int:
    """Map a counter value 1, 2, 3, ... onto 1..MAX_CONTROL_NUMBER, cyclically."""
    return (counter - 1) % MAX_CONTROL_NUMBER + 1


def clock_seed(now: float) -> int:
    """A starting value for a fresh counter: milliseconds, wrapped (every 11.6 days).  A restarted
    counter lands past the numbers it used before unless it averaged over 1000 per second."""
    return wrap(int(now * 1000))


class ControlNumbers(Protocol):
    """A source of interchange control numbers."""

    async def next(self) -> int:
        """A number in 1..999999999 not handed out recently by any replica."""
        ...


class MemoryControlNumbers:
    """A sequence in this process starting at ``start`` (random when not given)."""

    def __init__(self, start: int | None = None) -> None:
        first = start if start is not None else secrets.randbelow(MAX_CONTROL_NUMBER) + 1
        self._counter = itertools.count(first)

    async def next(self) -> int:
        return wrap(next(self._counter))


class RedisControlNumbers:
    """The shared counter at ``keys.control_counter(name)``; ``fallback`` when Redis fails."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        name: str = "interchange",
        gate: RedisGate | None = None,
        fallback: ControlNumbers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = keys.control_counter(name)
        self._gate = gate or RedisGate()
        self._script = redis.register_script(_NEXT)
        self._fallback = fallback or MemoryControlNumbers()
        self._clock = clock

    async def next(self) -> int:
        seed = clock_seed(self._clock())
        try:
            counter = await self._gate.call("control_number", self._script(keys=[self._key], args=[seed]))
        except CacheUnavailable:
            return await self._fallback.next()
        return wrap(int(counter))
