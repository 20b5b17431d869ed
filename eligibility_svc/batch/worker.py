"""``eligibility-svc worker``: batch items and the athenaNet outbox, with /metrics for Kubernetes."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiohttp import web

from eligibility_svc.app_state import build_runtime
from eligibility_svc.athena.outbox import run_outbox_worker
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.metrics import Metrics, metrics_handler
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import Settings


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop


async def _serve_metrics(metrics: Metrics, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 (scraped from inside the pod network)
    return runner


async def run_worker(settings: Settings, *, metrics_port: int = 9100, stop: asyncio.Event | None = None) -> None:
    """Consume batch items and apply write-backs until SIGTERM/SIGINT (or ``stop``); items in hand finish."""
    if settings.redis_url is None:
        raise ConfigurationError("the worker needs redis_url (ELIG_REDIS_URL): batches and the outbox are there")
    stop = stop or _stop_on_signals()
    metrics = Metrics()
    runner = await _serve_metrics(metrics, metrics_port) if metrics_port else None
    try:
        async with build_runtime(settings, metrics=metrics) as runtime:
            redis = queue_redis(settings.redis_url)  # blocking reads
            queue = BatchQueue(
                redis, RedisKeys(settings.redis_key_prefix), ttl_seconds=settings.batch.results_ttl_seconds
            )
            worker = BatchWorker(queue, runtime.service, settings.batch, metrics=metrics)
            jobs = [worker.run(stop)]
            if settings.athena.base_url is not None:
                jobs.append(run_outbox_worker(settings, stop=stop, metrics=metrics))
            try:
                await asyncio.gather(*jobs)
            finally:
                await redis.aclose()
    finally:
        if runner is not None:
            await runner.cleanup()
