"""``eligibility-svc worker``: batch items and the athenaNet outbox, with /metrics and /healthz for Kubernetes.

``/healthz`` (the liveness probe) answers 503 once the batch consume loop has not stepped for
``STALE_AFTER_SECONDS``: a step waits at most for Redis's blocking read or for one of its checks (a payer's
deadline), so a loop that stops stepping is wedged and the pod is better restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from eligibility_svc.app_state import build_runtime
from eligibility_svc.athena.outbox import run_outbox_worker
from eligibility_svc.batch.gauges import BatchGauges
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.gc_tuning import WORKER_YOUNG_GC_THRESHOLD, freeze_startup_objects
from eligibility_svc.metrics import Metrics, metrics_handler
from eligibility_svc.settings import Settings
from eligibility_svc.stopping import stop_on_signals

STALE_AFTER_SECONDS = 120.0  # well past a step's longest wait (a check's 20 s deadline, a 0.5 s read)


class Liveness:
    """Whether the consume loop still steps: ``ticked`` reads its last step (monotonic seconds), if it runs yet."""

    def __init__(
        self, *, stale_after: float = STALE_AFTER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.started = clock()
        self.ticked: Callable[[], float] | None = None

    def alive(self) -> bool:
        last = self.ticked() if self.ticked is not None else self.started  # starting: Redis, the runtime
        return self.clock() - last < self.stale_after


def health_handler(liveness: Liveness) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if liveness.alive():
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "stalled", "stale_after_seconds": liveness.stale_after}, status=503)

    return handle


def metrics_app(metrics: Metrics, liveness: Liveness) -> web.Application:
    """The worker's small HTTP server: ``/metrics`` for Prometheus, ``/healthz`` for the kubelet."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    app.router.add_get("/healthz", health_handler(liveness))
    return app


async def _serve_metrics(metrics: Metrics, port: int, liveness: Liveness) -> web.AppRunner:
    app = metrics_app(metrics, liveness)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 (scraped from inside the pod network)
    return runner


async def run_worker(settings: Settings, *, metrics_port: int = 9100, stop: asyncio.Event | None = None) -> None:
    """Consume batch items and apply write-backs until SIGTERM/SIGINT (or ``stop``); items in hand finish."""
    if settings.redis_url is None:
        raise ConfigurationError("the worker needs redis_url (ELIG_REDIS_URL): batches and the outbox are there")
    stop = stop or stop_on_signals()
    metrics = Metrics()
    liveness = Liveness()
    runner = await _serve_metrics(metrics, metrics_port, liveness) if metrics_port else None
    try:
        async with build_runtime(settings, metrics=metrics) as runtime:
            redis = queue_redis(settings.redis_url)  # blocking reads
            queue = BatchQueue.from_settings(redis, settings)
            worker = BatchWorker(queue, runtime.service, settings.batch, metrics=metrics)
            liveness.ticked = lambda: worker.ticked_at
            gauges = BatchGauges(queue, metrics, timezone=settings.cache.timezone)
            freeze_startup_objects(WORKER_YOUNG_GC_THRESHOLD)
            jobs = [worker.run(stop), gauges.run(stop, worker.batches)]
            if settings.athena.base_url is not None:
                jobs.append(run_outbox_worker(settings, stop=stop, metrics=metrics))
            try:
                await asyncio.gather(*jobs)
            finally:
                await redis.aclose()
    finally:
        if runner is not None:
            await runner.cleanup()
