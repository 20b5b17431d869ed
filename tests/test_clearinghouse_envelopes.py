"""The CORE messages we send, field by field against the rule's required set, and how replies are read."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import aiohttp
import defusedxml.ElementTree as SafeET
import pytest

from eligibility_svc.clearinghouse import core_soap
from eligibility_svc.clearinghouse.core_mime import decode_form, encode_form, mime_fields
from eligibility_svc.clearinghouse.envelope import new_request
from eligibility_svc.errors import ClearinghouseBadResponse, ClearinghouseRejected, ClearinghouseUnavailable
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from tests.support.ch_servers import RECEIVER, SENDER, USERNAME, Canned, StaticServer, make_270, scenario, single

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CORE = "http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"

# The rule's real-time request metadata (CAQH CORE Connectivity vC2.2.0), spelled as the rule spells it.
RULE_FIELDS = {"PayloadType", "ProcessingMode", "PayloadID", "TimeStamp", "SenderID", "ReceiverID", "CORERuleVersion"}


def _deadline(seconds: float = 3.0) -> float:
    return time.monotonic() + seconds


def _assert_rule_values(fields: dict[str, str], x12: str) -> None:
    assert fields["PayloadType"] == "X12_270_Request_005010X279A1"
    assert fields["ProcessingMode"] == "RealTime"
    assert uuid.UUID(fields["PayloadID"]).version == 4
    sent = dt.datetime.fromisoformat(fields["TimeStamp"])
    assert fields["TimeStamp"].endswith("Z"), "ISO 8601 in UTC"
    assert abs((dt.datetime.now(dt.UTC) - sent).total_seconds()) < 60
    assert fields["SenderID"] == SENDER
    assert fields["ReceiverID"] == RECEIVER
    assert fields["CORERuleVersion"] == "2.2.0"
    assert fields["Payload"] == x12


async def test_mime_request_carries_every_required_field_once(sandbox: RunningSandbox) -> None:
    x12 = make_270(scenario("01").request)
    transport = single("core_mime", sandbox.mime_url)
    await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline())
    await transport.close()

    [seen] = sandbox.state.captured
    assert seen.content_type.startswith("multipart/form-data; boundary=")
    names = [name for name, _ in seen.fields]
    assert sorted(names) == sorted({*RULE_FIELDS, "UserName", "Password", "Payload"}), "each field exactly once"
    fields = dict(seen.fields)
    _assert_rule_values(fields, x12)
    assert fields["UserName"] == USERNAME
    assert fields["Password"] == "***"  # captured masked; the 200 shows the server accepted it
    assert (seen.http_status, seen.error_code) == (200, "Success")


async def test_soap_request_is_soap12_with_username_token_and_rule_fields(sandbox: RunningSandbox) -> None:
    x12 = make_270(scenario("01").request)
    transport = single("core_soap", sandbox.soap_url)
    await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline())
    await transport.close()

    [seen] = sandbox.state.captured
    assert seen.content_type.startswith("application/soap+xml")
    assert 'action="RealTimeTransaction"' in seen.content_type
    assert seen.soap["envelope_ns"] == SOAP12
    assert seen.soap["body_element"] == f"{{{CORE}}}COREEnvelopeRealTimeRequest"
    assert seen.soap["has_security"] is True
    assert seen.soap["must_understand"] == "true"
    assert seen.soap["username"] == USERNAME
    assert seen.soap["password_type"] == PASSWORD_TEXT
    fields = dict(seen.fields)
    assert set(fields) == {*RULE_FIELDS, "Payload"}, "credentials travel in WS-Security, not the body"
    _assert_rule_values(fields, x12)
    assert (seen.http_status, seen.error_code) == (200, "Success")


def test_soap_request_xml_shape_read_independently() -> None:
    """Read with defusedxml directly: namespaces as the CORE WSDL has them, body children unqualified."""
    request = new_request("ISA*<&>~", sender_id=SENDER, receiver_id=RECEIVER, username="u<1>", password="p&w")
    root = SafeET.fromstring(core_soap.build_request(request), forbid_dtd=True)
    assert root.tag == f"{{{SOAP12}}}Envelope"
    token = root.find(f"{{{SOAP12}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    assert token is not None
    assert token.findtext(f"{{{WSSE}}}Username") == "u<1>"
    password = token.find(f"{{{WSSE}}}Password")
    assert password is not None
    assert (password.text, password.get("Type")) == ("p&w", PASSWORD_TEXT)
    body = root.find(f"{{{SOAP12}}}Body/{{{CORE}}}COREEnvelopeRealTimeRequest")
    assert body is not None
    assert [child.tag for child in body] == [
        "PayloadType",
        "ProcessingMode",
        "PayloadID",
        "TimeStamp",
        "SenderID",
        "ReceiverID",
        "CORERuleVersion",
        "Payload",
    ]
    assert body.findtext("Payload") == "ISA*<&>~", "escaped on the way out, intact on the way in"


async def test_every_attempt_is_a_new_message_with_its_own_payload_id(sandbox: RunningSandbox) -> None:
    transport = single("core_mime", sandbox.mime_url)
    x12 = make_270(scenario("01").request)
    for _ in range(3):
        await transport.exchange(x12, payer_id="SBX10001", deadline=_deadline())
    await transport.close()
    ids = [dict(seen.fields)["PayloadID"] for seen in sandbox.state.captured]
    assert len(set(ids)) == 3


def test_mime_form_round_trip_keeps_payload_bytes_exact() -> None:
    payload = "ISA*00*~\r\nGS*HS~\nST*270*0001~\n"  # CRLF and LF inside the payload survive
    request = new_request(payload, sender_id="S", receiver_id="R", username="u", password="p")
    content_type, body = encode_form(mime_fields(request))
    fields = decode_form(content_type, body)
    assert fields is not None
    assert dict(fields)["Payload"] == payload
    assert [name for name, _ in fields][:6] == [
        "PayloadType",
        "ProcessingMode",
        "PayloadID",
        "TimeStamp",
        "UserName",
        "Password",
    ]


def test_mime_fields_leave_out_credentials_for_certificate_auth() -> None:
    request = new_request("ISA", sender_id="S", receiver_id="R", username=None, password=None)
    assert {name for name, _ in mime_fields(request)} == {*RULE_FIELDS, "Payload"}


def test_decode_form_refuses_what_is_not_multipart() -> None:
    assert decode_form("application/x-www-form-urlencoded", b"PayloadType=X") is None


def test_request_repr_never_shows_the_password() -> None:
    request = new_request("ISA", sender_id="S", receiver_id="R", username="u", password="hunter2")
    assert "hunter2" not in repr(request)


# --- hardened XML -------------------------------------------------------------------------------------

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol2;</soap:Body></soap:Envelope>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
<cor:COREEnvelopeRealTimeResponse xmlns:cor="http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd">
<Payload>&secret;</Payload></cor:COREEnvelopeRealTimeResponse></soap:Body></soap:Envelope>"""


