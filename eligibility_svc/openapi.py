"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic models (``GET /openapi.json``).

Request bodies use the models' validation schemas and responses their serialization schemas (a
``Decimal`` is read as a number or a string but always written as a string), all under
``#/components/schemas``.  Every operation lists the error envelope for each status it can answer
with, and every route but health, readiness and metrics requires the bearer scheme.  The document
is complete enough to drive schemathesis against a running service.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from eligibility_svc.api.access import EXAMPLE_SCENARIO, example_request
from eligibility_svc.api.schemas import (
    ErrorEnvelope,
    Liveness,
    ReadinessReport,
    X12InterpretRequest,
    X12InterpretResponse,
)
from eligibility_svc.athena.intake import AthenaEligibilityBody
from eligibility_svc.batch.models import BatchProgress, ItemResult
from eligibility_svc.batch.sources import AthenaBatchBody
from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.service import CheckRecord
from eligibility_svc.settings import DEFAULT_FIXTURES

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
REF = "#/components/schemas/{model}"
Json = dict[str, Any]

_INPUTS: tuple[type[BaseModel], ...] = (
    EligibilityRequest,
    AthenaEligibilityBody,
    X12InterpretRequest,
    AthenaBatchBody,  # issue 7
)
_OUTPUTS: tuple[type[BaseModel], ...] = (
    CoverageSummary,
    CheckRecord,
    X12InterpretResponse,
    ErrorEnvelope,
    Liveness,
    ReadinessReport,
    BatchProgress,  # issue 7
    ItemResult,
)

# Each error status the API answers with: (component name, description).
ERRORS: dict[int, tuple[str, str]] = {
    400: ("Malformed", "request.malformed: the body is not JSON (or not text for a raw 271)"),
    401: ("Unauthenticated", "auth.unauthenticated: no API key, or not a valid one"),
    403: ("Forbidden", "auth.forbidden: the key lacks the route's scope"),
    404: ("NotFound", "not_found: no such check; athena.not_found: no such athenaNet practice or patient"),
    413: ("TooLarge", "request.too_large: the body is over the configured limit"),
    415: ("UnsupportedMediaType", "request.unsupported_media_type"),
    422: ("Invalid", "request.invalid / request.inquiry_invalid with details.fields [{field, problem}]; x12.*"),
    429: ("RateLimited", "clearinghouse.rate_limited: the payer's limit was reached; see Retry-After"),
    500: ("Internal", "internal: unexpected; details.request_id identifies it in the logs"),
    502: ("BadGateway", "clearinghouse.rejected / clearinghouse.bad_response / athena.*"),
    503: ("Unavailable", "clearinghouse.unavailable / clearinghouse.circuit_open"),
    504: ("GatewayTimeout", "clearinghouse.timeout: no answer within the CORE deadline"),
}
_KEYED = (401, 403, 500)
_CHECK_ERRORS = (400, *_KEYED, 404, 413, 415, 422, 429, 502, 503, 504)


