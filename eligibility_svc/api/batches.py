"""Batch routes (scope ``batch:run``, enforced by the auth middleware for ``/v1/batches``)::

    POST /v1/batches                  CSV (text/csv) or JSONL (application/x-ndjson) of appointments,
                                      or JSON {"athena": {practice_id, start, end, ...}, "writeback": bool}
                                      → 202 BatchProgress (the items are on the work stream for the workers)
    GET  /v1/batches/{batch_id}       → BatchProgress (done / failed / retrying of items)
    GET  /v1/batches/{batch_id}/results?format=jsonl|csv   (or Accept: text/csv) → streamed result rows
    GET  /v1/batches/{batch_id}/report                      → the HTML report a person reads

With Redis the API only enqueues and ``eligibility-svc worker`` processes; without Redis (the
embedded default) the batch runs in this process (``batch.memory``), kept in memory only.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

from eligibility_svc.api.bodies import JSON_TYPES, media_type, parse_json_model
from eligibility_svc.api.state import RUNTIME
from eligibility_svc.app_state import Runtime
from eligibility_svc.batch.inputs import Parsed, RowFeed
from eligibility_svc.batch.memory import MemoryBatches
from eligibility_svc.batch.models import BatchProgress, BatchSpec, ItemResult
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue
from eligibility_svc.batch.report import ReportData, csv_lines, render_html
from eligibility_svc.batch.sources import CHUNK_ROWS, AthenaBatchBody, athena_chunks, athena_spec, gather_rows, split
from eligibility_svc.errors import ConfigurationError, NotFound, RequestInvalid, RequestMalformed, RequestTooLarge

BATCHES = "/v1/batches"
BATCH = "/v1/batches/{batch_id}"
RESULTS = "/v1/batches/{batch_id}/results"
REPORT = "/v1/batches/{batch_id}/report"
CSV_TYPES = frozenset({"text/csv"})
JSONL_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # a night's appointments of a large group, streamed in
_REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'"  # the report is static: no scripts at all
_BATCH_ID = re.compile(r"^b[0-9a-f]{20}$")


MEMORY_BATCHES = web.AppKey("memory_batches", MemoryBatches)


class BatchStore(Protocol):
    async def progress(self, batch_id: str) -> BatchProgress | None: ...

    def results(self, batch_id: str) -> AsyncIterator[ItemResult]: ...


def _queue(runtime: Runtime) -> BatchQueue | None:
    return BatchQueue.from_settings(runtime.redis, runtime.settings) if runtime.redis is not None else None


def _store(request: web.Request) -> BatchStore:
    return _queue(request.app[RUNTIME]) or request.app[MEMORY_BATCHES]


async def _body_chunks(request: web.Request, kind: str) -> AsyncIterator[list[Parsed]]:
    """The upload's rows, read and parsed as the lines arrive (``CHUNK_ROWS`` lines at a time)."""
    feed = RowFeed(kind)
    block: list[str] = []
    size = 0
    blank = True
    async for raw in request.content:
        size += len(raw)
        if size > MAX_UPLOAD_BYTES:
            raise RequestTooLarge(f"a batch upload is limited to {MAX_UPLOAD_BYTES} bytes")
        line = raw.decode("utf-8-sig" if size == len(raw) else "utf-8", errors="replace")
        blank = blank and not line.strip()
        block.append(line)
        if len(block) >= CHUNK_ROWS:
            if parsed := feed.feed(block):
                yield parsed
            block = []
    if blank:
        raise RequestMalformed("the request body is empty; send the appointments, one a line")
    if parsed := feed.feed(block) + feed.close():
        yield parsed


def _chunks(
    request: web.Request, runtime: Runtime, kind: str, body: AthenaBatchBody | None
) -> AsyncIterator[list[Parsed]]:
    if body is None:
        return _body_chunks(request, "csv" if kind in CSV_TYPES else "jsonl")
    if runtime.athena is None:
        raise ConfigurationError("athenaNet is not configured")
    return athena_chunks(runtime.athena, body.athena)


async def _spec_and_body(request: web.Request, kind: str) -> tuple[BatchSpec, AthenaBatchBody | None]:
    if kind in JSON_TYPES:
        body = parse_json_model(AthenaBatchBody, await request.read())
        return athena_spec(body.athena, writeback=body.writeback), body
    return BatchSpec(source="csv" if kind in CSV_TYPES else "jsonl"), None


def _no_rows() -> RequestInvalid:
    return RequestInvalid("the body holds no appointments (CSV: a header row, then one appointment a row)")


