"""Batches of the embedded API (no Redis): run in this process, progress and results kept in memory.

Not durable (a restart forgets them) and bounded: the oldest finished batches are dropped past ``keep``.
With Redis the API only enqueues (``queue.BatchQueue``) and ``eligibility-svc worker`` runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from eligibility_svc.batch.models import BatchItem, BatchProgress, BatchSpec, ItemResult
from eligibility_svc.batch.queue import new_batch_id
from eligibility_svc.batch.runner import run_in_process
from eligibility_svc.service import EligibilityService
from eligibility_svc.settings import BatchSettings


@dataclass(slots=True)
class _Batch:
    spec: BatchSpec
    items: int
    rows: int
    row_errors: int
    created_at: float
    results: list[ItemResult] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    finished_at: float | None = None

    def progress(self, batch_id: str) -> BatchProgress:
        return BatchProgress(
            batch_id=batch_id,
            state="done" if self.finished_at is not None else "running",
            source=self.spec.source,
            items=self.items,
            rows=self.rows,
            row_errors=self.row_errors,
            done=self.done,
            failed=self.failed,
            retrying=0,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


class MemoryBatches:
    """The embedded default's batches (see the module docstring)."""

    def __init__(self, *, keep: int = 20) -> None:
        self._keep = keep
        self._batches: dict[str, _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(  # noqa: PLR0917 (the same order as BatchQueue.create, plus the service)
        self,
        service: EligibilityService,
        settings: BatchSettings,
        spec: BatchSpec,
        items: Sequence[BatchItem],
        rows: int,
        row_errors: Sequence[ItemResult],
    ) -> str:
        """Start running ``items`` in the background; the batch id."""
        self._forget_old()
        batch_id = new_batch_id()
        batch = _Batch(spec, len(items), rows, len(row_errors), time.time(), results=list(row_errors))
        self._batches[batch_id] = batch
        if not items:
            batch.finished_at = batch.created_at
            return batch_id
        task = asyncio.create_task(self._run(batch, service, settings, items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return batch_id

    async def _run(
        self, batch: _Batch, service: EligibilityService, settings: BatchSettings, items: Sequence[BatchItem]
    ) -> None:
        async def on_rows(rows: list[ItemResult], failed: bool) -> None:
            batch.results.extend(rows)
            if failed:
                batch.failed += 1
            else:
                batch.done += 1

        try:
            await run_in_process(service, items, settings, writeback=batch.spec.writeback, on_rows=on_rows)
        finally:
            batch.finished_at = time.time()

    def _forget_old(self) -> None:
        finished = [key for key, batch in self._batches.items() if batch.finished_at is not None]
        while len(self._batches) >= self._keep and finished:
            self._batches.pop(finished.pop(0))

    async def progress(self, batch_id: str) -> BatchProgress | None:
        batch = self._batches.get(batch_id)
        return batch.progress(batch_id) if batch else None

    async def results(self, batch_id: str) -> AsyncIterator[ItemResult]:
        batch = self._batches.get(batch_id)
        for row in list(batch.results) if batch else []:
            yield row

    async def aclose(self) -> None:
        """Cancel the batches still running (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