def openapi_document() -> Json:
    """The document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


@cache
def openapi_bytes() -> bytes:
    """The document serialized once, for the route."""
    return json.dumps(_document(), separators=(",", ":")).encode()


@cache
def _document() -> Json:
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(),
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "responses": _error_responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "elig_<id>_<secret>",
                    "description": "a key from `eligibility-svc keys new` (scopes eligibility:check, batch:run, admin)",
                }
            },
        },
        "security": [{"bearer": []}],
    }


def _info() -> Json:
    return {
        "title": "eligibility-svc",
        "version": API_VERSION,
        "description": (
            "Insurance eligibility per procedure through X12 270/271. Payer rejections are 200 answers with "
            "status and errors[]; the service's own failures are {error: {code, message, details}}."
        ),
    }


def schemas() -> dict[str, Json]:
    """Every model under its name, requests in validation mode and responses in serialization mode."""
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in _INPUTS),
        *((model, "serialization") for model in _OUTPUTS),
    ]
    _, top = models_json_schema(pairs, ref_template=REF)
    defs: dict[str, Json] = top.get("$defs", {})
    return defs


def ref(name: str) -> Json:
    return {"$ref": REF.format(model=name)}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _responses(ok: Json, errors: tuple[int, ...], ok_status: int = 200) -> Json:
    answers: Json = {str(ok_status): ok}
    for status in sorted(errors):
        answers[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    return answers


def _error_responses() -> Json:
    answers: Json = {}
    for status, (name, description) in ERRORS.items():
        answers[name] = {"description": description, "content": _json(ref("ErrorEnvelope"))}
        if status == 401:
            answers[name]["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="eligibility-svc"'}
            }
        if status in (429, 503):
            answers[name]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": False}}
    return answers


def _open(summary: str) -> Json:
    """An operation anyone may call (no key)."""
    return {"summary": summary, "security": [], "tags": ["operations"]}


def _paths() -> Json:
    return {
        "/v1/eligibility": {"post": _check_operation()},
        "/v1/eligibility/{check_id}": {"get": _get_check_operation()},
        "/v1/x12/271": {"post": _x12_operation()},
        "/healthz": {"get": _health_operation()},
        "/readyz": {"get": _ready_operation()},
        "/metrics": {"get": _metrics_operation()},
        "/openapi.json": {"get": _openapi_operation()},
        **_batch_paths(),
    }


# --- batches (issue 7) ---------------------------------------------------------------------------------

_BATCH_ID: Json = {
    "name": "batch_id",
    "in": "path",
    "required": True,
    "description": "the batch_id answered by POST /v1/batches",
    "schema": {"type": "string", "pattern": "^b[0-9a-f]{20}$"},
}


def _batch_paths() -> Json:
    return {
        "/v1/batches": {"post": _post_batch_operation()},
        "/v1/batches/{batch_id}": {"get": _get_batch_operation()},
        "/v1/batches/{batch_id}/results": {"get": _batch_results_operation()},
        "/v1/batches/{batch_id}/report": {"get": _batch_report_operation()},
    }


def _post_batch_operation() -> Json:
    lines: Json = {"type": "string", "description": "one appointment a line (CSV with a header row, or JSONL)"}
    return {
        "operationId": "createBatch",
        "summary": "Queue a pre-visit batch: appointments as CSV or JSONL, or athenaNet booked appointments",
        "tags": ["batches"],
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": lines},
                "application/x-ndjson": {"schema": lines},
                **_json(ref("AthenaBatchBody")),
            },
        },
        "responses": _responses(
            _ok("queued: the batch's progress (Location names it)", "BatchProgress"),
            (400, *_KEYED, 404, 413, 415, 422, 502, 503),
            ok_status=202,
        ),
    }


def _get_batch_operation() -> Json:
    return {
        "operationId": "getBatch",
        "summary": "A batch's progress: items done, failed, waiting to retry",
        "tags": ["batches"],
        "parameters": [_BATCH_ID],
        "responses": _responses(_ok("the batch's progress", "BatchProgress"), (*_KEYED, 404, 503)),
    }


def _batch_results_operation() -> Json:
    row = ref("ItemResult")
    return {
        "operationId": "getBatchResults",
        "summary": "One row per appointment so far, streamed as JSONL (default) or CSV (?format=csv or Accept)",
        "tags": ["batches"],
        "parameters": [
            _BATCH_ID,
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["jsonl", "csv"]},
            },
        ],
        "responses": _responses(
            {
                "description": "result rows (ItemResult, one JSON object a line; or CSV with a header)",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}, "x-item-schema": row},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            (*_KEYED, 404, 503),
        ),
    }


def _batch_report_operation() -> Json:
    return {
        "operationId": "getBatchReport",
        "summary": "The batch as a page a person reads: counts by action, the appointments needing action, "
        "payer failure rates",
        "tags": ["batches"],
        "parameters": [_BATCH_ID],
        "responses": _responses(
            {"description": "a self-contained HTML page", "content": {"text/html": {"schema": {"type": "string"}}}},
            (*_KEYED, 404, 503),
        ),
    }


def _check_operation() -> Json:
    return {
        "operationId": "checkEligibility",
        "summary": "Is the patient covered for these services on this date, what will they owe, is auth needed?",
        "tags": ["eligibility"],
        "parameters": [
            {
                "name": "writeback",
                "in": "query",
                "required": False,
                "description": "write the verified coverage back to athenaNet (default: true for a body naming an "
                "athenaNet patient, which is written back to that same policy; false otherwise)",
                "schema": {"type": "boolean"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": _with_example(
                _json({"oneOf": [ref("EligibilityRequest"), ref("AthenaEligibilityBody")]}), _example()
            ),
        },
        "responses": _responses(_check_answer(), _CHECK_ERRORS),
    }


def _check_answer() -> Json:
    answer = _ok("the summary (payer rejections too: see status and errors)", "CoverageSummary")
    answer["links"] = {
        "GetCheck": {
            "operationId": "getCheck",
            "parameters": {"check_id": "$response.body#/check_id"},
            "description": "the check's record, by the check_id of this answer",
        }
    }
    return answer


def _example() -> Json | None:
    """The sandbox's example request (scenario 01, asking about today), when the fixtures are installed."""
    return example_request(DEFAULT_FIXTURES, dt.date.today())


