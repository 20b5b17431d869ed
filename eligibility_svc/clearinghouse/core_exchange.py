"""The one-attempt CORE exchange both envelopes share: build the request, POST it, read the 271.

``CoreMimeTransport`` and ``CoreSoapTransport`` differ only in how a ``CoreRequest`` becomes bytes
(``encode``) and how the answer becomes a ``CoreReply`` (``decode``); everything else is here.
"""

from __future__ import annotations

import time
from typing import ClassVar

from eligibility_svc.clearinghouse.envelope import CoreRequest, new_request
from eligibility_svc.clearinghouse.http_client import HttpAnswer, HttpEndpoint
from eligibility_svc.clearinghouse.replies import CoreReply, answer_271
from eligibility_svc.clearinghouse.transport import Attempt, TransportResult
from eligibility_svc.errors import ClearinghouseError


class CoreTransport:
    """One attempt per ``exchange``; wrap it in ``ResilientTransport`` for retries and limits."""

    envelope: ClassVar[str]

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

    def encode(self, request: CoreRequest) -> tuple[str, bytes]:
        """The request's Content-Type and body."""
        raise NotImplementedError

    def decode(self, answer: HttpAnswer) -> CoreReply:
        """The envelope fields of an HTTP answer, or a ``ClearinghouseError``."""
        raise NotImplementedError

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
        content_type, body = self.encode(request)
        try:
            answer = await self.endpoint.post(body, headers={"Content-Type": content_type}, deadline=deadline)
            reply = self.decode(answer)
            x12_271, interchange = answer_271(reply)
        except ClearinghouseError as exc:
            exc.details.setdefault("payload_id", request.payload_id)
            raise
        duration = time.monotonic() - started
        return TransportResult(
            x12_271=x12_271,
            payload_id=request.payload_id,
            attempts=(Attempt(1, request.payload_id, 0.0, duration, "ok", answer.status),),
            elapsed=duration,
            envelope=self.envelope,
            response_payload_id=(reply.fields or {}).get("PayloadID"),
            interchange=interchange,
        )

    async def close(self) -> None:
        await self.endpoint.close()
