"""The sandbox clearinghouse: strict about envelopes, faithful to the scenarios, honest about unknown members."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import aiohttp
import pytest

from eligibility_svc.clearinghouse import core_soap
from eligibility_svc.clearinghouse.core_mime import decode_form, encode_form
from eligibility_svc.clearinghouse.envelope import new_request
from eligibility_svc.clearinghouse.resilience import scan_aaa
from eligibility_svc.errors import ClearinghouseRejected
from eligibility_svc.sandbox.ch_config import MemberRange, SandboxClearinghouseConfig
from eligibility_svc.sandbox.ch_payer import AaaAnswer, answer_with_aaa
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.x12.parse270 import parse_270
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import read_interchange
from eligibility_svc.x12.validate import validate_x12
from tests.support import ch_servers
from tests.support.ch_servers import (
    ENVELOPES,
    PASSWORD,
    RECEIVER,
    SENDER,
    USERNAME,
    SandboxFactory,
    all_scenarios,
    ask,
    make_270,
    scenario,
    single,
    url_for,
)


def _deadline() -> float:
    return time.monotonic() + 3.0


def _good_fields(payload: str = "ISA") -> dict[str, str]:
    return {
        "PayloadType": "X12_270_Request_005010X279A1",
        "ProcessingMode": "RealTime",
        "PayloadID": str(uuid.uuid4()),
        "TimeStamp": "2026-11-20T09:30:00Z",
        "UserName": USERNAME,
        "Password": PASSWORD,
        "SenderID": SENDER,
        "ReceiverID": RECEIVER,
        "CORERuleVersion": "2.2.0",
        "Payload": payload,
    }


async def _post_mime(url: str, fields: list[tuple[str, str]]) -> tuple[int, dict[str, str]]:
    content_type, body = encode_form(fields)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        parts = decode_form(response.headers["Content-Type"], await response.read())
        assert parts is not None, "every answer is a CORE envelope"
        return response.status, dict(parts)


# --- envelope strictness (MIME) -----------------------------------------------------------------------

REQUIRED = ["PayloadType", "ProcessingMode", "PayloadID", "TimeStamp", "SenderID", "ReceiverID", "CORERuleVersion"]


@pytest.mark.parametrize("missing", ["UserName", "Password", *REQUIRED, "Payload"])
async def test_mime_missing_field_is_named_by_its_required_code(sandbox: RunningSandbox, missing: str) -> None:
    fields = [(k, v) for k, v in _good_fields(make_270(scenario("01").request)).items() if k != missing]
    status, answer = await _post_mime(sandbox.mime_url, fields)
    assert status == 400
    assert answer["ErrorCode"] == f"{missing}Required"
    assert missing in answer["ErrorMessage"]
    assert answer["PayloadType"] == "CoreEnvelopeError"
    assert "Payload" not in answer


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("PayloadType", "X12_276_Request_005010X212", "PayloadTypeIllegal"),
        ("ProcessingMode", "Batch", "ProcessingModeIllegal"),
        ("PayloadID", "not-a-uuid", "PayloadIDIllegal"),
        ("TimeStamp", "20/11/2026 09:30", "TimeStampIllegal"),
        ("TimeStamp", "2026-11-20", "TimeStampIllegal"),
        ("ReceiverID", "SOMEONEELSE", "ReceiverIDIllegal"),
        ("CORERuleVersion", "2.1.0", "VersionMismatch"),
    ],
)
async def test_mime_bad_value_gets_the_illegal_code(sandbox: RunningSandbox, field: str, value: str, code: str) -> None:
    fields = _good_fields(make_270(scenario("01").request))
    fields[field] = value
    status, answer = await _post_mime(sandbox.mime_url, list(fields.items()))
    assert (status, answer["ErrorCode"]) == (400, code)
    assert value in answer["ErrorMessage"]


async def test_mime_sender_must_be_a_trading_partner_when_configured(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(SandboxClearinghouseConfig(sender_ids=["OTHERPRACTICE"]))
    status, answer = await _post_mime(box.mime_url, list(_good_fields(make_270(scenario("01").request)).items()))
    assert (status, answer["ErrorCode"]) == (400, "SenderIDIllegal")


async def test_mime_wrong_password_is_401_unauthorized(sandbox: RunningSandbox) -> None:
    fields = _good_fields(make_270(scenario("01").request))
    fields["Password"] = "guess"
    status, answer = await _post_mime(sandbox.mime_url, list(fields.items()))
    assert (status, answer["ErrorCode"]) == (401, "UnAuthorized")


async def test_mime_field_names_are_case_sensitive_and_the_message_says_so(sandbox: RunningSandbox) -> None:
    fields = _good_fields(make_270(scenario("01").request))
    fields["payloadid"] = fields.pop("PayloadID")
    status, answer = await _post_mime(sandbox.mime_url, list(fields.items()))
    assert (status, answer["ErrorCode"]) == (400, "PayloadIDRequired")
    assert "case-sensitive" in answer["ErrorMessage"]


async def test_mime_repeated_field_is_illegal(sandbox: RunningSandbox) -> None:
    fields = [*_good_fields(make_270(scenario("01").request)).items(), ("SenderID", "SECOND")]
    status, answer = await _post_mime(sandbox.mime_url, fields)
    assert (status, answer["ErrorCode"]) == (400, "SenderIDIllegal")


async def test_mime_body_that_is_not_multipart_is_answered_not_crashed(sandbox: RunningSandbox) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(sandbox.mime_url, data=b"{}", headers={"Content-Type": "application/json"}) as response,
    ):
        parts = decode_form(response.headers["Content-Type"], await response.read())
    assert response.status == 400
    assert parts is not None
    assert dict(parts)["ErrorCode"] == "PayloadTypeRequired"


async def test_payload_that_is_not_x12_is_payload_illegal(sandbox: RunningSandbox) -> None:
    status, answer = await _post_mime(sandbox.mime_url, list(_good_fields("hello, payer").items()))
    assert (status, answer["ErrorCode"]) == (400, "PayloadIllegal")
    assert "not a readable 270" in answer["ErrorMessage"]


async def test_broken_270_is_acknowledged_with_a_999(sandbox: RunningSandbox) -> None:
    broken = make_270(scenario("01").request).replace("HL*1**20*1~", "HL*1**99*1~")
    status, answer = await _post_mime(sandbox.mime_url, list(_good_fields(broken).items()))
    assert (status, answer["ErrorCode"], answer["PayloadType"]) == (200, "Success", "X12_999_Response_005010X231A1")
    ack = read_interchange(answer["Payload"]).transactions[0]
    assert ack.set_id == "999"
    assert [s.id for s in ack.segments] == ["ST", "AK1", "AK2", "IK3", "IK5", "AK9", "SE"]
    assert ack.segments[-1].el(1) == str(len(ack.segments))


# --- envelope strictness (SOAP) -----------------------------------------------------------------------


async def _post_soap(url: str, body: bytes, content_type: str = "application/soap+xml") -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        return response.status, await response.read()


def _soap_request(*, username: str | None = USERNAME, password: str = PASSWORD, **changes: str) -> bytes:
    request = new_request(
        make_270(scenario("01").request), sender_id=SENDER, receiver_id=RECEIVER, username=username, password=password
    )
    body = core_soap.build_request(request)
    for old, new in changes.items():
        body = body.replace(old.encode(), new.encode())
    return body


async def test_soap_wrong_password_is_a_401_failed_authentication_fault(sandbox: RunningSandbox) -> None:
    status, body = await _post_soap(sandbox.soap_url, _soap_request(password="guess"))
    fault = core_soap.read_envelope(body).fault
    assert status == 401
    assert fault is not None
    assert "wsse:FailedAuthentication" in fault


async def test_soap_without_username_token_is_an_invalid_security_fault(sandbox: RunningSandbox) -> None:
    status, body = await _post_soap(sandbox.soap_url, _soap_request(username=None))
    fault = core_soap.read_envelope(body).fault
    assert status == 400
    assert fault is not None
    assert "wsse:InvalidSecurity" in fault


async def test_soap_11_envelope_is_a_version_mismatch_fault(sandbox: RunningSandbox) -> None:
    body = _soap_request(**{core_soap.SOAP12_NS: core_soap.SOAP11_NS})
    status, answer = await _post_soap(sandbox.soap_url, body)
    fault = core_soap.read_envelope(answer).fault
    assert status == 400
    assert fault is not None
    assert "VersionMismatch" in fault


async def test_soap_needs_the_soap_content_type(sandbox: RunningSandbox) -> None:
    status, answer = await _post_soap(sandbox.soap_url, _soap_request(), content_type="text/xml")
    assert status == 415
    assert "application/soap+xml" in (core_soap.read_envelope(answer).fault or "")


async def test_soap_envelope_field_errors_come_back_as_error_codes(sandbox: RunningSandbox) -> None:
    status, answer = await _post_soap(sandbox.soap_url, _soap_request(**{">2.2.0<": ">9.9.9<"}))
    message = core_soap.read_envelope(answer)
    assert status == 200
    assert message.fields["ErrorCode"] == "VersionMismatch"
    assert message.fields["PayloadType"] == "CoreEnvelopeError"


async def test_soap_garbage_is_a_sender_fault(sandbox: RunningSandbox) -> None:
    status, answer = await _post_soap(sandbox.soap_url, b"<not-closed")
    assert status == 400
    assert "Sender" in (core_soap.read_envelope(answer).fault or "")


# --- through the real transports -----------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_transport_turns_bad_credentials_into_an_actionable_rejection(
    sandbox: RunningSandbox, envelope: str
) -> None:
    transport = single(envelope, url_for(sandbox, envelope), password="wrong")
    with pytest.raises(ClearinghouseRejected, match=r"refused our credentials.*ELIG_CLEARINGHOUSE__PASSWORD") as caught:
        await transport.exchange(make_270(scenario("01").request), payer_id="SBX10001", deadline=_deadline())
    await transport.close()
    assert caught.value.details["http_status"] == 401


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_transport_reports_an_envelope_error_code_and_message(
    sandbox_factory: SandboxFactory, envelope: str
) -> None:
    box = await sandbox_factory(SandboxClearinghouseConfig(receiver_id="ANOTHERHOUSE"))
    transport = single(envelope, url_for(box, envelope))
    with pytest.raises(ClearinghouseRejected, match="ReceiverIDIllegal") as caught:
        await transport.exchange(make_270(scenario("01").request), payer_id="SBX10001", deadline=_deadline())
    await transport.close()
    assert caught.value.details["error_code"] == "ReceiverIDIllegal"
    assert "ANOTHERHOUSE" in caught.value.details["error_message"]


# --- scenarios ---------------------------------------------------------------------------------------------


def _body(x12: str) -> list[list[str]]:
    """Segments from HL*1 to before SE: the payer's answer without envelope, BHT or control numbers."""
    segments = read_interchange(x12).transactions[0].segments
    return [s.elements for s in segments if s.id not in ("ST", "BHT", "SE")]


