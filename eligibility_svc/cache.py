"""The answer cache: pure keys and value encoding, then a Redis and an in-memory implementation.

Keys hold no patient data: they are HMAC-SHA256 (``CacheSettings.key_secret``) of the normalized
question (see ``check_digests``), placed under the prefix by ``redis_keys.RedisKeys``.

Values are JSON, never pickle, in a small binary envelope::

    b"J" + document                                  plain (embedded default, or no key configured)
    b"E" + key_id(1) + nonce(12) + AES-256-GCM(document)   encrypted; AAD = header + the Redis key

    document = json [+ b"\n" + attachment]

The optional attachment is opaque bytes kept with the value and sealed with it (the service keeps
a summary's ready-to-send JSON there, so a hit neither parses nor escapes it); compact JSON never
holds a raw newline, so the first one ends the JSON.

``key_id`` is a fingerprint byte of the key, so a rotated key turns old entries into misses
instead of garbage, and the AAD binds a ciphertext to its key: an entry copied onto another
patient's key does not decrypt.  An undecodable entry is a miss, reported through the error hook.

Redis is optional at run time: every call has a deadline (client socket timeouts plus an overall
one), failures become ``CacheUnavailable`` at this edge, are counted through the hook and read as a
miss (or a no-op for writes), and the client reconnects by itself when Redis comes back.
``set_many`` (one pipeline, not a transaction) saves round trips for entries written together, under
the same deadline and translation; it can also release a single-flight lock after the writes
(``LockRelease``: compare-and-delete, last in the pipeline), so the holder's waiters find the answer
stored as soon as the lock is gone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, ClassVar, Final, Protocol, TypeVar, cast

import pydantic_core
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError

from eligibility_svc.errors import ConfigurationError, EligibilityError
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.redis_pipeline import pipelined
from eligibility_svc.settings import CacheSettings

T = TypeVar("T")
JsonObject = dict[str, Any]
# What an entry keeps: a JSON object, or the compact JSON of one already made (pydantic-core's
# ``to_json`` of a model: kept without a second serialization).  Read back, it is always the object.
EntryValue = JsonObject | bytes
ErrorHook = Callable[[str, BaseException], None]

KEY_VERSION = "v1"  # part of every HMAC input: change it when the normalization changes


class CacheUnavailable(EligibilityError):
    """Redis did not answer in time or failed.  Never reaches an API caller: a miss / no-op."""

    code: ClassVar[str] = "cache.unavailable"
    http_status: ClassVar[int] = 503


class CacheCorrupt(EligibilityError):
    """A stored value cannot be read (wrong or rotated key, tampering, not our format)."""

    code: ClassVar[str] = "cache.corrupt"
    http_status: ClassVar[int] = 500


# --- normalization and keys (pure) ----------------------------------------------------------------

# CORE 258: suffixes and titles are dropped from a last name when punctuation or a space separates
# them at its end ("SMITH, JR." and "Smith Jr" are one person, "JRSMITH" is not touched).
_NAME_SUFFIX = re.compile(r"[\s,.]+(JR|SR|I{1,3}|IV|V|VI{1,3}|IX|X|2ND|3RD|4TH|MD|DDS|DMD|DO|DC|PHD|RN|ESQ)\.?\s*$")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def _ascii_upper(value: str) -> str:
    """Upper case with accents folded (``"Muñoz"`` → ``"MUNOZ"``)."""
    if value.isascii():  # NFKD leaves ASCII as it is: the common case, without the per-character walk
        return value.upper()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def normalize_name(value: str | None) -> str:
    """Upper-case letters and digits only; ``None`` is ``""``."""
    text = _ascii_upper(value or "")
    return text if text.isalnum() and text.isascii() else _NOT_ALNUM.sub("", text)


def normalize_last_name(value: str | None) -> str:
    """A last name normalized as CORE 258 asks: suffixes after punctuation dropped, then letters/digits."""
    text = _ascii_upper(value or "").strip()
    if text.isalnum() and text.isascii():  # no punctuation or space, so no suffix to drop
        return text
    while (stripped := _NAME_SUFFIX.sub("", text)) != text and normalize_name(stripped):
        text = stripped
    return normalize_name(text)


def normalize_member_id(value: str | None) -> str:
    """The member ID as payers compare it: upper case, no whitespace."""
    return "".join((value or "").split()).upper()


def _identity(request: EligibilityRequest) -> list[str]:
    """Who is asked about, and of whom: payer, member, patient (and subscriber), provider."""
    subscriber = request.subscriber
    return [
        request.payer.id.strip().upper(),
        normalize_member_id(request.member_id),
        normalize_last_name(request.patient.last_name),
        normalize_name(request.patient.first_name),
        request.patient.birth_date.isoformat() if request.patient.birth_date else "",
        normalize_last_name(subscriber.last_name) if subscriber else "",
        normalize_name(subscriber.first_name) if subscriber else "",
        subscriber.birth_date.isoformat() if subscriber and subscriber.birth_date else "",
        request.provider.npi,
    ]


def _dates(request: EligibilityRequest) -> list[str]:
    service = request.service
    return [service.date.isoformat(), (service.end_date or service.date).isoformat()]


def inquiry_codes(request: EligibilityRequest) -> list[str]:
    """The asked-about codes, sorted and de-duplicated; none at all means STC 30, as in the 270."""
    service = request.service
    codes = {f"STC:{code}" for code in service.service_types}
    for procedure in service.procedures:
        modifiers = ",".join(sorted(procedure.modifiers))
        codes.add(f"{procedure.qualifier}:{procedure.code.upper()}:{modifiers}")
    if not codes:
        codes.add("STC:30")
    if service.place_of_service:
        codes.add(f"POS:{service.place_of_service}")
    return sorted(codes)


class CheckDigests:
    """Hex HMAC digests naming one check: ``exact`` (the whole question) and ``coverage`` (the same
    patient, payer, provider and dates, any codes) for coverage-aware reuse.

    ``coverage`` is computed when asked: a cache hit, the common case, only needs ``exact``."""

    __slots__ = ("_base", "_coverage", "_secret", "exact")

    def __init__(self, secret: bytes, base: str, codes: str) -> None:
        self._secret = secret
        self._base = base
        self._coverage: str | None = None
        self.exact = _digest(secret, f"{_EXACT},{base},{codes}")

    @property
    def coverage(self) -> str:
        if self._coverage is None:  # once: a fresh check reads it for the lookup and again to store
            self._coverage = _digest(self._secret, f"{_COVERAGE},{self._base}")
        return self._coverage

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckDigests):
            return NotImplemented
        return (self.exact, self.coverage) == (other.exact, other.coverage)

    def __hash__(self) -> int:
        return hash(self.exact)

    def __repr__(self) -> str:
        return f"CheckDigests(exact={self.exact!r}, coverage={self.coverage!r})"


def _framed(parts: Iterable[str]) -> str:
    """``parts`` JSON-framed, without the brackets: ``json.dumps(list(parts), separators=(",", ":"),
    ensure_ascii=True)[1:-1]``, without building an encoder.  The framing keeps parts unambiguous
    ("AB"+"C" differs from "A"+"BC"); joining framed runs with "," frames their concatenation."""
    return ",".join(map(_json_string, parts))


_EXACT = _framed([KEY_VERSION, "exact"])
_COVERAGE = _framed([KEY_VERSION, "coverage"])


def _digest(secret: bytes, framed: str) -> str:
    return hmac.new(secret, f"[{framed}]".encode(), hashlib.sha256).hexdigest()


def check_digests(request: EligibilityRequest, secret: bytes) -> CheckDigests:
    """The keys' digests for ``request``; equal for requests that differ only in spelling."""
    base = _framed([*_identity(request), *_dates(request)])  # never empty, nor are the codes
    return CheckDigests(secret, base, _framed(inquiry_codes(request)))


