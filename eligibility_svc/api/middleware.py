"""The API's middlewares, outermost first, and the one error envelope they guarantee.

::

    http metrics   counts and times every request by route template and final status
    request id     adopts or makes X-Request-ID, scopes it over the request, echoes it
    answer         (``answer_middleware``, one layer: each layer costs every request a call and a frame)
      access log     one structured line per request (route template, status, duration; no PHI)
      errors         anything raised below becomes {"error": {"code", "message", "details"}}
      unmatched      404 / 405 answered before authentication (there is nothing to protect)
    auth           bearer API key with the route's scope (security.auth_middleware)

An exception that is not one of ours is logged with its traceback but not its message (which may hold
patient data no redaction rule recognizes) and answered as a 500 ``internal`` carrying the request id;
no traceback or exception text ever reaches the caller.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from eligibility_svc.errors import (
    EligibilityError,
    MethodNotAllowed,
    NotFound,
    RequestInvalid,
    RequestMalformed,
    RequestTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)
from eligibility_svc.logs import current_request_id
from eligibility_svc.metrics import route_template
from eligibility_svc.security import WWW_AUTHENTICATE

log = logging.getLogger("eligibility_svc.api")
access_log = logging.getLogger("eligibility_svc.api.access")

ERROR_CODE = web.RequestKey("error_code", str)
_RETRY_DETAILS = ("retry_after_seconds", "retry_in_seconds")


# --- the envelope ------------------------------------------------------------------------------------


def error_response(error: EligibilityError) -> web.Response:
    """``error`` as the API answers it: its status, the envelope, and the headers its kind implies."""
    response = web.json_response({"error": error.to_dict()}, status=error.http_status)
    if isinstance(error, Unauthenticated):
        response.headers[hdrs.WWW_AUTHENTICATE] = WWW_AUTHENTICATE
    if isinstance(error, MethodNotAllowed):
        response.headers[hdrs.ALLOW] = ",".join(error.details.get("allowed", []))
    retry = next((error.details[key] for key in _RETRY_DETAILS if key in error.details), None)
    if isinstance(retry, int | float) and error.http_status in (429, 503):
        response.headers[hdrs.RETRY_AFTER] = str(max(1, round(retry)))
    return response


def from_http_exception(exc: web.HTTPException) -> EligibilityError:
    """aiohttp's own 4xx (router, body limit) as one of ours."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return MethodNotAllowed(
            f"{exc.method} is not allowed here; use {', '.join(allowed)}", details={"allowed": allowed}
        )
    known: dict[int, Callable[[], EligibilityError]] = {
        400: lambda: RequestMalformed("the request could not be read"),
        404: lambda: NotFound("no such route; see /openapi.json for the API"),
        413: lambda: RequestTooLarge("the request body is too large"),
        415: lambda: UnsupportedMediaType("unsupported content type"),
    }
    make = known.get(exc.status)
    if make is not None:
        return make()
    if exc.status < 500:
        return RequestInvalid(exc.reason or "the request cannot be answered")
    return EligibilityError("the service could not answer this request")


def withheld_traceback(exc: BaseException) -> str:
    """``exc``'s traceback and its causes', every exception's message left out: a message may carry
    patient data in a form no redaction rule recognizes (a bare name), while the frames do not."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"{type(current).__module__}.{type(current).__qualname__} (message withheld)\n{frames}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def log_unexpected(request: web.Request, exc: Exception) -> None:
    extra = {"route": route_template(request), "method": request.method, "exc": withheld_traceback(exc)}
    log.error("unexpected failure: %s", type(exc).__name__, extra=extra)


def internal_error() -> EligibilityError:
    request_id = current_request_id()
    return EligibilityError(
        f"an unexpected error occurred; quote request id {request_id} when reporting it",
        details={"request_id": request_id},
    )


# --- middlewares -------------------------------------------------------------------------------------


@web.middleware
async def answer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Access log outside, errors inside it, unmatched routes innermost (see the module docstring)."""
    started = time.perf_counter()
    response = await _answer(request, handler)
    if access_log.isEnabledFor(logging.INFO):
        _log_access(request, response, started)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Renders every failure below it as the envelope; 404 / 405 before any key is asked for."""
    try:
        problem = request.match_info.http_exception
        if problem is not None:
            raise problem
        return await handler(request)
    except EligibilityError as exc:
        error = exc
        if exc.http_status >= 500:
            log.warning(
                "request failed: %s", exc.code, extra={"error_code": exc.code, "route": route_template(request)}
            )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects are answers, not errors
        error = from_http_exception(exc)
    except Exception as exc:
        log_unexpected(request, exc)
        error = internal_error()
    request[ERROR_CODE] = error.code
    return error_response(error)


def _log_access(request: web.Request, response: web.StreamResponse, started: float) -> None:
    """One line per answered request: route template, method, status, milliseconds, error code."""
    extra: dict[str, Any] = {
        "route": route_template(request),
        "method": request.method,
        "status": response.status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if ERROR_CODE in request:
        extra["error_code"] = request[ERROR_CODE]
    access_log.info("request", extra=extra)
