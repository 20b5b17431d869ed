"""Logs: JSON lines in which no test patient's name, birth date or member ID ever appears."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from eligibility_svc.logs import (
    REDACTED,
    REQUEST_ID_HEADER,
    JsonFormatter,
    RedactingFilter,
    configure_logging,
    current_request_id,
    is_phi_key,
    redact_text,
    request_id_middleware,
    request_id_scope,
)
from eligibility_svc.models import EligibilityRequest

LAST, FIRST, MEMBER = "Quorvindale", "Zyxwerta", "ZQX98765432"
SUB_LAST, SUB_FIRST, SUB_MEMBER = "Brannigold", "Wexley", "YPB55501234"
DOB = dt.date(1961, 3, 14)
PHI = [
    LAST,
    FIRST,
    MEMBER,
    SUB_LAST,
    SUB_FIRST,
    SUB_MEMBER,
    "1961-03-14",
    "19610314",
    "03/14/1961",
    "3/14/61",
]


def leaked(text: str) -> list[str]:
    lowered = text.lower()
    return [value for value in PHI if value.lower() in lowered]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose output goes, filtered and formatted as in production, into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logs.captured")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def eligibility_request() -> EligibilityRequest:
    return EligibilityRequest.model_validate(
        {
            "payer": {"id": "87726", "name": "UnitedHealthcare"},
            "provider": {"npi": "1234567893", "organization_name": "Main Street Clinic"},
            "patient": {"last_name": LAST, "first_name": FIRST, "birth_date": DOB.isoformat(), "relationship": "19"},
            "subscriber": {"last_name": SUB_LAST, "first_name": SUB_FIRST},
            "member_id": SUB_MEMBER,
            "service": {"date": "2025-06-02", "service_types": ["30"]},
        }
    )


def test_patient_fields_in_extra_are_removed(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info(
        "check answered",
        extra={
            "first_name": FIRST,
            "last_name": LAST,
            "birth_date": DOB,
            "member_id": MEMBER,
            "patient": {"name": f"{FIRST} {LAST}"},
            "subscriber_name": SUB_LAST,
            "payer_id": "87726",
            "payer_name": "UnitedHealthcare",
            "status": "active",
            "elapsed_ms": 12.5,
            "details": {"dob": "1961-03-14", "mbr": {"member_id": MEMBER}, "codes": ["30", "98"]},
        },
    )
    text = stream.getvalue()
    assert leaked(text) == []
    (line,) = lines(stream)
    assert line["msg"] == "check answered"
    assert line["level"] == "INFO"
    assert (line["first_name"], line["member_id"], line["patient"]) == (REDACTED, REDACTED, REDACTED)
    # What is not patient data survives, so the logs stay useful.
    assert (line["payer_id"], line["payer_name"], line["status"], line["elapsed_ms"]) == (
        "87726",
        "UnitedHealthcare",
        "active",
        12.5,
    )
    assert line["details"]["codes"] == ["30", "98"]


@pytest.mark.parametrize(
    "message",
    [
        f"no match for member_id={MEMBER} name: {LAST}, {FIRST} dob=1961-03-14",
        f"Member ID: {MEMBER}; patient={FIRST} {LAST}; DOB 03/14/1961",
        f'payload {{"last_name": "{LAST}", "first_name": "{FIRST}", "birth_date": "1961-03-14"}}',
        f"subscriber id {SUB_MEMBER} not found",
        f"271 said NM1*IL*1*{LAST}*{FIRST}****MI*{MEMBER}~DMG*D8*19610314*F~REF*SY*123456789~",
        f"born 3/14/61, policy# {MEMBER}",
    ],
)
def test_patient_data_in_messages_is_masked(captured: tuple[logging.Logger, io.StringIO], message: str) -> None:
    logger, stream = captured
    logger.warning("%s", message)
    text = stream.getvalue()
    assert leaked(text) == [], text


def test_a_model_in_extra_is_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("request received", extra={"request": eligibility_request()})
    assert leaked(stream.getvalue()) == []
    (line,) = lines(stream)
    assert line["request"]["payer"] == {"id": "87726", "name": "UnitedHealthcare"}
    assert line["request"]["patient"] == REDACTED
    assert line["request"]["member_id"] == REDACTED


def test_tracebacks_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"bad subscriber: last_name={LAST} member_id={MEMBER} dob=1961-03-14")
    except ValueError:
        logger.exception("check failed")
    (line,) = lines(stream)
    assert "ValueError" in line["exc"]
    assert leaked(stream.getvalue()) == []


def test_the_formatter_alone_still_redacts() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # a handler someone set up without the filter
    logger = logging.getLogger("test.logs.formatter_only")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("member_id=%s for patient=%s", MEMBER, LAST, extra={"last_name": LAST, "dob": DOB})
    finally:
        logger.removeHandler(handler)
    (line,) = lines(stream)
    assert line["msg"] == f"member_id={REDACTED} for patient={REDACTED}"
    assert leaked(stream.getvalue()) == []


def test_redact_text_keeps_what_is_not_patient_data() -> None:
    text = "payer 87726 answered 271 in 840 ms for NPI 1234567893, trace 9001234567"
    assert redact_text(text) == text
    assert redact_text(f"patient: {LAST}; status=active") == f"patient: {REDACTED}; status=active"


def test_phi_key_names() -> None:
    for key in ("first_name", "LastName", "last-name", "dob", "birth_date", "member_id", "patient", "subscriber"):
        assert is_phi_key(key), key
    for key in ("payer_id", "payer_name", "status", "route", "check_id", "elapsed_ms"):
        assert not is_phi_key(key), key


def test_configure_logging_routes_the_root_logger(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging("DEBUG", stream)
        logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /v1/x?last_name=%s" 200', LAST)
        logging.getLogger("eligibility_svc.service").debug("patient=%s", LAST)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    records = lines(stream)
    assert [record["logger"] for record in records] == ["aiohttp.access", "eligibility_svc.service"]
    assert leaked(stream.getvalue()) == []


# --- request ids ----------------------------------------------------------------------------------------


def test_request_id_is_logged_inside_its_scope(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("before")
    with request_id_scope("req-123") as request_id:
        assert request_id == "req-123"
        logger.info("during")
    logger.info("after")
    assert [line.get("request_id") for line in lines(stream)] == [None, "req-123", None]
    with request_id_scope() as generated:
        assert len(generated) == 32


async def test_request_id_follows_into_tasks() -> None:
    async def child() -> str | None:
        await asyncio.sleep(0)
        return current_request_id()

    with request_id_scope("req-task"):
        task = asyncio.create_task(child())
    assert current_request_id() is None
    assert await task == "req-task"


async def test_middleware_adopts_or_makes_the_request_id(aiohttp_client: AiohttpClient) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"seen": current_request_id()})

    async def missing(request: web.Request) -> web.Response:
        raise web.HTTPNotFound

    app = web.Application(middlewares=[request_id_middleware()])
    app.router.add_get("/echo", echo)
    app.router.add_get("/missing", missing)
    client = await aiohttp_client(app)

    adopted = await client.get("/echo", headers={REQUEST_ID_HEADER: "abc-123.x"})
    assert adopted.headers[REQUEST_ID_HEADER] == "abc-123.x"
    assert await adopted.json() == {"seen": "abc-123.x"}

    hostile = await client.get("/echo", headers={REQUEST_ID_HEADER: f"{LAST} {FIRST}\u2028"})
    made = hostile.headers[REQUEST_ID_HEADER]
    assert len(made) == 32
    assert await hostile.json() == {"seen": made}

    not_found = await client.get("/missing")
    assert not_found.status == 404
    assert len(not_found.headers[REQUEST_ID_HEADER]) == 32