@pytest.mark.parametrize("fixture", all_scenarios(), ids=lambda f: f.name)
async def test_every_scenario_is_answered_with_its_271_echoing_our_trace(
    sandbox: RunningSandbox, fixture: object
) -> None:
    assert isinstance(fixture, ch_servers.FixtureScenario)
    transport = single("core_mime", sandbox.mime_url)
    result = await transport.exchange(
        make_270(fixture.request, trace="OURTRACE-77"), payer_id=fixture.request.payer.id, deadline=_deadline()
    )
    await transport.close()
    answer = read_interchange(result.x12_271)
    expected = read_interchange(fixture.x12_271)
    transaction = answer.transactions[0]
    bht = transaction.segments[1]
    assert bht.el(3) == "OURTRACE-77"
    traces = [s for s in transaction.segments if s.id == "TRN" and s.el(1) == "2"]
    assert all(t.el(2) == "OURTRACE-77" for t in traces)
    assert len(traces) == sum(1 for s in expected.transactions[0].segments if s.id == "TRN" and s.el(1) == "2")

    def without_our_trace(rows: list[list[str]]) -> list[list[str]]:
        return [r for r in rows if r[:2] != ["TRN", "2"]]

    assert without_our_trace(_body(result.x12_271)) == without_our_trace(_body(fixture.x12_271))
    assert (answer.sender_id, answer.receiver_id) == (RECEIVER, SENDER), "our 270's parties, swapped"
    assert transaction.segments[-1].el(1) == str(len(transaction.segments))
    assert parse_271(result.x12_271), "the answer parses as a 271"
    assert _errors(result.x12_271) == [], "and meets 005010X279A1"