def key_secret(settings: CacheSettings) -> bytes:
    """The HMAC key for cache keys."""
    return settings.key_secret.get_secret_value().encode()


# --- values (pure) --------------------------------------------------------------------------------

_PLAIN = b"J"
_SEALED = b"E"
_NONCE_BYTES = 12
_ATTACHED = b"\n"  # never in compact JSON: ends the JSON of a document with an attachment


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored JSON object, when it was stored (unix seconds), and the bytes attached to it."""

    value: JsonObject
    stored_at: float
    attachment: bytes = b""


def parse_encryption_key(text: str) -> bytes:
    """A base64 (standard or URL-safe) AES-256 key; ``ConfigurationError`` unless it is 32 bytes."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)  # URL-safe keys often come unpadded
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError("cache.encryption_key is not base64") from exc
    if len(raw) != 32:
        raise ConfigurationError(f"cache.encryption_key must be 32 bytes (AES-256), got {len(raw)}")
    return raw


def key_id(key: bytes) -> int:
    """The fingerprint byte written before each ciphertext (tells rotated keys apart)."""
    return hashlib.sha256(b"eligibility-svc cache value key\x00" + key).digest()[0]


class ValueCodec:
    """Encodes entries as JSON, sealed with AES-256-GCM when keys are given.

    ``keys[0]`` encrypts; every key decrypts (old keys stay readable during a rotation).
    With no keys, entries are plain and sealed entries are unreadable, and the reverse.
    """

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        for key in keys:
            if len(key) != 32:
                raise ConfigurationError("AES-256-GCM keys are 32 bytes")
        self._current = (key_id(keys[0]), AESGCM(keys[0])) if keys else None
        self._by_id = {key_id(key): AESGCM(key) for key in reversed(keys)}

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> ValueCodec:
        if settings.encryption_key is None:
            return cls()
        return cls([parse_encryption_key(settings.encryption_key.get_secret_value())])

    @property
    def encrypts(self) -> bool:
        return self._current is not None

    def encode(self, redis_key: str, value: EntryValue, stored_at: float, attachment: bytes = b"") -> bytes:
        document = _document(value, stored_at)
        if attachment:
            document = b"".join((document, _ATTACHED, attachment))
        if self._current is None:
            return _PLAIN + document
        kid, aead = self._current
        header = _SEALED + bytes([kid])
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + aead.encrypt(nonce, document, header + redis_key.encode())

    def decode(self, redis_key: str, blob: bytes) -> CacheEntry:
        """The entry in ``blob``; ``CacheCorrupt`` when it cannot be read with our keys."""
        if blob[:1] == _PLAIN and self._current is None:
            return _entry(blob, 1)  # read in place: the attachment (a whole summary) is copied once
        return _entry(self._open(redis_key, blob))

    def _open(self, redis_key: str, blob: bytes) -> bytes:
        kind = blob[:1]
        if kind == _SEALED and self._current is not None and len(blob) > 2 + _NONCE_BYTES:
            aead = self._by_id.get(blob[1])
            if aead is None:
                raise CacheCorrupt("cached value sealed with an unknown key", details={"key_id": blob[1]})
            nonce = blob[2 : 2 + _NONCE_BYTES]
            try:
                return aead.decrypt(nonce, blob[2 + _NONCE_BYTES :], blob[:2] + redis_key.encode())
            except InvalidTag as exc:
                raise CacheCorrupt("cached value does not authenticate") from exc
        # A plain entry when we encrypt is refused too: it could be an injected answer.
        raise CacheCorrupt("cached value is not in the configured format")


