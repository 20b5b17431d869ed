"""Builds the athenaNet client from ``Settings``: HTTP pool, token provider, budgets, audit trail.

With Redis the token, the token request budget and the per-practice rates are shared by every
replica, and audit records go to the ``athena:audit`` stream as well as the log; without Redis (the
embedded default) all of it lives in this process.  ``base_url`` overrides the setting (the embedded
default passes the address of the sandbox it started in process).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from eligibility_svc.athena.audit import AuditSink, AuditTrail, LogAuditSink, RedisAuditSink
from eligibility_svc.athena.client import AthenaClient, CallPolicy
from eligibility_svc.athena.http import AiohttpAthenaHttp
from eligibility_svc.athena.ratelimit import Budget, LocalBucket, LocalWindow, RedisBucket, RedisWindow
from eligibility_svc.athena.token import ClientCredentials, RedisTokenStore, TokenProvider
from eligibility_svc.cache import RedisGate, ValueCodec
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import AthenaSettings, Settings


@dataclass(frozen=True, slots=True)
class AthenaParts:
    client: AthenaClient
    tokens: TokenProvider


def call_policy(settings: AthenaSettings) -> CallPolicy:
    return CallPolicy(
        max_attempts=settings.max_attempts,
        backoff_base=settings.backoff_base_seconds,
        backoff_max=settings.backoff_max_seconds,
        max_retry_after=settings.max_retry_after_seconds,
        write_timeout=settings.write_timeout_seconds,
    )


def practice_budgets(settings: AthenaSettings, redis: Redis | None, keys: RedisKeys) -> Callable[[str], Budget]:
    """One budget per practice (its own rate when configured), made on first use."""
    budgets: dict[str, Budget] = {}

    def budget_for(practice_id: str) -> Budget:
        found = budgets.get(practice_id)
        if found is None:
            practice = settings.practices.get(practice_id)
            rate = (practice.requests_per_second if practice else None) or settings.requests_per_second
            burst = max(settings.request_burst, 1)
            found = (
                RedisBucket(redis, keys.athena_rate(practice_id), rate, burst)
                if redis is not None
                else LocalBucket(rate, burst)
            )
            budgets[practice_id] = found
        return found

    return budget_for


def audit_trail(settings: AthenaSettings, redis: Redis | None, keys: RedisKeys, gate: RedisGate) -> AuditSink:
    sinks: list[AuditSink] = [LogAuditSink()]
    if redis is not None and settings.audit_stream_max_len > 0:
        sinks.append(RedisAuditSink(redis, keys.athena_audit, max_len=settings.audit_stream_max_len, gate=gate))
    return AuditTrail(sinks)


def build_athena(
    settings: Settings,
    *,
    redis: Redis | None = None,
    base_url: str | None = None,
    gate: RedisGate | None = None,
    audit: AuditSink | None = None,
) -> AthenaParts:
    """The client for ``settings.athena`` (see the module docstring)."""
    athena = settings.athena
    url = base_url or athena.base_url
    if url is None:
        raise ConfigurationError(
            "athena.base_url is not set: point it at athenaNet (https://api.preview.platform.athenahealth.com) "
            "or at a sandbox started with `eligibility-svc sandbox athena`"
        )
    keys = RedisKeys(settings.redis_key_prefix)
    gate = gate or RedisGate()
    http = AiohttpAthenaHttp(
        url,
        timeout=athena.request_timeout_seconds,
        connect_timeout=athena.connect_timeout_seconds,
        ca_file=athena.ca_file,
    )
    trail = audit or audit_trail(athena, redis, keys, gate)
    tokens = _token_provider(settings, http, redis=redis, keys=keys, gate=gate, audit=trail)
    client = AthenaClient(
        http, tokens, budget_for=practice_budgets(athena, redis, keys), audit=trail, policy=call_policy(athena)
    )
    return AthenaParts(client, tokens)


def _token_provider(
    settings: Settings,
    http: AiohttpAthenaHttp,
    *,
    redis: Redis | None,
    keys: RedisKeys,
    gate: RedisGate,
    audit: AuditSink,
) -> TokenProvider:
    athena = settings.athena
    credentials = ClientCredentials(athena.client_id, athena.client_secret.get_secret_value(), athena.scope)
    # A little longer than the endpoint's window: our clock starts when we decide, athenaNet's when the
    # request arrives, and a request that waited on the wire must not land as one too many.
    window = athena.token_window_seconds * 1.02 + 0.25
    limit = athena.token_requests_per_minute
    if redis is None:
        return TokenProvider(
            http, credentials, LocalWindow(limit, window), margin=athena.token_refresh_margin_seconds, audit=audit
        )
    store = RedisTokenStore(
        redis,
        keys.athena_token(athena.client_id),
        keys.athena_token_lock(athena.client_id),
        codec=ValueCodec.from_settings(settings.cache),
        gate=gate,
    )
    budget = RedisWindow(redis, keys.athena_token_requests(athena.client_id), limit, window)
    return TokenProvider(
        http,
        credentials,
        budget,
        store=store,
        margin=athena.token_refresh_margin_seconds,
        max_wait=window + athena.request_timeout_seconds,
        lock_ttl=athena.request_timeout_seconds + 5.0,
        audit=audit,
    )
