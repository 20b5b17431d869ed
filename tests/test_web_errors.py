"""Every failure is one envelope {"error": {"code", "message", "details"}}; no traceback reaches a caller."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from eligibility_svc.api.state import ACCESS
from eligibility_svc.errors import ClearinghouseTimeout
from eligibility_svc.logs import REQUEST_ID_HEADER
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, PayerBehavior
from eligibility_svc.security import WWW_AUTHENTICATE
from eligibility_svc.settings import ClearinghouseSettings
from tests.support.web_app import AiohttpClient, Api, embedded_settings, fixture_request, key, start_api

BOOM = "kaboom for Quorvindale born 1961-03-14"


async def envelope(response: Any, status: int) -> dict[str, Any]:
    """The error member of ``response``, after checking its status and shape."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def _raising_routes(app: web.Application) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError(BOOM)

    async def slow_payer(request: web.Request) -> web.Response:
        raise ClearinghouseTimeout("no answer from the clearinghouse within 20 s", details={"attempts": 2})

    app.router.add_get("/v1/test/boom", boom)
    app.router.add_get("/v1/test/timeout", slow_payer)


@pytest.fixture
async def api(aiohttp_client: AiohttpClient) -> Api:
    settings = embedded_settings(max_body_bytes=4096)
    return await start_api(aiohttp_client, settings, prepare=_raising_routes)


# --- bodies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"payer": ', b"not json at all", b"\xff\xfe\x00"])
async def test_malformed_json_is_400(api: Api, body: bytes) -> None:
    response = await api.client.post(
        "/v1/eligibility", data=body, headers=api.auth(**{"Content-Type": "application/json"})
    )
    error = await envelope(response, 400)
    assert error["code"] == "request.malformed"
    assert "not valid JSON" in error["message"]


async def test_an_empty_body_is_400(api: Api) -> None:
    response = await api.client.post("/v1/eligibility", headers=api.auth(**{"Content-Type": "application/json"}))
    error = await envelope(response, 400)
    assert error["code"] == "request.malformed"
    assert "empty" in error["message"]


async def test_missing_fields_are_listed(api: Api) -> None:
    request = fixture_request("01")
    del request["provider"]
    del request["patient"]["last_name"]
    request["patient"]["sex"] = "X"
    request["surprise"] = 1
    response = await api.client.post("/v1/eligibility", json=request, headers=api.auth())
    error = await envelope(response, 422)
    assert error["code"] == "request.invalid"
    fields = {item["field"]: item["problem"] for item in error["details"]["fields"]}
    assert set(fields) == {"provider", "patient.last_name", "patient.sex", "surprise"}
    assert fields["provider"] == "Field required"
    for field in fields:
        assert field in error["message"]


async def test_field_problems_never_echo_the_values(api: Api) -> None:
    request = fixture_request("01")
    request["patient"]["birth_date"] = "Fixturely-not-a-date"
    response = await api.client.post("/v1/eligibility", json=request, headers=api.auth())
    error = await envelope(response, 422)
    assert "Fixturely" not in json.dumps(error)


async def test_a_json_array_is_422_for_the_body(api: Api) -> None:
    response = await api.client.post("/v1/eligibility", json=[1, 2], headers=api.auth())
    error = await envelope(response, 422)
    assert error["details"]["fields"][0]["field"] == "body"


async def test_an_inquiry_that_cannot_be_sent_is_422_with_fields(api: Api) -> None:
    request = fixture_request("01")
    request["service"]["date"] = "2001-01-01"
    request["provider"]["npi"] = "1234567890"  # check digit wrong
    response = await api.client.post("/v1/eligibility", json=request, headers=api.auth())
    error = await envelope(response, 422)
    assert error["code"] == "request.inquiry_invalid"
    assert {"service.date", "provider.npi"} <= {item["field"] for item in error["details"]["fields"]}


async def test_a_body_over_the_limit_is_413(api: Api) -> None:
    request = fixture_request("01")
    request["group_number"] = "G" * 5000
    response = await api.client.post("/v1/eligibility", json=request, headers=api.auth())
    error = await envelope(response, 413)
    assert error["code"] == "request.too_large"
    assert error["details"]["max_bytes"] == 4096


async def test_a_raw_271_over_the_limit_is_413(api: Api) -> None:
    response = await api.client.post(
        "/v1/x12/271", data="ISA*" + "X" * 10_000, headers=api.auth(**{"Content-Type": "text/plain"})
    )
    assert (await envelope(response, 413))["code"] == "request.too_large"


@pytest.mark.parametrize(("path", "content_type"), [("/v1/eligibility", "text/plain"), ("/v1/x12/271", "image/png")])
async def test_an_unsupported_content_type_is_415(api: Api, path: str, content_type: str) -> None:
    response = await api.client.post(path, data=b"x", headers=api.auth(**{"Content-Type": content_type}))
    error = await envelope(response, 415)
    assert error["code"] == "request.unsupported_media_type"
    assert error["details"]["accepted"]


