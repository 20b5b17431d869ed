"""The durable write-back outbox: a Redis Stream, a consumer group of workers, retries, dead letters.

::

    enqueue(check) ─► item hash {payload (sealed), status=queued}  +  XADD outbox {check_id}   (one script)
    worker ─► XREADGROUP (new)  /  XAUTOCLAIM (held by a dead worker longer than claim_idle)
           ─► item already applied / refused / dead?  ─► XACK (a redelivery: nothing to do)
           ─► patient lock (one write-back per patient at a time, across workers)
           ─► GET the patient's insurances ─► diff.decide ─► PUT / POST / DELETE+POST / nothing
           ─► athenaNet confirmed ─► item status applied (or refused) + XACK + XDEL      (one transaction)
           ─► retryable failure ─► item status retrying + ZADD retry (due time) + XACK  (one script)
                   due entries move back into the stream (one script, any worker)
           ─► failure N, or one a retry cannot fix ─► XADD dead {reason} + status dead + XACK

Delivery is at least once; writing is exactly once.  The item's status is the idempotency record per
check (a redelivered, already-applied check is acknowledged without a call), and every attempt
re-reads the patient's insurances before deciding, so a write that landed before a crash (a worker
killed after athenaNet confirmed but before the acknowledgement) is found in place and not repeated:
``decide`` on a policy that already holds the plan answers ``none``.  A write whose outcome is unknown
(a timeout) is never repeated blindly either: it goes back through the same read-then-decide.
While a worker waits on athenaNet it renews its claim on the entry and its patient lock (a heartbeat),
so a slow call is never taken over by another worker; a dead worker's entries are claimed by the
others once idle for ``outbox_claim_idle_seconds``, and consumer names are unique per process.

The payload holds patient data: it is JSON sealed by the cache's ``ValueCodec`` (AES-GCM when a key is
configured) and bound to its key.  Stream entries, the retry set and dead letters carry only check
ids, error codes and reasons.  Each check's state (``WriteBackState``) is readable by its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from eligibility_svc.athena.audit import audit_scope
from eligibility_svc.athena.client import AthenaClient
from eligibility_svc.athena.diff import Action, WriteBackPlan, decide, resolve_package, verified_coverage
from eligibility_svc.athena.factory import build_athena
from eligibility_svc.athena.patients import WriteTarget
from eligibility_svc.backoff import equal_jitter
from eligibility_svc.cache import CacheCorrupt, RedisGate, ValueCodec, make_redis
from eligibility_svc.errors import AthenaConflict, AthenaError, ConfigurationError, EligibilityError
from eligibility_svc.metrics import Metrics
from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.redis_keys import OUTBOX_GROUP, RedisKeys
from eligibility_svc.settings import AthenaSettings, Settings
from eligibility_svc.singleflight import RedisLock
from eligibility_svc.stopping import stop_on_signals

log = logging.getLogger(__name__)


class WriteBackStatus(StrEnum):
    QUEUED = "queued"
    RETRYING = "retrying"
    APPLIED = "applied"  # athenaNet holds the verified plan (action says what we changed, "none": nothing)
    REFUSED = "refused"  # a rule forbade the write (inactive over active, missing data): not retried
    DEAD = "dead"  # given up: see the dead-letter stream; requeue() after fixing the cause


FINAL = frozenset({WriteBackStatus.APPLIED, WriteBackStatus.REFUSED, WriteBackStatus.DEAD})


class WriteBackPayload(BaseModel):
    """What a worker needs to apply one check (sealed in the item hash)."""

    model_config = ConfigDict(extra="forbid")

    check_id: str
    target: WriteTarget
    request: EligibilityRequest
    summary: CoverageSummary


class WriteBackState(BaseModel):
    """A check's write-back as callers see it (no patient data)."""

    model_config = ConfigDict(extra="forbid")

    check_id: str
    status: WriteBackStatus
    attempts: int = 0
    action: Action | None = None
    changed: list[str] = []  # athenaNet field names written
    reason: str | None = None
    error_code: str | None = None
    enqueued_at: float | None = None
    updated_at: float | None = None
    next_attempt_at: float | None = None


