"""Single-flight: concurrent identical checks cause one payer call, in one process or across replicas.

    caller ─► LocalSingleFlight (one task per key in this process)
                 └─► RedisSingleFlight._across (one holder per key across replicas)
                        ├─ SET lock NX PX ─ won ─► load() again? ─► compute() ─► release (compare-and-delete)
                        └─ lost ─► poll: load() answers? ─► lock gone? ─► try to take it

Round trips of a holder: with ``stored_key`` (the key ``load`` reads) one script takes the lock and
tells whether that key holds anything, so ``load`` is asked again only when it might answer; and
``compute`` may release the lock in the pipeline that stores its answer (``held_lock``, passed to
``Cache.set_many``: the compare-and-delete runs after the writes), leaving the holder nothing to do.

``compute`` asks the payer *and stores the answer* where ``load`` finds it (the cache); waiters on
other replicas take it from there.  The lock carries a random token, is kept alive while its
holder computes, and expires ``lock_ttl`` after a holder dies, so a crashed replica delays its
waiters by at most that long; then one of them takes over.  When Redis is unavailable each
replica computes alone (the local single-flight still holds): checks succeed, only less shared.

Waiters poll rather than subscribe: with the local layer only one waiter per replica polls a key
(one GET and one EXISTS per interval), and polling needs nothing re-established after Redis
restarts.  An answer that is not cached (a payer error) cannot be shared across replicas: each
replica that was waiting then asks once itself, which is the retry such an answer wants anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, cast

from redis.asyncio import Redis

from eligibility_svc.cache import RELEASE_LOCK, CacheUnavailable, LockRelease, RedisGate
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.redis_pipeline import pipelined

T = TypeVar("T")

_HELD: ContextVar[LockRelease | None] = ContextVar("single_flight_held", default=None)


def held_lock() -> LockRelease | None:
    """The Redis single-flight lock held by the flight this code computes in (``None`` outside one, or
    in-process only): its ``compute`` passes it to ``Cache.set_many(..., release=)`` so that storing the
    answer and releasing the lock is one round trip; the holder releases it otherwise."""
    return _HELD.get()


# SET NX PX, and when won whether the key ``load`` reads holds anything: 0 lost, 1 won (nothing
# stored: ``load`` is not asked), 2 won and something stored (or no key to look at).
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if #KEYS > 1 then return 1 + redis.call('EXISTS', KEYS[2]) end
  return 2
end
return 0
"""
# Compare-and-delete (``cache.RELEASE_LOCK``) / compare-and-extend: only the token's owner may release
# or extend the lock, so a holder that outlived its lock cannot remove the lock of the replica that took over.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class SingleFlight(Protocol):
    """Runs ``compute`` once for concurrent callers with the same ``key``; all get its result."""

    async def run(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        load: Callable[[], Awaitable[T | None]],
        *,
        stored_key: str | None = None,
    ) -> T:
        """``key`` is an opaque digest; ``load`` returns an already-stored result acceptable to this
        caller (honouring its ``max_age``/``force_refresh``), or ``None``.  ``stored_key``: the Redis
        key ``load`` reads, if it reads only that one; a lock holder then looks at it with the lock
        and skips ``load`` when it is empty.  ``compute``'s exceptions reach every caller sharing the
        flight."""
        ...


