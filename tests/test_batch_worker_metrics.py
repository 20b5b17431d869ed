"""The worker's batch gauges (pending, deadline, last success), its /healthz, and check latency by source."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import aiohttp
from pytest_aiohttp import AiohttpClient

from eligibility_svc.batch.gauges import BatchGauges, batch_deadline, succeeded
from eligibility_svc.batch.models import AppointmentRef, BatchItem, BatchProgress, BatchSpec
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.batch.worker import Liveness, metrics_app, run_worker
from eligibility_svc.metrics import Metrics
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import BatchSettings
from tests.support.ch_servers import SandboxFactory
from tests.support.redis_server import free_port
from tests.support.service_peers import opened, request_for, sample, settings_for, today

ZONE = "America/New_York"
FAST = BatchSettings(concurrency=8, claim_idle_seconds=30, max_attempts=1)


def gauge(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def test_the_deadline_is_the_first_visit_day_opening_unless_the_batch_came_later() -> None:
    day = dt.date(2026, 7, 15)
    opening = dt.datetime(2026, 7, 15, 7, 0, tzinfo=ZoneInfo(ZONE)).timestamp()
    assert opening == dt.datetime(2026, 7, 15, 11, 0, tzinfo=dt.UTC).timestamp()  # EDT
    assert batch_deadline(day, opening - 10 * 3600, ZONE) == opening
    assert batch_deadline(day, opening + 1, ZONE) is None  # a same-day upload: no deadline to miss
    assert batch_deadline(None, 0.0, ZONE) is None


def test_a_batch_succeeded_when_it_finished_with_an_answer() -> None:
    base = {"batch_id": "b" + "0" * 20, "source": "jsonl", "rows": 3, "row_errors": 0, "retrying": 0}
    done = BatchProgress(state="done", items=3, done=1, failed=2, created_at=1.0, finished_at=2.0, **base)
    assert succeeded(done)
    assert not succeeded(done.model_copy(update={"done": 0, "failed": 3}))
    assert not succeeded(done.model_copy(update={"state": "running"}))
    assert succeeded(done.model_copy(update={"items": 0, "done": 0, "failed": 0}))


def test_liveness_fails_once_the_loop_stops_stepping() -> None:
    now = [100.0]
    liveness = Liveness(stale_after=120, clock=lambda: now[0])
    assert liveness.alive()  # starting
    now[0] = 219.0
    assert liveness.alive()
    now[0] = 221.0
    assert not liveness.alive()  # never stepped since the start
    ticks = [215.0]
    liveness.ticked = lambda: ticks[0]
    assert liveness.alive()
    now[0] = 336.0
    assert not liveness.alive()


async def test_worker_server_serves_healthz_and_metrics(aiohttp_client: AiohttpClient) -> None:
    now = [0.0]
    liveness = Liveness(stale_after=60, clock=lambda: now[0])
    metrics = Metrics()
    metrics.batch_last_success.set(1234.5)
    client = await aiohttp_client(metrics_app(metrics, liveness))
    healthy = await client.get("/healthz")
    assert (healthy.status, await healthy.json()) == (200, {"status": "ok"})
    now[0] = 61.0
    stalled = await client.get("/healthz")
    assert stalled.status == 503
    assert (await stalled.json())["status"] == "stalled"
    scraped = await client.get("/metrics")
    assert scraped.status == 200
    assert "eligibility_batch_last_success_timestamp_seconds 1234.5" in await scraped.text()


def items_for(prefixes: list[str], day: dt.date) -> list[BatchItem]:
    return [
        BatchItem(
            item_id=f"i{prefix}",
            request=request_for(prefix).model_copy(
                update={"service": request_for(prefix).service.model_copy(update={"date": day})}
            ),
            appointments=[AppointmentRef(appointment_id=f"A{prefix}", row=n)],
        )
        for n, prefix in enumerate(prefixes, 1)
    ]


async def all_done(queue: BatchQueue, *batch_ids: str) -> bool:
    states = [await queue.progress(batch_id) for batch_id in batch_ids]
    return all(progress is not None and progress.state == "done" for progress in states)


async def test_gauges_follow_a_batch_through_redis_and_survive_a_restart(
    sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    box = await sandbox_factory()
    settings = settings_for(box, redis_url=redis_url).model_copy(update={"redis_key_prefix": "bg1:"})
    redis = queue_redis(redis_url)
    try:
        queue = BatchQueue(redis, RedisKeys("bg1:"))
        tomorrow = today() + dt.timedelta(days=1)
        later = await queue.create(BatchSpec(source="jsonl"), items_for(["02"], tomorrow + dt.timedelta(1)), 1, [])
        batch_id = await queue.create(BatchSpec(source="jsonl"), items_for(["01", "05", "16"], tomorrow), 3, [])
        assert await queue.first_day(batch_id) == tomorrow
        assert set(await queue.batch_ids()) == {batch_id, later}

        metrics = Metrics()
        gauges = BatchGauges(queue, metrics, timezone=ZONE)
        await gauges.seed()
        opening = dt.datetime.combine(tomorrow, dt.time(7), tzinfo=ZoneInfo(ZONE)).timestamp()
        assert gauge(metrics, "eligibility_batch_items_pending") == 4
        assert gauge(metrics, "eligibility_batch_deadline_timestamp_seconds") == opening  # the earlier one
        assert gauge(metrics, "eligibility_batch_last_success_timestamp_seconds") == 0

        async with opened(settings) as runtime:
            worker = BatchWorker(queue, runtime.service, FAST, metrics=runtime.metrics)
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            try:
                async with asyncio.timeout(20):
                    while not await all_done(queue, batch_id, later):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
            finally:
                stop.set()
                await task
            assert worker.batches == {batch_id, later}
            assert sample(runtime, "eligibility_check_duration_seconds_count", source="fresh") == 4
        finished = await queue.progress(batch_id)
        assert finished is not None
        assert finished.finished_at is not None

        await gauges.refresh(worker.batches)
        assert gauge(metrics, "eligibility_batch_items_pending") == 0
        assert gauge(metrics, "eligibility_batch_deadline_timestamp_seconds") == 0
        last = gauge(metrics, "eligibility_batch_last_success_timestamp_seconds")
        assert last >= finished.finished_at
        assert gauges.running == set()

        restarted = Metrics()
        await BatchGauges(queue, restarted, timezone=ZONE).seed()
        assert gauge(restarted, "eligibility_batch_last_success_timestamp_seconds") == last
    finally:
        await redis.aclose()


async def test_check_latency_is_recorded_by_source(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory()
    async with opened(settings_for(box)) as runtime:
        request = request_for("01")
        await runtime.service.verify(request)
        await runtime.service.verify(request)
        assert sample(runtime, "eligibility_check_duration_seconds_count", source="fresh") == 1
        assert sample(runtime, "eligibility_check_duration_seconds_count", source="cache") == 1
        assert sample(runtime, "eligibility_check_duration_seconds_sum", source="cache") > 0


async def test_the_worker_process_serves_health_and_batch_gauges(
    sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    """``run_worker`` as the Deployment runs it: its metrics port answers /healthz and exports the gauges."""
    box = await sandbox_factory()
    settings = settings_for(box, redis_url=redis_url).model_copy(update={"redis_key_prefix": "bg2:"})
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, metrics_port=port, stop=stop))
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(20):
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as health:
                        assert health.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as scraped:
                text = await scraped.text()
        assert "eligibility_batch_items_pending 0.0" in text
        assert "eligibility_batch_last_success_timestamp_seconds" in text
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
