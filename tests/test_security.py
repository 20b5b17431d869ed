"""API keys: hashed configuration, constant-time checks, 401 for who-are-you, 403 for not-allowed."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from pytest_aiohttp import AiohttpClient

from eligibility_svc.errors import AuthError, EligibilityError, Forbidden, Unauthenticated
from eligibility_svc.security import (
    PRINCIPAL,
    WWW_AUTHENTICATE,
    ApiKeyAuthenticator,
    GeneratedKey,
    auth_middleware,
    generate_api_key,
    hash_secret,
    parse_token,
)
from eligibility_svc.settings import ApiKeySettings, Settings


def bearer(token: str) -> str:
    return f"Bearer {token}"


@pytest.fixture
def checker() -> GeneratedKey:
    return generate_api_key(["eligibility:check"], name="intake")


@pytest.fixture
def batcher() -> GeneratedKey:
    return generate_api_key(["batch:run"], name="nightly")


@pytest.fixture
def admin() -> GeneratedKey:
    return generate_api_key(["admin"], name="ops")


def test_generated_key_format_and_configured_hash(checker: GeneratedKey) -> None:
    prefix, key_id, secret = checker.token.split("_", 2)
    assert prefix == "elig"
    assert key_id == checker.settings.id
    assert len(secret) == 43  # 32 random bytes, URL-safe base64
    assert parse_token(checker.token) == (key_id, secret)
    material = b"eligibility-svc api key v1\x00" + key_id.encode() + b"\x00" + secret.encode()
    assert checker.settings.secret_hash == "sha256:" + hashlib.sha256(material).hexdigest()
    assert secret not in checker.settings.model_dump_json()  # only the hash is configured
    assert generate_api_key(["admin"]).token != generate_api_key(["admin"]).token


def test_the_hash_binds_the_key_id() -> None:
    assert hash_secret("aaaaaa", "s" * 43) != hash_secret("bbbbbb", "s" * 43)


def test_a_valid_key_authenticates(checker: GeneratedKey) -> None:
    principal = ApiKeyAuthenticator([checker.settings]).authenticate(bearer(checker.token))
    assert principal.key_id == checker.settings.id
    assert principal.name == "intake"
    assert principal.scopes == {"eligibility:check"}
    assert ApiKeyAuthenticator([checker.settings]).authenticate(f"bearer   {checker.token} ").key_id == principal.key_id


def _wrong_secret(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer elig_short_x",
        "Bearer not-a-key",
        "Bearer elig_ffffffffffff_" + "a" * 43,  # unknown id
    ],
)
def test_missing_malformed_or_unknown_keys_are_401(checker: GeneratedKey, header: str | None) -> None:
    with pytest.raises(Unauthenticated) as caught:
        ApiKeyAuthenticator([checker.settings]).authenticate(header)
    assert caught.value.http_status == 401


def test_wrong_secret_and_disabled_keys_are_401_with_the_same_message(checker: GeneratedKey) -> None:
    disabled = checker.settings.model_copy(update={"disabled": True})
    messages = set()
    for keys, token in (
        ([checker.settings], _wrong_secret(checker.token)),
        ([disabled], checker.token),
        ([checker.settings], "elig_ffffffffffff_" + "a" * 43),
    ):
        with pytest.raises(Unauthenticated) as caught:
            ApiKeyAuthenticator(keys).authenticate(bearer(token))
        messages.add(caught.value.message)
        assert token.split("_", 2)[2] not in caught.value.message
    assert len(messages) == 1


def test_a_key_without_the_scope_is_403(checker: GeneratedKey, admin: GeneratedKey) -> None:
    authenticator = ApiKeyAuthenticator([checker.settings, admin.settings])
    principal = authenticator.authenticate(bearer(checker.token))
    authenticator.authorize(principal, "eligibility:check")
    with pytest.raises(Forbidden) as caught:
        authenticator.authorize(principal, "batch:run")
    assert caught.value.http_status == 403
    assert caught.value.details == {"required_scope": "batch:run"}
    boss = authenticator.authenticate(bearer(admin.token))
    for scope in ("eligibility:check", "batch:run", "admin"):
        authenticator.authorize(boss, scope)  # admin grants every scope


class RecordingComparator:
    """Wraps hmac.compare_digest and remembers that it was asked (a small function, not a mock)."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []

    def __call__(self, a: bytes, b: bytes) -> bool:
        self.calls.append((a, b))
        return hmac.compare_digest(a, b)