# --- scripts (atomic state transitions) -------------------------------------------------------------

_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGET', KEYS[1], 'entry') or ''
end
local id = redis.call('XADD', KEYS[2], '*', 'check_id', ARGV[2])
redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'status', 'queued', 'attempts', '0',
           'enqueued_at', ARGV[3], 'updated_at', ARGV[3], 'entry', id)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return id
"""

# KEYS item, retry, stream; ARGV group, entry id, check id, delay, status, code, reason, count attempt (0/1)
_RETRY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = now + tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], due, ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[5], 'error_code', ARGV[6], 'reason', ARGV[7],
           'updated_at', tostring(now), 'next_attempt_at', tostring(due))
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[3], ARGV[2])
return 1
"""

# KEYS retry, stream; ARGV max.  Due check ids back into the stream.
_PROMOTE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'check_id', id)
  redis.call('ZREM', KEYS[1], id)
end
return #due
"""


def _redis_fields(values: dict[str, str]) -> dict[FieldT, EncodableT]:
    return {key: value for key, value in values.items()}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: Any) -> float | None:
    text = _text(value)
    try:
        return float(text) if text else None
    except ValueError:
        return None


def read_state(check_id: str, fields: dict[Any, Any]) -> WriteBackState | None:
    """A ``WriteBackState`` from the item hash (``None`` when there is no item)."""
    found = {_text(key): value for key, value in fields.items()}
    status = _text(found.get("status"))
    if not status:
        return None
    action = _text(found.get("action"))
    changed = _text(found.get("changed"))
    return WriteBackState(
        check_id=check_id,
        status=WriteBackStatus(status),
        attempts=int(_text(found.get("attempts")) or 0),
        action=Action(action) if action else None,
        changed=changed.split(",") if changed else [],
        reason=_text(found.get("reason")),
        error_code=_text(found.get("error_code")),
        enqueued_at=_float(found.get("enqueued_at")),
        updated_at=_float(found.get("updated_at")),
        next_attempt_at=_float(found.get("next_attempt_at")),
    )


def retry_delay(attempts: int, settings: AthenaSettings, rand: float) -> float:
    """Exponential backoff with jitter in [½, 1) of the ceiling: never immediately, never in lockstep."""
    return equal_jitter(attempts, settings.outbox_backoff_base_seconds, settings.outbox_backoff_max_seconds, rand)


# --- the outbox (enqueue side and state) ---------------------------------------------------------------


class AthenaOutbox:
    """The write-back stream and the per-check items.  Shared by the API (enqueue) and the workers."""

    def __init__(self, redis: Redis, *, keys: RedisKeys, codec: ValueCodec, settings: AthenaSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.codec = codec
        self.settings = settings
        self._enqueue = redis.register_script(_ENQUEUE)
        self._retry = redis.register_script(_RETRY)
        self._promote = redis.register_script(_PROMOTE)

    async def ensure_group(self) -> None:
        """The consumer group exists (created with the stream when needed); idempotent."""
        try:
            await self.redis.xgroup_create(self.keys.outbox, OUTBOX_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(
        self, check_id: str, target: WriteTarget, request: EligibilityRequest, summary: CoverageSummary
    ) -> str:
        """Queue the write-back of ``check_id`` (once: a second call returns the first entry id)."""
        key = self.keys.outbox_item(check_id)
        payload = WriteBackPayload(check_id=check_id, target=target, request=request, summary=summary)
        blob = self.codec.encode(key, payload.model_dump(mode="json"), time.time())
        args: list[EncodableT] = [blob, check_id, f"{time.time():.3f}", self.settings.outbox_state_ttl_seconds]
        entry = await self._enqueue(keys=[key, self.keys.outbox], args=args)
        return _text(entry) or ""

    async def state(self, check_id: str) -> WriteBackState | None:
        """The write-back state of ``check_id``; ``None`` when it was never queued (or has expired)."""
        fields = await self.redis.hgetall(self.keys.outbox_item(check_id))
        return read_state(check_id, fields)

    async def payload(self, check_id: str) -> WriteBackPayload | None:
        key = self.keys.outbox_item(check_id)
        blob = await self.redis.hget(key, "payload")
        if blob is None:
            return None
        try:
            entry = self.codec.decode(key, blob if isinstance(blob, bytes) else blob.encode())
            return WriteBackPayload.model_validate(entry.value)
        except (CacheCorrupt, ValidationError):
            return None

    async def dead_letters(self, count: int = 100) -> list[dict[str, str]]:
        """The latest dead letters, newest first: check id, code, reason, attempts, when."""
        entries = await self.redis.xrevrange(self.keys.outbox_dead, count=count)
        return [{_text(k) or "": _text(v) or "" for k, v in (fields or {}).items()} for _, fields in entries or []]

    async def backlog(self) -> int:
        """Write-backs not finished: in the stream (new or held) plus waiting to retry."""
        stream = await self.redis.xlen(self.keys.outbox)
        waiting = await self.redis.zcard(self.keys.outbox_retry)
        return int(stream) + int(waiting)

    async def requeue(self, check_id: str) -> bool:
        """Put a dead (or refused) write-back back in the stream with fresh attempts (operators)."""
        key = self.keys.outbox_item(check_id)
        state = await self.state(check_id)
        if state is None or state.status not in (WriteBackStatus.DEAD, WriteBackStatus.REFUSED):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            fresh = {"status": "queued", "attempts": "0", "updated_at": f"{time.time():.3f}"}
            pipe.hset(key, mapping=_redis_fields(fresh))
            pipe.xadd(self.keys.outbox, {"check_id": check_id})
            await pipe.execute()
        return True

    # --- transitions used by the worker ----------------------------------------------------------------

    async def promote_due(self, limit: int = 100) -> int:
        return int(await self._promote(keys=[self.keys.outbox_retry, self.keys.outbox], args=[limit]))

    async def finish(self, entry_id: str, check_id: str, status: WriteBackStatus, plan: WriteBackPlan) -> None:
        fields = {
            "status": status.value,
            "action": plan.action.value,
            "changed": ",".join(plan.changed),
            "reason": plan.reason,
            "error_code": "",
            "updated_at": f"{time.time():.3f}",
        }
        await self._close(entry_id, check_id, fields)

    async def schedule_retry(
        self, entry_id: str, check_id: str, delay: float, *, status: WriteBackStatus, code: str, reason: str
    ) -> None:
        keys = [self.keys.outbox_item(check_id), self.keys.outbox_retry, self.keys.outbox]
        await self._retry(keys=keys, args=[OUTBOX_GROUP, entry_id, check_id, delay, status.value, code, reason])

    async def bury(self, entry_id: str, check_id: str, error: EligibilityError, attempts: int) -> None:
        """Dead-letter ``check_id`` with the reason, and stop delivering it."""
        now = f"{time.time():.3f}"
        letter = {"check_id": check_id, "code": error.code, "reason": error.message[:500], "attempts": str(attempts)}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.outbox_dead, _redis_fields({**letter, "at": now}), maxlen=100_000, approximate=True)
            dead = {"status": "dead", "error_code": error.code, "reason": error.message[:500], "updated_at": now}
            pipe.hset(self.keys.outbox_item(check_id), mapping=_redis_fields(dead))
            pipe.xack(self.keys.outbox, OUTBOX_GROUP, entry_id)
            pipe.xdel(self.keys.outbox, entry_id)
            await pipe.execute()

    async def acknowledge(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.outbox, OUTBOX_GROUP, entry_id)
            pipe.xdel(self.keys.outbox, entry_id)
            await pipe.execute()

    async def _close(self, entry_id: str, check_id: str, fields: dict[str, str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.outbox_item(check_id), mapping=_redis_fields(fields))
            pipe.xack(self.keys.outbox, OUTBOX_GROUP, entry_id)
            pipe.xdel(self.keys.outbox, entry_id)
            await pipe.execute()


class AthenaWriteBack:
    """The service's ``WriteBackSink`` for checks of one athenaNet policy (``target``)."""

    def __init__(self, outbox: AthenaOutbox, target: WriteTarget) -> None:
        self._outbox = outbox
        self.target = target

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        return await self._outbox.enqueue(check_id, self.target, request, summary)


