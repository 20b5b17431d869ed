"""The HTTP API on the embedded default (in-memory cache, the sandbox clearinghouse over HTTP): every route."""

from __future__ import annotations

import asyncio
import datetime as dt
import shlex
from typing import Any

import pytest

from eligibility_svc.api.access import banner, resolve_access
from eligibility_svc.api.app import SANDBOX_HEADER, create_app
from eligibility_svc.api.readiness import readiness_report
from eligibility_svc.api.serve import base_url
from eligibility_svc.api.state import ACCESS, LIFECYCLE, Lifecycle
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.logs import REQUEST_ID_HEADER
from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.service import CheckRecord
from eligibility_svc.settings import ClearinghouseSettings
from tests.support.web_app import AiohttpClient, Api, embedded_settings, fixture_271, fixture_request, key, start_api


@pytest.fixture
async def api(aiohttp_client: AiohttpClient) -> Api:
    return await start_api(aiohttp_client, embedded_settings())


# --- health, readiness, metrics ------------------------------------------------------------------------


async def test_healthz_needs_no_key_and_echoes_the_request_id(api: Api) -> None:
    response = await api.client.get("/healthz", headers={REQUEST_ID_HEADER: "abc-123"})
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert response.headers[REQUEST_ID_HEADER] == "abc-123"


async def test_a_request_id_is_made_when_none_or_a_bad_one_is_sent(api: Api) -> None:
    made = (await api.client.get("/healthz")).headers[REQUEST_ID_HEADER]
    assert len(made) == 32
    replaced = (await api.client.get("/healthz", headers={REQUEST_ID_HEADER: "no spaces allowed"})).headers
    assert replaced[REQUEST_ID_HEADER] != "no spaces allowed"


