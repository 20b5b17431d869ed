"""Per-payer limits on calls to the clearinghouse: how many at once, and how many per second.

Two implementations behind one interface, ``PayerLimiter.slot(payer_id, deadline=...)``, an async
context manager held for the duration of one attempt:

* ``LocalPayerLimiter``: in-process (the embedded default, and the fallback when Redis is down);
* ``RedisPayerLimiter``: shared by every replica through Redis.

  - concurrency: a semaphore made of a sorted set of leases (member = lease ID, score = expiry in
    ms).  A Lua script drops expired leases and adds ours if fewer than the limit remain, so a replica
    that dies holding a slot gives it back when the lease expires;
  - rate: a token bucket in a hash (``tokens``, ``ts``) refilled and spent by a Lua script.  A caller
    that may wait reserves its token (the count goes negative) and sleeps for its turn: first come,
    first served across replicas.

One Lua script does both, reading Redis's own clock (``TIME``), so replicas' clocks never disagree:
it spends the token and, when no wait is needed and a slot is free, adds the lease, so a slot usually
costs one round trip (and the ``ZREM`` that gives it back).  A caller whose token is reserved (it
slept for it, or found every slot taken) asks again saying so, and only the lease is tried.

The callers of one process that find every slot taken wait in line: a slot the process gives back goes
to its longest waiter at once, and while the process holds (or is asking for) every slot of a payer its
callers do not ask Redis at all, so a slot costs one script call however long the line.  Slots that other
replicas give back are found by polling.  So that one replica's line cannot starve another replica (an API
check during a batch run), a caller refused a slot marks its replica as waiting (``payer_waiting``), and a
slot given back while another replica waits is held for that replica, for its next caller that asks, not
handed to the local line; a hold nobody claims runs out after ``_HOLD_FOR_OTHER_MS``.  The token
bucket arithmetic in ``reserve`` is the same as the Lua script's, and is what the tests pin down.
Waiting never passes the attempt's deadline: a slot not obtained in time is a
``ClearinghouseRateLimited`` naming our own limit (``details["local"]`` is True).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eligibility_svc.errors import ClearinghouseRateLimited
from eligibility_svc.ids import unique_hex
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.redis_pipeline import pipelined

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PayerLimits:
    concurrency: int = 50  # attempts in flight at once, across all replicas
    rate_per_second: float = 100.0  # attempts started per second, sustained
    burst: int = 20  # token bucket size: attempts that may start at once after a quiet spell


class PayerLimiter(Protocol):
    """Hold ``slot`` around one attempt; it waits (never past ``deadline``) for the payer's limits."""

    def slot(self, payer_id: str, *, deadline: float) -> AbstractAsyncContextManager[None]: ...


# --- token bucket (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: float


def reserve(bucket: Bucket | None, limits: PayerLimits, now: float, max_wait: float) -> tuple[bool, float, Bucket]:
    """Refill, then reserve one token if the wait for it is at most ``max_wait``.

    Returns ``(granted, wait_seconds, new_bucket)``.  Not granted: nothing is reserved, and
    ``wait_seconds`` is how long the caller would have had to wait.
    """
    capacity = float(limits.burst)
    if bucket is None:
        bucket = Bucket(capacity, now)
    tokens = min(capacity, bucket.tokens + max(now - bucket.updated, 0.0) * limits.rate_per_second)
    wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / limits.rate_per_second
    if wait > max_wait:
        return False, wait, Bucket(tokens, now)
    return True, wait, Bucket(tokens - 1.0, now)


# --- in process ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _PayerState:
    semaphore: asyncio.Semaphore
    bucket: Bucket | None = None
    in_flight: int = 0


