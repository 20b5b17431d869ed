"""Per-payer concurrency and rate limits: the token bucket, in process, and shared by replicas via a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from eligibility_svc.cache import make_redis
from eligibility_svc.clearinghouse.limiter import (
    Bucket,
    LocalPayerLimiter,
    PayerLimiter,
    PayerLimits,
    RedisPayerLimiter,
    reserve,
)
from eligibility_svc.clearinghouse.resilience import RetryPolicy
from eligibility_svc.errors import ClearinghouseRateLimited
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import Latency, PayerBehavior, SandboxClearinghouseConfig
from tests.support.ch_servers import SandboxFactory, make_270, resilient, scenario
from tests.support.redis_server import RedisServer

PAYER = "SBX10001"


async def hold(limiter: PayerLimiter, release: asyncio.Event) -> None:
    """Hold one of ``PAYER``'s slots until ``release`` is set."""
    async with limiter.slot(PAYER, deadline=time.monotonic() + 5):
        await release.wait()


# --- the token bucket (pure) ------------------------------------------------------------------------


def test_a_fresh_bucket_grants_its_burst_then_makes_callers_wait() -> None:
    limits = PayerLimits(concurrency=1, rate_per_second=10, burst=2)
    granted, wait, bucket = reserve(None, limits, now=0, max_wait=0)
    assert (granted, wait) == (True, 0)
    granted, wait, bucket = reserve(bucket, limits, now=0, max_wait=0)
    assert (granted, wait) == (True, 0)
    granted, wait, unchanged = reserve(bucket, limits, now=0, max_wait=0.05)
    assert (granted, wait) == (False, pytest.approx(0.1)), "one token every 100 ms"
    granted, wait, bucket = reserve(unchanged, limits, now=0, max_wait=1)
    assert (granted, wait) == (True, pytest.approx(0.1))
    granted, wait, bucket = reserve(bucket, limits, now=0, max_wait=1)
    assert wait == pytest.approx(0.2), "reservations queue up: first come, first served"


@given(
    steps=st.lists(st.tuples(st.floats(0, 2), st.floats(0, 1)), max_size=40),
    rate=st.floats(0.5, 200),
    burst=st.integers(1, 50),
)
def test_bucket_never_grants_more_than_burst_plus_rate_times_time(
    steps: list[tuple[float, float]], rate: float, burst: int
) -> None:
    limits = PayerLimits(concurrency=1, rate_per_second=rate, burst=burst)
    bucket: Bucket | None = None
    now, starts = 0.0, []
    for gap, max_wait in steps:
        now += gap
        granted, wait, bucket = reserve(bucket, limits, now, max_wait)
        assert bucket.tokens <= burst
        if granted:
            starts.append(now + wait)
    for index, start in enumerate(sorted(starts)):
        assert index + 1 <= burst + start * rate + 1e-6


# --- in process ----------------------------------------------------------------------------------------


async def _peak(limiter: PayerLimiter, holders: int, hold: float, deadline: float = 5.0) -> tuple[int, float]:
    """Run ``holders`` tasks that each hold a slot for ``hold`` seconds: (most at once, seconds taken)."""
    inside = peak = 0
    started = time.monotonic()

    async def one() -> None:
        nonlocal inside, peak
        async with limiter.slot(PAYER, deadline=time.monotonic() + deadline):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(hold)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(holders)))
    return peak, time.monotonic() - started


async def test_local_limiter_caps_payer_concurrency() -> None:
    limiter = LocalPayerLimiter(PayerLimits(concurrency=2, rate_per_second=1000, burst=100))
    peak, took = await _peak(limiter, holders=6, hold=0.05)
    assert peak == 2
    assert took >= 0.15
    assert limiter.in_flight(PAYER) == 0


async def test_local_limiter_gives_up_at_the_deadline_and_says_it_is_our_limit() -> None:
    limiter = LocalPayerLimiter(PayerLimits(concurrency=1, rate_per_second=1000, burst=100))
    release = asyncio.Event()

    task = asyncio.create_task(hold(limiter, release))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(
        ClearinghouseRateLimited, match=r"concurrency limit \(1 in flight\) for payer SBX10001"
    ) as caught:
        async with limiter.slot(PAYER, deadline=started + 0.1):
            pass
    assert 0.09 <= time.monotonic() - started < 0.3
    assert caught.value.details == {"payer_id": PAYER, "local": True, "limit": "concurrency"}
    release.set()
    await task


