"""Single-flight: one payer call for concurrent identical checks, in a process and across replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from eligibility_svc.cache import CacheWrite, LockRelease, RedisCache, RedisGate, make_redis
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.singleflight import LocalSingleFlight, RedisSingleFlight, held_lock
from tests.support.redis_server import RedisServer

KEYS = RedisKeys("elig:")
DIGEST = "a" * 64


class Payer:
    """A payer call that counts itself and stores its answer where waiters look (as the service does)."""

    def __init__(self, cache: RedisCache | None = None, *, seconds: float = 0.1) -> None:
        self.calls = 0
        self.cache = cache
        self.seconds = seconds

    async def compute(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        answer = {"status": "active", "call": self.calls}
        if self.cache is not None:
            await self.cache.set(KEYS.cache_entry(DIGEST), answer, 60)
        return answer

    async def load(self) -> dict[str, Any] | None:
        if self.cache is None:
            return None
        entry = await self.cache.get(KEYS.cache_entry(DIGEST))
        return entry.value if entry is not None else None


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[RedisSingleFlight, RedisSingleFlight, RedisCache]]:
    """Two replicas' single-flights, each with its own client, and a cache on a third."""
    clients = [make_redis(redis_url) for _ in range(3)]
    flights = (
        RedisSingleFlight(clients[0], KEYS, lock_ttl=0.5),
        RedisSingleFlight(clients[1], KEYS, lock_ttl=0.5),
    )
    yield flights[0], flights[1], RedisCache(clients[2])
    for flight in flights:
        await flight.aclose()
    for client in clients:
        await client.aclose()


# --- in process -----------------------------------------------------------------------------------------


async def test_local_runs_one_computation_for_concurrent_callers() -> None:
    flight, payer = LocalSingleFlight(), Payer()
    results = await asyncio.gather(*(flight.run(DIGEST, payer.compute) for _ in range(50)))
    assert payer.calls == 1
    assert all(result == {"status": "active", "call": 1} for result in results)
    assert flight.in_flight == 0
    await flight.run(DIGEST, payer.compute)  # finished flights are not a cache
    assert payer.calls == 2


async def test_local_keys_are_independent() -> None:
    flight, payer = LocalSingleFlight(), Payer()
    await asyncio.gather(flight.run("a", payer.compute), flight.run("b", payer.compute))
    assert payer.calls == 2


async def test_local_failure_reaches_every_caller() -> None:
    flight = LocalSingleFlight()
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("payer down")

    results = await asyncio.gather(*(flight.run(DIGEST, failing) for _ in range(5)), return_exceptions=True)
    assert calls == 1
    assert all(isinstance(result, RuntimeError) for result in results)


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    flight, payer = LocalSingleFlight(), Payer(seconds=0.2)
    leaving = asyncio.create_task(flight.run(DIGEST, payer.compute))
    staying = asyncio.create_task(flight.run(DIGEST, payer.compute))
    await asyncio.sleep(0.05)
    leaving.cancel()
    assert await staying == {"status": "active", "call": 1}
    assert leaving.cancelled()
    assert payer.calls == 1


# --- across replicas --------------------------------------------------------------------------------------


async def test_fifty_checks_on_two_replicas_make_one_payer_call(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache],
) -> None:
    one, two, cache = replicas
    payer = Payer(cache)
    runs = [(one if i % 2 else two).run(DIGEST, payer.compute, payer.load) for i in range(50)]
    results = await asyncio.gather(*runs)
    assert payer.calls == 1
    assert all(result == {"status": "active", "call": 1} for result in results)


async def test_the_lock_is_released_after_the_flight(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache], redis_client: Redis
) -> None:
    one, _, cache = replicas
    await one.run(DIGEST, Payer(cache).compute, Payer(cache).load)
    assert await redis_client.exists(KEYS.single_flight_lock(DIGEST)) == 0