async def _enqueue(queue: BatchQueue, spec: BatchSpec, chunks: AsyncIterator[list[Parsed]], *, athena: bool) -> str:
    """Plan the batch into Redis a chunk at a time (memory stays flat); its id once the workers can see it."""
    async with queue.planner(spec) as planner:
        async for chunk in chunks:
            await planner.add(*split(chunk))
        if planner.rows == 0 and not athena:
            raise _no_rows()
        return await planner.commit()


async def _start_in_memory(
    request: web.Request, runtime: Runtime, spec: BatchSpec, chunks: AsyncIterator[list[Parsed]], *, athena: bool
) -> str:
    """The embedded default: the whole batch in this process (bounded by the upload limit)."""
    rows, errors = await gather_rows(chunks)
    if not rows and not errors and not athena:
        raise _no_rows()
    memory = request.app[MEMORY_BATCHES]
    return memory.start(
        runtime.service, runtime.settings.batch, spec, plan_items(rows), len(rows) + len(errors), errors
    )


async def post_batch(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    kind = media_type(request, CSV_TYPES | JSONL_TYPES | JSON_TYPES, default="application/x-ndjson")
    spec, body = await _spec_and_body(request, kind)
    chunks = _chunks(request, runtime, kind, body)
    queue = _queue(runtime)
    athena = body is not None
    if queue is not None:
        batch_id = await _enqueue(queue, spec, chunks, athena=athena)
    else:
        batch_id = await _start_in_memory(request, runtime, spec, chunks, athena=athena)
    progress = await _store(request).progress(batch_id)
    assert progress is not None
    location = request.app.router["batch"].url_for(batch_id=batch_id)
    return web.json_response(progress.model_dump(mode="json"), status=202, headers={"Location": str(location)})


def _batch_id(request: web.Request) -> str:
    batch_id = request.match_info["batch_id"]
    if not _BATCH_ID.fullmatch(batch_id):
        raise NotFound("no such batch", details={"batch_id": batch_id[:40]})
    return batch_id


async def get_batch(request: web.Request) -> web.Response:
    batch_id = _batch_id(request)
    progress = await _store(request).progress(batch_id)
    if progress is None:
        raise NotFound("no such batch", details={"batch_id": batch_id})
    return web.json_response(progress.model_dump(mode="json"))


def wants_csv(request: web.Request) -> bool:
    """``?format=csv`` (or ``jsonl``) wins; else ``Accept: text/csv``."""
    chosen = request.query.get("format")
    if chosen is not None:
        if chosen.lower() not in ("csv", "jsonl"):
            raise RequestInvalid(
                "format is csv or jsonl", details={"fields": [{"field": "format", "problem": "csv or jsonl"}]}
            )
        return chosen.lower() == "csv"
    return "text/csv" in request.headers.get("Accept", "")


async def get_results(request: web.Request) -> web.StreamResponse:
    batch_id = _batch_id(request)
    queue = _store(request)
    if await queue.progress(batch_id) is None:
        raise NotFound("no such batch", details={"batch_id": batch_id})
    csv = wants_csv(request)
    response = web.StreamResponse(headers={"Content-Type": "text/csv" if csv else "application/x-ndjson"})
    await response.prepare(request)
    first = True
    async for row in queue.results(batch_id):
        text = "".join(csv_lines([row], header=first)) if csv else row.model_dump_json() + "\n"
        first = False
        await response.write(text.encode())
    if csv and first:
        await response.write("".join(csv_lines([], header=True)).encode())
    await response.write_eof()
    return response


async def get_report(request: web.Request) -> web.Response:
    """The batch's HTML report (counts, the appointments needing action, payer failure rates)."""
    batch_id = _batch_id(request)
    store = _store(request)
    if await store.progress(batch_id) is None:
        raise NotFound("no such batch", details={"batch_id": batch_id})
    summary = ReportData()
    async for row in store.results(batch_id):
        summary.add(row)
    return web.Response(
        text=render_html(batch_id, summary),
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


async def _stop_memory_batches(app: web.Application) -> None:
    await app[MEMORY_BATCHES].aclose()


def add_batch_routes(app: web.Application) -> None:
    app[MEMORY_BATCHES] = MemoryBatches()
    app.on_shutdown.append(_stop_memory_batches)
    app.router.add_post(BATCHES, post_batch, name="batches")
    app.router.add_get(BATCH, get_batch, name="batch")
    app.router.add_get(RESULTS, get_results, name="batch_results")
    app.router.add_get(REPORT, get_report, name="batch_report")
