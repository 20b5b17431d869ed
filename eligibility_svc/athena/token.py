"""OAuth2 client credentials for athenaNet: one token per process, shared by replicas, never over the limit.

::

    token() ─► this process's token fresh?  (refreshed ``margin`` seconds before it expires)
                 └─ no: one task per process goes on (asyncio lock), the others wait for it
                      ├─► shared token in Redis fresh? ─► take it
                      └─► Redis lock (one replica fetches) ─► token request budget (sliding window,
                          shared) ─► POST /oauth2/v1/token ─► store it in Redis until its refresh time
                          (others poll the shared token while the lock is held)

The token request is form-encoded ``grant_type=client_credentials`` and ``scope``, the client
authenticated with HTTP Basic.  ``expires_in`` arrives as a number or a string: both are read.
``invalidate(token)`` (the API answered 401) forgets that token here and in Redis, only if it is
still the current one, so a replica that already refreshed is not made to fetch again.

The shared token is sealed with the cache's ``ValueCodec`` (AES-GCM when an encryption key is
configured): it is a credential.  Without Redis (the embedded default) the same flow runs in
process.  The secret comes from settings only and never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from eligibility_svc.athena.audit import AuditSink, new_record
from eligibility_svc.athena.http import AthenaHttp, HttpRequest, HttpResponse
from eligibility_svc.athena.ratelimit import Window
from eligibility_svc.athena.records import as_int
from eligibility_svc.cache import CacheCorrupt, CacheUnavailable, RedisGate, ValueCodec
from eligibility_svc.errors import (
    AthenaAuthFailed,
    AthenaBadResponse,
    AthenaError,
    AthenaRateLimited,
    AthenaUnavailable,
)
from eligibility_svc.singleflight import RedisLock

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/v1/token"  # noqa: S105 (a path, not a password)
DEFAULT_SCOPE = "athena/service/Athenanet.MDP.*"
DEFAULT_LIFETIME = 3600  # seconds, when athenaNet does not say


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # unix seconds (shared across processes, so wall clock)

    def usable(self, now: float, margin: float) -> bool:
        """Still good for ``margin`` seconds more."""
        return now < self.expires_at - margin


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str
    scope: str = DEFAULT_SCOPE

    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class TokenSource(Protocol):
    async def token(self) -> str:
        """A bearer token good for at least the refresh margin."""
        ...

    async def invalidate(self, token: str) -> None:
        """``token`` was refused (401): do not hand it out again."""
        ...


# --- the token request -----------------------------------------------------------------------------


def read_token(payload: Any, now: float) -> AccessToken:
    """An ``AccessToken`` from the token endpoint's JSON; ``expires_in`` as number or string."""
    if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
        raise AthenaBadResponse("the athenaNet token endpoint answered without an access_token", details={})
    lifetime = as_int(payload.get("expires_in"))
    if lifetime is None or lifetime <= 0:
        lifetime = DEFAULT_LIFETIME
    return AccessToken(payload["access_token"], now + lifetime)


async def request_token(
    http: AthenaHttp, credentials: ClientCredentials, *, clock: Callable[[], float], audit: AuditSink | None = None
) -> AccessToken:
    """One POST to the token endpoint; the endpoint's refusals become typed errors."""
    form = {"grant_type": "client_credentials", "scope": credentials.scope}
    request = HttpRequest("POST", TOKEN_PATH, TOKEN_PATH, form=form, headers={"Authorization": credentials.basic()})
    started, began = clock(), time.monotonic()
    status, outcome = 0, "ok"
    try:
        response = await http.send(request)
        status = response.status
        return _token_from(response, started)
    except AthenaError as exc:
        outcome = exc.code
        raise
    finally:
        if audit is not None:
            await audit.record(
                new_record(
                    started=started,
                    method="POST",
                    endpoint=TOKEN_PATH,
                    status=status,
                    outcome=outcome,
                    duration=time.monotonic() - began,
                    attempt=1,
                    practice_id=None,
                )
            )


def _token_from(response: HttpResponse, started: float) -> AccessToken:
    details = {"endpoint": TOKEN_PATH, "status": response.status}
    if response.status == 200:
        return read_token(response.json(TOKEN_PATH), started)
    if response.status == 429:
        raise AthenaRateLimited("the athenaNet token endpoint refused: too many token requests", details=details)
    if response.status in (400, 401, 403):
        raise AthenaAuthFailed(
            f"the athenaNet token endpoint refused the client credentials (HTTP {response.status}); "
            "check athena.client_id, athena.client_secret and athena.scope",
            details=details,
        )
    raise AthenaUnavailable(f"the athenaNet token endpoint answered HTTP {response.status}", details=details)


