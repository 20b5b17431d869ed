"""Running batch items on ``EligibilityService``: one attempt (``attempt``), a Redis worker, an in-process run.

Per-payer concurrency and rate limits live in the clearinghouse stack (shared through Redis), so a
worker may hold many items in flight; a payer that is down does not block the others because its
items leave the worker (retry later) instead of waiting in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from eligibility_svc.athena.intake import writing_to
from eligibility_svc.batch.models import BatchItem, ItemResult
from eligibility_svc.batch.plan import (
    error_retryable,
    is_failure,
    results_from_error,
    results_from_summary,
    retry_delay,
    retry_wanted,
    unreadable_item,
)
from eligibility_svc.batch.queue import BatchQueue, WorkEntry
from eligibility_svc.cache import CacheCorrupt
from eligibility_svc.errors import EligibilityError
from eligibility_svc.metrics import Metrics
from eligibility_svc.service import EligibilityService
from eligibility_svc.settings import BatchSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attempt:
    rows: list[ItemResult]
    retry: bool  # the payer was down and attempts remain
    failed: bool


async def attempt(
    service: EligibilityService, item: BatchItem, number: int, max_attempts: int, *, writeback: bool
) -> Attempt:
    """Ask once; decide whether to keep the answer or try again later (never raises our errors)."""
    last = number >= max_attempts
    try:
        with writing_to(item.target if writeback else None):
            summary = await service.verify(item.request, writeback=writeback and item.target is not None)
    except EligibilityError as error:
        retry = error_retryable(error)
        rows = results_from_error(item, error, number, final=retry and last)
        return Attempt(rows, retry and not last, True)
    retry = retry_wanted(summary)
    rows = results_from_summary(item, summary, number, final=retry and last)
    return Attempt(rows, retry and not last, is_failure(rows))


def consumer_name() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(3).hex()}"


class BatchWorker:
    """One consumer of the batch work stream; ``run(stop)`` until stopped, items in hand finished first."""

    def __init__(
        self,
        queue: BatchQueue,
        service: EligibilityService,
        settings: BatchSettings,
        *,
        metrics: Metrics | None = None,
        consumer: str | None = None,
        block_ms: int = 500,
    ) -> None:
        self.queue = queue
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.consumer = consumer or consumer_name()
        self.block_ms = block_ms
        self.processed = 0
        self.batches: set[str] = set()  # batches this worker took items of (batch.gauges reads and prunes it)
        self.ticked_at = time.monotonic()  # the consume loop's last step (the worker's /healthz)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writeback: dict[str, bool] = {}
        self._held: dict[str, WorkEntry] = {}  # entries in hand, by entry id (their leases are kept)

    async def run(self, stop: asyncio.Event) -> None:
        await self.queue.ensure_group()
        leases = asyncio.create_task(self._keep_leases())
        try:
            while not stop.is_set():
                await self.step()
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            leases.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leases

    async def _keep_leases(self) -> None:
        """While a payer call outlasts ``claim_idle_seconds`` its entry must not look abandoned: every third
        of that time, the entries in hand are claimed again by this worker (their idle time reset)."""
        interval = max(self.settings.claim_idle_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.queue.keep_leases(self.consumer, list(self._held.values()))
            except Exception:  # Redis away for a moment: the next beat tries again
                log.warning("batch worker could not renew its leases", exc_info=True)

    async def step(self) -> None:
        self.ticked_at = time.monotonic()
        await self.queue.promote_due()
        free = self.settings.concurrency - len(self._tasks)
        if free <= 0:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            return
        block = self.block_ms if not self._tasks else 20
        entries = await self.queue.take(
            self.consumer, free, claim_idle_seconds=self.settings.claim_idle_seconds, block_ms=block
        )
        for entry in entries:
            self.batches.add(entry.batch_id)
            task = asyncio.create_task(self._guarded(entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not entries and self._tasks:
            await asyncio.wait(self._tasks, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)

    async def _guarded(self, entry: WorkEntry) -> None:
        self._held[entry.entry_id] = entry
        try:
            await self.process(entry)
        except Exception:  # Redis failed mid-way: the entry stays pending and is claimed again
            log.exception("batch item %s/%s failed to process", entry.batch_id, entry.item_id)
        finally:
            self._held.pop(entry.entry_id, None)

    async def process(self, entry: WorkEntry) -> None:
        """One delivered entry: skipped when already done (a resume), else asked and recorded."""
        try:
            done, item = await self.queue.pending_item(entry)
        except CacheCorrupt as error:  # unreadable (a key rotated away, tampering): reported, never retried
            await self.queue.finish(entry, [unreadable_item(entry.item_id, error)], failed=True)
            return
        if done:
            await self.queue.acknowledge(entry)
            return
        if item is None:  # the batch expired
            await self.queue.acknowledge(entry)
            return
        result = await attempt(
            self.service, item, entry.attempt, self.settings.max_attempts, writeback=await self._wants_writeback(entry)
        )
        if result.retry:
            delay = retry_delay(
                entry.attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds, random.random()
            )
            await self.queue.retry_later(entry, delay)
            return
        await self.queue.finish(entry, result.rows, failed=result.failed)
        self.processed += 1
        if self.metrics is not None:
            self.metrics.batch_items.labels(result.rows[0].action.value).inc()

    async def _wants_writeback(self, entry: WorkEntry) -> bool:
        if entry.batch_id not in self._writeback:
            spec = await self.queue.spec(entry.batch_id)
            self._writeback[entry.batch_id] = bool(spec and spec.writeback)
        return self._writeback[entry.batch_id]


async def run_in_process(
    service: EligibilityService,
    items: Sequence[BatchItem],
    settings: BatchSettings,
    *,
    writeback: bool = False,
    on_rows: Callable[[list[ItemResult], bool], Awaitable[None]],
) -> None:
    """The embedded default (no Redis): the same attempts and retries, in this process, not durable."""
    pending: asyncio.Queue[tuple[BatchItem, int]] = asyncio.Queue()
    for item in items:
        pending.put_nowait((item, 1))
    remaining = len(items)
    finished = asyncio.Event()
    if remaining == 0:
        return

    async def later(item: BatchItem, number: int, delay: float) -> None:
        await asyncio.sleep(delay)
        pending.put_nowait((item, number))

    sleepers: set[asyncio.Task[None]] = set()

    async def work() -> None:
        nonlocal remaining
        while True:
            item, number = await pending.get()
            result = await attempt(service, item, number, settings.max_attempts, writeback=writeback)
            if result.retry:
                delay = retry_delay(number, settings.retry_base_seconds, settings.retry_max_seconds, random.random())
                task = asyncio.create_task(later(item, number + 1, delay))
                sleepers.add(task)
                task.add_done_callback(sleepers.discard)
                continue
            await on_rows(result.rows, result.failed)
            remaining -= 1
            if remaining == 0:
                finished.set()

    workers = [asyncio.create_task(work()) for _ in range(min(settings.concurrency, len(items)))]
    try:
        await finished.wait()
    finally:
        for task in [*workers, *sleepers]:
            task.cancel()
        for task in [*workers, *sleepers]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
