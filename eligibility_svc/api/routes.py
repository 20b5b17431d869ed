"""The routes: thin handlers that read the body, call the service, and write the model back.

::

    POST /v1/eligibility[?writeback=true]   EligibilityRequest | AthenaEligibilityBody → CoverageSummary
    GET  /v1/eligibility/{check_id}                                      → CheckRecord
    POST /v1/x12/271                         271 text, or X12InterpretRequest JSON → X12InterpretResponse
    GET  /healthz                                                        → Liveness
    GET  /readyz                                                         → ReadinessReport (200 / 503)
    GET  /metrics                                                        → Prometheus text
    GET  /openapi.json                                                   → the OpenAPI document
    POST /v1/batches, GET /v1/batches/{id}, GET /v1/batches/{id}/results  (``api.batches``)

Payer rejections are answers (200, ``status`` and ``errors[]``); our own failures are raised and
become the error envelope in ``middleware.answer_middleware``.
"""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import BaseModel

from eligibility_svc.api.batches import add_batch_routes
from eligibility_svc.api.bodies import (
    JSON_TYPES,
    X12_TYPES,
    decode_text,
    media_type,
    parse_json_model,
    query_flag,
    read_body,
)
from eligibility_svc.api.readiness import readiness_report
from eligibility_svc.api.schemas import Liveness, X12InterpretRequest, X12InterpretResponse
from eligibility_svc.api.state import LIFECYCLE, RUNTIME, SETTINGS
from eligibility_svc.athena.intake import AthenaEligibilityBody, AthenaIntake, is_athena_body, writing_to
from eligibility_svc.metrics import Metrics, metrics_handler
from eligibility_svc.models import CoverageSummary, EligibilityRequest, model_json
from eligibility_svc.openapi import openapi_bytes
from eligibility_svc.service import CheckRecord, WriteBackProgress, WriteBackState, mark_sandbox

JSON = "application/json"
ELIGIBILITY = "/v1/eligibility"
CHECK = "/v1/eligibility/{check_id}"
X12_271 = "/v1/x12/271"


def model_response(model: BaseModel, *, status: int = 200) -> web.Response:
    """A pydantic model as JSON bytes straight from pydantic-core (no dicts, no str round trip)."""
    return web.Response(body=model_json(model), status=status, content_type=JSON)


async def _limited_body(request: web.Request) -> bytes:
    return await read_body(request, limit=request.app[SETTINGS].max_body_bytes)


# --- eligibility -------------------------------------------------------------------------------------


async def post_eligibility(request: web.Request) -> web.Response:
    """An ``EligibilityRequest``, or ``{"athena": {...}, "service": {...}}`` naming an athenaNet patient."""
    media_type(request, JSON_TYPES, default=JSON)
    body = await _limited_body(request)
    runtime = request.app[RUNTIME]
    if runtime.athena is not None and _names_athena_patient(body):
        summary = await _verify_athena_patient(request, runtime.athena, body)
        return model_response(mark_sandbox(summary, runtime.sandbox))
    inquiry = parse_json_model(EligibilityRequest, body)
    # The JSON path: a cache hit is sent from the kept bytes (the service marks sandbox answers).
    answer = await runtime.service.verify_json(inquiry, writeback=query_flag(request, "writeback"))
    return web.Response(body=answer, content_type=JSON)


def _names_athena_patient(body: bytes) -> bool:
    if b'"athena"' not in body:  # cheap test first: the common body never holds the word
        return False
    try:
        return is_athena_body(json.loads(body))
    except ValueError:
        return False


async def _verify_athena_patient(request: web.Request, athena: AthenaIntake, body: bytes) -> CoverageSummary:
    """Read the patient from athenaNet, ask the payer, and write back to that same policy (unless told not to)."""
    asked = parse_json_model(AthenaEligibilityBody, body)
    inquiry, target = await athena.resolve(asked.model_dump(mode="json"))
    with writing_to(target):
        return await request.app[RUNTIME].service.verify(
            inquiry, writeback=query_flag(request, "writeback", default=True)
        )


async def get_check(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    record = await runtime.service.get_check(request.match_info["check_id"])
    summary = mark_sandbox(record.summary, runtime.sandbox)
    if summary is not record.summary:
        record = record.model_copy(update={"summary": summary})
    if runtime.athena is not None and record.writeback is WriteBackState.QUEUED:
        record = await _with_writeback_progress(runtime.athena, record)
    return model_response(record)


async def _with_writeback_progress(athena: AthenaIntake, record: CheckRecord) -> CheckRecord:
    """The record as stored, plus what the athenaNet outbox has done with its write-back since."""
    state = await athena.state(record.check_id)
    if state is None:
        return record
    progress = WriteBackProgress(
        status=state.status.value,
        attempts=state.attempts,
        action=state.action.value if state.action is not None else None,
        changed=list(state.changed),
        reason=state.reason,
        error_code=state.error_code,
    )
    return record.model_copy(update={"writeback_progress": progress})


async def post_x12_271(request: web.Request) -> web.Response:
    kind = media_type(request, X12_TYPES | JSON_TYPES, default="text/plain")
    body = await _limited_body(request)
    if kind in JSON_TYPES:
        asked = parse_json_model(X12InterpretRequest, body)
    else:
        asked = X12InterpretRequest.model_construct(x12=decode_text(body, request.charset), request=None)
    runtime = request.app[RUNTIME]
    summaries = await runtime.service.interpret_271(asked.x12, asked.request)
    answer = X12InterpretResponse.model_construct(summaries=[mark_sandbox(s, runtime.sandbox) for s in summaries])
    return model_response(answer)


# --- operations --------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers.  Nothing outside the process is asked."""
    return model_response(Liveness())


async def readyz(request: web.Request) -> web.Response:
    lifecycle = request.app[LIFECYCLE]
    runtime = request.app.get(RUNTIME)
    report = await readiness_report(runtime, lifecycle)
    return model_response(report, status=503 if report.status == "not_ready" else 200)


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_bytes(), content_type=JSON)


def add_routes(app: web.Application, metrics: Metrics) -> None:
    router = app.router
    router.add_post(ELIGIBILITY, post_eligibility, name="eligibility")
    router.add_get(CHECK, get_check, name="check")
    router.add_post(X12_271, post_x12_271, name="x12_271")
    router.add_get("/healthz", healthz, name="healthz")
    router.add_get("/readyz", readyz, name="readyz")
    router.add_get("/metrics", metrics_handler(metrics.registry), name="metrics")
    add_batch_routes(app)  # issue 7: POST /v1/batches, GET /v1/batches/{id}, GET /v1/batches/{id}/results
    router.add_get("/openapi.json", openapi, name="openapi")
