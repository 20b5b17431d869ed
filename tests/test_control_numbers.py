"""X12 control numbers: unique across replicas, always 1..999999999, available without Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from eligibility_svc.cache import RedisGate, make_redis
from eligibility_svc.control_numbers import (
    MAX_CONTROL_NUMBER,
    MemoryControlNumbers,
    RedisControlNumbers,
    clock_seed,
    wrap,
)
from eligibility_svc.redis_keys import RedisKeys
from tests.support.redis_server import RedisServer

KEYS = RedisKeys("elig:")


def test_wrap_stays_within_nine_digits_and_skips_zero() -> None:
    assert [wrap(n) for n in (1, 2, 999_999_999, 1_000_000_000, 1_000_000_001)] == [1, 2, 999_999_999, 1, 2]
    assert wrap(3 * MAX_CONTROL_NUMBER) == MAX_CONTROL_NUMBER


def test_clock_seed_counts_milliseconds() -> None:
    assert clock_seed(1.0) == 1000
    assert clock_seed(1_700_000_000.0) == wrap(1_700_000_000_000)
    assert 1 <= clock_seed(1_700_000_000.123) <= MAX_CONTROL_NUMBER


async def test_two_replicas_never_share_a_number(redis_url: str) -> None:
    clients = [make_redis(redis_url), make_redis(redis_url)]
    try:
        sources = [RedisControlNumbers(client, KEYS) for client in clients]
        numbers = await asyncio.gather(*(sources[i % 2].next() for i in range(1000)))
    finally:
        for client in clients:
            await client.aclose()
    assert len(set(numbers)) == 1000
    assert all(1 <= number <= MAX_CONTROL_NUMBER for number in numbers)


async def test_a_fresh_counter_starts_from_the_clock(redis_client: Redis) -> None:
    source = RedisControlNumbers(redis_client, KEYS, clock=lambda: 1_700_000_000.0)
    first, second = await source.next(), await source.next()
    assert first == wrap(1_700_000_000_000 + 1)
    assert second == first + 1
    # Once the counter exists the clock no longer matters: another replica gets the next block.
    later = RedisControlNumbers(redis_client, KEYS, clock=lambda: 1_900_000_000.0)
    assert await later.next() == first + source.block


async def test_a_block_costs_one_redis_call_however_many_ask_at_once(redis_client: Redis) -> None:
    source = RedisControlNumbers(redis_client, KEYS, clock=lambda: 1.0, block=10)
    numbers = await asyncio.gather(*(source.next() for _ in range(25)))
    assert sorted(numbers) == list(range(1001, 1026))
    # three blocks reserved (25 numbers in blocks of 10), not 25 increments
    assert await redis_client.get(KEYS.control_counter()) == b"1030"


async def test_replicas_with_blocks_interleave_but_never_repeat(redis_url: str) -> None:
    clients = [make_redis(redis_url) for _ in range(3)]
    try:
        sources = [RedisControlNumbers(client, KEYS, block=7) for client in clients]
        numbers = [await sources[i % 3].next() for i in range(300)]
    finally:
        for client in clients:
            await client.aclose()
    assert len(set(numbers)) == 300
    assert numbers != sorted(numbers)  # unique, not ordered across replicas (see the module docstring)


async def test_the_counter_wraps_after_nine_nines(redis_client: Redis) -> None:
    await redis_client.set(KEYS.control_counter(), MAX_CONTROL_NUMBER - 1)
    source = RedisControlNumbers(redis_client, KEYS)
    assert [await source.next() for _ in range(3)] == [MAX_CONTROL_NUMBER, 1, 2]


async def test_named_counters_are_separate(redis_client: Redis) -> None:
    interchange = RedisControlNumbers(redis_client, KEYS, clock=lambda: 1.0)
    group = RedisControlNumbers(redis_client, KEYS, name="group", clock=lambda: 1.0)
    assert await interchange.next() == await group.next() == 1001
    assert await redis_client.exists(KEYS.control_counter("group")) == 1


def _with_fallback(client: Redis, errors: list[str], *, start: int, **options: int) -> RedisControlNumbers:
    """Redis numbers falling back to memory ones from ``start``; failed Redis operations go to ``errors``."""
    return RedisControlNumbers(
        client,
        KEYS,
        gate=RedisGate(on_error=lambda operation, _: errors.append(operation)),
        fallback=MemoryControlNumbers(start=start),
        **options,
    )


async def test_without_redis_numbers_come_from_the_fallback(disposable_redis: RedisServer) -> None:
    errors: list[str] = []
    client = make_redis(disposable_redis.url)
    source = _with_fallback(client, errors, start=42, block=2)
    try:
        first = await source.next()
        assert 1 <= first <= MAX_CONTROL_NUMBER
        disposable_redis.kill()
        assert await source.next() == wrap(first + 1)  # reserved before Redis went: still ours
        assert errors == []
        assert [await source.next(), await source.next()] == [42, 43]
        assert errors == ["control_number", "control_number"]
        disposable_redis.start()
        assert await source.next() not in (42, 43, 44)  # the shared counter again (fresh: clock-seeded)
    finally:
        await client.aclose()


async def test_memory_numbers_are_sequential_and_wrap() -> None:
    source = MemoryControlNumbers(start=MAX_CONTROL_NUMBER - 1)
    assert [await source.next() for _ in range(3)] == [MAX_CONTROL_NUMBER - 1, MAX_CONTROL_NUMBER, 1]
    assert 1 <= await MemoryControlNumbers().next() <= MAX_CONTROL_NUMBER


async def test_callers_waiting_on_a_failed_reservation_fall_back_at_once(disposable_redis: RedisServer) -> None:
    errors: list[str] = []
    client = make_redis(disposable_redis.url)
    source = _with_fallback(client, errors, start=500)
    disposable_redis.kill()
    try:
        numbers = await asyncio.gather(*(source.next() for _ in range(20)))
    finally:
        await client.aclose()
    assert sorted(numbers) == list(range(500, 520))
    assert errors == ["control_number"]  # one attempt; those who waited on it did not try again