async def test_control_numbers_are_fresh_for_every_answer(sandbox: RunningSandbox) -> None:
    transport = single("core_mime", sandbox.mime_url)
    x12 = make_270(scenario("01").request)
    answers = [await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline()) for _ in range(2)]
    await transport.close()
    controls = [
        (i.control_number, i.transactions[0].control_number) for i in (read_interchange(a.x12_271) for a in answers)
    ]
    assert controls[0] != controls[1]
    assert controls[0][0] != read_interchange(scenario("01").x12_271).control_number


async def test_names_are_echoed_as_we_sent_them_where_the_payer_agrees(sandbox: RunningSandbox) -> None:
    fixture = scenario("01")
    patient = fixture.request.patient.model_copy(update={"last_name": "Fixture-ly"})  # same for CORE 258 matching
    result = await ask(sandbox, make_270(fixture.request, patient=patient), "SBX10001")
    subscriber = next(
        s for s in read_interchange(result.x12_271).transactions[0].segments if s.id == "NM1" and s.el(1) == "IL"
    )
    assert subscriber.el(3) == "FIXTURE-LY"


async def test_a_payer_correction_is_kept_not_overwritten_by_the_echo(sandbox: RunningSandbox) -> None:
    fixture = scenario("15")
    result = await ask(sandbox, make_270(fixture.request), fixture.request.payer.id)

    def names(x12: str) -> list[list[str]]:
        return [s.elements for s in read_interchange(x12).transactions[0].segments if s.id in ("NM1", "DMG")]

    assert names(result.x12_271) == names(fixture.x12_271)


