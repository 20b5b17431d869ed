"""CAQH CORE Connectivity vC2.2.0, SOAP 1.2 with a WS-Security UsernameToken: one exchange per call.

::

    soap:Envelope (http://www.w3.org/2003/05/soap-envelope)
    ├── soap:Header
    │   └── wsse:Security (mustUnderstand)  ── wsse:UsernameToken ── wsse:Username, wsse:Password (PasswordText)
    └── soap:Body
        └── cor:COREEnvelopeRealTimeRequest (http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd)
            PayloadType, ProcessingMode, PayloadID, TimeStamp, SenderID, ReceiverID, CORERuleVersion, Payload
            (unqualified children, as the rule's schema declares them)

The answer's body is ``cor:COREEnvelopeRealTimeResponse`` (the same fields plus ``ErrorCode`` and
``ErrorMessage``) or a ``soap:Fault``.  Everything we read is parsed with defusedxml and DTDs
forbidden: no entity expansion, no external entities, no network access from a response.
Building and reading envelopes is pure and shared with the sandbox; ``CoreSoapTransport`` is the I/O.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # building only; never used to parse
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from eligibility_svc.clearinghouse.core_exchange import CoreTransport
from eligibility_svc.clearinghouse.envelope import CoreRequest
from eligibility_svc.clearinghouse.http_client import HttpAnswer
from eligibility_svc.clearinghouse.replies import CoreReply

ENVELOPE = "core_soap"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
CORE_NS = "http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = (  # the UsernameToken profile's type URI, not a password
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"  # noqa: S105
)
REQUEST_ELEMENT = "COREEnvelopeRealTimeRequest"
RESPONSE_ELEMENT = "COREEnvelopeRealTimeResponse"
SOAP_ACTION = "RealTimeTransaction"
CONTENT_TYPE = f'application/soap+xml; charset=utf-8; action="{SOAP_ACTION}"'

ET.register_namespace("soap", SOAP12_NS)
ET.register_namespace("wsse", WSSE_NS)
ET.register_namespace("cor", CORE_NS)


@dataclass(slots=True)
class SoapMessage:
    """What one SOAP envelope holds, for either direction.  ``problem`` explains an unreadable one."""

    envelope_ns: str = ""
    body_element: str = ""  # "{namespace}local" of the Body's first child
    fields: dict[str, str] = field(default_factory=dict)
    repeated: list[str] = field(default_factory=list)  # field names that occur more than once
    username: str | None = None
    password: str | None = None
    password_type: str | None = None
    has_security: bool = False
    must_understand: str | None = None  # the Security header's soap:mustUnderstand, as sent
    fault: str | None = None  # "Code/Subcode: Reason" of a soap:Fault
    problem: str | None = None  # why the bytes are no SOAP envelope at all


# --- building -------------------------------------------------------------------------------------


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def build_request(request: CoreRequest) -> bytes:
    """The SOAP 1.2 request for ``request``; the UsernameToken when it has a username."""
    envelope = Element(_q(SOAP12_NS, "Envelope"))
    if request.username is not None:
        header = ET.SubElement(envelope, _q(SOAP12_NS, "Header"))
        header.append(_security(request.username, request.password or ""))
    body = ET.SubElement(envelope, _q(SOAP12_NS, "Body"))
    body.append(_core_element(REQUEST_ELEMENT, request.metadata()))
    return _serialize(envelope)


def build_response(fields: list[tuple[str, str]]) -> bytes:
    """A ``COREEnvelopeRealTimeResponse`` envelope holding ``fields`` in the order given (sandbox side)."""
    envelope = Element(_q(SOAP12_NS, "Envelope"))
    body = ET.SubElement(envelope, _q(SOAP12_NS, "Body"))
    body.append(_core_element(RESPONSE_ELEMENT, fields))
    return _serialize(envelope)


def build_fault(code: str, reason: str, *, subcode: str | None = None) -> bytes:
    """A SOAP 1.2 fault: ``code`` is ``Sender``, ``Receiver`` or ``VersionMismatch``."""
    envelope = Element(_q(SOAP12_NS, "Envelope"))
    body = ET.SubElement(envelope, _q(SOAP12_NS, "Body"))
    fault = ET.SubElement(body, _q(SOAP12_NS, "Fault"))
    code_element = ET.SubElement(fault, _q(SOAP12_NS, "Code"))
    ET.SubElement(code_element, _q(SOAP12_NS, "Value")).text = f"soap:{code}"
    if subcode:
        sub = ET.SubElement(code_element, _q(SOAP12_NS, "Subcode"))
        ET.SubElement(sub, _q(SOAP12_NS, "Value")).text = subcode
    reason_element = ET.SubElement(fault, _q(SOAP12_NS, "Reason"))
    text = ET.SubElement(reason_element, _q(SOAP12_NS, "Text"))
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = reason
    return _serialize(envelope)


def _security(username: str, password: str) -> Element:
    security = Element(_q(WSSE_NS, "Security"), {_q(SOAP12_NS, "mustUnderstand"): "true"})
    token = ET.SubElement(security, _q(WSSE_NS, "UsernameToken"))
    ET.SubElement(token, _q(WSSE_NS, "Username")).text = username
    ET.SubElement(token, _q(WSSE_NS, "Password"), {"Type": PASSWORD_TEXT}).text = password
    return security


def _core_element(name: str, fields: list[tuple[str, str]]) -> Element:
    element = Element(_q(CORE_NS, name))
    for key, value in fields:
        ET.SubElement(element, key).text = value  # unqualified, as the CORE schema declares them
    return element


def _serialize(envelope: Element) -> bytes:
    text: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return text


# --- reading ---------------------------------------------------------------------------------------


def read_envelope(data: bytes) -> SoapMessage:
    """Parse a SOAP envelope safely (defusedxml, no DTD); ``problem`` says what is wrong with a bad one."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        return SoapMessage(problem=f"the body is not acceptable XML ({type(exc).__name__}: {exc})"[:300])
    namespace, local = _split(root.tag)
    message = SoapMessage(envelope_ns=namespace)
    if local != "Envelope" or namespace not in (SOAP12_NS, SOAP11_NS):
        message.problem = f"the XML root is {root.tag}, not a SOAP Envelope"
        return message
    _read_header(root.find(_q(namespace, "Header")), message)
    body = root.find(_q(namespace, "Body"))
    content = list(body) if body is not None else []
    if not content:
        message.problem = "the SOAP Body is missing or empty"
        return message
    first = content[0]
    message.body_element = first.tag
    if first.tag == _q(namespace, "Fault"):
        message.fault = _fault_text(first, namespace)
    else:
        _read_fields(first, message)
    return message