async def test_local_limiter_paces_starts_to_the_rate() -> None:
    limiter = LocalPayerLimiter(PayerLimits(concurrency=10, rate_per_second=20, burst=1))
    _, took = await _peak(limiter, holders=5, hold=0)
    assert took >= 4 / 20 - 0.01


async def test_other_payers_are_not_slowed_by_a_saturated_one() -> None:
    limiter = LocalPayerLimiter(
        PayerLimits(concurrency=1, rate_per_second=1000, burst=100),
        overrides={"BIGPAYER": PayerLimits(concurrency=5, rate_per_second=1000, burst=100)},
    )
    assert limiter.limits("BIGPAYER").concurrency == 5
    async with (
        limiter.slot(PAYER, deadline=time.monotonic() + 1),
        limiter.slot("OTHER", deadline=time.monotonic() + 0.05),
    ):
        assert limiter.in_flight("OTHER") == 1


async def test_resilient_transport_holds_a_slot_per_attempt(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(
        SandboxClearinghouseConfig(payers={PAYER: PayerBehavior(latency=Latency(fixed_ms=100))})
    )
    limiter = LocalPayerLimiter(PayerLimits(concurrency=2, rate_per_second=1000, burst=100))
    stack = resilient("core_mime", box, limiter=limiter, policy=RetryPolicy(attempt_timeout=3))
    x12 = make_270(scenario("01").request)
    await asyncio.gather(
        *(stack.transport.exchange(x12, payer_id=PAYER, deadline=time.monotonic() + 3) for _ in range(6))
    )
    await stack.transport.close()
    assert box.state.peak_in_flight[PAYER] == 2, "the payer never saw more than the limit"


# --- Redis: shared by replicas --------------------------------------------------------------------------


ClientMaker = Callable[[], Awaitable[Redis]]


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[ClientMaker]:
    """Redis clients, one per simulated replica, closed after the test."""
    clients: list[Redis] = []

    async def make() -> Redis:
        client = make_redis(redis_url, socket_timeout=2, connect_timeout=2)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_redis_limiter_caps_concurrency_across_replicas(replicas: ClientMaker) -> None:
    limits = PayerLimits(concurrency=2, rate_per_second=1000, burst=100)
    first, second = RedisPayerLimiter(await replicas(), limits), RedisPayerLimiter(await replicas(), limits)
    inside = peak = 0

    async def one(limiter: RedisPayerLimiter) -> None:
        nonlocal inside, peak
        async with limiter.slot(PAYER, deadline=time.monotonic() + 5):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    started = time.monotonic()
    await asyncio.gather(*(one(first if i % 2 else second) for i in range(8)))
    assert peak == 2
    assert time.monotonic() - started >= 0.2
    assert not first.degraded
    assert await (await replicas()).zcard(RedisKeys().payer_concurrency(PAYER)) == 0, "every lease given back"


async def test_redis_limiter_paces_starts_across_replicas(replicas: ClientMaker) -> None:
    limits = PayerLimits(concurrency=100, rate_per_second=20, burst=2)
    first, second = RedisPayerLimiter(await replicas(), limits), RedisPayerLimiter(await replicas(), limits)
    started = time.monotonic()
    times: list[float] = []

    async def one(limiter: RedisPayerLimiter) -> None:
        async with limiter.slot(PAYER, deadline=time.monotonic() + 5):
            times.append(time.monotonic() - started)

    await asyncio.gather(*(one(first if i % 2 else second) for i in range(10)))
    assert max(times) >= (10 - 2) / 20 - 0.02, "after the burst, one start per 50 ms, whichever replica asks"


async def test_redis_rate_limit_that_cannot_be_met_before_the_deadline(replicas: ClientMaker) -> None:
    limiter = RedisPayerLimiter(await replicas(), PayerLimits(concurrency=10, rate_per_second=1, burst=1))
    async with limiter.slot(PAYER, deadline=time.monotonic() + 1):
        pass
    with pytest.raises(ClearinghouseRateLimited, match=r"rate limit \(1/s, burst 1\)") as caught:
        async with limiter.slot(PAYER, deadline=time.monotonic() + 0.2):
            pass
    assert caught.value.details["limit"] == "rate"


async def test_a_crashed_replicas_lease_expires(replicas: ClientMaker) -> None:
    limits = PayerLimits(concurrency=1, rate_per_second=1000, burst=100)
    crashed = RedisPayerLimiter(await replicas(), limits, lease_margin=0.1)
    survivor = RedisPayerLimiter(await replicas(), limits)
    abandoned = crashed.slot(PAYER, deadline=time.monotonic() + 0.2)
    await abandoned.__aenter__()  # never exited: the replica died holding the slot
    started = time.monotonic()
    async with survivor.slot(PAYER, deadline=time.monotonic() + 2):
        waited = time.monotonic() - started
    assert 0.2 <= waited < 1.0, "the slot came back when the lease (deadline + margin) ran out"


async def test_redis_limiter_falls_back_to_this_process_when_redis_is_down(disposable_redis: RedisServer) -> None:
    client = make_redis(disposable_redis.url)
    limiter = RedisPayerLimiter(client, PayerLimits(concurrency=1, rate_per_second=1000, burst=100))
    async with limiter.slot(PAYER, deadline=time.monotonic() + 1):
        assert not limiter.degraded
    disposable_redis.kill()
    async with limiter.slot(PAYER, deadline=time.monotonic() + 1):
        assert limiter.degraded, "readiness can report it"
    with pytest.raises(ClearinghouseRateLimited):  # the in-process limit still holds
        async with (
            limiter.slot(PAYER, deadline=time.monotonic() + 1),
            limiter.slot(PAYER, deadline=time.monotonic() + 0.1),
        ):
            pass
    disposable_redis.start()
    async with limiter.slot(PAYER, deadline=time.monotonic() + 1):
        pass
    assert not limiter.degraded
    await client.aclose()


async def test_a_payer_id_that_cannot_be_a_key_is_limited_in_process(replicas: ClientMaker) -> None:
    limiter = RedisPayerLimiter(await replicas(), PayerLimits(concurrency=1, rate_per_second=1000, burst=100))
    async with limiter.slot("BAD:ID WITH SPACES", deadline=time.monotonic() + 1):
        pass
    assert not limiter.degraded


async def test_waiting_for_a_lease_takes_one_token_only(replicas: ClientMaker) -> None:
    # Token and lease are one script; a caller that found every slot taken asks again holding its token.
    client = await replicas()
    limits = PayerLimits(concurrency=1, rate_per_second=1, burst=5)
    limiter = RedisPayerLimiter(client, limits)
    other_replica = RedisPayerLimiter(await replicas(), limits)  # its slot is given back where we cannot see
    release = asyncio.Event()

    held = asyncio.create_task(hold(other_replica, release))
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(one_slot(limiter))
    await asyncio.sleep(0.4)  # the waiter retries the lease several times meanwhile
    release.set()
    await asyncio.gather(held, waiter)
    tokens = float(await client.hget(RedisKeys().payer_rate(PAYER), "tokens") or 0)
    assert 3.0 <= tokens <= 3.2, "two slots, two tokens (and 50 ms of refill), however many lease retries"
    assert await client.zcard(RedisKeys().payer_concurrency(PAYER)) == 0


async def one_slot(limiter: RedisPayerLimiter) -> None:
    async with limiter.slot(PAYER, deadline=time.monotonic() + 5):
        pass


async def test_a_caller_that_waits_for_its_token_then_takes_the_lease(replicas: ClientMaker) -> None:
    client = await replicas()
    limiter = RedisPayerLimiter(client, PayerLimits(concurrency=1, rate_per_second=10, burst=1))
    started = time.monotonic()
    await one_slot(limiter)
    await one_slot(limiter)  # the token is reserved, the wait slept, then only the lease is asked
    assert time.monotonic() - started >= 0.09
    tokens = float(await client.hget(RedisKeys().payer_rate(PAYER), "tokens") or 0)
    assert -1.0 <= tokens <= -0.9, "one token each: the second reserved it once, before sleeping"
    assert await client.zcard(RedisKeys().payer_concurrency(PAYER)) == 0


async def script_calls(client: Redis) -> int:
    """How many scripts Redis has run by SHA so far (``INFO commandstats``)."""
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_waiters_for_slots_this_replica_holds_ask_only_when_one_is_given_back(replicas: ClientMaker) -> None:
    """Every slot taken by this process: its waiters do not poll Redis, and each slot it gives back goes to
    the longest waiter at once (one script call each), in the order they came."""
    client = await replicas()
    limiter = RedisPayerLimiter(client, PayerLimits(concurrency=2, rate_per_second=1000, burst=100))
    releases = [asyncio.Event() for _ in range(5)]
    order: list[int] = []
    both_in = asyncio.Event()

    async def caller(number: int) -> None:
        async with limiter.slot(PAYER, deadline=time.monotonic() + 5):
            order.append(number)
            if len(order) == 2:
                both_in.set()
            await releases[number].wait()

    tasks = [asyncio.create_task(caller(0)), asyncio.create_task(caller(1))]
    await both_in.wait()
    before = await script_calls(client)
    for number in (2, 3, 4):
        tasks.append(asyncio.create_task(caller(number)))
        await asyncio.sleep(0.01)  # they queue in this order
    await asyncio.sleep(0.5)  # long past the first polls (20-30 ms, then 40-60, 80-120 ...)
    assert await script_calls(client) == before, "no caller asked Redis while this process held every slot"
    assert order == [0, 1]
    for number in range(3):
        releases[number].set()
        await asyncio.sleep(0.05)  # a poll would come 80-300 ms later; the hand-over is at once
        assert order == list(range(number + 3)), "the slot went to the longest waiter at once"
    for release in releases:
        release.set()
    await asyncio.gather(*tasks)
    assert await script_calls(client) == before + 3 + 5, "one script call for each waiter's slot, one a release"
    assert await client.zcard(RedisKeys().payer_concurrency(PAYER)) == 0


async def test_a_waiter_still_polls_for_slots_other_replicas_hold(replicas: ClientMaker) -> None:
    limits = PayerLimits(concurrency=2, rate_per_second=1000, burst=100)
    ours, theirs = RedisPayerLimiter(await replicas(), limits), RedisPayerLimiter(await replicas(), limits)
    release = asyncio.Event()

    holders = [asyncio.create_task(hold(ours, release)), asyncio.create_task(hold(theirs, release))]
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(one_slot(ours))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    release.set()  # both come back: ours wakes the waiter, theirs it would find by polling
    await asyncio.wait_for(asyncio.gather(*holders, waiter), 2)
    alone = asyncio.create_task(hold(theirs, release))  # now only the other replica holds slots: polling finds them
    release.clear()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    async with ours.slot(PAYER, deadline=time.monotonic() + 1):  # one of two slots is free
        assert time.monotonic() - started < 0.2
    blocker = asyncio.create_task(hold(theirs, release))
    await asyncio.sleep(0.05)
    late = asyncio.create_task(one_slot(ours))
    await asyncio.sleep(0.1)
    assert not late.done(), "both slots are the other replica's"
    release.set()
    await asyncio.wait_for(asyncio.gather(alone, blocker, late), 2)  # found by polling: no wake from here


async def test_a_replica_with_a_line_leaves_a_slot_to_another_replica_that_waits(replicas: ClientMaker) -> None:
    """One replica's line must not starve another's caller (an API check during a batch run): a slot it
    gives back while the other has been refused is held for the other, whose next ask takes it."""
    limits = PayerLimits(concurrency=2, rate_per_second=1000, burst=100)
    batch, api = RedisPayerLimiter(await replicas(), limits), RedisPayerLimiter(await replicas(), limits)
    finished: list[str] = []

    async def batch_item(number: int) -> None:
        async with batch.slot(PAYER, deadline=time.monotonic() + 10):
            await asyncio.sleep(0.1)
        finished.append(f"batch {number}")

    line = [asyncio.create_task(batch_item(number)) for number in range(20)]  # a second's worth, 2 at a time
    await asyncio.sleep(0.05)
    started = time.monotonic()
    async with api.slot(PAYER, deadline=time.monotonic() + 5):
        waited = time.monotonic() - started
    finished.append("api")
    await asyncio.gather(*line)
    assert waited < 0.5, f"the other replica's caller waited {waited:.2f} s behind the line"
    assert finished.index("api") < 10, "it went in while the line was still long"
    assert await (await replicas()).zcard(RedisKeys().payer_concurrency(PAYER)) == 0, "nothing left held"


async def test_a_slot_held_for_a_replica_that_no_longer_asks_comes_back(replicas: ClientMaker) -> None:
    limits = PayerLimits(concurrency=1, rate_per_second=1000, burst=100)
    ours, gone = RedisPayerLimiter(await replicas(), limits), RedisPayerLimiter(await replicas(), limits)
    release = asyncio.Event()

    held = asyncio.create_task(hold(ours, release))
    await asyncio.sleep(0.05)
    quitter = asyncio.create_task(one_slot(gone))  # refused once: its replica counts as waiting
    await asyncio.sleep(0.05)
    quitter.cancel()
    release.set()  # the slot is held for the replica that left
    await held
    started = time.monotonic()
    await asyncio.wait_for(one_slot(ours), 2)
    assert 0.1 <= time.monotonic() - started < 1.0, "free again once the hold ran out (300 ms)"