def _errors(x12: str) -> list[str]:
    """Implementation-guide errors in an answer (x12.validate, the 005010X279A1 map)."""
    return [f"{f.segment_id}: {f.message}" for f in validate_x12(x12).findings if f.severity == "error"]


@pytest.mark.parametrize("prefix", ["01", "14"])
@pytest.mark.parametrize(
    "aaa",
    [AaaAnswer("2100A", "42", "R"), AaaAnswer("2100A", "79", "C"), AaaAnswer("2100C", "75", "C")],
    ids=lambda a: f"{a.loop}-{a.reason}",
)
def test_synthesized_aaa_answers_meet_the_implementation_guide(prefix: str, aaa: AaaAnswer) -> None:
    inquiry = parse_270(make_270(scenario(prefix).request))[0]
    x12 = answer_with_aaa(inquiry, aaa, 42, dt.datetime(2026, 11, 20, 9, 30))
    assert _errors(x12) == []
    assert [(h.loop, h.reason) for h in scan_aaa(x12)] == [(aaa.loop, aaa.reason)]


def _only_aaa(x12: str) -> list[tuple[str, str, str]]:
    return [(hit.loop, hit.reason, hit.follow_up) for hit in scan_aaa(x12)]


@pytest.mark.parametrize(
    ("prefix", "changes", "expected"),
    [
        ("01", {"member_id": "ZZNOSUCH01"}, ("2100C", "72", "C")),  # name and DOB match, the ID does not
        ("01", {"member_id": None}, None),  # search by name and DOB finds the member
        ("14", {"member_id": "ZZNOSUCH14"}, ("2100C", "72", "C")),
    ],
)
async def test_member_search_by_id_and_demographics(
    sandbox: RunningSandbox, prefix: str, changes: dict[str, object], expected: tuple[str, str, str] | None
) -> None:
    fixture = scenario(prefix)
    result = await ask(sandbox, make_270(fixture.request, **changes), fixture.request.payer.id)
    assert _only_aaa(result.x12_271) == ([expected] if expected else _only_aaa(fixture.x12_271))


@pytest.mark.parametrize(
    ("prefix", "patient_changes", "expected"),
    [
        ("01", {"last_name": "Otherfamily"}, ("2100C", "73", "C")),  # the ID matches, the name does not
        ("01", {"birth_date": dt.date(1990, 1, 1)}, ("2100C", "71", "C")),  # ID and name match, the DOB does not
        ("14", {"first_name": "Nobody"}, ("2100D", "65", "C")),  # a dependent's name: 2100D
    ],
)
async def test_mismatched_patient_gets_the_payers_aaa(
    sandbox: RunningSandbox, prefix: str, patient_changes: dict[str, object], expected: tuple[str, str, str]
) -> None:
    fixture = scenario(prefix)
    patient = fixture.request.patient.model_copy(update=patient_changes)
    result = await ask(
        sandbox, make_270(fixture.request, patient=patient), fixture.request.payer.id, envelope="core_soap"
    )
    assert _only_aaa(result.x12_271) == [expected]
    assert parse_271(result.x12_271)


async def test_unknown_member_is_not_found_with_our_trace_echoed(sandbox: RunningSandbox) -> None:
    fixture = scenario("01")
    patient = fixture.request.patient.model_copy(update={"last_name": "Nobodyhere", "first_name": "Ann"})
    result = await ask(
        sandbox, make_270(fixture.request, trace="T-404", patient=patient, member_id="ZZ000000"), "SBX10001"
    )
    assert _only_aaa(result.x12_271) == [("2100C", "75", "C")]
    segments = read_interchange(result.x12_271).transactions[0].segments
    assert any(s.id == "TRN" and s.el(1) == "2" and s.el(2) == "T-404" for s in segments)
    subscriber = next(s for s in segments if s.id == "NM1" and s.el(1) == "IL")
    assert (subscriber.el(3), subscriber.el(9)) == ("NOBODYHERE", "ZZ000000"), "the name and ID as we sent them"