def _read_header(header: Element | None, message: SoapMessage) -> None:
    if header is None:
        return
    security = header.find(_q(WSSE_NS, "Security"))
    if security is None:
        return
    message.has_security = True
    message.must_understand = security.get(_q(message.envelope_ns, "mustUnderstand"))
    token = security.find(_q(WSSE_NS, "UsernameToken"))
    if token is None:
        return
    username = token.find(_q(WSSE_NS, "Username"))
    password = token.find(_q(WSSE_NS, "Password"))
    message.username = (username.text or "") if username is not None else None
    if password is not None:
        message.password = password.text or ""
        message.password_type = password.get("Type")


def _read_fields(element: Element, message: SoapMessage) -> None:
    """Children by local name (servers differ on qualifying them); text as sent, CDATA unwrapped."""
    for child in element:
        _, local = _split(child.tag)
        if local in message.fields:
            message.repeated.append(local)
        message.fields[local] = child.text or ""


def _fault_text(fault: Element, namespace: str) -> str:
    values = [v.text or "" for v in fault.iter(_q(namespace, "Value"))] or [
        (fault.findtext("faultcode") or "").strip()  # SOAP 1.1 shape
    ]
    reasons = [t.text or "" for t in fault.iter(_q(namespace, "Text"))] or [
        (fault.findtext("faultstring") or "").strip()
    ]
    code = "/".join(v.strip() for v in values if v.strip()) or "unknown fault"
    reason = " ".join(r.strip() for r in reasons if r.strip())
    return f"SOAP fault {code}" + (f": {reason}" if reason else "")


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def reply_from_answer(answer: HttpAnswer) -> CoreReply:
    """The envelope-agnostic view of a SOAP response."""
    message = read_envelope(answer.body) if answer.body.strip() else SoapMessage(problem="empty body")
    is_core = message.problem is None and message.body_element == _q(CORE_NS, RESPONSE_ELEMENT)
    return CoreReply(
        http_status=answer.status,
        fields=message.fields if is_core else None,
        retry_after=answer.headers.get("Retry-After"),
        fault=message.fault or (None if is_core else message.problem),
        content_type=answer.content_type,
    )


# --- transport -------------------------------------------------------------------------------------


class CoreSoapTransport(CoreTransport):
    """One attempt per ``exchange`` over CORE SOAP 1.2; wrap it in ``ResilientTransport``."""

    envelope = ENVELOPE

    def encode(self, request: CoreRequest) -> tuple[str, bytes]:
        return CONTENT_TYPE, build_request(request)

    def decode(self, answer: HttpAnswer) -> CoreReply:
        return reply_from_answer(answer)