_STRICT_JSON: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # made once: not per call


def _document(value: EntryValue, stored_at: float) -> bytes:
    """``{"at": stored_at, "v": value}`` as compact JSON.  A dict goes through the strict stdlib encoder
    (``TypeError`` for anything that is not JSON); JSON bytes a model made are put in as they are."""
    if not isinstance(value, bytes):
        return _STRICT_JSON.encode({"at": stored_at, "v": value}).encode()
    if not math.isfinite(stored_at):
        raise ValueError(f"an entry's time must be finite, not {stored_at!r}")
    if not value.startswith(b"{") or _ATTACHED in value:
        raise ValueError("an entry's value is one JSON object in compact form")
    return b"".join((b'{"at":', float.__repr__(stored_at).encode(), b',"v":', value, b"}"))


def _entry(document: bytes, start: int = 0) -> CacheEntry:
    """The entry in ``document[start:]``."""
    cut = document.find(_ATTACHED, start)
    head, attachment = (document[start:], b"") if cut < 0 else (document[start:cut], document[cut + 1 :])
    try:
        data = pydantic_core.from_json(head)  # a third of json.loads' time
        value, stored_at = data["v"], float(data["at"])
    except (ValueError, TypeError, KeyError) as exc:
        raise CacheCorrupt("cached value is not an entry") from exc
    if not isinstance(value, dict):
        raise CacheCorrupt("cached value is not a JSON object")
    return CacheEntry(value=value, stored_at=stored_at, attachment=attachment)


