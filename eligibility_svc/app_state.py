"""Everything the service holds while it runs, opened from ``Settings`` and closed again.

::

    build_runtime(settings)
      Metrics (its own CollectorRegistry)
      redis_url set?  make_redis + RedisGate (errors → metric, availability → gauge)
                      ├─ RedisCache (answers, coverage entries, check records; in-process fallback for records)
                      ├─ RedisSingleFlight, RedisControlNumbers
                      └─ (shared by the clearinghouse's per-payer limiter)
                  else MemoryCache, LocalSingleFlight, MemoryControlNumbers
      clearinghouse stack (factory.build_clearinghouse; the in-process sandbox on 127.0.0.1 by default)
      EligibilityService

``build_runtime(settings)`` can be used both ways::

    async with build_runtime(settings) as runtime: ...     # aiohttp cleanup_ctx, workers
    runtime = await build_runtime(settings); ...; await runtime.aclose()

Closing cancels payer calls still in flight, closes the clearinghouse stack (and the sandbox), then
Redis, in that order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType

from redis.asyncio import Redis

from eligibility_svc.athena.intake import AthenaIntake, open_athena_intake
from eligibility_svc.cache import Cache, MemoryCache, RedisCache, RedisGate, ValueCodec, make_redis
from eligibility_svc.clearinghouse.factory import ClearinghouseStack, build_clearinghouse
from eligibility_svc.control_numbers import ControlNumbers, MemoryControlNumbers, RedisControlNumbers
from eligibility_svc.metrics import Metrics
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.service import CheckStore, EligibilityService, WriteBackSink
from eligibility_svc.settings import Settings
from eligibility_svc.singleflight import LocalSingleFlight, RedisSingleFlight, SingleFlight
from eligibility_svc.x12.fastcheck import compile_maps
from eligibility_svc.x12.procedures import load_table
from eligibility_svc.x12.validate import load_map, map_file_for

MEMORY_CACHE_ENTRIES = 10_000  # answers kept in process on the embedded default
MEMORY_CHECK_RECORDS = 10_000  # check records kept in process (embedded default, or while Redis is down)
REDIS_CALL_TIMEOUT = 0.5  # seconds, any one Redis call: a slow Redis must not slow checks much
LOCK_TTL_SECONDS = 5.0  # how long a crashed replica's single-flight lock blocks the others


@dataclass(slots=True)
class Runtime:
    """The open resources; ``service`` is what handlers call."""

    settings: Settings
    metrics: Metrics
    service: EligibilityService
    clearinghouse: ClearinghouseStack
    cache: Cache
    redis: Redis | None = None
    gate: RedisGate | None = None
    athena: AthenaIntake | None = None  # checks by athenaNet patient id and their write-backs
    _resources: AsyncExitStack = field(default_factory=AsyncExitStack, repr=False)

    @property
    def sandbox(self) -> bool:
        """True when the clearinghouse is the in-process sandbox: every answer is simulated."""
        return self.clearinghouse.sandbox is not None

    async def aclose(self) -> None:
        """Close everything opened, last opened first.  Idempotent."""
        await self._resources.aclose()


class RuntimeOpening:
    """What ``build_runtime`` returns: await it for a ``Runtime``, or use it as an async context manager."""

    def __init__(self, open_runtime: Callable[[], Awaitable[Runtime]]) -> None:
        self._open = open_runtime
        self._runtime: Runtime | None = None

    def __await__(self) -> Generator[object, None, Runtime]:
        return self._open().__await__()

    async def __aenter__(self) -> Runtime:
        self._runtime = await self._open()
        return self._runtime

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()


def build_runtime(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    writeback: WriteBackSink | None = None,
    clock: Callable[[], float] = time.time,
) -> RuntimeOpening:
    """Open what ``settings`` describe (see the module docstring).

    ``metrics``: a ``Metrics`` on a registry the caller owns (default: a fresh one); ``writeback``: the
    athenaNet write-back sink (default: not configured); ``clock``: unix seconds (tests).
    Raises ``ConfigurationError`` for settings that cannot work, with nothing left open.
    """
    return RuntimeOpening(lambda: _open(settings, metrics or Metrics(), writeback, clock))


async def _open(
    settings: Settings, metrics: Metrics, writeback: WriteBackSink | None, clock: Callable[[], float]
) -> Runtime:
    resources = AsyncExitStack()
    try:
        return await _assemble(settings, metrics, writeback, clock, resources)
    except BaseException:
        await resources.aclose()
        raise


async def _assemble(
    settings: Settings,
    metrics: Metrics,
    writeback: WriteBackSink | None,
    clock: Callable[[], float],
    resources: AsyncExitStack,
) -> Runtime:
    keys = RedisKeys(settings.redis_key_prefix)
    codec = ValueCodec.from_settings(settings.cache)
    table = load_table(settings.x12.procedure_map_file)
    _warm_validation(settings)
    redis, gate = _open_redis(settings, metrics, resources)
    parts = _RedisParts(redis, gate, keys, codec, settings) if redis and gate else _MemoryParts(codec)
    stack = await build_clearinghouse(settings, redis=redis, observer=metrics)
    resources.push_async_callback(stack.close)
    athena = await open_athena_intake(settings, resources=resources, redis=redis, gate=gate)
    service = EligibilityService(
        settings,
        transport=stack.transport,
        cache=parts.cache,
        checks=CheckStore(parts.records, keys, fallback=parts.records_fallback),
        flight=parts.flight,
        control_numbers=parts.control_numbers,
        metrics=metrics,
        keys=keys,
        writeback=writeback or athena.sink,
        table=table,
        breakers=stack.breakers,
        endpoint_name=stack.transport.endpoint_name,
        limiter=stack.limiter,
        redis_configured=redis is not None,
        sandbox=stack.sandbox is not None,
        clock=clock,
    )
    resources.push_async_callback(service.aclose)
    if redis is not None:
        metrics.set_cache_available(await parts.cache.ping())
    return Runtime(settings, metrics, service, stack, parts.cache, redis, gate, athena, resources)


def _warm_validation(settings: Settings) -> None:
    """Parse the X12 maps (pyx12's, and the fast pre-check's tables) now rather than during the first check."""
    if settings.x12.validation != "off":
        for set_id in ("270", "271"):
            load_map(map_file_for(set_id))
        compile_maps()


def _open_redis(
    settings: Settings, metrics: Metrics, resources: AsyncExitStack
) -> tuple[Redis | None, RedisGate | None]:
    if not settings.redis_url:
        return None, None
    redis = make_redis(settings.redis_url)
    resources.push_async_callback(redis.aclose)
    gate = RedisGate(timeout=REDIS_CALL_TIMEOUT, on_error=metrics.redis_error, on_available=metrics.set_cache_available)
    return redis, gate


class _MemoryParts:
    """The embedded default: everything in this process."""

    def __init__(self, codec: ValueCodec) -> None:
        self.cache: Cache = MemoryCache(max_entries=MEMORY_CACHE_ENTRIES, codec=codec)
        self.records: Cache = MemoryCache(max_entries=MEMORY_CHECK_RECORDS, codec=codec)
        self.records_fallback: Cache | None = None
        self.flight: SingleFlight = LocalSingleFlight()
        self.control_numbers: ControlNumbers = MemoryControlNumbers()


class _RedisParts:
    """Shared through Redis by every replica; records also kept here while Redis fails."""

    def __init__(self, redis: Redis, gate: RedisGate, keys: RedisKeys, codec: ValueCodec, settings: Settings) -> None:
        self.cache: Cache = RedisCache(redis, codec=codec, gate=gate)
        self.records: Cache = self.cache
        self.records_fallback: Cache | None = MemoryCache(max_entries=MEMORY_CHECK_RECORDS, codec=codec)
        # A waiter gives up on a live but stuck holder only after the holder's own deadline.
        max_wait = settings.clearinghouse.deadline_seconds + LOCK_TTL_SECONDS
        self.flight: SingleFlight = RedisSingleFlight(
            redis, keys, gate=gate, lock_ttl=LOCK_TTL_SECONDS, max_wait=max_wait
        )
        self.control_numbers: ControlNumbers = RedisControlNumbers(redis, keys, gate=gate)