class LocalSingleFlight:
    """In-process single-flight: the first caller starts a task, later ones await the same task.

    The work runs in its own task so that one caller giving up (cancelled) neither cancels it for
    the others nor wastes the payer call: the answer is still computed and stored.
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Task[Any]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    async def run(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        load: Callable[[], Awaitable[T | None]] | None = None,
        *,
        stored_key: str | None = None,
    ) -> T:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.create_task(_awaited(compute), name=f"single-flight {key[:12]}")
            self._flights[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return cast(T, await asyncio.shield(task))

    def _landed(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved: callers who left must not cause a warning

    async def aclose(self) -> None:
        """Cancel flights still running (shutdown after the grace period)."""
        flights = list(self._flights.values())
        for task in flights:
            task.cancel()
        await asyncio.gather(*flights, return_exceptions=True)


class _KeepAlive:
    """Extends a held lock every third of its time to live, for as long as the flight runs.

    A loop timer, not a task: most flights end before the first extension is due, and then all this
    costs is scheduling and cancelling the timer.  A task exists only while an extension is sent."""

    def __init__(self, flight: RedisSingleFlight, lock_key: str, token: str) -> None:
        self._flight, self._lock_key, self._token = flight, lock_key, token
        self._loop = asyncio.get_running_loop()
        self._extending: asyncio.Task[None] | None = None
        self._stopped = False
        self._timer = self._loop.call_later(flight.lock_ttl / 3, self._due)

    def _due(self) -> None:
        self._extending = self._loop.create_task(self._extend())

    async def _extend(self) -> None:
        flight = self._flight
        try:
            if not await flight.lock.extend(self._lock_key, self._token, flight.lock_ttl):
                return  # we were too slow and someone took over; nothing left to keep
        except CacheUnavailable:
            pass  # try again at the next tick
        if not self._stopped:
            self._timer = self._loop.call_later(flight.lock_ttl / 3, self._due)

    async def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()
        extending = self._extending
        if extending is not None and not extending.done():
            extending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await extending


async def _awaited(compute: Callable[[], Awaitable[T]]) -> T:
    return await compute()


class RedisLock:
    """A lock in Redis: ``SET NX PX`` with a random token; token-checked release and extension.

    Every call goes through the gate, so it raises ``CacheUnavailable`` when Redis does not answer.
    """

    def __init__(self, redis: Redis, gate: RedisGate) -> None:
        self.redis = redis
        self._gate = gate
        self._commands = pipelined(redis)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(RELEASE_LOCK)
        self._extend = redis.register_script(_EXTEND)

    async def acquire(self, key: str, ttl_seconds: float) -> str | None:
        """The token when the lock was free and is now ours, else ``None``."""
        token = secrets.token_hex(16)
        won = await self._gate.call("lock", self._commands.call("SET", key, token, "NX", "PX", _ms(ttl_seconds)))
        return token if won else None

    async def acquire_looking(self, key: str, ttl_seconds: float, stored_key: str | None) -> tuple[str | None, bool]:
        """``acquire``, and in the same round trip whether ``stored_key`` exists (when the lock was won;
        with no ``stored_key``, True: something may be stored, ``load`` must look)."""
        token = secrets.token_hex(16)
        keys = [key] if stored_key is None else [key, stored_key]
        won = int(await self._gate.call("lock", self._commands.script(self._acquire, keys, [token, _ms(ttl_seconds)])))
        return (token, won == 2) if won else (None, False)

    async def release(self, key: str, token: str) -> bool:
        """Delete the lock if ``token`` still holds it; whether it did."""
        return bool(await self._gate.call("unlock", self._commands.script(self._release, [key], [token])))

    async def extend(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Push the expiry to ``ttl_seconds`` from now if ``token`` still holds it."""
        return bool(
            await self._gate.call("lock_extend", self._commands.script(self._extend, [key], [token, _ms(ttl_seconds)]))
        )

    async def held(self, key: str) -> bool:
        """Whether anyone holds the lock now."""
        return bool(await self._gate.call("lock_check", self._commands.call("EXISTS", key)))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisSingleFlight:
    """Single-flight across replicas sharing one Redis (see the module docstring).

    ``lock_ttl``: how long a crashed holder blocks its waiters (a live holder renews every third of
    it).  ``max_wait``: a waiter that has waited this long on a live but stuck holder computes
    itself; keep it above the clearinghouse deadline.
    """

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        gate: RedisGate | None = None,
        lock_ttl: float = 5.0,
        max_wait: float = 30.0,
        poll_interval: float = 0.01,
        max_poll_interval: float = 0.1,
    ) -> None:
        self._keys = keys
        self._gate = gate or RedisGate()
        self.lock = RedisLock(redis, self._gate)
        self._local = LocalSingleFlight()
        self.lock_ttl = lock_ttl
        self.max_wait = max_wait
        self._poll = (poll_interval, max_poll_interval)

    async def run(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        load: Callable[[], Awaitable[T | None]],
        *,
        stored_key: str | None = None,
    ) -> T:
        return await self._local.run(key, lambda: self._across(key, compute, load, stored_key))

    async def aclose(self) -> None:
        await self._local.aclose()

    async def _across(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        load: Callable[[], Awaitable[T | None]],
        stored_key: str | None,
    ) -> T:
        lock_key = self._keys.single_flight_lock(key)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while True:
            try:
                token, stored = await self.lock.acquire_looking(lock_key, self.lock_ttl, stored_key)
            except CacheUnavailable:
                return await compute()  # no coordination without Redis, but the check succeeds
            if token is not None:
                return await self._holding(lock_key, token, compute, load if stored else None)
            result = await self._wait_for_holder(lock_key, load, deadline)
            if result is not None:
                return result
            if asyncio.get_running_loop().time() >= deadline:
                return await compute()  # the holder is alive but stuck: stop waiting for it

    async def _holding(
        self,
        lock_key: str,
        token: str,
        compute: Callable[[], Awaitable[T]],
        load: Callable[[], Awaitable[T | None]] | None,
    ) -> T:
        """Compute under the lock, unless ``load`` (``None``: nothing stored) finds a result."""
        keep_alive = _KeepAlive(self, lock_key, token)
        held = LockRelease(self.lock.redis, lock_key, token)
        context = _HELD.set(held)  # ``compute`` runs in this task: it sees the lock (``held_lock``)
        try:
            # Another holder may have stored the answer between our caller's miss and our lock.
            stored = await load() if load is not None else None
            return stored if stored is not None else await compute()
        finally:
            _HELD.reset(context)
            await keep_alive.stop()
            if not held.released:  # released with compute's writes, else now
                with contextlib.suppress(CacheUnavailable):  # the lock then simply expires
                    await self.lock.release(lock_key, token)

    async def _wait_for_holder(
        self, lock_key: str, load: Callable[[], Awaitable[T | None]], deadline: float
    ) -> T | None:
        """The holder's stored result, or ``None`` once the lock is free (or Redis fails, or the
        deadline passes): the caller then tries to take the lock."""
        delay, longest = self._poll
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            # Jitter spreads replicas that started waiting together.
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, longest)
            result = await load()
            if result is not None:
                return result
            try:
                if not await self.lock.held(lock_key):
                    return None
            except CacheUnavailable:
                return None
        return None