# --- the seam -------------------------------------------------------------------------------------

# Compare-and-delete: only the token's owner may release a lock (``singleflight.RedisLock``), so a
# holder that outlived its lock cannot remove the lock of the replica that took over.
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(slots=True)
class LockRelease:
    """A lock held in ``redis`` (``key``, ``token``) that ``set_many`` releases after its writes when it
    writes to that client; ``released`` then tells the holder it need not (nor may: it may be
    someone else's lock by now) release it itself."""

    redis: Redis
    key: str
    token: str
    released: bool = False


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """One entry for ``Cache.set_many``: as ``Cache.set``'s arguments."""

    key: str
    value: EntryValue
    ttl_seconds: float
    attachment: bytes = b""


class Cache(Protocol):
    """Where answers are kept.  Never raises for an unavailable store: a miss, or a no-op."""

    async def get(self, key: str) -> CacheEntry | None:
        """The entry at ``key`` if present, unexpired and readable."""
        ...

    async def set(self, key: str, value: EntryValue, ttl_seconds: float, *, attachment: bytes = b"") -> bool:
        """Keep ``value`` (and ``attachment``, see ``ValueCodec``) for ``ttl_seconds`` (nothing kept
        when <= 0); whether it was kept."""
        ...

    async def set_many(self, writes: Sequence[CacheWrite], *, release: LockRelease | None = None) -> list[bool]:
        """``set`` for each of ``writes``, in order, at once (one Redis round trip); whether each was kept.
        A store that fails part-way reports none kept (it cannot tell which were).  ``release``: a lock
        to release after the writes in the same round trip when it lives in this store (then marked
        ``released``); otherwise it is left to its holder."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> bool:
        """Whether the store answers now (readiness)."""
        ...


def _ignore(operation: str, error: BaseException) -> None:
    """The default error hook (the app passes ``Metrics.redis_error``)."""


# --- Redis ----------------------------------------------------------------------------------------


class WaitingConnectionPool(ConnectionPool):
    """redis-py's plain pool, which waits up to ``timeout`` seconds for a free connection when all
    ``max_connections`` are busy instead of failing at once.

    redis-py's ``BlockingConnectionPool`` also waits, but it takes a condition lock and starts a timer
    on every checkout, busy or not, which measured as half the cost of a cached GET.  Here a free
    connection is taken at once; only a caller that finds none waits, in line, for the next release.

    A checkout does not probe the socket (redis-py's pool tries a zero-timeout read on every one, to
    find a connection Redis closed while it sat idle): such a connection fails on its first use and
    the one retry (``make_redis``) takes another; ``redis_pipeline`` opens a fresh socket on the
    connection it takes.  Connections are never
    put back with a reply unread: every path that stops reading disconnects first.  No lock is taken:
    nothing between looking for a connection and taking it awaits.  redis-py's pool-usage telemetry
    and release events (used only by its token re-authentication) are not emitted.
    """

    def __init__(self, *, timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        deadline: float | None = None
        while True:
            try:
                connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
            except MaxConnectionsError:
                deadline = deadline or time.monotonic() + self.timeout
                await self._wait_for_release(deadline)
                continue
            try:
                if not connection.is_connected:
                    await connection.connect()  # type: ignore[no-untyped-call]
            except BaseException:
                await self.release(connection)
                raise
            return connection

    async def _wait_for_release(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RedisConnectionError("No connection available.")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(remaining):
                await waiter
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def release(self, connection: AbstractConnection) -> None:
        self._in_use_connections.remove(connection)
        if connection.should_reconnect():  # type: ignore[no-untyped-call]
            await connection.disconnect()
        self._available_connections.append(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def make_redis(
    url: str, *, socket_timeout: float = 0.25, connect_timeout: float = 0.25, max_connections: int = 512
) -> Redis:
    """A ``redis.asyncio`` client whose every call is short: one immediate retry (a pooled
    connection may be stale after Redis restarted), no backoff, bytes responses.

    The pool *waits* (up to the connect timeout) when all ``max_connections`` are busy instead of
    raising, so hundreds of checks in flight in one process queue for a connection rather than fail
    over to per-process limits."""
    pool = WaitingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=connect_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing the client closes it


class _Deadlines:
    """Futures each answered, or failed with ``TimeoutError``, within the same ``seconds`` (a reply that
    comes later is dropped): ``asyncio.timeout``'s answer for plain futures, without a timer each.

    All share one time limit, so they expire in the order they came: they wait in that order, and one
    timer (for the first still unanswered) serves them all.  An answered future leaves the queue when the
    timer next fires, so the queue holds at most ``seconds`` worth of calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._queue: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[Any]) -> None:
        loop = future.get_loop()
        if loop is not self._loop:  # a new event loop (tests): what the old one watched died with it
            self._loop, self._timer = loop, None
            self._queue.clear()
        deadline = loop.time() + self.seconds
        self._queue.append((deadline, future))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        queue, loop = self._queue, self._loop
        if loop is None:  # never: ``watch`` set it before starting the timer
            return
        now = loop.time()
        while queue:
            deadline, future = queue[0]
            if not future.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire)
                    return
                future.set_exception(TimeoutError())
            queue.popleft()


