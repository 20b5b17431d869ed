"""The HTTP API's own shapes: the error envelope and the bodies that are not domain models.

Domain models (``EligibilityRequest``, ``CoverageSummary``) live in ``models.py``; these wrap them for
the wire and give the OpenAPI document (``openapi.py``) something to describe.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.service import Readiness


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(_Wire):
    """One failing field of a request: ``service.date``, ``patient.birth_date`` ..."""

    field: str
    problem: str


class ErrorBody(_Wire):
    code: str = Field(description="stable machine code, e.g. request.invalid, auth.forbidden, clearinghouse.timeout")
    message: str = Field(description="what went wrong and what to do about it")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="structured facts: fields [{field, problem}] for request.invalid, request_id for internal",
    )


class ErrorEnvelope(_Wire):
    """Every answer that is not a success has this body, whatever the status."""

    error: ErrorBody


class X12InterpretRequest(_Wire):
    """``POST /v1/x12/271`` as JSON: the 271 text, and optionally the request it answers.

    With ``request`` the member it asked about is picked and its services answered; without it,
    every member in the 271 is summarized.  (A raw 271 can also be sent as ``text/plain`` or
    ``application/edi-x12``, which is the same as ``{"x12": <body>}``.)
    """

    x12: str = Field(min_length=1, description="the 271 interchange, ISA through IEA")
    request: EligibilityRequest | None = None


class X12InterpretResponse(_Wire):
    """One summary per member (or per transaction) the 271 holds, in the order they appear."""

    summaries: list[CoverageSummary]


class Liveness(_Wire):
    status: Literal["ok"] = "ok"


class ReadinessReport(Readiness):
    """``GET /readyz``: ``ready`` and ``degraded`` are 200 (checks are answered), ``not_ready`` 503.

    The service's ``Readiness`` facts (Redis, circuit breakers, limiter), with the verdict on top."""

    status: Literal["ready", "degraded", "not_ready"]