@pytest.mark.parametrize("stored_key", [None, KEYS.cache_entry(DIGEST)], ids=["load", "stored_key"])
async def test_the_lock_winner_looks_again_before_calling_the_payer(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache], stored_key: str | None
) -> None:
    """With or without a ``stored_key`` to look at along with the lock."""
    one, _, cache = replicas
    payer = Payer(cache)
    # Another replica finished between our caller's cache miss and our taking the lock.
    await cache.set(KEYS.cache_entry(DIGEST), {"status": "active", "call": "theirs"}, 60)
    result = await one.run(DIGEST, payer.compute, payer.load, stored_key=stored_key)
    assert result == {"status": "active", "call": "theirs"}
    assert payer.calls == 0


async def test_a_crashed_holder_blocks_waiters_only_until_its_lock_expires(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache],
) -> None:
    one, two, cache = replicas
    # A replica took the lock and died: nobody will release or renew it.
    assert await one.lock.acquire(KEYS.single_flight_lock(DIGEST), ttl_seconds=0.5) is not None
    payer = Payer(cache, seconds=0.05)
    started = time.perf_counter()
    results = await asyncio.gather(*((one if i % 2 else two).run(DIGEST, payer.compute, payer.load) for i in range(20)))
    elapsed = time.perf_counter() - started
    assert payer.calls == 1  # exactly one waiter took over
    assert all(result == {"status": "active", "call": 1} for result in results)
    assert 0.4 < elapsed < 2.0


async def test_a_holder_shut_down_mid_flight_releases_its_lock(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache],
) -> None:
    one, two, cache = replicas
    one.lock_ttl = 5.0  # waiting for the expiry would fail the timing below
    never = asyncio.Event()

    async def hangs() -> dict[str, Any]:
        await never.wait()
        return {}

    abandoned = asyncio.create_task(one.run(DIGEST, hangs, Payer(cache).load))
    await asyncio.sleep(0.05)
    payer = Payer(cache, seconds=0.01)
    waiter = asyncio.create_task(two.run(DIGEST, payer.compute, payer.load))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await one.aclose()  # cancels the flight: its finally releases the lock
    assert await waiter == {"status": "active", "call": 1}
    assert time.perf_counter() - started < 1.0
    with pytest.raises(asyncio.CancelledError):
        await abandoned


async def test_a_live_slow_holder_keeps_its_lock(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache],
) -> None:
    one, two, cache = replicas
    payer = Payer(cache, seconds=1.2)  # more than twice the 0.5 s lock: it must be renewed
    first = asyncio.create_task(one.run(DIGEST, payer.compute, payer.load))
    await asyncio.sleep(0.05)
    second = await two.run(DIGEST, payer.compute, payer.load)
    assert second == await first == {"status": "active", "call": 1}
    assert payer.calls == 1


async def test_an_uncached_answer_is_asked_again_by_the_waiting_replica(
    replicas: tuple[RedisSingleFlight, RedisSingleFlight, RedisCache],
) -> None:
    one, two, _ = replicas
    payer = Payer(cache=None, seconds=0.1)  # stores nothing: a payer error, say
    results = await asyncio.gather(*(flight.run(DIGEST, payer.compute, payer.load) for flight in (one, two, one, two)))
    # One call per replica at most, never one per caller.
    assert payer.calls == 2
    assert sorted(result["call"] for result in results) == [1, 1, 2, 2]


async def test_lock_release_and_extension_check_the_token(redis_client: Redis) -> None:
    flight = RedisSingleFlight(redis_client, KEYS)
    key = KEYS.single_flight_lock(DIGEST)
    token = await flight.lock.acquire(key, 5.0)
    assert token is not None
    assert await flight.lock.acquire(key, 5.0) is None
    assert not await flight.lock.release(key, "someone-else")
    assert not await flight.lock.extend(key, "someone-else", 60.0)
    assert await flight.lock.extend(key, token, 60.0)
    assert await redis_client.pttl(key) > 50_000
    assert await flight.lock.release(key, token)
    assert not await flight.lock.held(key)


async def test_without_redis_every_replica_still_answers(disposable_redis: RedisServer) -> None:
    errors: list[str] = []
    client = make_redis(disposable_redis.url)
    gate = RedisGate(on_error=lambda operation, _: errors.append(operation))
    flight = RedisSingleFlight(client, KEYS, gate=gate)
    cache = RedisCache(client, gate=gate)
    disposable_redis.kill()
    payer = Payer(cache, seconds=0.05)
    try:
        started = time.perf_counter()
        results = await asyncio.gather(*(flight.run(DIGEST, payer.compute, payer.load) for _ in range(10)))
        assert time.perf_counter() - started < 1.5
        assert payer.calls == 1  # the in-process layer still holds
        assert all(result["status"] == "active" for result in results)
        assert "lock" in errors
    finally:
        await flight.aclose()
        await client.aclose()