class RedisGate:
    """Runs Redis calls under a deadline, translating failures into ``CacheUnavailable``.

    One gate is shared by everything using a Redis client, so ``available`` (the last call's
    outcome, for readiness) and the error hook (a metric) see all of it.
    """

    def __init__(
        self,
        *,
        timeout: float = 0.5,
        on_error: ErrorHook = _ignore,
        on_available: Callable[[bool], None] = lambda available: None,
    ) -> None:
        self._deadlines = _Deadlines(timeout)
        self.available = True
        self._on_error = on_error
        self._on_available = on_available  # told on each change only (a gauge, one log line)

    @property
    def timeout(self) -> float:
        """Seconds a call may take (every call: auto-pipelined replies and other awaitables alike)."""
        return self._deadlines.seconds

    async def call(self, operation: str, awaitable: Awaitable[T]) -> T:
        try:
            if isinstance(awaitable, asyncio.Future):  # an auto-pipelined reply: a deadline, not a scope
                self._deadlines.watch(awaitable)
                result: T = cast(T, await awaitable)
            else:
                async with asyncio.timeout(self.timeout):
                    result = await awaitable
        except (RedisError, OSError, TimeoutError) as exc:
            self._set_available(False)
            error = CacheUnavailable(
                f"redis {operation} failed: {type(exc).__name__}", details={"operation": operation}
            )
            self.report(operation, error)
            raise error from exc
        self._set_available(True)
        return result

    def _set_available(self, available: bool) -> None:
        if available != self.available:
            self.available = available
            self._on_available(available)

    def report(self, operation: str, error: BaseException) -> None:
        """Count a failure that did not raise here (an unreadable value, a fallback taken)."""
        self._on_error(operation, error)