# --- applying one write-back -------------------------------------------------------------------------------


async def apply_write_back(client: AthenaClient, payload: WriteBackPayload, settings: AthenaSettings) -> WriteBackPlan:
    """Read the patient's insurances, decide, and make the change; the plan carried out.

    A 409 (someone filled the sequence meanwhile) is answered by reading and deciding once more."""
    target = payload.target
    package = resolve_package(settings.practices.get(target.practice_id), target.practice_id, payload.request.payer.id)
    coverage = verified_coverage(payload.summary, payload.request)
    for round_ in (1, 2):
        current = await client.list_insurances(target.practice_id, target.patient_id)
        plan = decide(
            current,
            coverage,
            package,
            sequence=target.sequence_number,
            department_id=target.department_id,
            allow_inactive_overwrite=settings.allow_inactive_overwrite,
            check_id=payload.check_id,
        )
        try:
            await carry_out(client, target, plan)
        except AthenaConflict:
            if round_ == 2:
                raise
            continue
        return plan
    raise AssertionError("unreachable")  # pragma: no cover


async def carry_out(client: AthenaClient, target: WriteTarget, plan: WriteBackPlan) -> None:
    """The calls ``plan`` asks for (none for NONE and REFUSED)."""
    practice, patient = target.practice_id, target.patient_id
    if plan.action is Action.UPDATE and plan.insurance_id:
        await client.update_insurance(practice, patient, plan.insurance_id, plan.fields)
    elif plan.action is Action.CREATE:
        await client.create_insurance(practice, patient, plan.fields)
    elif plan.action is Action.REPLACE and plan.insurance_id:
        await client.delete_insurance(practice, patient, plan.insurance_id, plan.cancellation_note or "")
        await client.create_insurance(practice, patient, plan.fields)


