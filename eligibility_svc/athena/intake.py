"""What the HTTP API and the runtime need from athenaNet, behind one object: ``AthenaIntake``.

* ``resolve(body)``: the ``{"athena": {...}, "service": {...}}`` request shape → the inquiry built from
  athenaNet's record of the patient, and the policy to write back to (``patients``);
* ``sink``: the service's ``WriteBackSink``; ``writing_to(target)`` names, for the checks verified
  inside it, the athenaNet policy their verified plan goes to (a context variable, so the service's
  one-sink seam stays as it is);
* ``state(check_id)``: the check's write-back state (queued, retrying, applied, refused, dead).

With Redis the write-backs go to the durable outbox (``outbox``; ``eligibility-svc worker`` applies
them).  Without Redis (the embedded default) they are applied in this process by background tasks
with the same read-decide-write and retries, but not durably: a restart forgets what was queued.
``open_athena_intake`` also starts the athenaNet sandbox in process when the transport is the sandbox
and no ``athena.base_url`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from contextvars import ContextVar
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from eligibility_svc.athena.audit import audit_scope
from eligibility_svc.athena.client import AthenaClient
from eligibility_svc.athena.factory import build_athena
from eligibility_svc.athena.outbox import (
    AthenaOutbox,
    WriteBackPayload,
    WriteBackState,
    WriteBackStatus,
    apply_write_back,
    retry_delay,
)
from eligibility_svc.athena.patients import AthenaCheckRef, PatientCheck, WriteTarget, check_for_patient
from eligibility_svc.cache import RedisGate, ValueCodec
from eligibility_svc.errors import AthenaError, EligibilityError, RequestInvalid
from eligibility_svc.models import CoverageSummary, EligibilityRequest, ServiceRequest
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import AthenaSettings, Settings

log = logging.getLogger(__name__)

_target: ContextVar[WriteTarget | None] = ContextVar("athena_write_target", default=None)

QUEUED = "queued"  # the service's WriteBackState values this sink answers
SKIPPED = "skipped"


class AthenaEligibilityBody(BaseModel):
    """``POST /v1/eligibility`` by athenaNet patient id (the alternative to a full ``EligibilityRequest``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    athena: AthenaCheckRef
    service: ServiceRequest
    max_age_seconds: int | None = None
    force_refresh: bool = False


def is_athena_body(document: Any) -> bool:
    """Whether a decoded JSON body is the athenaNet shape (it has an ``athena`` member)."""
    return isinstance(document, dict) and "athena" in document


@contextlib.contextmanager
def writing_to(target: WriteTarget | None) -> Iterator[None]:
    """Checks verified inside the block write their verified plan back to ``target``."""
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


class WriteBackQueue(Protocol):
    async def enqueue(
        self, check_id: str, target: WriteTarget, request: EligibilityRequest, summary: CoverageSummary
    ) -> str: ...

    async def state(self, check_id: str) -> WriteBackState | None: ...


class AthenaSink:
    """The service's ``WriteBackSink``: queues a check for the policy ``writing_to`` named.

    A check with no athenaNet policy in context (a request by demographics) has nowhere to go: ``skipped``."""

    def __init__(self, queue: WriteBackQueue) -> None:
        self._queue = queue

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        target = _target.get()
        if target is None:
            return SKIPPED
        await self._queue.enqueue(check_id, target, request, summary)
        return QUEUED


class InProcessWriteBacks:
    """``WriteBackQueue`` for the embedded default: background tasks, same decisions, not durable."""

    def __init__(self, client: AthenaClient, settings: AthenaSettings, *, keep: int = 10_000) -> None:
        self._client = client
        self._settings = settings
        self._keep = keep
        self._states: dict[str, WriteBackState] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(
        self, check_id: str, target: WriteTarget, request: EligibilityRequest, summary: CoverageSummary
    ) -> str:
        if check_id in self._states:
            return check_id
        while len(self._states) >= self._keep:
            self._states.pop(next(iter(self._states)))
        self._states[check_id] = WriteBackState(
            check_id=check_id, status=WriteBackStatus.QUEUED, enqueued_at=time.time()
        )
        payload = WriteBackPayload(check_id=check_id, target=target, request=request, summary=summary)
        task = asyncio.create_task(self._run(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return check_id

    async def state(self, check_id: str) -> WriteBackState | None:
        return self._states.get(check_id)

    async def _run(self, payload: WriteBackPayload) -> None:
        attempt = 0
        with audit_scope(payload.check_id):
            while True:
                attempt += 1
                try:
                    plan = await apply_write_back(self._client, payload, self._settings)
                except EligibilityError as error:
                    retry = isinstance(error, AthenaError) and error.retryable
                    if not retry or attempt >= self._settings.outbox_max_attempts:
                        self._note(
                            payload.check_id, WriteBackStatus.DEAD, attempt, code=error.code, reason=error.message
                        )
                        return
                    self._note(
                        payload.check_id, WriteBackStatus.RETRYING, attempt, code=error.code, reason=error.message
                    )
                    await asyncio.sleep(retry_delay(attempt, self._settings, random.random()))
                    continue
                status = WriteBackStatus.REFUSED if plan.action.value == "refused" else WriteBackStatus.APPLIED
                self._note(
                    payload.check_id,
                    status,
                    attempt,
                    reason=plan.reason,
                    action=plan.action,
                    changed=list(plan.changed),
                )
                return

    def _note(self, check_id: str, status: WriteBackStatus, attempts: int, **fields: Any) -> None:
        previous = self._states.get(check_id)
        base = previous.model_dump() if previous else {"check_id": check_id}
        self._states[check_id] = WriteBackState.model_validate(
            {**base, **fields, "status": status, "attempts": attempts, "updated_at": time.time()}
        )

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class AthenaIntake:
    """athenaNet for the API: see the module docstring."""

    def __init__(self, client: AthenaClient, settings: AthenaSettings, queue: WriteBackQueue) -> None:
        self.client = client
        self.settings = settings
        self.queue = queue
        self.sink = AthenaSink(queue)

    async def resolve(self, document: dict[str, Any]) -> tuple[EligibilityRequest, WriteTarget]:
        """The inquiry and write-back target for an athenaNet-shaped body (``RequestInvalid`` when malformed)."""
        try:
            body = AthenaEligibilityBody.model_validate(document)
        except ValidationError as exc:
            fields = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            text = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
            raise RequestInvalid(f"the request is not valid: {text}", details={"fields": fields}) from exc
        check: PatientCheck = await check_for_patient(self.client, body.athena, body.service, self.settings)
        request = check.request.model_copy(
            update={"max_age_seconds": body.max_age_seconds, "force_refresh": body.force_refresh}
        )
        return request, check.target

    async def state(self, check_id: str) -> WriteBackState | None:
        return await self.queue.state(check_id)


async def open_athena_intake(
    settings: Settings,
    *,
    resources: AsyncExitStack,
    redis: Redis | None = None,
    gate: RedisGate | None = None,
) -> AthenaIntake:
    """Build the intake (and start the in-process sandbox when needed); closed by ``resources``."""
    athena = settings.athena
    base_url = athena.base_url
    if base_url is None and athena.transport == "sandbox":
        from eligibility_svc.sandbox.athena import (  # noqa: PLC0415 (only the embedded default needs it)
            SandboxAthenaConfig,
            sandbox_athena_settings,
            start_sandbox_athena,
        )

        box = await start_sandbox_athena(SandboxAthenaConfig.from_settings(settings))
        resources.push_async_callback(box.close)
        athena = sandbox_athena_settings(athena, box)
        settings = settings.model_copy(update={"athena": athena})
    parts = build_athena(settings, redis=redis, gate=gate)
    resources.push_async_callback(parts.client.close)
    queue: WriteBackQueue
    if redis is not None:
        outbox = AthenaOutbox(
            redis,
            keys=RedisKeys(settings.redis_key_prefix),
            codec=ValueCodec.from_settings(settings.cache),
            settings=athena,
        )
        queue = outbox
    else:
        memory = InProcessWriteBacks(parts.client, athena)
        resources.push_async_callback(memory.aclose)
        queue = memory
    return AthenaIntake(parts.client, athena, queue)
