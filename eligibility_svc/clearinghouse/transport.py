"""The one-method seam to a clearinghouse: send a 270, get a 271 back (or a typed error).

::

    Transport.exchange(x12_270, payer_id=..., deadline=...) -> TransportResult
        ├── CoreMimeTransport   one attempt, CAQH CORE HTTP MIME multipart   (core_mime.py)
        ├── CoreSoapTransport   one attempt, CAQH CORE SOAP 1.2 + WS-Security (core_soap.py)
        └── ResilientTransport  wraps either: breakers, per-payer limits, retries inside the deadline
                                                                               (resilience.py)

``deadline`` is an absolute time on the ``time.monotonic()`` clock: the moment by which the caller
needs an answer (``deadline_after(20.0)`` for CORE 156).  Each layer only ever shortens it, so a
check never outlives the caller's budget however many attempts it makes.

Every failure is a ``ClearinghouseError`` (``errors.py``) raised with ``details`` that hold no patient
data: the attempts made, the elapsed time, the HTTP status, the CORE ``ErrorCode``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from eligibility_svc.x12.reader import RawInterchange

# CAQH CORE Connectivity Rule vC2.2.0 values (the rule's PayloadType table and envelope metadata).
CORE_RULE_VERSION = "2.2.0"
PROCESSING_MODE_REAL_TIME = "RealTime"
PAYLOAD_TYPE_270 = "X12_270_Request_005010X279A1"
PAYLOAD_TYPE_271 = "X12_271_Response_005010X279A1"
PAYLOAD_TYPE_999 = "X12_999_Response_005010X231A1"
PAYLOAD_TYPE_ENVELOPE_ERROR = "CoreEnvelopeError"
ERROR_CODE_SUCCESS = "Success"


def deadline_after(seconds: float) -> float:
    """The absolute deadline ``seconds`` from now, on the clock ``exchange`` expects."""
    return time.monotonic() + seconds


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP exchange with the clearinghouse, as seen by the caller."""

    number: int  # 1-based
    payload_id: str  # the CORE PayloadID we sent (a fresh UUID per attempt)
    started: float  # seconds after the check started
    duration: float  # seconds
    outcome: str  # "ok", "aaa:42/R" (retryable payer answer), or an error code ("clearinghouse.timeout")
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class TransportResult:
    """A 271 the clearinghouse delivered, and how long it took to get it.

    The 271 may still carry AAA rejections (the payer's answer); interpreting them is the caller's job.
    When retries for AAA 42/80 ran out, the last such 271 is returned, not raised.
    """

    x12_271: str
    payload_id: str  # PayloadID of the attempt that produced ``x12_271``
    attempts: tuple[Attempt, ...]
    elapsed: float  # seconds from the first attempt's start to the answer
    envelope: str  # "core_mime" or "core_soap"
    response_payload_id: str | None = None  # PayloadID the clearinghouse put on its response
    notes: tuple[str, ...] = field(default=())  # e.g. "retried: AAA 42/R at 2000A"
    # ``x12_271`` as read when the reply was checked, for the parser: read once, not again (None: read it).
    interchange: RawInterchange | None = field(default=None, compare=False, repr=False)

    @property
    def attempt_count(self) -> int:
        return len(self.attempts)


class Transport(Protocol):
    """Send one 270 and return its 271 before ``deadline`` (``time.monotonic()``), or raise.

    Raises ``ClearinghouseError`` subclasses only: ``ClearinghouseTimeout``, ``ClearinghouseUnavailable``
    (``ClearinghouseCircuitOpen``), ``ClearinghouseRateLimited``, ``ClearinghouseRejected`` and
    ``ClearinghouseBadResponse``.  ``payer_id`` selects per-payer limits and breakers; it is not PHI.
    """

    async def exchange(self, x12_270: str, *, payer_id: str, deadline: float) -> TransportResult: ...