# --- the worker ----------------------------------------------------------------------------------------------


def consumer_name() -> str:
    """Unique per process: a restarted worker never inherits a dead one's pending entries by name
    (they are taken over by XAUTOCLAIM once idle long enough, after any call still in flight ended)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{os.urandom(3).hex()}"


class OutboxWorker:
    """One consumer of the outbox group (see the module docstring)."""

    def __init__(
        self,
        outbox: AthenaOutbox,
        client: AthenaClient,
        *,
        lock_secret: bytes,
        consumer: str | None = None,
        metrics: Metrics | None = None,
        block_seconds: float = 1.0,
        gate: RedisGate | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.client = client
        self.settings = outbox.settings
        self.consumer = consumer or consumer_name()
        self._lock_secret = lock_secret
        self._metrics = metrics
        self._block_ms = max(int(block_seconds * 1000), 1)
        self._locks = RedisLock(outbox.redis, gate or RedisGate(timeout=2.0))
        self._rand = rand
        self.processed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; the entries in hand are finished first (graceful drain)."""
        await self.outbox.ensure_group()
        log.info("athenaNet outbox worker %s started", self.consumer)
        while not stop.is_set():
            try:
                await self.step()
            except (RedisError, OSError) as exc:
                log.warning("athenaNet outbox: Redis failed (%s); trying again", type(exc).__name__)
                await _sleep_or_stop(stop, 1.0)
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    with contextlib.suppress(RedisError, OSError):  # Redis lost the stream (restarted empty)
                        await self.outbox.ensure_group()
        log.info("athenaNet outbox worker %s stopped", self.consumer)

    async def step(self) -> int:
        """Promote due retries, take over stale entries or read new ones, and process them."""
        await self.outbox.promote_due()
        entries = await self._stale() or await self._fresh()
        if entries:
            results = await asyncio.gather(
                *(self.process(entry_id, check_id) for entry_id, check_id in entries), return_exceptions=True
            )
            failures = [result for result in results if isinstance(result, BaseException)]
            if failures:  # Redis failed mid-way: the entries stay pending and are claimed again
                raise failures[0]
        await self._report_backlog()
        return len(entries)

    async def _stale(self) -> list[tuple[str, str]]:
        idle_ms = int(self.settings.outbox_claim_idle_seconds * 1000)
        answer = await self.outbox.redis.xautoclaim(
            self.outbox.keys.outbox,
            OUTBOX_GROUP,
            self.consumer,
            idle_ms,
            start_id="0-0",
            count=self.settings.outbox_concurrency,
        )
        return _entries(answer[1] if len(answer) > 1 else [])

    async def _fresh(self) -> list[tuple[str, str]]:
        answer: Any = await self.outbox.redis.xreadgroup(
            OUTBOX_GROUP,
            self.consumer,
            {self.outbox.keys.outbox: ">"},
            count=self.settings.outbox_concurrency,
            block=self._block_ms,
        )
        return [item for _, messages in answer or [] for item in _entries(messages)]

    async def process(self, entry_id: str, check_id: str) -> None:
        """Apply one delivered entry and record what happened (never raises for athenaNet's failures)."""
        with audit_scope(check_id):
            state = await self.outbox.state(check_id)
            if state is None or state.status in FINAL:
                await self.outbox.acknowledge(entry_id)  # a redelivery of a finished (or expired) write-back
                return
            payload = await self.outbox.payload(check_id)
            if payload is None:
                error = ConfigurationError("the write-back payload cannot be read (wrong or rotated cache key?)")
                await self.outbox.bury(entry_id, check_id, error, state.attempts)
                return
            await self._under_patient_lock(entry_id, payload, state.attempts)
        self.processed += 1

    async def _under_patient_lock(self, entry_id: str, payload: WriteBackPayload, attempts: int) -> None:
        lock_key = self.outbox.keys.athena_patient_lock(self._patient_digest(payload.target))
        ttl = self.settings.outbox_claim_idle_seconds  # a dead holder's lock ends when its entries are claimed
        token = await self._locks.acquire(lock_key, ttl)
        if token is None:  # another worker is writing this patient: come back shortly, no attempt spent
            await self.outbox.schedule_retry(
                entry_id,
                payload.check_id,
                0.2 + self._rand() * 0.5,
                status=WriteBackStatus.QUEUED if attempts == 0 else WriteBackStatus.RETRYING,
                code="",
                reason="waiting for another write-back of the same patient",
            )
            return
        heartbeat = asyncio.create_task(self._heartbeat(entry_id, lock_key, token, ttl))
        try:
            state = await self.outbox.state(payload.check_id)  # another delivery may have finished it meanwhile
            if state is not None and state.status in FINAL:
                await self.outbox.acknowledge(entry_id)
                return
            await self._attempt(entry_id, payload, attempts + 1)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(EligibilityError, RedisError, OSError):
                await self._locks.release(lock_key, token)

    async def _heartbeat(self, entry_id: str, lock_key: str, token: str, ttl: float) -> None:
        """While we work, the entry stays ours and the patient locked: a slow athenaNet (writes of 20 s and
        more, retries) must not let another worker claim the entry and write the same check again."""
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(EligibilityError, RedisError, OSError):
                await self.outbox.redis.xclaim(
                    self.outbox.keys.outbox, OUTBOX_GROUP, self.consumer, 0, [entry_id], justid=True
                )
                await self._locks.extend(lock_key, token, ttl)

    async def _attempt(self, entry_id: str, payload: WriteBackPayload, attempt: int) -> None:
        check_id = payload.check_id
        await self.outbox.redis.hset(self.outbox.keys.outbox_item(check_id), "attempts", str(attempt))
        try:
            plan = await apply_write_back(self.client, payload, self.settings)
        except EligibilityError as error:
            await self._failed(entry_id, check_id, error, attempt)
            return
        status = WriteBackStatus.REFUSED if plan.action is Action.REFUSED else WriteBackStatus.APPLIED
        await self.outbox.finish(entry_id, check_id, status, plan)
        log.info(
            "athenaNet write-back %s: %s",
            status.value,
            plan.action.value,
            extra={"check_id": check_id, "changed": list(plan.changed)},
        )

    async def _failed(self, entry_id: str, check_id: str, error: EligibilityError, attempt: int) -> None:
        retryable = isinstance(error, AthenaError) and error.retryable
        if retryable and attempt < self.settings.outbox_max_attempts:
            delay = retry_delay(attempt, self.settings, self._rand())
            await self.outbox.schedule_retry(
                entry_id, check_id, delay, status=WriteBackStatus.RETRYING, code=error.code, reason=error.message[:500]
            )
            log.warning(
                "athenaNet write-back will retry in %.1f s: %s", delay, error.code, extra={"check_id": check_id}
            )
            return
        await self.outbox.bury(entry_id, check_id, error, attempt)
        if self._metrics is not None:
            self._metrics.outbox_dead_letters.inc()
        log.error(
            "athenaNet write-back dead-lettered after %d attempt(s): %s",
            attempt,
            error.code,
            extra={"check_id": check_id},
        )

    def _patient_digest(self, target: WriteTarget) -> str:
        material = f"athena-patient\x00{target.practice_id}\x00{target.patient_id}".encode()
        return hmac.new(self._lock_secret, material, hashlib.sha256).hexdigest()

    async def _report_backlog(self) -> None:
        if self._metrics is not None:
            self._metrics.outbox_backlog.set(await self.outbox.backlog())


