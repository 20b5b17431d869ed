"""How often one check and one batch item talk to Redis, counted by the redis-server itself, and
what the batched writes do when Redis dies in the middle of a check.

A disposable redis-server serves only the code under test; ``INFO stats`` before and after tells how
many requests it read from its clients (``total_reads_processed``: a pipeline or an MGET written at
once is one read, so this counts round trips) and how many commands it ran.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable

from redis.asyncio import Redis

from eligibility_svc.batch.inputs import read_jsonl
from eligibility_svc.batch.models import BatchSpec
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.sources import split
from eligibility_svc.models import CheckStatus
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import Latency, PayerBehavior, SandboxClearinghouseConfig
from tests.support.ch_servers import SandboxFactory
from tests.support.redis_server import RedisServer, reads_processed
from tests.support.service_peers import opened, payer_calls, request_for, sample, settings_for

KEYS = RedisKeys("rt:")


async def _round_trips(client: Redis, work: Awaitable[object]) -> int:
    before = await reads_processed(client)
    await work
    return await reads_processed(client) - before - 1  # the INFO that reads "after" was read before it answered


async def test_an_uncached_check_takes_at_most_seven_redis_round_trips(
    sandbox_factory: SandboxFactory, disposable_redis: RedisServer
) -> None:
    # A GET of the exact entry and one of the coverage entry (apart: a cache hit then carries one value,
    # which measured faster on the cached path than an MGET or a script), the single-flight lock (one
    # script that also tells whether the
    # exact entry appeared meanwhile: it did not, so no re-read), the per-payer limiter's token-and-lease
    # script and its release, one pipeline of writes (record, exact and coverage entries) that also releases
    # the lock; the control number comes from a block reserved by the warm-up check.  It was twelve with a
    # call per step, then eight (lock, re-read and release apart; token, lease apart).
    box = await sandbox_factory()
    client = Redis.from_url(disposable_redis.url)
    try:
        async with opened(settings_for(box, redis_url=disposable_redis.url)) as runtime:
            await runtime.service.verify(request_for("01"))  # connections opened, scripts loaded
            trips = [await _round_trips(client, runtime.service.verify(request_for(p))) for p in ("03", "14", "02")]
            assert payer_calls(box) == 4
    finally:
        await client.aclose()
    # A large pipeline (a 271 in the coverage entry) may reach the server in two reads.
    assert min(trips) <= 6, trips
    assert max(trips) <= 7, trips


async def test_a_batch_item_is_opened_and_finished_in_two_round_trips(disposable_redis: RedisServer) -> None:
    client = Redis.from_url(disposable_redis.url)
    redis = queue_redis(disposable_redis.url)
    try:
        queue = BatchQueue(redis, KEYS, ttl_seconds=3600)
        lines = [
            json.dumps({"appointment_id": f"A{p}", "patient_id": p, "request": request_for(p).model_dump(mode="json")})
            for p in ("01", "02")
        ]
        rows, _ = split(read_jsonl(lines))
        items = plan_items(rows)
        batch_id = await queue.create(BatchSpec(source="jsonl"), items, len(items), [])
        warm, entry = await queue.take("c1", 2, claim_idle_seconds=30, block_ms=10)
        await queue.finish(warm, [], failed=False)  # the script loaded
        opened_trips = await _round_trips(client, queue.pending_item(entry))
        done, item = await queue.pending_item(entry)
        assert not done
        assert item is not None
        assert item.item_id == entry.item_id
        finish_trips = await _round_trips(client, queue.finish(entry, [], failed=False))
        assert (opened_trips, finish_trips) == (1, 1)  # it was two and two (SISMEMBER, HGET; script, EXPIRE)
        # The EXPIRE now inside the script still bounds the done set's life.
        assert 0 < await client.ttl(KEYS.batch_done(batch_id)) <= 3600
        assert await queue.pending_item(entry) == (True, None)  # a redelivery is seen as done
    finally:
        await client.aclose()
        await redis.aclose()


async def test_redis_dying_during_the_payer_call_still_answers_and_records_the_check(
    sandbox_factory: SandboxFactory, disposable_redis: RedisServer
) -> None:
    slow = PayerBehavior(latency=Latency(fixed_ms=300, jitter_ms=0))
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=3, default=slow))
    async with opened(settings_for(box, redis_url=disposable_redis.url)) as runtime:
        check = asyncio.create_task(runtime.service.verify(request_for("01")))
        async with asyncio.timeout(5):
            while payer_calls(box) == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        disposable_redis.kill()  # the lock, control number and limits were taken; the writes will fail
        answer = await check
        assert answer.status is CheckStatus.ACTIVE
        assert answer.check_id is not None
        record = await runtime.service.get_check(answer.check_id)  # kept in process: the pipeline failed
        assert record.summary.check_id == answer.check_id
        assert record.created_at <= dt.datetime.now(dt.UTC)
        assert sample(runtime, "eligibility_redis_errors_total", operation="set_many") >= 1