@pytest.mark.parametrize("body", [LAUGHS, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_soap_reader_refuses_dtds_and_entities(body: bytes) -> None:
    message = core_soap.read_envelope(body)
    assert message.problem is not None
    assert "DTDForbidden" in message.problem
    assert message.fields == {}


@pytest.mark.parametrize("body", [LAUGHS, EXTERNAL], ids=["entity-expansion", "external-entity"])
async def test_soap_transport_reports_a_dtd_response_as_bad(static_server: StaticServer, body: bytes) -> None:
    url = await static_server(Canned(200, body, {"Content-Type": "application/soap+xml"}))
    transport = single("core_soap", url)
    with pytest.raises(ClearinghouseBadResponse, match="without a CORE envelope"):
        await transport.exchange("ISA", payer_id="P", deadline=_deadline())
    await transport.close()


async def test_sandbox_refuses_a_dtd_in_the_request(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(sandbox.soap_url, data=LAUGHS, headers={"Content-Type": "application/soap+xml"})
        body = await response.read()
    assert response.status == 400
    fault = core_soap.read_envelope(body)
    assert fault.fault is not None
    assert "Sender" in fault.fault
    assert "DTDForbidden" in fault.fault


async def test_soap_fault_from_server_becomes_unavailable_with_its_reason(static_server: StaticServer) -> None:
    fault = core_soap.build_fault("Receiver", "payer gateway down for maintenance")
    url = await static_server(Canned(500, fault, {"Content-Type": "application/soap+xml"}))
    transport = single("core_soap", url)
    with pytest.raises(ClearinghouseUnavailable, match="HTTP 500: SOAP fault soap:Receiver: payer gateway down"):
        await transport.exchange("ISA", payer_id="P", deadline=_deadline())
    await transport.close()


async def test_html_error_page_on_400_is_a_rejection_naming_the_status(static_server: StaticServer) -> None:
    url = await static_server(Canned(400, b"<html>Bad Request</html>", {"Content-Type": "text/html"}))
    transport = single("core_mime", url)
    with pytest.raises(ClearinghouseRejected, match="HTTP 400"):
        await transport.exchange("ISA", payer_id="P", deadline=_deadline())
    await transport.close()


def test_built_fault_reads_back() -> None:
    fault = core_soap.read_envelope(core_soap.build_fault("Sender", "no", subcode="wsse:FailedAuthentication"))
    assert fault.fault == "SOAP fault soap:Sender/wsse:FailedAuthentication: no"
    assert SafeET.fromstring(core_soap.build_fault("Sender", "x")).tag == f"{{{SOAP12}}}Envelope"


def test_soap_response_fields_are_read_by_local_name_with_cdata_unwrapped() -> None:
    """Servers differ: qualified or unqualified children, the 271 in CDATA with blanks around it."""
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>
<c:COREEnvelopeRealTimeResponse xmlns:c="http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd">
<c:PayloadType>X12_271_Response_005010X279A1</c:PayloadType><ErrorCode>Success</ErrorCode>
<c:Payload>
<![CDATA[ISA*00*<not markup>~]]>
</c:Payload></c:COREEnvelopeRealTimeResponse></s:Body></s:Envelope>"""
    message = core_soap.read_envelope(body)
    assert message.problem is None
    assert message.fields["PayloadType"] == "X12_271_Response_005010X279A1"
    assert message.fields["ErrorCode"] == "Success"
    assert message.fields["Payload"].strip() == "ISA*00*<not markup>~"


def test_decode_form_reads_what_other_servers_write() -> None:
    # A quoted boundary, a base64 part, LF-only line breaks and a part without a name (skipped).
    body = (
        b"preamble\n--b1\n"
        b'Content-Disposition: form-data; name="ErrorCode"\n\nSuccess\n'
        b"--b1\nContent-Disposition: form-data\n\nno name\n"
        b'--b1\nContent-Disposition: form-data; name="Payload"\nContent-Transfer-Encoding: base64\n\n'
        b"SVNBKjAwfg==\n--b1--\n"
    )
    assert decode_form('multipart/form-data; boundary="b1"', body) == [("ErrorCode", "Success"), ("Payload", "ISA*00~")]


def test_decode_form_refuses_a_multipart_type_without_parts() -> None:
    assert decode_form("multipart/form-data", b"--x\r\n\r\n--x--") is None
    assert decode_form("multipart/form-data; boundary=x", b"no boundary here") is None


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b'Content-Disposition: form-data; name="Payload"', "Payload"),  # as we write it
        (b'content-disposition: form-data; name="Payload"', "Payload"),  # header names in any case
        (b'Content-Disposition: form-data; name="Payload"; filename="x.txt"', "Payload"),
        (b'Content-Disposition: form-data; name="Pay;load"', "Pay"),  # a ";" ends a parameter, in any head
        (b'Content-Disposition: form-data; name="Payload"\r\nContent-Type: text/plain; charset="utf-8"', "Payload"),
        (b'Content-Disposition: form-data; name="Payload"\r\nContent-Transfer-Encoding: base64', "Payload"),
    ],
)
def test_a_part_is_named_by_its_disposition_whatever_else_its_head_holds(head: bytes, name: str) -> None:
    encoded = b"base64" in head
    value = b"SVNBKjAwfg==" if encoded else b"ISA*00~"
    body = b"--b\r\n" + head + b"\r\n\r\n" + value + b"\r\n--b--\r\n"
    assert decode_form("multipart/form-data; boundary=b", body) == [(name, "ISA*00~")]