def _entries(messages: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry_id, fields in messages or []:
        if not fields:
            continue  # deleted while pending
        check_id = _text(fields.get(b"check_id", fields.get("check_id")))
        if check_id:
            found.append((_text(entry_id) or "", check_id))
    return found


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# --- the entry point ------------------------------------------------------------------------------------------


async def run_outbox_worker(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
    base_url: str | None = None,
    on_ready: Callable[[OutboxWorker], Awaitable[None]] | None = None,
) -> None:
    """``eligibility-svc worker``: apply athenaNet write-backs until SIGTERM/SIGINT (or ``stop``).

    Needs ``redis_url`` (the outbox lives there) and ``athena.base_url`` (or ``base_url``)."""
    if settings.redis_url is None:
        raise ConfigurationError("the athenaNet outbox worker needs redis_url (ELIG_REDIS_URL): the outbox is there")
    athena = settings.athena
    redis = make_redis(settings.redis_url, socket_timeout=athena.request_timeout_seconds + 5.0, connect_timeout=2.0)
    parts = build_athena(settings, redis=redis, base_url=base_url)
    outbox = AthenaOutbox(
        redis,
        keys=RedisKeys(settings.redis_key_prefix),
        codec=ValueCodec.from_settings(settings.cache),
        settings=athena,
    )
    worker = OutboxWorker(
        outbox, parts.client, lock_secret=settings.cache.key_secret.get_secret_value().encode(), metrics=metrics
    )
    stop = stop or stop_on_signals()
    try:
        if on_ready is not None:
            await on_ready(worker)
        await worker.run(stop)
    finally:
        await parts.client.close()
        await redis.aclose()