# --- where a token is shared ---------------------------------------------------------------------------


class RedisTokenStore:
    """The shared token of one client in Redis, sealed, expiring at its refresh time."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        lock_key: str,
        *,
        codec: ValueCodec | None = None,
        gate: RedisGate | None = None,
    ) -> None:
        self._redis = redis
        self._key = key
        self.lock_key = lock_key
        self._codec = codec or ValueCodec()
        self.gate = gate or RedisGate()
        self.lock = RedisLock(redis, self.gate)

    async def get(self) -> AccessToken | None:
        blob = await self.gate.call("athena_token_get", self._redis.get(self._key))
        if blob is None:
            return None
        try:
            entry = self._codec.decode(self._key, blob if isinstance(blob, bytes) else blob.encode())
            return AccessToken(str(entry.value["access_token"]), float(entry.value["expires_at"]))
        except (CacheCorrupt, KeyError, TypeError, ValueError):
            return None

    async def put(self, token: AccessToken, keep_seconds: float) -> None:
        if keep_seconds <= 0:
            return
        value = {"access_token": token.value, "expires_at": token.expires_at}
        blob = self._codec.encode(self._key, value, time.time())
        await self.gate.call("athena_token_put", self._redis.set(self._key, blob, px=int(keep_seconds * 1000)))

    async def forget(self, token: str) -> None:
        """Delete the shared token if it is still ``token``."""
        current = await self.get()
        if current is not None and current.value == token:
            await self.gate.call("athena_token_forget", self._redis.delete(self._key))


# --- the provider -------------------------------------------------------------------------------------


class TokenProvider:
    """``TokenSource`` for one client: see the module docstring.  One per process."""

    def __init__(
        self,
        http: AthenaHttp,
        credentials: ClientCredentials,
        budget: Window,
        *,
        store: RedisTokenStore | None = None,
        margin: float = 60.0,
        max_wait: float = 65.0,
        lock_ttl: float = 20.0,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self._http = http
        self._audit = audit
        self._credentials = credentials
        self._budget = budget
        self._store = store
        self._margin = margin
        self._max_wait = max_wait  # how long a caller may wait for the token budget or another replica
        self._lock_ttl = lock_ttl
        self._clock = clock
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0  # token requests this process made (tests, metrics)

    async def token(self) -> str:
        current = self._current
        if current is not None and current.usable(self._clock(), self._margin):
            return current.value
        async with self._lock:
            current = self._current
            if current is None or not current.usable(self._clock(), self._margin):
                current = self._current = await self._obtain()
            return current.value

    async def invalidate(self, token: str) -> None:
        if self._current is not None and self._current.value == token:
            self._current = None
        if self._store is not None:
            try:
                await self._store.forget(token)
            except CacheUnavailable:
                return

    async def _obtain(self) -> AccessToken:
        deadline = time.monotonic() + self._max_wait
        if self._store is None:
            return await self._fetch(deadline)
        try:
            return await self._obtain_shared(self._store, deadline)
        except CacheUnavailable:
            log.warning("athenaNet token: Redis unavailable, fetching in this process only")
            return await self._fetch(deadline)

    async def _obtain_shared(self, store: RedisTokenStore, deadline: float) -> AccessToken:
        pause = 0.02
        while True:
            shared = await store.get()
            if shared is not None and shared.usable(self._clock(), self._margin):
                return shared
            holder = await store.lock.acquire(store.lock_key, self._lock_ttl)
            if holder is not None:
                try:
                    return await self._fetch_and_share(store, deadline)
                finally:
                    await store.lock.release(store.lock_key, holder)
            if time.monotonic() + pause > deadline:
                raise AthenaRateLimited(
                    "no athenaNet token became available in time (another replica holds the token lock)",
                    details={"local": True, "limit": "token_lock"},
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def _fetch_and_share(self, store: RedisTokenStore, deadline: float) -> AccessToken:
        shared = await store.get()  # another replica may have stored one while we took the lock
        if shared is not None and shared.usable(self._clock(), self._margin):
            return shared
        token = await self._fetch(deadline)
        await store.put(token, token.expires_at - self._margin - self._clock())
        return token

    async def _fetch(self, deadline: float) -> AccessToken:
        ticket = await self._budget.take(deadline)
        self.fetched += 1
        try:
            return await request_token(self._http, self._credentials, clock=self._clock, audit=self._audit)
        except AthenaError as exc:
            if exc.details.get("sent") is False:  # never reached athenaNet (down): it did not count there
                await self._budget.give_back(ticket)
            log.warning("athenaNet token request failed: %s", exc.code)
            raise
