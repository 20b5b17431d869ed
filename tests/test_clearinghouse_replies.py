"""What a CORE reply means, decided without a socket: the 271, or which error with which message."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from eligibility_svc.backoff import parse_retry_after
from eligibility_svc.clearinghouse.ack999 import describe_999
from eligibility_svc.clearinghouse.core_mime import reply_from_answer as mime_reply
from eligibility_svc.clearinghouse.core_soap import reply_from_answer as soap_reply
from eligibility_svc.clearinghouse.http_client import HttpAnswer
from eligibility_svc.clearinghouse.replies import CoreReply, answer_271, check_271
from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    ClearinghouseError,
    ClearinghouseRateLimited,
    ClearinghouseRejected,
    ClearinghouseUnavailable,
)
from eligibility_svc.x12.reader import read_interchange
from tests.support.ch_servers import make_270, scenario

X271 = "X12_271_Response_005010X279A1"


def _ok(payload: str, payload_type: str = X271) -> dict[str, str]:
    return {"ErrorCode": "Success", "ErrorMessage": "", "PayloadType": payload_type, "Payload": payload}


def test_success_returns_the_payload_untouched() -> None:
    x12 = scenario("01").x12_271
    assert answer_271(CoreReply(200, _ok(x12)))[0] == x12


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (
            CoreReply(429, None, retry_after="7"),
            ClearinghouseRateLimited,
            "throttling us .HTTP 429.; it asks us to wait 7 s",
        ),
        (
            CoreReply(401, {"ErrorCode": "UnAuthorized"}),
            ClearinghouseRejected,
            "refused our credentials .HTTP 401: UnAuthorized",
        ),
        (CoreReply(403, None), ClearinghouseRejected, "client certificate"),
        (
            CoreReply(503, {"ErrorCode": "ServerError", "ErrorMessage": "payer down"}),
            ClearinghouseUnavailable,
            "HTTP 503: ServerError: payer down",
        ),
        (
            CoreReply(500, None, fault="SOAP fault soap:Receiver: boom"),
            ClearinghouseUnavailable,
            "HTTP 500: SOAP fault",
        ),
        (CoreReply(404, None), ClearinghouseRejected, "HTTP 404; check clearinghouse.url"),
        (CoreReply(302, None), ClearinghouseRejected, "HTTP 302"),
        (
            CoreReply(200, None, content_type="text/html"),
            ClearinghouseBadResponse,
            "without a CORE envelope .Content-Type text/html",
        ),
        (CoreReply(200, {"PayloadType": X271, "Payload": "ISA"}), ClearinghouseBadResponse, "has no ErrorCode"),
        (
            CoreReply(400, {"ErrorCode": "PayloadIDIllegal", "ErrorMessage": "not a UUID"}),
            ClearinghouseRejected,
            "rejected the CORE envelope: PayloadIDIllegal: not a UUID",
        ),
        (
            CoreReply(200, {"ErrorCode": "UnAuthorized"}),
            ClearinghouseRejected,
            "UnAuthorized: no ErrorMessage given; check clearinghouse.username",
        ),
        (CoreReply(200, _ok("")), ClearinghouseBadResponse, "Payload is empty"),
        (CoreReply(200, _ok("ISA", "X12_277_Response_005010X212")), ClearinghouseBadResponse, "sent 'X12_277_Response"),
        (CoreReply(200, _ok("hello")), ClearinghouseBadResponse, "not readable X12"),
    ],
)
def test_every_unusable_reply_is_a_typed_error(reply: CoreReply, error: type[ClearinghouseError], match: str) -> None:
    with pytest.raises(error, match=match):
        answer_271(reply)


def test_a_270_where_a_271_belongs_is_named() -> None:
    with pytest.raises(ClearinghouseBadResponse, match="expected a 271 transaction set, the payload holds 270"):
        check_271(X271, make_270(scenario("01").request))


def test_segment_count_that_disagrees_with_se01_is_damage() -> None:
    x12 = scenario("01").x12_271.replace("EB*A*IND*98***27**0****Y~\n", "")
    with pytest.raises(ClearinghouseBadResponse, match="SE01 says 47 segments but it holds 46"):
        check_271(X271, x12)


ACK = (
    "ISA*00*          *00*          *ZZ*CH             *ZZ*US             *261120*0930*^*00501*000000001*0*T*:~"
    "GS*FA*CH*US*20261120*0930*1*X*005010X231A1~ST*999*0001*005010X231A1~AK1*HS*17*005010X279A1~"
    "AK2*270*0017*005010X279A1~IK3*DMG*12*2100C*8~IK4*2*1251*8*19991399~IK3*ZZZ*14**1~IK5*R*5~AK9*R*1*1*0~"
    "SE*10*0001~GE*1*1~IEA*1*000000001~"
)


def test_999_is_described_segment_by_segment_without_the_bad_value() -> None:
    text = describe_999(read_interchange(ACK).transactions[0])
    assert text == (
        "the clearinghouse answered with a 999 instead of a 271: IK5 R rejected (one or more segments in error (5)); "
        "segment DMG at position 12 in loop 2100C: segment has data element errors (8) "
        "(element 2 (data element 1251): invalid date (8)); "
        "segment ZZZ at position 14: unrecognized segment ID (1)"
    )
    assert "19991399" not in text, "IK404 may be patient data"


def test_999_under_its_payload_type_or_disguised_as_a_271_is_reported_the_same() -> None:
    for payload_type in ("X12_999_Response_005010X231A1", X271):
        with pytest.raises(ClearinghouseBadResponse, match="invalid date") as caught:
            check_271(payload_type, ACK)
        assert caught.value.http_status == 502


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0.25", 0.25),
        (" 3 ", 3.0),
        ("-5", 0.0),
        ("Fri, 20 Nov 2026 09:30:30 GMT", 30.0),
        ("Fri, 20 Nov 2026 09:29:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(header: str | None, seconds: float | None) -> None:
    now = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    assert parse_retry_after(header, now=now) == seconds


REAL_271 = scenario("01").x12_271


def _damaged(data: st.DataObject) -> str:
    """A real 271 cut short, or with one character dropped or replaced: what a bad network or server makes."""
    cut = data.draw(st.integers(0, len(REAL_271)))
    kind = data.draw(st.sampled_from(["cut", "drop", "replace", "text"]))
    if kind == "cut":
        return REAL_271[:cut]
    if kind == "drop":
        return REAL_271[:cut] + REAL_271[cut + 1 :]
    if kind == "replace":
        return REAL_271[:cut] + data.draw(st.sampled_from("*~:^\n|X9 ")) + REAL_271[cut + 1 :]
    return data.draw(st.text(max_size=300))


@given(data=st.data(), payload_type=st.sampled_from([X271, "X12_999_Response_005010X231A1", ""]))
def test_no_payload_escapes_as_anything_but_a_clearinghouse_error(data: st.DataObject, payload_type: str) -> None:
    payload = _damaged(data)
    with contextlib.suppress(ClearinghouseError):
        assert answer_271(CoreReply(200, _ok(payload, payload_type)))[0] == payload


@given(body=st.binary(max_size=300), content_type=st.sampled_from(["multipart/form-data; boundary=b", "text/xml"]))
def test_no_mime_or_soap_body_escapes_as_anything_but_a_clearinghouse_error(body: bytes, content_type: str) -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": content_type}))
    for reply in (mime_reply(HttpAnswer(200, headers, body)), soap_reply(HttpAnswer(200, headers, body))):
        with contextlib.suppress(ClearinghouseError):
            answer_271(reply)
