"""PHI never reaches the logs: run checks for fixture patients with production logging, scan every line."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from eligibility_svc.logs import REQUEST_ID_HEADER, configure_logging
from tests.support.web_app import AiohttpClient, Api, embedded_settings, fixture_271, fixture_request, start_api

SCENARIOS = ("01", "09", "10", "14", "15", "16")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Everything logged, at DEBUG, through the production handler (redaction and JSON)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def dates(day: dt.date) -> list[str]:
    return [day.isoformat(), day.strftime("%Y%m%d"), day.strftime("%m/%d/%Y"), f"{day.month}/{day.day}/{day:%y}"]


def phi_of_request(request: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for person in (request["patient"], request.get("subscriber") or {}):
        values |= {person.get("last_name", ""), person.get("first_name", "")}
        if person.get("birth_date"):
            values |= set(dates(dt.date.fromisoformat(person["birth_date"])))
    values.add(request.get("member_id") or "")
    return {value for value in values if value}


def phi_of_summary(summary: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for member in (summary.get("subscriber") or {}, summary.get("patient") or {}):
        for field in ("last_name", "first_name", "member_id", "address_line1", "postal_code"):
            if member.get(field):
                values.add(member[field])
        if member.get("birth_date"):
            values |= set(dates(dt.date.fromisoformat(member["birth_date"])))
    return values


def _failing_route(app: web.Application) -> None:
    async def boom(request: web.Request) -> web.Response:
        body = await request.json()
        # The worst case: a bug puts a bare name and birth date in an exception message.
        raise KeyError(f"{body['patient']['last_name']} {body['patient']['birth_date']}")

    app.router.add_post("/v1/test/boom", boom)


async def test_no_patient_data_in_logs(aiohttp_client: AiohttpClient, log_stream: io.StringIO) -> None:
    api: Api = await start_api(aiohttp_client, embedded_settings(), prepare=_failing_route)
    phi: set[str] = set()
    for number, prefix in enumerate(SCENARIOS):
        request = fixture_request(prefix)
        phi |= phi_of_request(request)
        headers = api.auth(**{REQUEST_ID_HEADER: f"phi-test-{number}"})
        for _ in range(2):  # fresh, then cached
            response = await api.client.post("/v1/eligibility", json=request, headers=headers)
            assert response.status == 200
        phi |= phi_of_summary(await response.json())
        x12 = await api.client.post(
            "/v1/x12/271", json={"x12": fixture_271(prefix), "request": request}, headers=headers
        )
        assert x12.status == 200
    await _failures(api, fixture_request("01"))

    text = log_stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) > 20  # the access log and more: something was really captured
    assert any(line.get("request_id") == "phi-test-3" for line in lines)
    assert any(line["msg"].startswith("unexpected failure") and "exc" in line for line in lines)
    leaks = sorted(value for value in phi if value.lower() in text.lower())
    assert leaks == []


async def _failures(api: Api, request: dict[str, Any]) -> None:
    """Requests that fail with patient data in them: invalid fields, bad JSON, a crashing handler."""
    invalid = {**request, "patient": {**request["patient"], "sex": "?"}}
    assert (await api.client.post("/v1/eligibility", json=invalid, headers=api.auth())).status == 422
    future = {**request, "patient": {**request["patient"], "birth_date": "2999-01-01"}}
    assert (await api.client.post("/v1/eligibility", json=future, headers=api.auth())).status == 422
    broken = json.dumps(request)[:-10]
    headers = api.auth(**{"Content-Type": "application/json"})
    assert (await api.client.post("/v1/eligibility", data=broken, headers=headers)).status == 400
    assert (await api.client.post("/v1/test/boom", json=request, headers=api.auth())).status == 500