def test_secrets_are_compared_in_constant_time_even_for_unknown_ids(checker: GeneratedKey) -> None:
    assert ApiKeyAuthenticator([checker.settings])._compare is hmac.compare_digest
    compare = RecordingComparator()
    authenticator = ApiKeyAuthenticator([checker.settings], compare=compare)
    authenticator.authenticate(bearer(checker.token))
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(bearer(_wrong_secret(checker.token)))
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(bearer("elig_ffffffffffff_" + "a" * 43))
    # Every attempt, including the unknown id, went through one digest comparison of equal length.
    assert len(compare.calls) == 3
    assert all(len(a) == len(b) == len("sha256:") + 64 for a, b in compare.calls)
    assert compare.calls[0][1] == checker.settings.secret_hash.encode()


def test_keys_come_from_settings(monkeypatch: pytest.MonkeyPatch, checker: GeneratedKey) -> None:
    monkeypatch.setenv("ELIG_API_KEYS", json.dumps([checker.settings.model_dump()]))
    settings = Settings()
    assert settings.api_keys == [checker.settings]
    principal = ApiKeyAuthenticator(settings.api_keys).authenticate(bearer(checker.token))
    assert principal.key_id == checker.settings.id


def test_settings_refuse_bad_key_entries(monkeypatch: pytest.MonkeyPatch, checker: GeneratedKey) -> None:
    entry = checker.settings.model_dump()
    monkeypatch.setenv("ELIG_API_KEYS", json.dumps([entry, entry]))
    with pytest.raises(ValueError, match="unique"):
        Settings()
    with pytest.raises(ValueError, match="secret_hash"):
        ApiKeySettings(id="abcdef", secret_hash="plaintext-secret", scopes=["admin"])
    with pytest.raises(ValueError, match="scopes"):
        ApiKeySettings(id="abcdef", secret_hash="sha256:" + "0" * 64, scopes=["everything"])


# --- middleware ---------------------------------------------------------------------------------------


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the service's error middleware does with our errors (a stand-in for web.py's)."""
    try:
        return await handler(request)
    except EligibilityError as exc:
        headers = (
            {"WWW-Authenticate": WWW_AUTHENTICATE} if isinstance(exc, AuthError) and exc.http_status == 401 else {}
        )
        return web.json_response({"error": exc.to_dict()}, status=exc.http_status, headers=headers)


def secured_app(*keys: ApiKeySettings) -> web.Application:
    async def who(request: web.Request) -> web.Response:
        return web.json_response({"key_id": request[PRINCIPAL].key_id})

    async def open_route(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[render_errors, auth_middleware(ApiKeyAuthenticator(keys))])
    app.router.add_post("/v1/eligibility", who)
    app.router.add_post("/v1/batches", who)
    app.router.add_get("/v1/admin/keys", who)
    for path in ("/healthz", "/readyz", "/metrics"):
        app.router.add_get(path, open_route)
    return app


async def test_middleware_401_403_and_ok(
    aiohttp_client: AiohttpClient, checker: GeneratedKey, batcher: GeneratedKey, admin: GeneratedKey
) -> None:
    client = await aiohttp_client(secured_app(checker.settings, batcher.settings, admin.settings))
    as_checker = {"Authorization": bearer(checker.token)}

    missing = await client.post("/v1/eligibility")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await missing.json())["error"]["code"] == "auth.unauthenticated"

    wrong = await client.post("/v1/eligibility", headers={"Authorization": bearer(_wrong_secret(checker.token))})
    assert wrong.status == 401

    ok = await client.post("/v1/eligibility", headers=as_checker)
    assert ok.status == 200
    assert await ok.json() == {"key_id": checker.settings.id}

    forbidden = await client.post("/v1/batches", headers=as_checker)
    assert forbidden.status == 403
    assert (await forbidden.json())["error"]["code"] == "auth.forbidden"
    assert (await client.get("/v1/admin/keys", headers=as_checker)).status == 403

    assert (await client.post("/v1/batches", headers={"Authorization": bearer(batcher.token)})).status == 200
    assert (await client.post("/v1/eligibility", headers={"Authorization": bearer(batcher.token)})).status == 403
    for path, method in (("/v1/eligibility", "POST"), ("/v1/batches", "POST"), ("/v1/admin/keys", "GET")):
        assert (await client.request(method, path, headers={"Authorization": bearer(admin.token)})).status == 200


async def test_health_readiness_and_metrics_need_no_key(aiohttp_client: AiohttpClient, checker: GeneratedKey) -> None:
    client = await aiohttp_client(secured_app(checker.settings))
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status == 200, path
    assert (await client.get("/healthz/../v1/admin/keys")).status == 401


def test_auth_errors_are_in_the_tree() -> None:
    assert issubclass(Unauthenticated, AuthError)
    assert issubclass(Forbidden, AuthError)