class LocalPayerLimiter:
    """Per-payer limits inside this process (asyncio; not thread-safe, one event loop)."""

    def __init__(
        self,
        default: PayerLimits,
        overrides: Mapping[str, PayerLimits] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default = default
        self._overrides = dict(overrides or {})
        self._clock = clock
        self._payers: dict[str, _PayerState] = {}

    def limits(self, payer_id: str) -> PayerLimits:
        return self._overrides.get(payer_id, self._default)

    def in_flight(self, payer_id: str) -> int:
        """Attempts holding a slot for ``payer_id`` now (for metrics and tests)."""
        state = self._payers.get(payer_id)
        return state.in_flight if state else 0

    def _state(self, payer_id: str) -> _PayerState:
        state = self._payers.get(payer_id)
        if state is None:
            state = _PayerState(asyncio.Semaphore(self.limits(payer_id).concurrency))
            self._payers[payer_id] = state
        return state

    @asynccontextmanager
    async def slot(self, payer_id: str, *, deadline: float) -> AsyncIterator[None]:
        state = self._state(payer_id)
        limits = self.limits(payer_id)
        await self._take_token(state, payer_id, limits, deadline)
        remaining = deadline - self._clock()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                await state.semaphore.acquire()
        except TimeoutError as exc:
            raise _saturated(payer_id, limits, "concurrency") from exc
        state.in_flight += 1
        try:
            yield
        finally:
            state.in_flight -= 1
            state.semaphore.release()

    async def _take_token(self, state: _PayerState, payer_id: str, limits: PayerLimits, deadline: float) -> None:
        now = self._clock()
        granted, wait, state.bucket = reserve(state.bucket, limits, now, max(deadline - now, 0.0))
        if not granted:
            raise _saturated(payer_id, limits, "rate")
        if wait > 0:
            await asyncio.sleep(wait)


# --- Redis, shared by replicas ---------------------------------------------------------------------

# One script takes the token and the lease (one round trip in the common case).  KEYS: the bucket, the
# leases.  ARGV: rate, burst, max_wait, concurrency, lease ID, lease ms, and whether the caller already
# holds its token (a retry after a full house, or the lease after sleeping for the token): then the
# bucket is not touched.  Returns {granted, wait, leased}: not granted, nothing was taken; a wait > 0,
# the token is reserved but no lease is taken (the caller sleeps, then asks again holding its token);
# else leased is 1 when a concurrency slot was free.
_SLOT_SCRIPT = """
local t = redis.call('TIME')
local wait = 0
if ARGV[7] ~= '1' then
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local rate = tonumber(ARGV[1])
  local capacity = tonumber(ARGV[2])
  local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens = tonumber(saved[1])
  local ts = tonumber(saved[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  tokens = math.min(capacity, tokens + math.max(now - ts, 0) * rate)
  if tokens < 1 then
    wait = (1 - tokens) / rate
  end
  local granted = wait <= tonumber(ARGV[3])
  if granted then
    tokens = tokens - 1
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 60000)
  if not granted then
    return {0, tostring(wait), 0}
  end
  if wait > 0 then
    return {1, tostring(wait), 0}
  end
end
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
if redis.call('ZREM', KEYS[2], 'held-for:' .. ARGV[8]) == 1 or redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]) * 2)
  return {1, tostring(wait), 1}
end
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[9]), ARGV[8])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[9]) * 2)
return {1, tostring(wait), 0}
"""

# Giving a lease back (KEYS: the leases, the waiting replicas; ARGV: the lease, our replica, how long a
# slot is held for another replica).  When another replica's callers found every slot taken lately, the
# slot is held for that replica (``held-for:<replica>``, counted as taken, claimed by its next caller
# that asks, or free again when the hold runs out) and 1 is returned: our own waiters must not take it.
# Otherwise 0: the slot is free, and our longest waiter asks for it at once.
_RELEASE_SCRIPT = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
for _, replica in ipairs(redis.call('ZRANGE', KEYS[2], 0, 1)) do
  if replica ~= ARGV[2] and not redis.call('ZSCORE', KEYS[1], 'held-for:' .. replica) then
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), 'held-for:' .. replica)
    redis.call('ZREM', KEYS[2], replica)
    return 1
  end