class RedisCache:
    """``Cache`` on Redis: ``SET key blob PX ttl``; unavailable Redis is a miss."""

    def __init__(self, redis: Redis, *, codec: ValueCodec | None = None, gate: RedisGate | None = None) -> None:
        self._redis = redis
        self._commands = pipelined(redis)  # every call but ``ping`` shares turns with the other hot paths
        self._codec = codec or ValueCodec()
        self.gate = gate or RedisGate()

    async def get(self, key: str) -> CacheEntry | None:
        try:
            blob = await self.gate.call("get", self._commands.call("GET", key))
        except CacheUnavailable:
            return None
        return self._decoded(key, blob)

    def _decoded(self, key: str, blob: bytes | str | None) -> CacheEntry | None:
        if blob is None:
            return None
        try:
            return self._codec.decode(key, blob if isinstance(blob, bytes) else blob.encode())
        except CacheCorrupt as exc:
            # Not deleted: during a key rotation another replica may still read it.
            self.gate.report("decode", exc)
            return None

    async def set(self, key: str, value: EntryValue, ttl_seconds: float, *, attachment: bytes = b"") -> bool:
        milliseconds = int(ttl_seconds * 1000)
        if milliseconds <= 0:
            return False
        blob = self._codec.encode(key, value, time.time(), attachment)
        try:
            await self.gate.call("set", self._commands.call("SET", key, blob, "PX", milliseconds))
        except CacheUnavailable:
            return False
        return True

    async def set_many(self, writes: Sequence[CacheWrite], *, release: LockRelease | None = None) -> list[bool]:
        """One group of the auto-pipeline (not a transaction: Redis runs the SETs in order, and each
        stands alone), the lock's compare-and-delete last (``EVAL``: it is not worth a ``NOSCRIPT`` retry)."""
        now = time.time()
        kept = [int(write.ttl_seconds * 1000) > 0 for write in writes]
        if not any(kept):
            return kept
        commands: list[tuple[Any, ...]] = []
        for write, keep in zip(writes, kept, strict=True):
            if keep:
                blob = self._codec.encode(write.key, write.value, now, write.attachment)
                commands.append(("SET", write.key, blob, "PX", int(write.ttl_seconds * 1000)))
        ours = release if release is not None and release.redis is self._redis else None
        if ours is not None:
            commands.append(("EVAL", RELEASE_LOCK, 1, ours.key, ours.token))
        try:
            await self.gate.call("set_many", self._commands.group(commands))
        except CacheUnavailable:
            return [False] * len(writes)
        if ours is not None:
            ours.released = True  # deleted, or no longer ours: either way not ours to release
        return kept

    async def delete(self, key: str) -> None:
        try:
            await self.gate.call("delete", self._commands.call("DEL", key))
        except CacheUnavailable:
            return

    async def ping(self) -> bool:
        try:
            return bool(await self.gate.call("ping", self._redis.ping()))
        except CacheUnavailable:
            return False


# --- in memory ------------------------------------------------------------------------------------


class MemoryCache:
    """``Cache`` in this process (the embedded default): TTLs honoured, least recently used evicted
    beyond ``max_entries``.  Values go through the same JSON codec, so no caller can alias or
    mutate a kept answer and nothing non-JSON gets in."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        codec: ValueCodec | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._codec = codec or ValueCodec()
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key → (expires_at, blob)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CacheEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, blob = found
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return self._codec.decode(key, blob)

    async def set(self, key: str, value: EntryValue, ttl_seconds: float, *, attachment: bytes = b"") -> bool:
        if ttl_seconds <= 0:
            return False
        now = self._clock()
        self._entries[key] = (now + ttl_seconds, self._codec.encode(key, value, now, attachment))
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True

    async def set_many(self, writes: Sequence[CacheWrite], *, release: LockRelease | None = None) -> list[bool]:
        return [await self.set(w.key, w.value, w.ttl_seconds, attachment=w.attachment) for w in writes]

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def ping(self) -> bool:
        return True
