"""Pure pieces of the athenaNet client: wire formats, retry decisions, budgets' arithmetic, outbox state."""

from __future__ import annotations

import datetime as dt
from collections import deque

import pytest

from eligibility_svc.athena.client import CallPolicy, error_from, retry_after_seconds, retry_delay
from eligibility_svc.athena.http import HttpResponse, encode_form
from eligibility_svc.athena.outbox import WriteBackStatus, read_state
from eligibility_svc.athena.outbox import retry_delay as outbox_delay
from eligibility_svc.athena.ratelimit import Bucket, LocalWindow, bucket_wait, window_wait
from eligibility_svc.athena.records import AthenaInsurance, as_id, insurances_of, parse_bool, parse_date
from eligibility_svc.athena.token import read_token
from eligibility_svc.errors import (
    AthenaBadRequest,
    AthenaConflict,
    AthenaError,
    AthenaNotFound,
    AthenaRateLimited,
    AthenaTimeout,
    AthenaUnavailable,
)
from eligibility_svc.settings import AthenaSettings

POLICY = CallPolicy(max_attempts=4, backoff_base=0.5, backoff_max=8.0, max_retry_after=10.0)


def test_wire_values_are_read_whichever_way_they_arrive() -> None:
    assert parse_date("01/15/1985") == dt.date(1985, 1, 15)
    assert parse_date("1985-01-15") == dt.date(1985, 1, 15)
    assert parse_date("02/30/1985") is None
    assert parse_date(19850115) is None
    assert [parse_bool(v) for v in ("false", "TRUE", True, 0, "maybe")] == [False, True, True, False, None]
    assert [as_id(v) for v in ("100", 100, 100.0, " 7 ", "", None, True)] == [
        "100",
        "100",
        "100",
        "7",
        None,
        None,
        None,
    ]
    insurances = insurances_of(
        {"insurances": [{"insuranceid": 5, "sequencenumber": "2", "cancelled": "false"}, "junk"]}
    )
    assert [(i.insuranceid, i.sequencenumber, i.active) for i in insurances] == [("5", 2, True)]
    assert not AthenaInsurance.model_validate({"cancelled": "11/01/2026"}).active
    assert encode_form({"dob": "01/15/1985", "scope": "athena/service/Athenanet.MDP.*"}) == (
        b"dob=01%2F15%2F1985&scope=athena%2Fservice%2FAthenanet.MDP.%2A"
    )


@pytest.mark.parametrize(
    ("expires_in", "lifetime"), [("3600", 3600), (3600, 3600), (120, 120), (None, 3600), ("x", 3600)]
)
def test_expires_in_is_read_as_a_number_or_a_string(expires_in: object, lifetime: int) -> None:
    token = read_token({"access_token": "t", "expires_in": expires_in}, 1000.0)
    assert token.expires_at == 1000.0 + lifetime
    assert token.usable(1000.0 + lifetime - 61, 60)
    assert not token.usable(1000.0 + lifetime - 59, 60)


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Tue, 24 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 24 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def _error(kind: type[AthenaError], **details: object) -> AthenaError:
    return kind("x", details=dict(details))


@pytest.mark.parametrize(
    ("error", "method", "retried"),
    [
        (_error(AthenaRateLimited), "POST", True),
        (_error(AthenaUnavailable, status=503), "PUT", True),
        (_error(AthenaUnavailable, status=502), "PUT", False),  # may have landed: back to the outbox
        (_error(AthenaUnavailable, status=502), "GET", True),
        (_error(AthenaUnavailable, sent=False), "DELETE", True),  # never left: safe
        (_error(AthenaUnavailable, sent=True), "POST", False),
        (_error(AthenaTimeout, sent=True), "GET", True),
        (_error(AthenaTimeout, sent=True), "POST", False),
        (_error(AthenaBadRequest, status=400), "GET", False),
        (_error(AthenaNotFound, status=404), "GET", False),
        (_error(AthenaConflict, status=409), "POST", False),
    ],
)
def test_what_is_retried_by_the_client(error: AthenaError, method: str, retried: bool) -> None:
    assert (retry_delay(error, method=method, attempt=1, policy=POLICY, rand=0.5) is not None) is retried


