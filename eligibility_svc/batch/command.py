"""``eligibility-svc batch run``: read the input, plan, and run in process (no Redis) or enqueue and wait."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from eligibility_svc.app_state import Runtime, build_runtime
from eligibility_svc.batch.inputs import Parsed, kind_of, read_rows
from eligibility_svc.batch.models import Action, AppointmentRow, BatchItem, BatchSpec, ItemResult, RowError
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.progress import ProgressPrinter, Snapshot
from eligibility_svc.batch.queue import BatchQueue, new_batch_id
from eligibility_svc.batch.report import gather, render_html
from eligibility_svc.batch.runner import run_in_process
from eligibility_svc.cache import make_redis
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import Settings


def error_result(error: RowError) -> ItemResult:
    """A bad input row as a result row: reported with its reason, never checked."""
    where = f" (field {error.field})" if error.field else ""
    return ItemResult(
        appointment_id=error.appointment_id or f"row-{error.row}",
        row=error.row,
        action=Action.ERROR,
        error_code=error.code,
        message=f"row {error.row}{where}: {error.message}",
        attempts=0,
    )


def split(parsed: Iterable[Parsed]) -> tuple[list[AppointmentRow], list[ItemResult]]:
    rows: list[AppointmentRow] = []
    errors: list[ItemResult] = []
    for entry in parsed:
        if isinstance(entry, RowError):
            errors.append(error_result(entry))
        else:
            rows.append(entry)
    return rows, errors


async def run_file(
    settings: Settings, path: Path, output: Path, *, report: Path | None, wait: bool = True, stream: TextIO = sys.stderr
) -> str:
    """Run (embedded) or enqueue (Redis) the batch in ``path``; write results to ``output``; the batch id."""
    with path.open(encoding="utf-8-sig", newline="") as lines:
        rows, errors = split(read_rows(lines, kind_of(path.name)))
    items = plan_items(rows)
    spec = BatchSpec(source=kind_of(path.name))
    async with build_runtime(settings) as runtime:
        if runtime.redis is None:
            return await _embedded(runtime, items, errors, output, report, stream)
        assert settings.redis_url is not None
        redis = make_redis(settings.redis_url, socket_timeout=5.0, connect_timeout=2.0)
        try:
            queue = BatchQueue(
                redis, RedisKeys(settings.redis_key_prefix), ttl_seconds=settings.batch.results_ttl_seconds
            )
            batch_id = await queue.create(spec, items, len(rows) + len(errors), errors)
            print(f"batch {batch_id}: {len(items)} checks for {len(rows)} appointments queued", file=stream)
            if wait:
                await _wait(queue, batch_id, stream)
                await _write(queue, batch_id, output, report)
            return batch_id
        finally:
            await redis.aclose()


async def _embedded(  # noqa: PLR0917
    runtime: Runtime,
    items: list[BatchItem],
    errors: list[ItemResult],
    output: Path,
    report: Path | None,
    stream: TextIO,
) -> str:
    batch_id = new_batch_id()
    printer = ProgressPrinter(stream)
    started = time.monotonic()
    counts = {"done": 0, "failed": 0}
    collected: list[ItemResult] = [*errors]
    with output.open("w", encoding="utf-8") as out:
        for row in errors:
            out.write(row.model_dump_json() + "\n")

        async def on_rows(rows: list[ItemResult], failed: bool) -> None:
            counts["failed" if failed else "done"] += 1
            for row in rows:
                out.write(row.model_dump_json() + "\n")
            if report is not None:
                collected.extend(rows)
            printer.show(Snapshot(len(items), counts["done"], counts["failed"], time.monotonic() - started))

        await run_in_process(runtime.service, items, runtime.settings.batch, on_rows=on_rows)
    printer.close(Snapshot(len(items), counts["done"], counts["failed"], time.monotonic() - started))
    if report is not None:
        report.write_text(  # noqa: ASYNC240 (one small file at the end)
            render_html(batch_id, gather(collected)), encoding="utf-8"
        )
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
    rows: list[ItemResult] = []
    with output.open("w", encoding="utf-8") as out:
        async for row in queue.results(batch_id):
            out.write(row.model_dump_json() + "\n")
            if report is not None:
                rows.append(row)
    if report is not None:
        report.write_text(  # noqa: ASYNC240 (one small file at the end)
            render_html(batch_id, gather(rows)), encoding="utf-8"
        )