end
return 0
"""
_HOLD_FOR_OTHER_MS = 300  # a slot held for another replica: longer than its callers' longest poll (300 ms)
_WAITING_MS = 500  # a replica whose callers were refused counts as waiting this long

# A caller that found every slot taken (some held by other replicas) asks again after 10-30 ms, then twice
# as long each time, up to 100-300 ms: slots come back after a payer call (hundreds of ms).  Every poll is
# a script call.  A slot this process gives back wakes its longest waiter at once instead, and while this
# process holds (or is asking for) every slot of the payer its waiters do not ask Redis at all: only a slot
# it gives back can be theirs.  They look again every ``_POLL_MAX`` (no Redis call while that still holds).
# The batch benchmark's worker (one replica) made 2.85 script calls an item polling alone, 1.0 with this.
_POLL_FIRST = 0.02
_POLL_MAX = 0.2


class RedisPayerLimiter:
    """Per-payer limits shared by all replicas; falls back to ``LocalPayerLimiter`` while Redis is down."""

    def __init__(
        self,
        redis: Redis,
        default: PayerLimits,
        overrides: Mapping[str, PayerLimits] | None = None,
        *,
        keys: RedisKeys | None = None,
        clock: Callable[[], float] = time.monotonic,
        lease_margin: float = 2.0,
    ) -> None:
        self._redis = redis
        self._lease_margin = lease_margin  # a lease outlives its attempt's deadline by this much
        self._default = default
        self._overrides = dict(overrides or {})
        self._keys = keys or RedisKeys()
        self._clock = clock
        self._script = redis.register_script(_SLOT_SCRIPT)
        self._release_script = redis.register_script(_RELEASE_SCRIPT)
        self._replica = unique_hex()  # this limiter's name to the others, for the slots held for it
        self._commands = pipelined(redis)
        self._fallback = LocalPayerLimiter(default, overrides, clock=clock)
        self._held: dict[str, int] = {}  # leases this process holds or is asking Redis for, by payer
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # callers waiting for a slot, oldest first
        self.degraded = False  # True while Redis errors sent us to the in-process fallback

    def limits(self, payer_id: str) -> PayerLimits:
        return self._overrides.get(payer_id, self._default)

    @asynccontextmanager
    async def slot(self, payer_id: str, *, deadline: float) -> AsyncIterator[None]:
        lease: str | None = None
        try:
            keys = (
                self._keys.payer_rate(payer_id),
                self._keys.payer_concurrency(payer_id),
                self._keys.payer_waiting(payer_id),
            )
        except ValueError:  # a payer ID that cannot be part of a key is limited in this process only
            keys = None
        try:
            lease = await self._obtain(payer_id, keys, deadline) if keys else None
        except RedisError as exc:
            self._note_degraded(exc)
        if lease is None:
            async with self._fallback.slot(payer_id, deadline=deadline):
                yield
            return
        self.degraded = False
        try:
            yield
        finally:
            await self._release(payer_id, keys[1:] if keys else ("", ""), lease)

    async def _obtain(self, payer_id: str, keys: tuple[str, str, str], deadline: float) -> str:
        """A lease, the token taken first: both in one script call when no wait is needed."""
        limits = self.limits(payer_id)
        lease = unique_hex()
        have_token = False
        pause = _POLL_FIRST
        while True:
            if self._held.get(payer_id, 0) >= limits.concurrency:  # all ours: Redis would say no
                await self._wait_turn(payer_id, limits, deadline, _POLL_MAX)  # a look here, not a poll
                continue
            granted, wait, leased = await self._ask(payer_id, keys, deadline, lease, have_token=have_token)
            if not granted:
                raise _saturated(payer_id, limits, "rate")
            have_token = True  # reserved now (or before): no retry below takes another
            if leased:
                return lease
            if wait > 0:  # our turn for the token comes after this; the lease is asked for then
                await asyncio.sleep(wait)
                continue
            await self._wait_turn(payer_id, limits, deadline, pause * (0.5 + random.random()))
            pause = min(pause * 2, _POLL_MAX)

    async def _ask(
        self, payer_id: str, keys: tuple[str, str, str], deadline: float, lease: str, *, have_token: bool
    ) -> tuple[bool, float, bool]:
        """One script call: ``(granted, wait, leased)``.  While it is out it counts as a slot this process
        holds, so that its callers never ask for more slots than there are; unless it leased one, the
        count is given back when the answer comes."""
        limits = self.limits(payer_id)
        remaining = max(deadline - self._clock(), 0.0)
        lease_ms = int((remaining + self._lease_margin) * 1000)
        args: list[float | str] = [limits.rate_per_second, limits.burst, remaining, limits.concurrency]
        args += [lease, lease_ms, int(have_token), self._replica, _WAITING_MS]
        self._held[payer_id] = self._held.get(payer_id, 0) + 1
        leased = False
        try:
            granted, wait_text, leased_flag = await self._commands.script(self._script, keys, args)
            leased = int(leased_flag) == 1
            return int(granted) == 1, float(wait_text), leased
        finally:
            if not leased:
                self._held[payer_id] -= 1

    async def _wait_turn(self, payer_id: str, limits: PayerLimits, deadline: float, poll: float) -> None:
        """Until a slot this process gives back is handed to us, or ``poll`` seconds pass;
        ``ClearinghouseRateLimited`` at the deadline."""
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _saturated(payer_id, limits, "concurrency")
        waiters = self._waiting.setdefault(payer_id, deque())
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        waiters.append(turn)
        timer = loop.call_later(min(poll, remaining), _wake, turn)
        try:
            await turn
        finally:
            timer.cancel()
            if turn in waiters:  # not handed a slot: woken by the timer, or cancelled
                waiters.remove(turn)

    async def _release(self, payer_id: str, keys: tuple[str, str], lease: str) -> None:
        """Give the lease back (``_RELEASE_SCRIPT``): held for another replica that is waiting, or free,
        and then this process's longest waiter for the payer asks for it at once."""
        held_for_other = False
        try:
            args = [lease, self._replica, _HOLD_FOR_OTHER_MS]
            held_for_other = int(await self._commands.script(self._release_script, keys, args)) == 1
        except RedisError as exc:  # the lease expires on its own
            self._note_degraded(exc)
        finally:
            self._held[payer_id] -= 1
        waiters = self._waiting.get(payer_id)
        while waiters and not held_for_other:  # the longest waiter still waiting (a timer may have woken one)
            if _wake(waiters.popleft()):
                break

    def _note_degraded(self, exc: RedisError) -> None:
        if not self.degraded:
            log.warning("per-payer limits fall back to this process: Redis failed (%s)", type(exc).__name__)
        self.degraded = True


def _wake(turn: asyncio.Future[None]) -> bool:
    """Wake ``turn``'s waiter; whether it was still waiting."""
    if turn.done():
        return False
    turn.set_result(None)
    return True


def _saturated(payer_id: str, limits: PayerLimits, which: str) -> ClearinghouseRateLimited:
    if which == "rate":
        text = f"the per-payer rate limit ({limits.rate_per_second:g}/s, burst {limits.burst})"
    else:
        text = f"the per-payer concurrency limit ({limits.concurrency} in flight)"
    return ClearinghouseRateLimited(
        f"{text} for payer {payer_id} left no room before the deadline; this is our own limit "
        "(clearinghouse.per_payer_*), protecting the payer from a flood",
        details={"payer_id": payer_id, "local": True, "limit": which},
    )
