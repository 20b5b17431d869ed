"""``eligibility-svc batch run``: read the input, plan, and run in process (no Redis) or enqueue and wait.

Input: a CSV/JSONL file or athenaNet booked appointments; output: results as JSONL, optionally an HTML report."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from eligibility_svc.app_state import Runtime, build_runtime
from eligibility_svc.batch.inputs import Parsed, kind_of
from eligibility_svc.batch.models import BatchItem, BatchSpec, ItemResult
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.progress import ProgressPrinter, Snapshot
from eligibility_svc.batch.queue import BatchQueue, new_batch_id, queue_redis
from eligibility_svc.batch.report import ReportData, render_html
from eligibility_svc.batch.runner import run_in_process
from eligibility_svc.batch.sources import (
    AthenaSource,
    athena_chunks,
    athena_spec,
    file_chunks,
    gather_rows,
    split,
)
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.settings import Settings


@dataclass(frozen=True, slots=True)
class RunOptions:
    output: Path
    report: Path | None = None
    wait: bool = True  # with Redis: wait for the workers and write the results
    writeback: bool = False  # write verified plans back to athenaNet (through the outbox)


def source_chunks(runtime: Runtime, source: Path | AthenaSource) -> AsyncIterator[list[Parsed]]:
    """The input's rows (and per-row errors), a chunk at a time."""
    if isinstance(source, AthenaSource):
        if runtime.athena is None:
            raise ConfigurationError("athenaNet is not configured")
        return athena_chunks(runtime.athena, source)
    return file_chunks(source)


def source_spec(source: Path | AthenaSource, *, writeback: bool) -> BatchSpec:
    """What the batch keeps of where it came from."""
    if isinstance(source, AthenaSource):
        return athena_spec(source, writeback=writeback)
    return BatchSpec(source=kind_of(source.name))


async def run_batch(
    settings: Settings, source: Path | AthenaSource, options: RunOptions, *, stream: TextIO = sys.stderr
) -> str:
    """Run in this process (no Redis) or enqueue for the workers (Redis) and wait; the batch id."""
    async with build_runtime(settings) as runtime:
        chunks = source_chunks(runtime, source)
        spec = source_spec(source, writeback=options.writeback)
        if runtime.redis is None:
            rows, errors = await gather_rows(chunks)
            return await _embedded(runtime, plan_items(rows), errors, options, stream)
        assert settings.redis_url is not None
        redis = queue_redis(settings.redis_url)
        try:
            queue = BatchQueue.from_settings(redis, settings)
            async with queue.planner(spec) as planner:
                async for chunk in chunks:
                    await planner.add(*split(chunk))
                batch_id = await planner.commit()
            appointments = planner.rows - planner.row_errors
            print(f"batch {batch_id}: {planner.items} checks for {appointments} appointments queued", file=stream)
            if options.wait:
                await _wait(queue, batch_id, stream)
                await _write(queue, batch_id, options.output, options.report)
            return batch_id
        finally:
            await redis.aclose()


async def _embedded(
    runtime: Runtime, items: list[BatchItem], errors: list[ItemResult], options: RunOptions, stream: TextIO
) -> str:
    output, report = options.output, options.report
    batch_id = new_batch_id()
    printer = ProgressPrinter(stream)
    started = time.monotonic()
    counts = {"done": 0, "failed": 0}
    summary = ReportData()  # counts, and only the rows needing action
    for row in errors:
        summary.add(row)
    with output.open("w", encoding="utf-8") as out:
        for row in errors:
            out.write(row.model_dump_json() + "\n")

        async def on_rows(rows: list[ItemResult], failed: bool) -> None:
            counts["failed" if failed else "done"] += 1
            for row in rows:
                out.write(row.model_dump_json() + "\n")
                summary.add(row)
            printer.show(Snapshot(len(items), counts["done"], counts["failed"], time.monotonic() - started))

        await run_in_process(
            runtime.service, items, runtime.settings.batch, writeback=options.writeback, on_rows=on_rows
        )
    printer.close(Snapshot(len(items), counts["done"], counts["failed"], time.monotonic() - started))
    if report is not None:
        report.write_text(render_html(batch_id, summary), encoding="utf-8")
    return batch_id


async def _wait(queue: BatchQueue, batch_id: str, stream: TextIO) -> None:
    printer = ProgressPrinter(stream)
    while True:
        progress = await queue.progress(batch_id)
        if progress is None:
            raise RuntimeError(f"batch {batch_id} disappeared")
        snap = Snapshot(progress.items, progress.done, progress.failed, time.time() - progress.created_at)
        if progress.state == "done":
            printer.close(snap)
            return
        printer.show(snap)
        await asyncio.sleep(0.5)


async def _write(queue: BatchQueue, batch_id: str, output: Path, report: Path | None) -> None:
    summary = ReportData()  # counts, and only the rows needing action
    with output.open("w", encoding="utf-8") as out:
        async for row in queue.results(batch_id):
            out.write(row.model_dump_json() + "\n")
            summary.add(row)
    if report is not None:
        report.write_text(  # noqa: ASYNC240 (one small file at the end)
            render_html(batch_id, summary), encoding="utf-8"
        )
