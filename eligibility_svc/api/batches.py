"""Batch routes (scope ``batch:run``, enforced by the auth middleware for ``/v1/batches``)::

    POST /v1/batches                  CSV (text/csv) or JSONL (application/x-ndjson) of appointments,
                                      or JSON {"athena": {practice_id, start, end, ...}, "writeback": bool}
                                      → 202 BatchProgress (the items are on the work stream for the workers)
    GET  /v1/batches/{batch_id}       → BatchProgress (done / failed / retrying of items)
    GET  /v1/batches/{batch_id}/results?format=jsonl|csv   (or Accept: text/csv) → streamed result rows

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
from eligibility_svc.batch.inputs import read_rows
from eligibility_svc.batch.memory import MemoryBatches
from eligibility_svc.batch.models import AppointmentRow, BatchProgress, BatchSpec, ItemResult
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue
from eligibility_svc.batch.report import csv_lines
from eligibility_svc.batch.sources import AthenaBatchBody, read_athena, split
from eligibility_svc.errors import ConfigurationError, NotFound, RequestInvalid, RequestMalformed, RequestTooLarge
from eligibility_svc.redis_keys import RedisKeys

BATCHES = "/v1/batches"
BATCH = "/v1/batches/{batch_id}"
RESULTS = "/v1/batches/{batch_id}/results"
CSV_TYPES = frozenset({"text/csv"})
JSONL_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/x-jsonlines"})
MAX_UPLOAD_BYTES = 256 * 1024 * 1024  # a night's appointments of a large group, streamed in
_BATCH_ID = re.compile(r"^b[0-9a-f]{20}$")


MEMORY_BATCHES = web.AppKey("memory_batches", MemoryBatches)


class BatchStore(Protocol):
    async def progress(self, batch_id: str) -> BatchProgress | None: ...

    def results(self, batch_id: str) -> AsyncIterator[ItemResult]: ...


def _queue(runtime: Runtime) -> BatchQueue | None:
    if runtime.redis is None:
        return None
    settings = runtime.settings
    keys = RedisKeys(settings.redis_key_prefix)
    return BatchQueue(runtime.redis, keys, ttl_seconds=settings.batch.results_ttl_seconds)


def _store(request: web.Request) -> BatchStore:
    return _queue(request.app[RUNTIME]) or request.app[MEMORY_BATCHES]


async def _lines(request: web.Request) -> list[str]:
    """The body's lines, read as they arrive (the app's ``client_max_size`` is for single checks)."""
    lines: list[str] = []
    size = 0
    async for raw in request.content:
        size += len(raw)
        if size > MAX_UPLOAD_BYTES:
            raise RequestTooLarge(f"a batch upload is limited to {MAX_UPLOAD_BYTES} bytes")
        lines.append(raw.decode("utf-8-sig" if not lines else "utf-8", errors="replace"))
    return lines


async def _read(request: web.Request, runtime: Runtime) -> tuple[list[AppointmentRow], list[ItemResult], BatchSpec]:
    kind = media_type(request, CSV_TYPES | JSONL_TYPES | JSON_TYPES, default="application/x-ndjson")
    if kind in JSON_TYPES:
        body = parse_json_model(AthenaBatchBody, await request.read())
        if runtime.athena is None:
            raise ConfigurationError("athenaNet is not configured")
        rows, errors = await read_athena(runtime.athena, body.athena)
        source = body.athena
        spec = BatchSpec(
            source="athena",
            practice_id=source.practice_id,
            start=source.start,
            end=source.end,
            department_ids=source.department_ids,
            writeback=body.writeback,
        )
        return rows, errors, spec
    source_kind = "csv" if kind in CSV_TYPES else "jsonl"
    lines = await _lines(request)
    if not any(line.strip() for line in lines):
        raise RequestMalformed("the request body is empty; send the appointments, one a line")
    rows, errors = split(read_rows(lines, source_kind))
    if not rows and not errors:
        raise RequestInvalid("the body holds no appointments (CSV: a header row, then one appointment a row)")
    return rows, errors, BatchSpec(source=source_kind)


async def post_batch(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    rows, errors, spec = await _read(request, runtime)
    items = plan_items(rows)
    queue = _queue(runtime)
    if queue is not None:
        batch_id = await queue.create(spec, items, len(rows) + len(errors), errors)
    else:
        memory = request.app[MEMORY_BATCHES]
        batch_id = memory.start(runtime.service, runtime.settings.batch, spec, items, len(rows) + len(errors), errors)
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


async def _stop_memory_batches(app: web.Application) -> None:
    await app[MEMORY_BATCHES].aclose()


def add_batch_routes(app: web.Application) -> None:
    app[MEMORY_BATCHES] = MemoryBatches()
    app.on_shutdown.append(_stop_memory_batches)
    app.router.add_post(BATCHES, post_batch, name="batches")
    app.router.add_get(BATCH, get_batch, name="batch")
    app.router.add_get(RESULTS, get_results, name="batch_results")