async def test_redis_restarting_mid_flight_does_not_fail_checks(disposable_redis: RedisServer) -> None:
    client = make_redis(disposable_redis.url)
    flight, cache = RedisSingleFlight(client, KEYS, lock_ttl=0.5), RedisCache(client)

    async def killed_then_back() -> dict[str, Any]:
        disposable_redis.kill()
        await asyncio.sleep(0.05)
        disposable_redis.start()
        return {"status": "active"}

    try:
        assert await flight.run(DIGEST, killed_then_back, Payer(cache).load) == {"status": "active"}
        payer = Payer(cache)
        assert await flight.run(DIGEST, payer.compute, payer.load) == {"status": "active", "call": 1}
    finally:
        await flight.aclose()
        await client.aclose()


# --- fewer round trips: the lock taken with a look at the entry, released with the writes ------------------


async def test_taking_the_lock_tells_whether_the_entry_is_stored(redis_client: Redis) -> None:
    flight = RedisSingleFlight(redis_client, KEYS)
    lock, entry = KEYS.single_flight_lock(DIGEST), KEYS.cache_entry(DIGEST)
    token, stored = await flight.lock.acquire_looking(lock, 5.0, entry)
    assert token is not None
    assert not stored
    assert await flight.lock.acquire_looking(lock, 5.0, entry) == (None, False)  # held
    assert await flight.lock.release(lock, token)
    await redis_client.set(entry, b"anything")
    token, stored = await flight.lock.acquire_looking(lock, 5.0, entry)
    assert token is not None
    assert stored
    assert 0 < await redis_client.pttl(lock) <= 5000


async def test_the_holder_releases_the_lock_in_the_pipeline_of_its_writes(redis_url: str, redis_client: Redis) -> None:
    client = make_redis(redis_url)
    flight, cache = RedisSingleFlight(client, KEYS), RedisCache(client)
    lock = KEYS.single_flight_lock(DIGEST)
    seen: list[LockRelease | None] = []
    loads = 0

    async def load() -> dict[str, Any] | None:
        nonlocal loads
        loads += 1
        return None

    async def compute() -> dict[str, Any]:
        held = held_lock()
        seen.append(held)
        assert held is not None
        assert await redis_client.get(lock) == held.token.encode()
        await cache.set_many([CacheWrite(KEYS.cache_entry(DIGEST), {"status": "active"}, 60)], release=held)
        assert held.released
        assert await redis_client.exists(lock) == 0, "released by the pipeline, after the entry"
        await redis_client.set(lock, b"a later holder")  # must survive our holder's end
        return {"status": "active"}

    try:
        assert held_lock() is None
        assert await flight.run(DIGEST, compute, load, stored_key=KEYS.cache_entry(DIGEST)) == {"status": "active"}
        assert loads == 0, "nothing was stored when the lock was taken: no second read"
        assert seen[0] is not None
        assert held_lock() is None
        assert await redis_client.get(lock) == b"a later holder"
    finally:
        await flight.aclose()
        await client.aclose()


async def test_a_pipeline_does_not_release_a_lock_that_is_no_longer_ours(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    lock = KEYS.single_flight_lock(DIGEST)
    await redis_client.set(lock, b"theirs")
    ours = LockRelease(redis_client, lock, "ours")
    assert await cache.set_many([CacheWrite(KEYS.cache_entry(DIGEST), {"status": "active"}, 60)], release=ours) == [
        True
    ]
    assert ours.released  # nothing left for the holder to do
    assert await redis_client.get(lock) == b"theirs"
    elsewhere = LockRelease(make_redis("redis://localhost:1"), lock, "theirs")  # another client: not released here
    await cache.set_many([CacheWrite(KEYS.cache_entry(DIGEST), {"status": "active"}, 60)], release=elsewhere)
    assert not elsewhere.released
    assert await redis_client.get(lock) == b"theirs"
    await elsewhere.redis.aclose()
