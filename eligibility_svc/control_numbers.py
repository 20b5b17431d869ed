"""X12 control numbers (ISA13; GS06 and ST02 may reuse it): unique across replicas, 1..999999999.

The 270 builder is pure and takes the number; this module obtains it.  ``RedisControlNumbers``
reserves a block of ``block`` numbers at a time with one atomic ``INCRBY`` on a counter shared by
every replica and hands them out in this process, so two replicas never hand out the same number
until the counter wraps (a billion interchanges later) and a check costs a Redis round trip only
once per block.  The numbers are therefore unique, but neither gap-free (a replica that stops
drops the rest of its block) nor in order across replicas (each counts up through its own block).
X12 asks no more: ISA13 (and GS06/ST02) must only not repeat within a sender's window, for
matching a 999/TA1 or a 271 to its interchange.

A counter that does not exist yet (a new or flushed Redis) starts from a clock-derived value
instead of 1, so a Redis restart does not replay recent numbers.  When Redis is unavailable a
block already reserved is still used up (its numbers are ours); after that it falls back to an
in-memory sequence started at a random point: replicas could then collide only if their ranges
overlap, which for a sequence of *n* numbers has odds of about 2n / 10⁹ per pair of replicas.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from eligibility_svc.cache import CacheUnavailable, RedisGate
from eligibility_svc.redis_keys import RedisKeys

MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits; zero is not used

DEFAULT_BLOCK = 100  # numbers reserved per Redis call (at most this many are skipped when a replica stops)

# SET the seed only if the counter is missing, then INCRBY the block, in one atomic step: the block is
# the counter values (returned - block, returned].
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCRBY', KEYS[1], ARGV[2])
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
    """Blocks of ``block`` numbers from the shared counter at ``keys.control_counter(name)``, handed
    out in order in this process; ``fallback`` when Redis fails and no reserved number is left."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        name: str = "interchange",
        gate: RedisGate | None = None,
        fallback: ControlNumbers | None = None,
        clock: Callable[[], float] = time.time,
        block: int = DEFAULT_BLOCK,
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._key = keys.control_counter(name)
        self._gate = gate or RedisGate()
        self._script = redis.register_script(_RESERVE)
        self._fallback = fallback or MemoryControlNumbers()
        self._clock = clock
        self.block = block
        self._next, self._end = 1, 0  # counter values reserved and not handed out yet: [_next, _end]
        self._reserving = asyncio.Lock()  # one reservation at a time: callers meanwhile wait for it
        self._tried = 0  # reservations finished (either way)
        self._failed = False  # whether the last one failed

    async def next(self) -> int:
        if self._next > self._end:
            tried = self._tried
            async with self._reserving:
                if self._next > self._end:  # nobody reserved a block while we waited
                    if self._tried != tried and self._failed:
                        # Redis failed the reservation we waited on: do not queue for another timeout.
                        return await self._fallback.next()
                    try:
                        await self._reserve()
                    except CacheUnavailable:
                        self._failed = True
                        return await self._fallback.next()
                    finally:
                        self._tried += 1
                    self._failed = False
        counter = self._next
        self._next += 1
        return wrap(counter)

    async def _reserve(self) -> None:
        seed = clock_seed(self._clock())
        end = int(await self._gate.call("control_number", self._script(keys=[self._key], args=[seed, self.block])))
        self._next, self._end = end - self.block + 1, end