def _subscriber_id(x12: str) -> str:
    segments = read_interchange(x12).transactions[0].segments
    return next(s.el(9) for s in segments if s.id == "NM1" and s.el(1) == "IL")


async def test_a_member_range_answers_many_member_ids_as_its_scenario(sandbox_factory: SandboxFactory) -> None:
    fixture = scenario("01")
    ranges = [MemberRange(prefix="BN1-", scenario=fixture.name)]
    box = await sandbox_factory(SandboxClearinghouseConfig(member_ranges=ranges))
    payer = fixture.request.payer.id
    for member_id in ("BN1-0000042", "bn1-77"):
        result = await ask(box, make_270(fixture.request, member_id=member_id), payer)
        assert _subscriber_id(result.x12_271) == member_id.upper(), "the member ID we sent, echoed"
        body = [row for row in _body(result.x12_271) if row[:2] not in (["TRN", "2"], ["NM1", "IL"])]
        assert body == [row for row in _body(fixture.x12_271) if row[:2] not in (["TRN", "2"], ["NM1", "IL"])]
    other_name = fixture.request.patient.model_copy(update={"last_name": "Otherfamily"})
    renamed = await ask(box, make_270(fixture.request, member_id="BN1-5", patient=other_name), payer)
    assert _only_aaa(renamed.x12_271) == [("2100C", "73", "C")], "name and birth date are still checked"
    outside = await ask(box, make_270(fixture.request, member_id="BN2-5"), payer)
    assert _only_aaa(outside.x12_271) == [("2100C", "72", "C")], "an ID outside the range is not the member"
    elsewhere = scenario("02")
    wrong_payer = await ask(box, make_270(elsewhere.request, member_id="BN1-5"), elsewhere.request.payer.id)
    assert _only_aaa(wrong_payer.x12_271) == [("2100C", "72", "C")], "a range is its scenario's payer's only"


async def test_member_ranges_are_set_at_runtime_and_must_name_a_scenario(sandbox: RunningSandbox) -> None:
    fixture = scenario("01")
    async with aiohttp.ClientSession() as session:
        bad = {"member_ranges": [{"prefix": "BN1-", "scenario": "99-no-such-scenario"}]}
        async with session.put(sandbox.base_url + "/admin/config", json=bad) as response:
            assert response.status == 400
            assert "99-no-such-scenario" in (await response.json())["error"]
        good = {"member_ranges": [{"prefix": "BN1-", "scenario": fixture.name}]}
        async with session.put(sandbox.base_url + "/admin/config", json=good) as response:
            assert response.status == 200
            assert (await response.json())["member_ranges"] == good["member_ranges"]
    result = await ask(sandbox, make_270(fixture.request, member_id="BN1-1"), fixture.request.payer.id)
    assert _only_aaa(result.x12_271) == _only_aaa(fixture.x12_271)
    assert _subscriber_id(result.x12_271) == "BN1-1"


async def test_unknown_payer_is_an_invalid_participant_at_2100a(sandbox: RunningSandbox) -> None:
    fixture = scenario("01")
    payer = fixture.request.payer.model_copy(update={"id": "NOPAYER99"})
    result = await ask(sandbox, make_270(fixture.request, payer=payer), "NOPAYER99")
    assert _only_aaa(result.x12_271) == [("2100A", "79", "C")]


async def test_health_and_admin_config(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(sandbox.base_url + "/healthz") as response:
            assert (await response.json())["scenarios"] == len(all_scenarios())
        update = {"payers": {"SBX10001": {"faults": [{"kind": "http_5xx", "first": 1}]}}}
        async with session.put(sandbox.base_url + "/admin/config", json=update) as response:
            config = await response.json()
        assert config["payers"]["SBX10001"]["faults"][0]["kind"] == "http_5xx"
        assert config["password"] == "**********"
        async with session.put(sandbox.base_url + "/admin/config", json={"payers": {"X": {"faults": [{}]}}}) as bad:
            assert bad.status == 400
    transport = single("core_mime", sandbox.mime_url)
    x12 = make_270(scenario("01").request)
    with pytest.raises(Exception, match="HTTP 503"):
        await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline())
    assert (await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline())).x12_271
    await transport.close()
