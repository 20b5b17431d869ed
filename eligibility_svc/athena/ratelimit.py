"""The two budgets every athenaNet call spends from, shared by all replicas through Redis.

* ``token_window``: new OAuth2 tokens per client per window (athenaNet allows 50 a minute in
  production, 5 in preview, then answers 429 for the rest of the minute).  A *sliding* window: a
  sorted set of request times, so no 60 seconds ever hold more than the limit, whichever way the
  endpoint counts its minute.
* ``practice_rate``: our own calls per second per practice (athenaNet publishes no per-second
  limit; clients keep to 5/s in preview and 100-150/s in production).  A token bucket in a hash; a
  caller that may wait reserves its token (the count goes negative) and sleeps for its turn, so
  replicas are served first come, first served.

Both Lua scripts read Redis's clock (``TIME``), so replicas' clocks never disagree.  When Redis
fails, each process falls back to the same arithmetic in memory (the pure functions below, which the
scripts mirror): limits then hold per process rather than across replicas, and a warning says so.
Waiting never passes the caller's deadline: ``AthenaRateLimited`` (``details["local"]`` True) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eligibility_svc.errors import AthenaRateLimited

log = logging.getLogger(__name__)


class Budget(Protocol):
    """Take one unit before ``deadline`` (``time.monotonic()``), waiting if needed."""

    async def take(self, deadline: float) -> None: ...


class Window(Protocol):
    """A sliding-window budget whose units can be given back (a request that never left)."""

    async def take(self, deadline: float) -> str:
        """The unit taken (an opaque ticket), waiting for one if needed."""
        ...

    async def give_back(self, ticket: str) -> None:
        """Return a unit whose request certainly never reached the endpoint."""
        ...


# --- pure arithmetic --------------------------------------------------------------------------------


def window_wait(times: deque[float], limit: int, window: float, now: float) -> float:
    """Drop entries older than ``window``; 0 when one more fits, else seconds until one does."""
    while times and times[0] <= now - window:
        times.popleft()
    if len(times) < limit:
        return 0.0
    return times[0] + window - now


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


def bucket_wait(bucket: Bucket, rate: float, burst: int, now: float) -> float:
    """Refill ``bucket`` to ``now`` and reserve one token; the seconds to wait for it (0: now)."""
    bucket.tokens = min(float(burst), bucket.tokens + max(now - bucket.updated, 0.0) * rate)
    bucket.updated = now
    wait = 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / rate
    bucket.tokens -= 1.0
    return wait


# --- scripts ----------------------------------------------------------------------------------------

# KEYS[1] zset; ARGV limit, window seconds, member.  Returns {1, 0} when taken, {0, wait} when full.
_WINDOW_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now)}
"""

# KEYS[1] hash; ARGV rate, burst, max wait.  Returns {granted, wait}; reserves only when granted.
_BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(saved[1]) or burst
local ts = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + math.max(now - ts, 0) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > tonumber(ARGV[3]) then
  return {0, tostring(wait)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return {1, tostring(wait)}
"""


def _limited(what: str, wait: float) -> AthenaRateLimited:
    return AthenaRateLimited(
        f"{what} left no room before the deadline (next slot in {wait:.1f} s); this is our own limit",
        details={"local": True, "limit": what, "retry_after_seconds": round(wait, 3)},
    )


# --- in process --------------------------------------------------------------------------------------


class LocalWindow:
    """At most ``limit`` takes in any ``window`` seconds, in this process."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit, self._window, self._clock = limit, window, clock
        self._times: deque[float] = deque()

    async def take(self, deadline: float) -> str:
        while True:
            now = self._clock()
            wait = window_wait(self._times, self._limit, self._window, now)
            if wait <= 0:
                self._times.append(now)
                return repr(now)
            if now + wait > deadline:
                raise _limited("the token request budget", wait)
            await asyncio.sleep(wait)

    async def give_back(self, ticket: str) -> None:
        with contextlib.suppress(ValueError):
            self._times.remove(float(ticket))


class LocalBucket:
    """``rate`` takes per second with bursts of ``burst``, in this process."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._bucket = Bucket(float(burst), clock())

    async def take(self, deadline: float) -> None:
        now = self._clock()
        probe = Bucket(self._bucket.tokens, self._bucket.updated)
        wait = bucket_wait(probe, self._rate, self._burst, now)
        if now + wait > deadline:
            raise _limited("the per-practice request rate", wait)
        self._bucket = probe
        if wait > 0:
            await asyncio.sleep(wait)


# --- across replicas ----------------------------------------------------------------------------------


class _Fallback:
    """Remembers whether Redis failed, to warn once per outage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.degraded = False

    def note(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning("%s falls back to this process: Redis failed (%s)", self.name, type(exc).__name__)
        self.degraded = True


class RedisWindow:
    """``LocalWindow`` shared by every replica (one sorted set per client)."""

    def __init__(self, redis: Redis, key: str, limit: int, window: float, *, timeout: float = 1.0) -> None:
        self._key, self._limit, self._window, self._timeout = key, limit, window, timeout
        self._redis = redis
        self._script = redis.register_script(_WINDOW_SCRIPT)
        self._local = LocalWindow(limit, window)
        self._fallback = _Fallback("the athenaNet token request budget")

    async def take(self, deadline: float) -> str:
        while True:
            ticket = uuid.uuid4().hex
            try:
                async with asyncio.timeout(self._timeout):
                    taken, wait_text = await self._script(keys=[self._key], args=[self._limit, self._window, ticket])
            except (RedisError, OSError, TimeoutError) as exc:
                self._fallback.note(exc)
                return "local:" + await self._local.take(deadline)
            self._fallback.degraded = False
            if int(taken) == 1:
                return ticket
            wait = float(wait_text)
            if time.monotonic() + wait > deadline:
                raise _limited("the token request budget", wait)
            await asyncio.sleep(wait + 0.001)

    async def give_back(self, ticket: str) -> None:
        if ticket.startswith("local:"):
            await self._local.give_back(ticket.removeprefix("local:"))
            return
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._redis.zrem(self._key, ticket)


class RedisBucket:
    """``LocalBucket`` shared by every replica (one hash per practice)."""

    def __init__(self, redis: Redis, key: str, rate: float, burst: int, *, timeout: float = 1.0) -> None:
        self._key, self._rate, self._burst, self._timeout = key, rate, burst, timeout
        self._script = redis.register_script(_BUCKET_SCRIPT)
        self._local = LocalBucket(rate, burst)
        self._fallback = _Fallback("the athenaNet per-practice rate")

    async def take(self, deadline: float) -> None:
        max_wait = max(deadline - time.monotonic(), 0.0)
        try:
            async with asyncio.timeout(self._timeout):
                granted, wait_text = await self._script(keys=[self._key], args=[self._rate, self._burst, max_wait])
        except (RedisError, OSError, TimeoutError) as exc:
            self._fallback.note(exc)
            await self._local.take(deadline)
            return
        self._fallback.degraded = False
        wait = float(wait_text)
        if int(granted) != 1:
            raise _limited("the per-practice request rate", wait)
        if wait > 0:
            await asyncio.sleep(wait)
