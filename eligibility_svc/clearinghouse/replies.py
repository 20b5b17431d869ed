"""What a CORE reply means: a usable 271, or which ``ClearinghouseError`` and why.

Pure, and the same for both envelopes: ``core_mime`` and ``core_soap`` turn an HTTP response into a
``CoreReply`` (status, envelope fields, Retry-After, SOAP fault text) and ``answer_271`` decides.
Messages say what happened and what a person can do about it; none carries patient data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eligibility_svc.backoff import parse_retry_after
from eligibility_svc.clearinghouse.ack999 import describe_999
from eligibility_svc.clearinghouse.transport import ERROR_CODE_SUCCESS, PAYLOAD_TYPE_271, PAYLOAD_TYPE_999
from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    ClearinghouseRateLimited,
    ClearinghouseRejected,
    ClearinghouseUnavailable,
    X12Error,
)
from eligibility_svc.x12.reader import (
    Interchange,
    RawInterchange,
    RawTransaction,
    element_at,
    read_elements,
    read_interchange,
)

_CREDENTIALS_HINT = (
    "check clearinghouse.username and clearinghouse.password (ELIG_CLEARINGHOUSE__USERNAME, "
    "ELIG_CLEARINGHOUSE__PASSWORD) or the client certificate"
)
_EXCERPT = 200


@dataclass(frozen=True, slots=True)
class CoreReply:
    """An HTTP response from a CORE endpoint, reduced to what decides its meaning."""

    http_status: int
    fields: Mapping[str, str] | None  # envelope fields by name; None when the body is no CORE envelope
    retry_after: str | None = None  # the Retry-After header as sent
    fault: str | None = None  # SOAP Fault code and reason, when the body is a fault
    content_type: str = ""


def answer_271(reply: CoreReply) -> tuple[str, RawInterchange]:
    """The 271 text of a successful reply, and the interchange as read to check it (the parser takes it
    from there); raises the ``ClearinghouseError`` that describes any other reply."""
    _check_http_status(reply)
    fields = reply.fields
    if fields is None:
        raise ClearinghouseBadResponse(
            f"the clearinghouse answered HTTP {reply.http_status} without a CORE envelope "
            f"(Content-Type {reply.content_type or 'missing'}); is the URL a CORE real-time endpoint?",
            details={"http_status": reply.http_status},
        )
    _check_error_code(reply.http_status, fields)
    payload = fields.get("Payload", "")
    return payload, check_271(fields.get("PayloadType", ""), payload)


def _check_http_status(reply: CoreReply) -> None:
    status = reply.http_status
    said = _what_they_said(reply)
    if status == 429:
        wait = parse_retry_after(reply.retry_after)
        hint = f"; it asks us to wait {wait:g} s" if wait is not None else ""
        raise ClearinghouseRateLimited(
            f"the clearinghouse is throttling us (HTTP 429{said}){hint}",
            details={"http_status": status, "retry_after_seconds": wait},
        )
    if status in (401, 403):
        raise ClearinghouseRejected(
            f"the clearinghouse refused our credentials (HTTP {status}{said}); {_CREDENTIALS_HINT}",
            details={"http_status": status, **_error_details(reply.fields)},
        )
    if status >= 500:
        raise ClearinghouseUnavailable(
            f"the clearinghouse failed to process the inquiry (HTTP {status}{said}); a later retry may succeed",
            details={"http_status": status, **_error_details(reply.fields)},
        )
    if 300 <= status < 400 or (400 <= status < 500 and _error_code(reply) in ("", ERROR_CODE_SUCCESS)):
        raise ClearinghouseRejected(
            f"the clearinghouse answered HTTP {status}{said}; check clearinghouse.url and the envelope settings",
            details={"http_status": status},
        )


def _check_error_code(status: int, fields: Mapping[str, str]) -> None:
    code = fields.get("ErrorCode", "")
    if not code:
        raise ClearinghouseBadResponse(
            f"the CORE response (HTTP {status}) has no ErrorCode", details={"http_status": status}
        )
    if code == ERROR_CODE_SUCCESS:
        return
    message = fields.get("ErrorMessage", "").strip() or "no ErrorMessage given"
    hint = f"; {_CREDENTIALS_HINT}" if code.lower() in ("unauthorized", "usernameillegal", "passwordillegal") else ""
    raise ClearinghouseRejected(
        f"the clearinghouse rejected the CORE envelope: {code}: {message}{hint}",
        details={"http_status": status, "error_code": code, "error_message": message},
    )


def check_271(payload_type: str, payload: str) -> RawInterchange:
    """``payload`` as read, if it is one readable 271; otherwise ``ClearinghouseBadResponse`` saying what it is."""
    if payload_type == PAYLOAD_TYPE_999:
        raise _ack_error(payload, payload_type)
    if payload_type != PAYLOAD_TYPE_271:
        raise ClearinghouseBadResponse(
            f"expected PayloadType {PAYLOAD_TYPE_271}, the clearinghouse sent {payload_type or 'none'!r}",
            details={"payload_type": payload_type},
        )
    if not payload.strip():
        raise ClearinghouseBadResponse(
            "the clearinghouse reported Success but the Payload is empty", details={"payload_type": payload_type}
        )
    interchange = _read_elements(payload, "271")
    _check_transactions(payload, interchange)
    return interchange


def _read(payload: str, expected: str) -> Interchange:
    try:
        return read_interchange(payload)
    except X12Error as exc:
        raise _unreadable(expected, exc) from exc


def _read_elements(payload: str, expected: str) -> RawInterchange:
    try:
        return read_elements(payload)
    except X12Error as exc:
        raise _unreadable(expected, exc) from exc


def _unreadable(expected: str, exc: X12Error) -> ClearinghouseBadResponse:
    return ClearinghouseBadResponse(
        f"the {expected} from the clearinghouse is not readable X12: {exc.message}", details={"x12_error": exc.code}
    )


def _check_transactions(payload: str, interchange: RawInterchange) -> None:
    sets = [t.set_id for t in interchange.transactions]
    if "999" in sets:  # an acknowledgment where the 271 should be: read again, as segments, to describe it
        acks = [t for t in _read(payload, "271").transactions if t.set_id == "999"]
        raise ClearinghouseBadResponse(describe_999(acks[0]), details={"payload_type": "999"})
    answers = [t for t in interchange.transactions if t.set_id == "271"]
    if not answers:
        raise ClearinghouseBadResponse(
            f"expected a 271 transaction set, the payload holds {', '.join(sets)}", details={"sets": sets}
        )
    for transaction in answers:
        _check_complete(transaction, interchange.rows)


def _check_complete(transaction: RawTransaction, rows: list[list[str]]) -> None:
    """A 271 cut off before SE, or whose SE count disagrees, was damaged on the way: never interpret it."""
    last = rows[transaction.end - 1]
    if last[0] != "SE":
        raise ClearinghouseBadResponse(
            f"the 271 (ST02 {transaction.control_number}) is cut off before its SE trailer: "
            "the clearinghouse sent an incomplete answer",
            details={"truncated": True},
        )
    declared = element_at(last, 1)
    counted = transaction.end - transaction.start
    if declared != str(counted):
        raise ClearinghouseBadResponse(
            f"the 271's SE01 says {declared or 'nothing'} segments but it holds {counted}: "
            "segments were lost or added on the way",
            details={"se01": declared, "segments": counted},
        )


def _ack_error(payload: str, payload_type: str) -> ClearinghouseBadResponse:
    interchange = _read(payload, "999")
    acks = [t for t in interchange.transactions if t.set_id == "999"]
    if not acks:
        sets = ", ".join(t.set_id for t in interchange.transactions)
        return ClearinghouseBadResponse(
            f"PayloadType {payload_type} but the payload holds {sets}", details={"payload_type": payload_type}
        )
    return ClearinghouseBadResponse(describe_999(acks[0]), details={"payload_type": payload_type or "999"})


def _what_they_said(reply: CoreReply) -> str:
    """``: ErrorCode: message`` or ``: fault`` from the body, for a message; empty when there is neither."""
    fields = reply.fields or {}
    code = fields.get("ErrorCode", "")
    if code and code != ERROR_CODE_SUCCESS:
        message = fields.get("ErrorMessage", "").strip()
        return f": {code}" + (f": {message[:_EXCERPT]}" if message else "")
    if reply.fault:
        return f": {reply.fault[:_EXCERPT]}"
    return ""


def _error_code(reply: CoreReply) -> str:
    return (reply.fields or {}).get("ErrorCode", "")


def _error_details(fields: Mapping[str, str] | None) -> dict[str, str]:
    if not fields or not fields.get("ErrorCode"):
        return {}
    return {"error_code": fields["ErrorCode"], "error_message": fields.get("ErrorMessage", "")[:_EXCERPT]}