def _with_example(content: Json, example: Json | None) -> Json:
    if example is not None:
        for media in content.values():
            media["example"] = example
    return content


def _get_check_operation() -> Json:
    return {
        "operationId": "getCheck",
        "summary": "A check answered in the last 7 days: its summary, validation findings and write-back state",
        "tags": ["eligibility"],
        "parameters": [
            {
                "name": "check_id",
                "in": "path",
                "required": True,
                "description": "the check_id of a CoverageSummary",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            }
        ],
        "responses": _responses(_ok("the check's record", "CheckRecord"), (*_KEYED, 404)),
    }


def _x12_operation() -> Json:
    text: Json = {"type": "string", "minLength": 1, "description": "a 271 interchange, ISA through IEA"}
    return {
        "operationId": "interpret271",
        "summary": "Interpret a 271 the caller already has (raw text, or JSON with the request it answers)",
        "tags": ["x12"],
        "requestBody": {
            "required": True,
            "content": _x12_content(text),
        },
        "responses": _responses(
            _ok("one summary per member the 271 answers about", "X12InterpretResponse"), (400, *_KEYED, 413, 415, 422)
        ),
    }


def _x12_content(text: Json) -> Json:
    content: Json = {
        "application/json": {"schema": ref("X12InterpretRequest")},
        "text/plain": {"schema": text},
        "application/edi-x12": {"schema": text},
    }
    example_271 = DEFAULT_FIXTURES / "scenarios" / EXAMPLE_SCENARIO / "271.x12"
    if example_271.is_file():
        raw = example_271.read_text(encoding="utf-8")
        content["application/json"]["example"] = {"x12": raw, "request": _example()}
        content["text/plain"]["example"] = content["application/edi-x12"]["example"] = raw
    return content


def _ok(description: str, model: str) -> Json:
    return {"description": description, "content": _json(ref(model))}


def _health_operation() -> Json:
    return {
        **_open("Liveness: the process answers"),
        "operationId": "liveness",
        "responses": {"200": _ok("alive", "Liveness")},
    }


def _ready_operation() -> Json:
    readiness = _ok("ready or degraded: send traffic", "ReadinessReport")
    return {
        **_open("Readiness: Redis and circuit breakers (degraded is still 200)"),
        "operationId": "readiness",
        "responses": {"200": readiness, "503": _ok("starting or draining: send no traffic", "ReadinessReport")},
    }


def _metrics_operation() -> Json:
    exposition = {"text/plain": {"schema": {"type": "string"}}}
    return {
        **_open("Prometheus metrics"),
        "operationId": "metrics",
        "responses": {"200": {"description": "Prometheus text or OpenMetrics exposition", "content": exposition}},
    }


def _openapi_operation() -> Json:
    return {
        "operationId": "openapi",
        "summary": "This document",
        "tags": ["operations"],
        "responses": _responses({"description": "OpenAPI 3.1", "content": _json({"type": "object"})}, _KEYED),
    }
