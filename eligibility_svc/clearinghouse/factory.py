"""Build the clearinghouse stack the settings describe, and take it down again.

::

    settings.clearinghouse.transport
      core_mime  → CoreMimeTransport ─┐
      core_soap  → CoreSoapTransport ─┼─► ResilientTransport (retries, BreakerBoard, PayerLimiter)
      sandbox    → the sandbox app on 127.0.0.1:<free port>, spoken to over a real socket with
                   the real CORE transport (clearinghouse.sandbox.envelope picks MIME or SOAP)

    limiter: "redis" (or "auto" with a Redis client or redis_url) → RedisPayerLimiter, else in process.

Use it from aiohttp's ``cleanup_ctx`` (``async with open_clearinghouse(settings) as stack``) or
call ``build_clearinghouse`` and later ``await stack.close()``.  ``stack.transport`` is the
``Transport`` the service calls; ``stack.breakers`` feeds metrics and readiness.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis

from eligibility_svc.cache import make_redis
from eligibility_svc.clearinghouse.breaker import BreakerBoard, BreakerConfig
from eligibility_svc.clearinghouse.core_mime import CoreMimeTransport
from eligibility_svc.clearinghouse.core_soap import CoreSoapTransport
from eligibility_svc.clearinghouse.http_client import HttpEndpoint, tls_context
from eligibility_svc.clearinghouse.limiter import LocalPayerLimiter, PayerLimiter, PayerLimits, RedisPayerLimiter
from eligibility_svc.clearinghouse.resilience import Observer, ResilientTransport, RetryPolicy
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import SandboxClearinghouseConfig
from eligibility_svc.sandbox.clearinghouse import RunningSandbox, start_sandbox_clearinghouse
from eligibility_svc.settings import ClearinghouseSettings, Settings


@dataclass(slots=True)
class ClearinghouseStack:
    """What the service holds while it runs."""

    transport: ResilientTransport
    breakers: BreakerBoard
    limiter: PayerLimiter
    sandbox: RunningSandbox | None = None
    _owned_redis: Redis | None = field(default=None, repr=False)

    async def close(self) -> None:
        await self.transport.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        if self._owned_redis is not None:
            await self._owned_redis.aclose()


@asynccontextmanager
async def open_clearinghouse(
    settings: Settings,
    *,
    redis: Redis | None = None,
    observer: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[ClearinghouseStack]:
    """``build_clearinghouse`` as an async context manager (for aiohttp's ``cleanup_ctx``)."""
    stack = await build_clearinghouse(settings, redis=redis, observer=observer, clock=clock)
    try:
        yield stack
    finally:
        await stack.close()


async def build_clearinghouse(
    settings: Settings,
    *,
    redis: Redis | None = None,
    observer: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ClearinghouseStack:
    """The configured transport stack; starts the sandbox when the transport is ``sandbox``.

    ``redis`` is the app's client (for shared per-payer limits); ``observer`` receives every attempt
    and retry (pass the app's ``metrics.Metrics``).  Raises ``ConfigurationError`` naming the setting
    to fix before anything is opened or started.
    """
    ch = settings.clearinghouse
    real = _real_transport(settings) if ch.transport != "sandbox" else None
    limiter, owned = _limiter(settings, redis, clock)
    sandbox = None
    try:
        if real is not None:
            inner, endpoint = real
        else:
            sandbox = await start_sandbox_clearinghouse(SandboxClearinghouseConfig.from_settings(settings))
            inner, endpoint = _sandbox_transport(settings, sandbox)
    except BaseException:
        if owned is not None:
            await owned.aclose()
        raise
    breakers = BreakerBoard(
        endpoint=BreakerConfig(ch.breaker_failure_threshold, ch.breaker_reset_seconds),
        payer=BreakerConfig(ch.payer_breaker_failure_threshold, ch.payer_breaker_reset_seconds),
        clock=clock,
    )
    transport = ResilientTransport(
        inner,
        endpoint_name=endpoint.name,
        envelope=inner.envelope,
        policy=retry_policy(ch),
        breakers=breakers,
        limiter=limiter,
        clock=clock,
        observer=observer,
    )
    return ClearinghouseStack(transport, breakers, limiter, sandbox, owned)


def retry_policy(ch: ClearinghouseSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=ch.max_attempts,
        attempt_timeout=ch.attempt_timeout_seconds,
        backoff_base=ch.backoff_base_seconds,
        backoff_max=ch.backoff_max_seconds,
        max_retry_after=ch.max_retry_after_seconds,
    )


def _real_transport(settings: Settings) -> tuple[CoreMimeTransport | CoreSoapTransport, HttpEndpoint]:
    ch = settings.clearinghouse
    if not ch.url:
        raise ConfigurationError(f"clearinghouse.transport is {ch.transport} but clearinghouse.url is not set")
    if ch.client_key_file is not None and ch.client_cert_file is None:
        raise ConfigurationError("clearinghouse.client_key_file is set without clearinghouse.client_cert_file")
    password = ch.password.get_secret_value() if ch.password is not None else None
    if ch.client_cert_file is None and not (ch.username and password):
        raise ConfigurationError(
            "the clearinghouse needs credentials: clearinghouse.username and clearinghouse.password "
            "(ELIG_CLEARINGHOUSE__USERNAME / __PASSWORD, or the secrets directory), or a client certificate"
        )
    endpoint = HttpEndpoint(
        ch.url,
        ssl_context=tls_context(ch.ca_file, ch.client_cert_file, ch.client_key_file),
        connect_timeout=ch.connect_timeout_seconds,
        max_connections=ch.max_connections,
    )
    kind = CoreMimeTransport if ch.transport == "core_mime" else CoreSoapTransport
    sender = ch.sender_id or settings.x12.sender_id
    transport = kind(endpoint, sender_id=sender, receiver_id=ch.receiver_id, username=ch.username, password=password)
    return transport, endpoint


def _sandbox_transport(
    settings: Settings, sandbox: RunningSandbox
) -> tuple[CoreMimeTransport | CoreSoapTransport, HttpEndpoint]:
    """The real CORE transport, pointed at the in-process sandbox over 127.0.0.1."""
    ch, box = settings.clearinghouse, settings.clearinghouse.sandbox
    soap = box.envelope == "core_soap"
    endpoint = HttpEndpoint(
        sandbox.soap_url if soap else sandbox.mime_url,
        connect_timeout=ch.connect_timeout_seconds,
        max_connections=ch.max_connections,
    )
    kind = CoreSoapTransport if soap else CoreMimeTransport
    return kind(
        endpoint,
        sender_id=ch.sender_id or settings.x12.sender_id,
        receiver_id=box.receiver_id,
        username=box.username,
        password=box.password.get_secret_value(),
    ), endpoint


def _limiter(settings: Settings, redis: Redis | None, clock: Callable[[], float]) -> tuple[PayerLimiter, Redis | None]:
    ch = settings.clearinghouse
    limits = PayerLimits(ch.per_payer_concurrency, ch.per_payer_rate_per_second, ch.per_payer_rate_burst)
    overrides = {
        payer: PayerLimits(own.concurrency, own.rate_per_second, own.burst) for payer, own in ch.payer_limits.items()
    }
    wants_redis = ch.limiter == "redis" or (ch.limiter == "auto" and (redis is not None or settings.redis_url))
    if not wants_redis:
        return LocalPayerLimiter(limits, overrides, clock=clock), None
    owned = None
    if redis is None:
        if not settings.redis_url:
            raise ConfigurationError("clearinghouse.limiter is redis but redis_url is not set")
        redis = owned = make_redis(settings.redis_url)
    keys = RedisKeys(settings.redis_key_prefix)
    return RedisPayerLimiter(redis, limits, overrides, keys=keys, clock=clock), owned
