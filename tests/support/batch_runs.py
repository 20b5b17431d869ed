"""Running a batch to its end in a test: a ``BatchWorker`` in this process until the batch is done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from eligibility_svc.batch.models import ItemResult
from eligibility_svc.batch.queue import BatchQueue
from eligibility_svc.batch.runner import BatchWorker


async def run_batch(
    queue: BatchQueue,
    worker: BatchWorker,
    batch_id: str,
    *,
    poll: float = 0.05,
    while_waiting: Callable[[], Awaitable[None]] | None = None,
) -> list[ItemResult]:
    """Run ``worker`` until ``batch_id`` is done (20 s at most); its result rows.  ``while_waiting`` runs
    at every poll (a second consumer looking for abandoned entries, say)."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(20.0):
            while (progress := await queue.progress(batch_id)) is None or progress.state != "done":
                if while_waiting is not None:
                    await while_waiting()
                await asyncio.sleep(poll)
    finally:
        stop.set()
        await task
    return [row async for row in queue.results(batch_id)]