# --- routing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorized", [True, False])
async def test_an_unknown_route_is_404(api: Api, authorized: bool) -> None:
    headers = api.auth() if authorized else {}
    response = await api.client.get("/v1/nothing/here", headers=headers)
    error = await envelope(response, 404)
    assert error["code"] == "not_found"


async def test_a_wrong_method_is_405_with_allow(api: Api) -> None:
    response = await api.client.delete("/v1/eligibility", headers=api.auth())
    error = await envelope(response, 405)
    assert error["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"
    assert error["details"]["allowed"] == ["POST"]
    response = await api.client.put("/healthz")
    assert (await envelope(response, 405))["details"]["allowed"] == ["GET", "HEAD"]


# --- authentication and authorization ----------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key", "Bearer elig_abcdef123456_" + "A" * 43],
)
async def test_no_valid_key_is_401_with_www_authenticate(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await api.client.post("/v1/eligibility", json=fixture_request("01"), headers=headers)
    error = await envelope(response, 401)
    assert error["code"] == "auth.unauthenticated"
    assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


async def test_a_key_without_the_scope_is_403(aiohttp_client: AiohttpClient) -> None:
    batch_only, checker, admin = key("batch:run"), key("eligibility:check"), key("admin")
    settings = embedded_settings(api_keys=[batch_only.settings, checker.settings, admin.settings])
    api = await start_api(aiohttp_client, settings, token=checker.token)
    for path in ("/v1/eligibility", "/v1/x12/271"):
        response = await api.client.post(path, json={}, headers=api.auth(batch_only.token))
        error = await envelope(response, 403)
        assert error["code"] == "auth.forbidden"
        assert error["details"] == {"required_scope": "eligibility:check"}
        assert "WWW-Authenticate" not in response.headers
    status, _ = await api.check(fixture_request("01"))
    assert status == 200
    response = await api.client.get("/openapi.json", headers=api.auth(admin.token))
    assert response.status == 200  # admin holds every scope


async def test_configured_keys_replace_the_embedded_key(aiohttp_client: AiohttpClient) -> None:
    checker = key("eligibility:check")
    api = await start_api(aiohttp_client, embedded_settings(api_keys=[checker.settings]), token=checker.token)
    assert api.app[ACCESS].ephemeral is None
    status, _ = await api.check(fixture_request("01"))
    assert status == 200


async def test_a_disabled_key_is_401(aiohttp_client: AiohttpClient) -> None:
    checker = key("eligibility:check")
    disabled = checker.settings.model_copy(update={"disabled": True})
    api = await start_api(aiohttp_client, embedded_settings(api_keys=[disabled]), token=checker.token)
    response = await api.client.post("/v1/eligibility", json=fixture_request("01"), headers=api.auth())
    assert (await envelope(response, 401))["code"] == "auth.unauthenticated"


# --- our own failures ------------------------------------------------------------------------------


async def test_an_unexpected_exception_is_500_without_a_traceback(api: Api) -> None:
    response = await api.client.get("/v1/test/boom", headers=api.auth(**{REQUEST_ID_HEADER: "req-boom-1"}))
    error = await envelope(response, 500)
    assert error["code"] == "internal"
    assert error["details"] == {"request_id": "req-boom-1"}
    assert "req-boom-1" in error["message"]
    text = json.dumps(error)
    for leak in ("Traceback", "RuntimeError", "kaboom", "Quorvindale", "1961", "routes.py", 'File "'):
        assert leak not in text
    assert response.headers[REQUEST_ID_HEADER] == "req-boom-1"


async def test_a_clearinghouse_failure_is_its_status_and_code(api: Api) -> None:
    response = await api.client.get("/v1/test/timeout", headers=api.auth())
    error = await envelope(response, 504)
    assert error == {
        "code": "clearinghouse.timeout",
        "message": "no answer from the clearinghouse within 20 s",
        "details": {"attempts": 2},
    }


async def test_a_payer_that_keeps_failing_is_503_and_then_the_breaker_opens(aiohttp_client: AiohttpClient) -> None:
    clearinghouse = ClearinghouseSettings(max_attempts=1, payer_breaker_failure_threshold=1)
    api = await start_api(aiohttp_client, embedded_settings(clearinghouse=clearinghouse))
    sandbox = api.runtime.clearinghouse.sandbox
    assert sandbox is not None
    failing = PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX, status=503)])
    sandbox.state.config = sandbox.state.config.model_copy(update={"payers": {"SBX10001": failing}})

    response = await api.client.post("/v1/eligibility", json=fixture_request("01"), headers=api.auth())
    assert (await envelope(response, 503))["code"] == "clearinghouse.unavailable"

    response = await api.client.post("/v1/eligibility", json=fixture_request("01"), headers=api.auth())
    error = await envelope(response, 503)
    assert error["code"] == "clearinghouse.circuit_open"
    assert int(response.headers["Retry-After"]) >= 1

    readiness = await (await api.client.get("/readyz")).json()
    assert readiness["status"] == "degraded"
    assert readiness["breakers"]["payer:SBX10001"] == "open"
    assert any("payer:SBX10001" in reason for reason in readiness["reasons"])
