"""The batch gauges a worker exports: items pending, the nearest deadline, the last successful batch.

Every worker reports the same numbers, read from the batches' counters in Redis (the alerts take ``max``
or ``min`` over the workers): the batches a worker took items of (``BatchWorker.batches``), plus, when it
starts, every batch still stored, so a restarted worker knows when the last one succeeded.

* pending: items neither done nor failed, over the running batches;
* deadline: when the front desks start on the earliest running batch's first visit day (``FRONT_DESK_OPENS``
  in the practice's time zone, ``ELIG_CACHE__TIMEZONE``); a batch created after that moment (a same-day
  upload) has none.  0 when no running batch has one;
* last success: when the latest batch finished with at least one answer (or had nothing to check).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from eligibility_svc.batch.models import BatchProgress
from eligibility_svc.batch.queue import BatchQueue
from eligibility_svc.metrics import Metrics

log = logging.getLogger(__name__)

FRONT_DESK_OPENS = dt.time(7, 0)  # local time on the visit day: the results must be there by then


def batch_deadline(first_day: dt.date | None, created_at: float, timezone: str) -> float | None:
    """Unix seconds by which a batch whose first visit is on ``first_day`` must be done (None: no deadline)."""
    if first_day is None:
        return None
    deadline = dt.datetime.combine(first_day, FRONT_DESK_OPENS, tzinfo=ZoneInfo(timezone)).timestamp()
    return deadline if deadline > created_at else None


def succeeded(progress: BatchProgress) -> bool:
    """Finished, and not every check failed (an empty batch, nothing to check, succeeded)."""
    return progress.state == "done" and (progress.items == 0 or progress.failed < progress.items)


class BatchGauges:
    """Keeps ``metrics``' batch gauges up to date from ``queue`` (see the module docstring)."""

    def __init__(self, queue: BatchQueue, metrics: Metrics, *, timezone: str) -> None:
        self.queue = queue
        self.metrics = metrics
        self.timezone = timezone
        self.running: set[str] = set()
        self.last_success = 0.0
        self._deadlines: dict[str, float | None] = {}

    async def seed(self) -> None:
        """Every batch still stored (one SCAN): the running ones and the last success survive a restart."""
        await self.refresh(await self.queue.batch_ids())

    async def refresh(self, batch_ids: Iterable[str] = ()) -> None:
        """Read the running batches (and ``batch_ids``, newly seen) and set the gauges."""
        self.running.update(batch_ids)
        pending, deadline = 0, None
        for batch_id in sorted(self.running):
            progress = await self.queue.progress(batch_id)
            if progress is None or progress.state == "done":
                self._forget(batch_id)
                if progress is not None and succeeded(progress):
                    self.last_success = max(self.last_success, progress.finished_at or progress.created_at)
                continue
            pending += max(0, progress.items - progress.finished)
            due = await self._deadline(batch_id, progress.created_at)
            if due is not None:
                deadline = due if deadline is None else min(deadline, due)
        self.metrics.batch_items_pending.set(pending)
        self.metrics.batch_deadline.set(deadline or 0)
        self.metrics.batch_last_success.set(self.last_success)

    async def _deadline(self, batch_id: str, created_at: float) -> float | None:
        if batch_id not in self._deadlines:
            first_day = await self.queue.first_day(batch_id)
            self._deadlines[batch_id] = batch_deadline(first_day, created_at, self.timezone)
        return self._deadlines[batch_id]

    def _forget(self, batch_id: str) -> None:
        self.running.discard(batch_id)
        self._deadlines.pop(batch_id, None)

    async def run(self, stop: asyncio.Event, seen: set[str], *, every: float = 5.0) -> None:
        """Seed, then refresh every ``every`` seconds with the batches in ``seen`` (taken out of it) until ``stop``."""
        started = False
        while not stop.is_set():
            try:
                if not started:
                    await self.seed()
                    started = True
                new = set(seen)
                seen.difference_update(new)
                await self.refresh(new)
            except Exception:  # Redis unreachable: the gauges keep their last values; the next round tries again
                log.exception("the batch gauges could not be refreshed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
