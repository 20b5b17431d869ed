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

import base64
import quopri

from eligibility_svc.clearinghouse.core_exchange import CoreTransport
from eligibility_svc.clearinghouse.envelope import CoreRequest
from eligibility_svc.clearinghouse.http_client import HttpAnswer
from eligibility_svc.clearinghouse.replies import CoreReply
from eligibility_svc.ids import unique_hex

ENVELOPE = "core_mime"


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
    mark = boundary or f"CORE-{unique_hex()}"
    if any(mark in value for _, value in fields):
        return encode_form(fields)  # a fresh random boundary cannot collide twice in practice
    chunks: list[bytes] = []
    for name, value in fields:
        head = f'--{mark}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        chunks.append(head.encode("ascii") + value.encode("utf-8") + b"\r\n")
    chunks.append(f"--{mark}--\r\n".encode("ascii"))
    return f"multipart/form-data; boundary={mark}", b"".join(chunks)


def decode_form(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    """The ``(name, value)`` parts of a ``multipart/form-data`` body, in order; None if it is not one.

    A direct split on the boundary (the stdlib email parser cost over a millisecond per reply).
    Parts without a ``name`` are skipped; base64 and quoted-printable transfer encodings are decoded.
    """
    boundary = _boundary(content_type)
    if boundary is None:
        return None
    mark = b"--" + boundary.encode("latin-1")
    pieces = body.split(mark)
    if len(pieces) < 3:  # preamble, at least one part, and the closing "--"
        return None
    fields: list[tuple[str, str]] = []
    for piece in pieces[1:-1]:
        part = _form_part(piece)
        if part is not None:
            fields.append(part)
    return fields


def _boundary(content_type: str) -> str | None:
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        return None
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip().strip('"')
    return None


def _form_part(piece: bytes) -> tuple[str, str] | None:
    """One part between boundaries: headers, a blank line, the value (its final CRLF belongs to the boundary)."""
    piece = piece[2:] if piece.startswith(b"\r\n") else piece.removeprefix(b"\n")
    head, sep, value = piece.partition(b"\r\n\r\n")
    if not sep:
        head, sep, value = piece.partition(b"\n\n")
    if not sep:
        return None
    value = value[:-2] if value.endswith(b"\r\n") else value.removesuffix(b"\n")  # exactly one line break
    name = _plain_name(head)
    if name is not None:  # the one header, as we and most servers write it: nothing to decode
        return name, value.decode("utf-8", errors="replace")
    headers = _part_headers(head.decode("latin-1"))
    name = _disposition_name(headers.get("content-disposition", ""))
    if name is None:
        return None
    encoding = headers.get("content-transfer-encoding", "").strip().lower()
    if encoding == "base64":
        value = base64.b64decode(value, validate=False)
    elif encoding == "quoted-printable":
        value = quopri.decodestring(value)
    return name, value.decode("utf-8", errors="replace")


_PLAIN_HEAD = b'Content-Disposition: form-data; name="'


def _plain_name(head: bytes) -> str | None:
    """The name when ``head`` is exactly ``Content-Disposition: form-data; name="..."`` (one header, one
    parameter, a name without quotes, semicolons or line breaks); else None, and the headers are read in full."""
    if not head.startswith(_PLAIN_HEAD) or not head.endswith(b'"'):
        return None
    name = head[len(_PLAIN_HEAD) : -1]
    if b'"' in name or b";" in name or b"\n" in name or b"\r" in name:
        return None
    return name.decode("latin-1")


def _part_headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers


def _disposition_name(disposition: str) -> str | None:
    for param in disposition.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "name":
            return value.strip().strip('"')
    return None


def reply_from_answer(answer: HttpAnswer) -> CoreReply:
    """The envelope-agnostic view of a MIME response."""
    parts = decode_form(answer.content_type, answer.body)
    return CoreReply(
        http_status=answer.status,
        fields=dict(parts) if parts is not None else None,
        retry_after=answer.headers.get("Retry-After"),
        content_type=answer.content_type,
    )


class CoreMimeTransport(CoreTransport):
    """One attempt per ``exchange`` over CORE HTTP MIME multipart; wrap it in ``ResilientTransport``."""

    envelope = ENVELOPE

    def encode(self, request: CoreRequest) -> tuple[str, bytes]:
        return encode_form(mime_fields(request))

    def decode(self, answer: HttpAnswer) -> CoreReply:
        return reply_from_answer(answer)
