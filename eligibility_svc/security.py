"""API keys: format, hashing, checking, scopes, and the aiohttp middleware that enforces them.

A key is ``elig_<id>_<secret>``: ``id`` (12 hex characters when we generate it) is public and picks
the configured ``ApiKeySettings`` entry; ``secret`` is 32 random bytes, URL-safe base64 (43
characters).  Only ``sha256:<hex>`` of the secret is configured, never the secret.

Why SHA-256 and not scrypt/PBKDF2: slow hashes protect low-entropy *passwords* from offline
guessing.  Our secrets are 256 random bits that we generate and whose shape we enforce, so
guessing one from its hash is infeasible at any hash speed, while a slow hash would add tens of
milliseconds of CPU to every request.  The hash input also binds the key id (a configured hash
cannot be moved to another entry) and a version tag.

Checking is constant-time (``hmac.compare_digest``), and an unknown id is compared against a dummy
hash, so timing tells an attacker neither which ids exist nor how much of a secret matched.
Failures to prove *who* you are are 401 ``Unauthenticated`` (one message for every reason);
a known key lacking the route's scope is 403 ``Forbidden``.  ``admin`` grants every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from eligibility_svc.errors import Forbidden, Unauthenticated
from eligibility_svc.settings import ApiKeySettings, ApiScope

KEY_PREFIX = "elig"
ADMIN: ApiScope = "admin"
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The error middleware adds this header to 401 answers (RFC 6750).
WWW_AUTHENTICATE = 'Bearer realm="eligibility-svc"'

_SECRET_BYTES = 32
_TOKEN = re.compile(r"^elig_([a-z0-9]{6,32})_([A-Za-z0-9_\-]{43})$")
_HASH_CONTEXT = b"eligibility-svc api key v1\x00"

Comparator = Callable[[bytes, bytes], bool]


def hash_secret(key_id: str, secret: str) -> str:
    """The configured form of a key's secret: ``sha256:<64 hex>``."""
    digest = hashlib.sha256(_HASH_CONTEXT + key_id.encode() + b"\x00" + secret.encode()).hexdigest()
    return f"sha256:{digest}"


# Compared against when the id is unknown, so that path costs what a known id costs.
_DUMMY_HASH = hash_secret("unknown", "x" * 43)


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else ``None``."""
    match = _TOKEN.fullmatch(token)
    return (match[1], match[2]) if match else None


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key: ``token`` is shown once to its holder; ``settings`` goes into the configuration."""

    token: str
    settings: ApiKeySettings


def generate_api_key(scopes: Sequence[ApiScope], *, name: str | None = None) -> GeneratedKey:
    """A fresh random key with ``scopes`` (for ``eligibility-svc keys create``)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    entry = ApiKeySettings(id=key_id, secret_hash=hash_secret(key_id, secret), scopes=list(scopes), name=name)
    return GeneratedKey(token=f"{KEY_PREFIX}_{key_id}_{secret}", settings=entry)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id and name (safe to log) and what it may do."""

    key_id: str
    name: str | None
    scopes: frozenset[ApiScope]

    def allows(self, scope: ApiScope) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


class ApiKeyAuthenticator:
    """Checks ``Authorization: Bearer <key>`` against the configured keys."""

    def __init__(self, keys: Collection[ApiKeySettings], *, compare: Comparator = hmac.compare_digest) -> None:
        self._keys = {key.id: key for key in keys}
        self._principals = {key.id: Principal(key.id, key.name, frozenset(key.scopes)) for key in keys}
        self._compare = compare

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller's principal; ``Unauthenticated`` for a missing, malformed, unknown, disabled or
        wrong key (one message for all: the answer must not help guessing)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("an API key is required: Authorization: Bearer elig_<id>_<secret>")
        parsed = parse_token(token.strip())
        if parsed is None:
            raise Unauthenticated("the API key is not valid")
        key_id, secret = parsed
        entry = self._keys.get(key_id)
        expected = entry.secret_hash if entry is not None else _DUMMY_HASH
        matches = self._compare(hash_secret(key_id, secret).encode(), expected.encode())
        if not matches or entry is None or entry.disabled:
            raise Unauthenticated("the API key is not valid")
        return self._principals[entry.id]

    @staticmethod
    def authorize(principal: Principal, scope: ApiScope) -> None:
        """``Forbidden`` unless ``principal`` holds ``scope`` (or ``admin``)."""
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the {scope!r} scope", details={"required_scope": scope})


# --- aiohttp ----------------------------------------------------------------------------------------

PRINCIPAL = web.RequestKey("principal", Principal)
ScopeRule = Callable[[web.Request], ApiScope]


def default_scope(request: web.Request) -> ApiScope:
    """The scope a route needs: batches ``batch:run``, admin routes ``admin``, the rest ``eligibility:check``."""
    path = request.path
    if path == "/v1/batches" or path.startswith("/v1/batches/"):
        return "batch:run"
    if path == "/v1/admin" or path.startswith("/v1/admin/"):
        return ADMIN
    return "eligibility:check"


def auth_middleware(
    authenticator: ApiKeyAuthenticator,
    *,
    scope_for: ScopeRule = default_scope,
    exempt: Collection[str] = EXEMPT_PATHS,
) -> Middleware:
    """Requires a key with the route's scope on every path but ``exempt`` ones; raises
    ``Unauthenticated``/``Forbidden`` for the error middleware (installed outside it) to render.
    The principal is left at ``request[PRINCIPAL]``."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in exempt:
            return await handler(request)
        principal = authenticator.authenticate(request.headers.get(hdrs.AUTHORIZATION))
        authenticator.authorize(principal, scope_for(request))
        request[PRINCIPAL] = principal
        return await handler(request)

    return check