async def test_readyz_on_the_embedded_default(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["redis"] == "not_configured"
    assert body["sandbox"] is True
    assert body["degraded"] is False
    assert all(state == "closed" for state in body["breakers"].values())


async def test_metrics_need_no_key_and_count_a_check(api: Api) -> None:
    status, _ = await api.check(fixture_request("01"))
    assert status == 200
    response = await api.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'eligibility_checks_total{source="fresh",status="active"} 1.0' in text
    assert 'eligibility_http_requests_total{method="POST",route="/v1/eligibility",status="200"} 1.0' in text
    assert "eligibility_clearinghouse_request_duration_seconds_count" in text


# --- POST /v1/eligibility ----------------------------------------------------------------------------


async def test_a_check_is_answered_and_marked_sandbox(api: Api) -> None:
    response = await api.client.post("/v1/eligibility", json=fixture_request("01"), headers=api.auth())
    assert response.status == 200
    assert response.headers[SANDBOX_HEADER] == "true"
    assert response.headers["Cache-Control"] == "no-store"  # patient data: no shared cache keeps it
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    summary = CoverageSummary.model_validate(await response.json())
    assert summary.status.value == "active"
    assert summary.provenance.sandbox is True
    assert summary.provenance.cached is False
    assert summary.check_id


async def test_the_second_identical_check_is_served_from_the_cache(api: Api) -> None:
    _, first = await api.check(fixture_request("01"))
    status, second = await api.check(fixture_request("01"))
    assert status == 200
    assert second["provenance"]["cached"] is True
    assert second["check_id"] == first["check_id"]


async def test_a_payer_rejection_is_a_200_summary_with_errors(api: Api) -> None:
    status, body = await api.check(fixture_request("10"))
    assert status == 200
    assert body["status"] == "not_found"
    assert [error["code"] for error in body["errors"]] == ["75"]
    assert body["errors"][0]["needs_correction"] is True


async def test_writeback_by_demographics_has_no_policy_to_write_to(api: Api) -> None:
    status, body = await api.check(fixture_request("01"), writeback="true")
    assert status == 200
    response = await api.client.get(f"/v1/eligibility/{body['check_id']}", headers=api.auth())
    assert CheckRecord.model_validate(await response.json()).writeback.value == "skipped"


async def test_check_by_athena_patient_id_reads_the_chart_and_queues_the_write_back(api: Api) -> None:
    # Patient 1001 of the athenaNet sandbox's practice 195900 is fixture 01's patient, on its payer.
    today = fixture_request("01")["service"]["date"]
    asked = {"athena": {"practice_id": "195900", "patient_id": "1001"}, "service": {"date": today}}
    status, body = await api.check(asked)
    assert status == 200, body
    assert body["status"] == "active"
    assert body["subscriber"]["member_id"] == fixture_request("01")["member_id"]
    response = await api.client.get(f"/v1/eligibility/{body['check_id']}", headers=api.auth())
    assert CheckRecord.model_validate(await response.json()).writeback.value == "queued"


async def test_check_by_athena_patient_id_names_a_bad_field(api: Api) -> None:
    today = fixture_request("01")["service"]["date"]
    status, body = await api.check(
        {"athena": {"practice_id": "195900", "patient_id": "10 01"}, "service": {"date": today}}
    )
    assert status == 422
    assert [f["field"] for f in body["error"]["details"]["fields"]] == ["athena.patient_id"]


async def test_writeback_flag_must_be_a_boolean(api: Api) -> None:
    status, body = await api.check(fixture_request("01"), writeback="perhaps")
    assert status == 422
    assert body["error"]["details"]["fields"] == [{"field": "query.writeback", "problem": "must be true or false"}]


# --- GET /v1/eligibility/{check_id} -------------------------------------------------------------------


async def test_a_check_can_be_fetched_by_its_id(api: Api) -> None:
    _, summary = await api.check(fixture_request("14"))
    response = await api.client.get(f"/v1/eligibility/{summary['check_id']}", headers=api.auth())
    assert response.status == 200
    assert response.headers[SANDBOX_HEADER] == "true"
    record = CheckRecord.model_validate(await response.json())
    assert record.check_id == summary["check_id"]
    assert record.summary.check_id == summary["check_id"]
    assert record.summary.provenance.sandbox is True
    assert record.source == "fresh"


@pytest.mark.parametrize("check_id", ["0" * 32, "not-a-check-id"])
async def test_an_unknown_check_is_404(api: Api, check_id: str) -> None:
    response = await api.client.get(f"/v1/eligibility/{check_id}", headers=api.auth())
    assert response.status == 404
    body = await response.json()
    assert body["error"]["code"] == "not_found"


# --- POST /v1/x12/271 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/edi-x12", "text/plain; charset=utf-8"])
async def test_a_raw_271_is_interpreted(api: Api, content_type: str) -> None:
    response = await api.client.post(
        "/v1/x12/271", data=fixture_271("14"), headers=api.auth(**{"Content-Type": content_type})
    )
    assert response.status == 200, await response.text()
    summaries = [CoverageSummary.model_validate(item) for item in (await response.json())["summaries"]]
    assert summaries
    assert all(summary.provenance.sandbox for summary in summaries)


async def test_a_271_with_its_request_answers_the_requested_services(api: Api) -> None:
    request = fixture_request("16")
    response = await api.client.post(
        "/v1/x12/271", json={"x12": fixture_271("16"), "request": request}, headers=api.auth()
    )
    assert response.status == 200, await response.text()
    (summary,) = (await response.json())["summaries"]
    service = request["service"]
    asked = {p["code"] for p in service.get("procedures", [])} | set(service.get("service_types", []))
    assert {service["code"] for service in summary["services"]} == asked


async def test_a_4010_271_is_422(api: Api) -> None:
    old = fixture_271("01").replace("*00501*", "*00401*").replace("005010X279A1", "004010X092A1")
    response = await api.client.post("/v1/x12/271", data=old, headers=api.auth(**{"Content-Type": "text/plain"}))
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "x12.unsupported_version"


async def test_text_that_is_not_x12_is_422(api: Api) -> None:
    response = await api.client.post("/v1/x12/271", data="hello", headers=api.auth(**{"Content-Type": "text/plain"}))
    assert response.status == 422
    assert (await response.json())["error"]["code"].startswith("x12.")


async def test_an_empty_271_in_json_names_the_field(api: Api) -> None:
    response = await api.client.post("/v1/x12/271", json={"x12": ""}, headers=api.auth())
    assert response.status == 422
    fields = (await response.json())["error"]["details"]["fields"]
    assert [f["field"] for f in fields] == ["x12"]


async def test_a_271_in_another_charset_than_declared_is_400(api: Api) -> None:
    body = fixture_271("01").encode() + b"\xff\xfe"
    response = await api.client.post("/v1/x12/271", data=body, headers=api.auth(**{"Content-Type": "text/plain"}))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "request.malformed"


# --- openapi -------------------------------------------------------------------------------------------


async def test_openapi_needs_a_key(api: Api) -> None:
    assert (await api.client.get("/openapi.json")).status == 401
    response = await api.client.get("/openapi.json", headers=api.auth())
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.1")


# --- the embedded key ------------------------------------------------------------------------------


async def test_the_embedded_key_is_made_per_run_with_check_scopes(aiohttp_client: AiohttpClient) -> None:
    first = await start_api(aiohttp_client, embedded_settings())
    second = await start_api(aiohttp_client, embedded_settings())
    assert first.token != second.token
    ephemeral = first.app[ACCESS].ephemeral
    assert ephemeral is not None
    assert set(ephemeral.settings.scopes) == {"eligibility:check", "batch:run"}
    response = await second.client.get("/openapi.json", headers=second.auth(first.token))
    assert response.status == 401  # one run's key does not open another


# --- readiness states, banner ----------------------------------------------------------------------------


async def test_readyz_is_503_while_draining(api: Api) -> None:
    api.app[LIFECYCLE].draining = True
    response = await api.client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert body["reasons"][0].startswith("shutting down")


async def test_not_ready_before_the_runtime_is_open() -> None:
    report = await readiness_report(None, Lifecycle())
    assert (report.status, report.reasons) == ("not_ready", ["starting"])


def test_the_banner_shows_the_key_and_a_curl_for_today() -> None:
    settings = embedded_settings()
    access = resolve_access(settings)
    assert access.ephemeral is not None
    text = banner(settings, "http://127.0.0.1:8080", access, today=dt.date(2026, 11, 24))
    assert access.ephemeral.token in text
    (curl,) = [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]
    words = shlex.split(curl)
    assert words[:3] == ["curl", "-sS", "http://127.0.0.1:8080/v1/eligibility"]
    assert f"Authorization: Bearer {access.ephemeral.token}" in words
    request = EligibilityRequest.model_validate_json(words[-1])
    assert request.service.date == dt.date(2026, 11, 24)
    assert request.member_id == "ZZM0100001"


def test_the_banner_without_an_embedded_key_shows_no_secret() -> None:
    checker = key("eligibility:check")
    settings = embedded_settings(api_keys=[checker.settings])
    text = banner(settings, "http://127.0.0.1:8080", resolve_access(settings))
    assert "elig_" not in text
    assert "curl" not in text


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:8080"), ("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://[::1]:8080")],
)
def test_base_url_is_reachable_from_this_machine(host: str, url: str) -> None:
    assert base_url(host, 8080) == url


