"""CAQH CORE Connectivity vC2.2.0, HTTP MIME multipart: one real-time 270 → 271 exchange per call.

The request is a ``multipart/form-data`` POST whose parts are named by the rule::

    PayloadType      X12_270_Request_005010X279A1
    ProcessingMode   RealTime
    PayloadID        a UUID, fresh for every attempt
    TimeStamp        ISO 8601, UTC
    UserName         (username/password authentication; omitted with an X.509 client certificate)
    Password
    SenderID         who we are to the clearinghouse
    ReceiverID       the clearinghouse
    CORERuleVersion  2.2.0
    Payload          the 270

The response is ``multipart/form-data`` as well, adding ``ErrorCode`` (``Success`` or an error code)
and ``ErrorMessage``; ``Payload`` holds the 271 when ``PayloadType`` is
``X12_271_Response_005010X279A1``.  ``encode_form``/``decode_form`` are pure and shared with the
sandbox; ``CoreMimeTransport`` is the I/O.
"""

from __future__ import annotations

import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from eligibility_svc.clearinghouse.envelope import CoreRequest, new_request
from eligibility_svc.clearinghouse.http_client import HttpAnswer, HttpEndpoint
from eligibility_svc.clearinghouse.replies import CoreReply, payload_271
from eligibility_svc.clearinghouse.transport import Attempt, TransportResult
from eligibility_svc.errors import ClearinghouseError

ENVELOPE = "core_mime"
_PARSER = BytesParser(policy=policy.HTTP)


def mime_fields(request: CoreRequest) -> list[tuple[str, str]]:
    """The form fields of ``request`` in the rule's order; credentials only when we have them."""
    fields = request.metadata()
    credentials = []
    if request.username is not None:
        credentials.append(("UserName", request.username))
    if request.password is not None:
        credentials.append(("Password", request.password))
    return fields[:4] + credentials + fields[4:]


def encode_form(fields: list[tuple[str, str]], *, boundary: str | None = None) -> tuple[str, bytes]:
    """``(Content-Type, body)`` of a ``multipart/form-data`` message with one text part per field."""
    mark = boundary or f"CORE-{uuid.uuid4().hex}"
    if any(mark in value for _, value in fields):
        return encode_form(fields)  # a fresh random boundary cannot collide twice in practice
    chunks: list[bytes] = []
    for name, value in fields:
        head = f'--{mark}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(head.encode("ascii") + value.encode("utf-8") + b"\r\n")
    chunks.append(f"--{mark}--\r\n".encode("ascii"))
    return f"multipart/form-data; boundary={mark}", b"".join(chunks)


def decode_form(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    """The ``(name, value)`` parts of a ``multipart/form-data`` body, in order; None if it is not one."""
    if not content_type.lower().startswith("multipart/"):
        return None
    message = _PARSER.parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    fields: list[tuple[str, str]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        fields.append((name, raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""))
    return fields


def reply_from_answer(answer: HttpAnswer) -> CoreReply:
    """The envelope-agnostic view of a MIME response."""
    parts = decode_form(answer.content_type, answer.body)
    return CoreReply(
        http_status=answer.status,
        fields=dict(parts) if parts is not None else None,
        retry_after=answer.headers.get("Retry-After"),
        content_type=answer.content_type,
    )


class CoreMimeTransport:
    """One attempt per ``exchange`` over CORE HTTP MIME multipart; wrap it in ``ResilientTransport``."""

    envelope = ENVELOPE

    def __init__(
        self,
        endpoint: HttpEndpoint,
        *,
        sender_id: str,
        receiver_id: str,
        username: str | None,
        password: str | None,
    ) -> None:
        self.endpoint = endpoint
        self._sender_id = sender_id
        self._receiver_id = receiver_id
        self._username = username
        self._password = password

    async def exchange(self, x12_270: str, *, payer_id: str, deadline: float) -> TransportResult:
        """POST one envelope; the 271 or a ``ClearinghouseError`` (with the PayloadID in its details)."""
        started = time.monotonic()
        request = new_request(
            x12_270,
            sender_id=self._sender_id,
            receiver_id=self._receiver_id,
            username=self._username,
            password=self._password,
        )
        content_type, body = encode_form(mime_fields(request))
        try:
            answer = await self.endpoint.post(body, headers={"Content-Type": content_type}, deadline=deadline)
            reply = reply_from_answer(answer)
            x12_271 = payload_271(reply)
        except ClearinghouseError as exc:
            exc.details.setdefault("payload_id", request.payload_id)
            raise
        duration = time.monotonic() - started
        attempt = Attempt(1, request.payload_id, 0.0, duration, "ok", answer.status)
        return TransportResult(
            x12_271=x12_271,
            payload_id=request.payload_id,
            attempts=(attempt,),
            elapsed=duration,
            envelope=ENVELOPE,
            response_payload_id=(reply.fields or {}).get("PayloadID"),
        )

    async def close(self) -> None:
        await self.endpoint.close()
