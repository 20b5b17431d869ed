"""One audit record per athenaNet call: which endpoint, how it went, how long, for which check.

Records hold no patient data: the endpoint is the *template* (``/v1/{practiceid}/patients/{patientid}/
insurances/{insuranceid}``), never the path with a patient's ID in it, and no body or query is kept.
The check id comes from ``audit_scope`` (a context variable, as request ids do in ``logs``), so every
call made while a write-back or a check runs is attributed to it without threading it through.

Sinks: ``RedisAuditSink`` appends to the ``athena:audit`` stream (trimmed to a maximum length),
``LogAuditSink`` writes a structured log line; ``AuditTrail`` fans out to several.  An audit sink
never fails the call it records: a Redis failure is counted by the gate and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from eligibility_svc.cache import CacheUnavailable, RedisGate

log = logging.getLogger("eligibility_svc.athena.audit")

_check_id: ContextVar[str | None] = ContextVar("athena_audit_check_id", default=None)


@contextmanager
def audit_scope(check_id: str | None) -> Iterator[None]:
    """Attribute the athenaNet calls made inside the block to ``check_id``."""
    token = _check_id.set(check_id)
    try:
        yield
    finally:
        _check_id.reset(token)


def current_check_id() -> str | None:
    return _check_id.get()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One athenaNet call (one HTTP exchange; a retried call is several records)."""

    at: float  # unix seconds when the call started
    method: str
    endpoint: str  # template, e.g. /v1/{practiceid}/patients/{patientid}/insurances
    status: int  # HTTP status, 0 when no answer came (connection failure, timeout)
    outcome: str  # "ok" or the error code (athena.unavailable, athena.conflict ...)
    duration_ms: float
    attempt: int
    practice_id: str | None = None
    check_id: str | None = None

    def as_fields(self) -> dict[str, str]:
        """Stream fields (strings; empty for missing values)."""
        return {key: "" if value is None else str(value) for key, value in asdict(self).items()}


def new_record(
    *,
    started: float,
    method: str,
    endpoint: str,
    status: int,
    outcome: str,
    duration: float,
    attempt: int,
    practice_id: str | None,
) -> AuditRecord:
    return AuditRecord(
        at=round(started, 3),
        method=method,
        endpoint=endpoint,
        status=status,
        outcome=outcome,
        duration_ms=round(duration * 1000.0, 1),
        attempt=attempt,
        practice_id=practice_id,
        check_id=current_check_id(),
    )


class AuditSink(Protocol):
    async def record(self, entry: AuditRecord) -> None:
        """Keep ``entry``; never raises."""
        ...


class LogAuditSink:
    """Structured log lines (``logs.JsonFormatter`` renders the extras as JSON fields)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger

    async def record(self, entry: AuditRecord) -> None:
        self._log.info("athenaNet call", extra={"athena_call": asdict(entry)})


class RedisAuditSink:
    """Appends to a Redis stream trimmed (approximately) to ``max_len`` entries."""

    def __init__(self, redis: Redis, key: str, *, max_len: int = 100_000, gate: RedisGate | None = None) -> None:
        self._redis = redis
        self._key = key
        self._max_len = max_len
        self._gate = gate or RedisGate()

    async def record(self, entry: AuditRecord) -> None:
        fields: dict[FieldT, EncodableT] = {key: value for key, value in entry.as_fields().items()}
        try:
            await self._gate.call("audit", self._redis.xadd(self._key, fields, maxlen=self._max_len, approximate=True))
        except CacheUnavailable:
            return


class AuditTrail:
    """Every sink gets every record."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = tuple(sinks)

    async def record(self, entry: AuditRecord) -> None:
        for sink in self._sinks:
            await sink.record(entry)
