"""The athenaNet sandbox holds to the reference's rules (raw HTTP, no client of ours in between)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from eligibility_svc.sandbox.athena import RunningAthenaSandbox
from tests.support.athena_servers import PRACTICE, athena_sandbox

SCOPE = "athena/service/Athenanet.MDP.*"
BASIC = aiohttp.encode_basic_auth("sandbox-client", "sandbox-not-secret")


@asynccontextmanager
async def session_with_token(
    **config: Any,
) -> AsyncIterator[tuple[RunningAthenaSandbox, aiohttp.ClientSession, dict[str, str]]]:
    async with athena_sandbox(**config) as box, aiohttp.ClientSession(base_url=box.base_url) as session:
        form = {"grant_type": "client_credentials", "scope": SCOPE}
        async with session.post("/oauth2/v1/token", data=form, headers={"Authorization": BASIC}) as answer:
            assert answer.status == 200
            token = (await answer.json())["access_token"]
        yield box, session, {"Authorization": f"Bearer {token}"}


async def status_and_body(answer: aiohttp.ClientResponse) -> tuple[int, Any]:
    return answer.status, await answer.json(content_type=None)


async def test_the_token_endpoint_checks_everything_and_limits_the_rate() -> None:
    async with athena_sandbox(token_requests_per_window=2) as box, aiohttp.ClientSession(base_url=box.base_url) as s:
        good = {"grant_type": "client_credentials", "scope": SCOPE}
        answers = []
        for form, auth in [
            (good, aiohttp.encode_basic_auth("sandbox-client", "nope")),
            ({**good, "grant_type": "password"}, BASIC),
            ({**good, "scope": "athena/service/Other"}, BASIC),
            (good, BASIC),
            (good, BASIC),
            (good, BASIC),
        ]:
            async with s.post("/oauth2/v1/token", data=form, headers={"Authorization": auth}) as answer:
                answers.append((answer.status, await answer.json(), answer.headers.get("Retry-After")))
    assert [status for status, _, _ in answers] == [401, 400, 400, 200, 200, 429]
    assert answers[3][1]["expires_in"] == "3600"
    assert answers[3][1]["scope"] == SCOPE
    assert answers[5][2] is not None
    assert set(answers[5][1]) == {"error", "detailedmessage"}


async def test_api_calls_need_a_live_token_and_a_known_practice() -> None:
    async with session_with_token() as (box, session, bearer):
        async with session.get(f"/v1/{PRACTICE}/patients/1001") as answer:
            no_token = answer.status
        async with session.get(f"/v1/{PRACTICE}/patients/1001", headers={"Authorization": "Bearer nope"}) as answer:
            bad_token = answer.status
        async with session.get("/v1/1/patients/1001", headers=bearer) as answer:
            wrong_practice = await status_and_body(answer)
        box.state.tokens.clear()
        async with session.get(f"/v1/{PRACTICE}/patients/1001", headers=bearer) as answer:
            expired = await status_and_body(answer)
    assert (no_token, bad_token) == (401, 401)
    assert wrong_practice[0] == 404
    assert expired[0] == 401
    assert "error" in expired[1]


async def test_insurance_rules_409_secondary_package_change_and_dates() -> None:
    async with session_with_token() as (box, session, bearer):
        base = f"/v1/{PRACTICE}/patients"
        results = {}
        for name, (method, path, form) in {
            "secondary_first": (
                "POST",
                "/2001/insurances",
                {"insurancepackageid": "90001", "insurancepolicyholdersex": "F", "sequencenumber": "2"},
            ),
            "primary": ("POST", "/2001/insurances", {"insurancepackageid": "90001", "insurancepolicyholdersex": "F"}),
            "conflict": ("POST", "/2001/insurances", {"insurancepackageid": "90002", "insurancepolicyholdersex": "F"}),
            "secondary": (
                "POST",
                "/2001/insurances",
                {"insurancepackageid": "90002", "insurancepolicyholdersex": "F", "sequencenumber": "2"},
            ),
            "bad_date": ("PUT", "/1001/insurances/5001", {"issuedate": "1/1/26"}),
            "package_change": ("PUT", "/1001/insurances/5001", {"insurancepackageid": "90002"}),
            "by_sequence": ("PUT", "/1001/insurances", {"sequencenumber": "1", "policynumber": "G-NEW"}),
            "no_such_sequence": ("PUT", "/1001/insurances", {"sequencenumber": "2", "policynumber": "G"}),
            "unknown_package": (
                "POST",
                "/2002/insurances",
                {"insurancepackageid": "12345", "insurancepolicyholdersex": "M"},
            ),
        }.items():
            async with session.request(method, base + path, data=form, headers=bearer) as answer:
                results[name] = await status_and_body(answer)
        async with session.delete(
            f"{base}/1001/insurances/5001", params={"cancellationnote": "x" * 401}, headers=bearer
        ) as answer:
            long_note = answer.status
        async with session.delete(
            f"{base}/1001/insurances/5001", params={"cancellationnote": "replaced"}, headers=bearer
        ) as answer:
            deleted = await status_and_body(answer)
        async with session.get(f"{base}/1001/insurances", params={"showcancelled": "true"}, headers=bearer) as answer:
            with_cancelled = await answer.json()
        async with session.get(f"{base}/1001/insurances", headers=bearer) as answer:
            active = await answer.json()
    statuses = {name: status for name, (status, _) in results.items()}
    assert statuses == {
        "secondary_first": 400,
        "primary": 200,
        "conflict": 409,
        "secondary": 200,
        "bad_date": 400,
        "package_change": 400,
        "by_sequence": 200,
        "no_such_sequence": 404,
        "unknown_package": 400,
    }
    assert results["conflict"][1] == {
        "error": "An existing insurance package exists. Use PUT to update or DELETE to deactivate."
    }
    assert "Expecting format date" in results["bad_date"][1]["detailedmessage"]
    assert results["by_sequence"][1] == {"success": True}
    assert (long_note, deleted[0]) == (400, 200)
    assert with_cancelled["totalcount"] == 1
    assert with_cancelled["insurances"][0]["cancelled"]
    assert with_cancelled["insurances"][0]["policynumber"] == "G-NEW"
    assert active == {"insurances": [], "totalcount": 0}
    assert box.state.writes == {"2001": {"POST": 2}, "1001": {"PUT": 1, "DELETE": 1}}


async def test_faults_are_injected_through_the_admin_endpoint() -> None:
    async with session_with_token() as (_box, session, bearer):
        async with session.put(
            "/admin/faults", json={"rate_limit_next": 1, "retry_after_seconds": 3, "unavailable_next": 1}
        ) as answer:
            assert answer.status == 200
        statuses = []
        for _ in range(3):
            async with session.get(f"/v1/{PRACTICE}/patients/1001", headers=bearer) as answer:
                statuses.append((answer.status, answer.headers.get("Retry-After"), answer.content_type))
        async with session.post("/admin/expire-tokens") as answer:
            assert (await answer.json())["expired"] == 1
        async with session.get(f"/v1/{PRACTICE}/patients/1001", headers=bearer) as answer:
            after_expiry = answer.status
        async with session.get("/admin/stats") as answer:
            stats = await answer.json()
    assert statuses == [(429, "3", "application/json"), (503, None, "text/plain"), (200, None, "application/json")]
    assert after_expiry == 401
    assert stats["token_grants"] == 1
    assert stats["calls"]["GET /v1/{practiceid}/patients/{patientid}"] == 4


async def test_packages_and_booked_appointments_paging_links() -> None:
    async with session_with_token() as (_box, session, bearer):
        async with session.get(f"/v1/{PRACTICE}/misc/topinsurancepackages", headers=bearer) as answer:
            top = await answer.json()
        async with session.get(
            f"/v1/{PRACTICE}/insurancepackages", params={"insuranceplanname": "sandbox"}, headers=bearer
        ) as answer:
            search = await answer.json()
        query = {"startdate": "11/20/2026", "enddate": "11/20/2026", "limit": "30", "offset": "30"}
        async with session.get(f"/v1/{PRACTICE}/appointments/booked", params=query, headers=bearer) as answer:
            page = await answer.json()
        async with session.get(
            f"/v1/{PRACTICE}/appointments/booked",
            params={"startdate": "2026-11-20", "enddate": "11/20/2026"},
            headers=bearer,
        ) as answer:
            bad = answer.status
    assert isinstance(top["insurancepackages"][0]["insurancepackageid"], str)  # a string here, an integer elsewhere
    assert 0 < len(search["insurancepackages"]) <= 15
    assert page["totalcount"] == 37
    assert len(page["appointments"]) == 7
    assert "next" not in page
    assert page["previous"].startswith(f"/v1/{PRACTICE}/appointments/booked?")
    assert "offset=0" in page["previous"]
    assert bad == 400