@pytest.mark.parametrize(
    "changes",
    [
        {"redis_url": "redis://127.0.0.1:6379/0"},
        {"clearinghouse": ClearinghouseSettings(transport="core_mime", url="https://ch.example/core")},
    ],
)
def test_real_endpoints_without_keys_refuse_to_start(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="no API keys are configured"):
        create_app(embedded_settings(**changes))


async def test_the_check_record_follows_its_write_back_until_athena_holds_it(api: Api) -> None:
    # Fixture 15's payer corrects the member ID, name and birth date; the chart in athenaNet (patient 1015)
    # holds what the practice typed, so the write-back must update that policy.
    today = fixture_request("15")["service"]["date"]
    asked = {"athena": {"practice_id": "195900", "patient_id": "1015"}, "service": {"date": today}}
    status, body = await api.check(asked)
    assert status == 200, body
    progress: dict[str, Any] | None = None
    for _ in range(100):
        response = await api.client.get(f"/v1/eligibility/{body['check_id']}", headers=api.auth())
        record = await response.json()
        progress = record["writeback_progress"]
        if progress is not None and progress["status"] == "applied":
            break
        await asyncio.sleep(0.05)
    assert record["writeback"] == "queued"
    assert progress is not None
    assert progress["status"] == "applied"
    assert progress["action"] == "update"
    assert {"insuranceidnumber", "insurancepolicyholderlastname", "insurancepolicyholderdob"} <= set(
        progress["changed"]
    )