def test_retry_waits_honour_retry_after_with_jitter_and_give_up_beyond_the_cap() -> None:
    asked = _error(AthenaRateLimited, retry_after_seconds=2.0)
    waits = [retry_delay(asked, method="GET", attempt=1, policy=POLICY, rand=r) for r in (0.0, 0.99)]
    assert waits[0] == 2.0
    assert waits[1] is not None
    assert 2.0 < waits[1] < 2.5
    too_long = _error(AthenaRateLimited, retry_after_seconds=11.0)
    assert retry_delay(too_long, method="GET", attempt=1, policy=POLICY, rand=0.5) is None
    plain = _error(AthenaUnavailable, status=503)
    assert retry_delay(plain, method="GET", attempt=3, policy=POLICY, rand=0.999) == pytest.approx(2.0 * 0.999)
    assert retry_delay(plain, method="GET", attempt=4, policy=POLICY, rand=0.5) is None  # attempts used up


def test_error_bodies_become_typed_errors_with_athenas_texts() -> None:
    body = b'{"error": "Additional fields are required.", "detailedmessage": "x", "missingfields": ["sex"]}'
    error = error_from(HttpResponse(400, {}, body), "POST", "/v1/{practiceid}/patients/{patientid}/insurances")
    assert isinstance(error, AthenaBadRequest)
    assert error.details["missingfields"] == ["sex"]
    assert "Additional fields are required" in error.message
    gateway = error_from(HttpResponse(504, {}, b"<html>Gateway Timeout</html>"), "GET", "/v1/x")
    assert isinstance(gateway, AthenaUnavailable)
    assert gateway.details["status"] == 504
    limited = error_from(HttpResponse(429, {"Retry-After": "3"}, b""), "GET", "/v1/x")
    assert isinstance(limited, AthenaRateLimited)
    assert limited.details["retry_after_seconds"] == 3.0


def test_budget_arithmetic() -> None:
    times: deque[float] = deque([0.0, 1.0])
    assert window_wait(times, 2, 60.0, 30.0) == 30.0
    assert window_wait(times, 2, 60.0, 60.5) == 0.0  # the first left the window: room again
    assert list(times) == [1.0]
    bucket = Bucket(tokens=1.0, updated=0.0)
    assert bucket_wait(bucket, 5.0, 1, 0.0) == 0.0
    assert bucket_wait(bucket, 5.0, 1, 0.0) == pytest.approx(0.2)  # reserved: the next one waits its turn
    assert bucket_wait(bucket, 5.0, 1, 0.0) == pytest.approx(0.4)


async def test_a_token_request_that_never_left_is_given_back() -> None:
    window = LocalWindow(1, 60.0)
    ticket = await window.take(deadline=0.0 + 10**9)
    await window.give_back(ticket)
    await window.take(deadline=0.0 + 10**9)  # would wait a minute if the first still counted


def test_outbox_backoff_and_state_reading() -> None:
    settings = AthenaSettings(outbox_backoff_base_seconds=2.0, outbox_backoff_max_seconds=10.0)
    assert outbox_delay(1, settings, 0.0) == 1.0
    assert outbox_delay(2, settings, 0.999) == pytest.approx(4 * (0.5 + 0.999 / 2))
    assert outbox_delay(9, settings, 0.999) <= 10.0
    fields = {b"status": b"applied", b"attempts": b"2", b"action": b"update", b"changed": b"issuedate,policynumber"}
    state = read_state("chk", fields)
    assert state is not None
    assert (state.status, state.attempts, state.changed) == (WriteBackStatus.APPLIED, 2, ["issuedate", "policynumber"])
    assert read_state("chk", {}) is None
