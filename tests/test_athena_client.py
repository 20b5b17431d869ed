"""The real athenaNet client against the sandbox over HTTP, with a real Redis: tokens, retries, typed errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from eligibility_svc.athena.audit import audit_scope
from eligibility_svc.athena.client import INSURANCE, INSURANCES, PATIENT
from eligibility_svc.athena.factory import build_athena
from eligibility_svc.errors import (
    AthenaAuthFailed,
    AthenaBadRequest,
    AthenaConflict,
    AthenaNotFound,
    AthenaRateLimited,
    AthenaTimeout,
    AthenaUnavailable,
)
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.athena import AthenaFaults, RunningAthenaSandbox, SandboxAthenaConfig
from tests.support.athena_servers import PRACTICE, athena_client, athena_sandbox, settings_for


def set_faults(box: RunningAthenaSandbox, **faults: Any) -> None:
    box.state.config = box.state.config.model_copy(update={"faults": AthenaFaults(**faults)})


def calls(box: RunningAthenaSandbox, method: str, template: str) -> int:
    return box.state.calls[f"{method} {template}"]


async def audit_records(redis: Redis) -> list[dict[str, str]]:
    entries = await redis.xrange(RedisKeys().athena_audit)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


# --- tokens -------------------------------------------------------------------------------------------


async def test_one_token_is_fetched_and_reused_by_every_call(redis_client: Redis, redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url)
        async with athena_client(settings, redis=redis_client) as parts:
            patients = await asyncio.gather(*(parts.client.get_patient(PRACTICE, "1001") for _ in range(8)))
        async with athena_client(settings, redis=redis_client) as other:  # another replica, same Redis
            await other.client.get_patient(PRACTICE, "1002")
    assert {p.lastname for p in patients} == {"Fixturely"}
    assert len(box.state.grant_log) == 1
    assert parts.tokens.fetched == 1
    assert other.tokens.fetched == 0


async def test_the_token_is_refreshed_before_it_expires(redis_url: str, redis_client: Redis) -> None:
    async with athena_sandbox(token_lifetime_seconds=2.0, expires_in_as_string=False) as box:
        settings = settings_for(box, redis_url=redis_url, token_refresh_margin_seconds=1.0)
        async with athena_client(settings, redis=redis_client) as parts:
            await parts.client.get_patient(PRACTICE, "1001")
            await asyncio.sleep(1.2)  # inside the margin: refreshed before use, so athenaNet never says 401
            await parts.client.get_patient(PRACTICE, "1001")
    statuses = [record["status"] for record in await audit_records(redis_client)]
    assert len(box.state.grant_log) == 2
    assert "401" not in statuses


async def test_a_refused_token_is_refreshed_once_and_the_call_retried(redis_url: str, redis_client: Redis) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url)
        async with athena_client(settings, redis=redis_client) as parts:
            await parts.client.get_patient(PRACTICE, "1001")
            box.state.tokens.clear()  # athenaNet forgets every token (expired, revoked)
            patient = await parts.client.get_patient(PRACTICE, "1001")
    assert patient.patientid == "1001"
    assert len(box.state.grant_log) == 2
    patient_calls = [r["status"] for r in await audit_records(redis_client) if r["endpoint"] == PATIENT]
    assert patient_calls == ["200", "401", "200"]


async def test_a_fresh_token_refused_again_is_an_auth_error_not_a_loop(redis_url: str, redis_client: Redis) -> None:
    async with athena_sandbox() as box:
        set_faults(box, refuse_tokens=True)  # athenaNet refuses even the token it has just issued
        settings = settings_for(box, redis_url=redis_url)
        async with athena_client(settings, redis=redis_client) as parts:
            with pytest.raises(AthenaAuthFailed):
                await parts.client.get_patient(PRACTICE, "1001")
    assert calls(box, "GET", PATIENT) == 2
    assert len(box.state.grant_log) == 2


async def test_bad_client_credentials_are_an_auth_error(redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=None, client_secret="wrong")
        async with athena_client(settings) as parts:
            with pytest.raises(AthenaAuthFailed) as caught:
                await parts.client.get_patient(PRACTICE, "1001")
    assert "wrong" not in str(caught.value)
    assert calls(box, "GET", PATIENT) == 0


async def test_the_token_rate_limit_holds_across_two_clients_sharing_redis(redis_url: str) -> None:
    """Tokens live 0.3 s, the endpoint grants 2 per 1.5 s: two clients calling for 3 s never hit its 429."""
    config = SandboxAthenaConfig(token_lifetime_seconds=0.3, token_requests_per_window=2, token_window_seconds=1.5)
    async with athena_sandbox(config) as box:
        settings = settings_for(
            box,
            redis_url=redis_url,
            token_requests_per_minute=2,
            token_window_seconds=1.5,
            token_refresh_margin_seconds=0.0,
        )
        redis_a, redis_b = Redis.from_url(redis_url), Redis.from_url(redis_url)  # two replicas
        async with athena_client(settings, redis=redis_a) as a, athena_client(settings, redis=redis_b) as b:
            ends = time.monotonic() + 3.0

            async def keep_calling(parts: Any) -> int:
                done = 0
                while time.monotonic() < ends:
                    await parts.client.get_patient(PRACTICE, "1001")
                    done += 1
                    await asyncio.sleep(0.05)
                return done

            done = await asyncio.gather(keep_calling(a), keep_calling(b))
        await redis_a.aclose()
        await redis_b.aclose()
    grants = box.state.grant_log
    assert box.state.token_refusals == 0
    assert len(grants) >= 3  # the budget was really exercised
    assert all(later - earlier >= 1.5 for earlier, later in zip(grants, grants[2:], strict=False))
    assert min(done) >= 2


# --- retries ------------------------------------------------------------------------------------------


async def test_429_waits_as_retry_after_asks_then_succeeds(redis_url: str, redis_client: Redis) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url)
        async with athena_client(settings, redis=redis_client) as parts:
            await parts.tokens.token()
            set_faults(box, rate_limit_next=2, retry_after_seconds=0.4)
            started = time.monotonic()
            patient = await parts.client.get_patient(PRACTICE, "1001")
            elapsed = time.monotonic() - started
    assert patient.patientid == "1001"
    assert elapsed >= 0.8  # two waits of at least Retry-After
    statuses = [r["status"] for r in await audit_records(redis_client) if r["endpoint"] == PATIENT]
    assert statuses == ["429", "429", "200"]


async def test_a_retry_after_longer_than_allowed_gives_up_at_once(redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=None, max_retry_after_seconds=1.0)
        async with athena_client(settings) as parts:
            set_faults(box, rate_limit_next=5, retry_after_seconds=30)
            started = time.monotonic()
            with pytest.raises(AthenaRateLimited) as caught:
                await parts.client.get_patient(PRACTICE, "1001")
    assert time.monotonic() - started < 1.0
    assert caught.value.retryable
    assert caught.value.details["retry_after_seconds"] == 30
    assert calls(box, "GET", PATIENT) == 1


async def test_5xx_is_retried_for_reads_but_a_write_is_handed_back(redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=None)
        async with athena_client(settings) as parts:
            set_faults(box, unavailable_next=2, unavailable_status=502)
            insurances = await parts.client.list_insurances(PRACTICE, "1001")
            assert calls(box, "GET", INSURANCES) == 3
            set_faults(box, unavailable_next=1, unavailable_status=502)
            with pytest.raises(AthenaUnavailable) as caught:  # the write may have landed: not repeated here
                await parts.client.update_insurance(
                    PRACTICE, "1001", insurances[0].insuranceid or "", {"policynumber": "G"}
                )
            set_faults(box, unavailable_next=1, unavailable_status=503)  # 503: nothing was done, so retried
            await parts.client.update_insurance(
                PRACTICE, "1001", insurances[0].insuranceid or "", {"policynumber": "G"}
            )
    assert caught.value.retryable
    assert calls(box, "PUT", INSURANCE) == 3
    assert box.state.writes_for("1001") == 1


async def test_a_write_that_times_out_is_not_sent_again_by_the_client() -> None:
    """Its outcome is unknown: the outbox reads the patient again instead (a blind retry could write twice)."""
    async with athena_sandbox() as box:
        settings = settings_for(box, write_timeout_seconds=0.3, request_timeout_seconds=5.0)
        async with athena_client(settings) as parts:
            box.state.config.faults.write_delay_seconds = 1.0
            insurances = await parts.client.list_insurances(PRACTICE, "1001")  # reads keep their own timeout
            with pytest.raises(AthenaTimeout) as caught:
                await parts.client.update_insurance(
                    PRACTICE, "1001", insurances[0].insuranceid or "", {"policynumber": "G"}
                )
    assert caught.value.retryable
    assert calls(box, "PUT", INSURANCE) == 1


async def test_400_404_409_are_typed_and_not_retried(redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=None)
        async with athena_client(settings) as parts:
            with pytest.raises(AthenaNotFound):
                await parts.client.get_patient(PRACTICE, "999999")
            with pytest.raises(AthenaConflict) as conflict:
                await parts.client.create_insurance(
                    PRACTICE, "1001", {"insurancepackageid": "90001", "insurancepolicyholdersex": "F"}
                )
            with pytest.raises(AthenaBadRequest) as bad_date:
                await parts.client.create_insurance(
                    PRACTICE,
                    "2001",
                    {"insurancepackageid": "90001", "insurancepolicyholdersex": "F", "issuedate": "2026-01-01"},
                )
            with pytest.raises(AthenaBadRequest) as missing:
                await parts.client.create_insurance(PRACTICE, "2001", {"insurancepackageid": "90001"})
            with pytest.raises(AthenaNotFound):
                await parts.client.get_patient("1", "1001")  # not a practice we may see
    assert calls(box, "GET", PATIENT) == 2
    assert calls(box, "POST", INSURANCES) == 3
    assert conflict.value.details["error"].startswith("An existing insurance package exists")
    assert "Expecting format date" in bad_date.value.details["detailedmessage"]
    assert "2026-01-01" not in bad_date.value.message  # athenaNet's echo of the value is redacted
    assert missing.value.details["missingfields"] == ["insurancepolicyholdersex"]
    assert box.state.writes == {}


async def test_calls_are_paced_per_practice_across_clients(redis_url: str) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url, requests_per_second=8.0, request_burst=1)
        redis_a, redis_b = Redis.from_url(redis_url), Redis.from_url(redis_url)
        async with athena_client(settings, redis=redis_a) as a, athena_client(settings, redis=redis_b) as b:
            await a.tokens.token()
            await b.tokens.token()
            started = time.monotonic()
            await asyncio.gather(*(parts.client.get_patient(PRACTICE, "1001") for parts in [a, b] * 4))
            elapsed = time.monotonic() - started
        await redis_a.aclose()
        await redis_b.aclose()
    assert elapsed >= 7 / 8 - 0.05  # 8 calls, one at once, 8 a second: the two clients shared one budget


async def test_every_call_is_audited_without_patient_data(redis_url: str, redis_client: Redis) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url)
        async with athena_client(settings, redis=redis_client) as parts:
            with audit_scope("chk-audit-1"):
                await parts.client.get_patient(PRACTICE, "1001")
                await parts.client.list_insurances(PRACTICE, "1001")
            with pytest.raises(AthenaNotFound):
                await parts.client.get_patient(PRACTICE, "999999")
    records = await audit_records(redis_client)
    by_endpoint = [(r["method"], r["endpoint"], r["status"], r["check_id"], r["outcome"]) for r in records]
    assert by_endpoint == [
        ("POST", "/oauth2/v1/token", "200", "chk-audit-1", "ok"),
        ("GET", PATIENT, "200", "chk-audit-1", "ok"),
        ("GET", INSURANCES, "200", "chk-audit-1", "ok"),
        ("GET", PATIENT, "404", "", "athena.not_found"),
    ]
    assert all(float(r["duration_ms"]) >= 0 for r in records)
    text = repr(records)
    for secret in ("1001", "999999", "Fixturely", "sandbox-not-secret"):
        assert secret not in text


# --- the sandbox holds to athenaNet's formats --------------------------------------------------------


async def test_the_sandbox_refuses_json_bodies_as_athena_would() -> None:
    async with athena_sandbox() as box, aiohttp.ClientSession() as session:
        auth = aiohttp.encode_basic_auth("sandbox-client", "sandbox-not-secret")
        token_form = {"grant_type": "client_credentials", "scope": "athena/service/Athenanet.MDP.*"}
        async with session.post(
            f"{box.base_url}/oauth2/v1/token", json=token_form, headers={"Authorization": auth}
        ) as r:
            assert r.status == 400
        async with session.post(
            f"{box.base_url}/oauth2/v1/token", data=token_form, headers={"Authorization": auth}
        ) as r:
            token = (await r.json())["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        url = f"{box.base_url}/v1/{PRACTICE}/patients/2001/insurances"
        body = {"insurancepackageid": "90001", "insurancepolicyholdersex": "F"}
        async with session.post(url, json=body, headers=bearer) as r:
            assert r.status == 400
            error = await r.json()
        async with session.post(url, data=body, headers=bearer) as r:
            assert r.status == 200
            created = await r.json()
    assert set(error) == {"error", "detailedmessage"}
    assert "application/x-www-form-urlencoded" in error["detailedmessage"]
    assert isinstance(created, list)
    assert isinstance(created[0]["insuranceid"], str)
    assert isinstance(created[0]["insurancepackageid"], int)
    assert box.state.writes_for("2001") == 1


async def test_without_redis_the_client_works_in_process() -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=None)
        parts = build_athena(settings)
        try:
            first = await parts.client.get_patient(PRACTICE, "1014")
            second = await parts.client.list_insurances(PRACTICE, "1014")
        finally:
            await parts.client.close()
    assert first.insurances[0].relationshiptoinsuredid == 3  # a string on the wire
    assert second[0].insurancepolicyholderfirstname == "Walt"
    assert len(box.state.grant_log) == 1
