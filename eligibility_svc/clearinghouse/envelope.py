"""The CAQH CORE vC2.2.0 real-time envelope metadata, independent of how it is carried (MIME or SOAP).

Pure.  Field names are the rule's, case and all (some servers compare them case-sensitively).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from eligibility_svc.clearinghouse.transport import CORE_RULE_VERSION, PAYLOAD_TYPE_270, PROCESSING_MODE_REAL_TIME
from eligibility_svc.ids import unique_uuid

# The request's metadata in the order the rule lists it.  MIME carries UserName/Password as fields;
# SOAP carries them in the WS-Security header instead.
REQUEST_FIELDS = (
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "UserName",
    "Password",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
    "Payload",
)
RESPONSE_FIELDS = (
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
    "Payload",
    "ErrorCode",
    "ErrorMessage",
)


@dataclass(frozen=True, slots=True)
class CoreRequest:
    """One real-time request envelope.  ``password`` is the plain secret: never log this object."""

    payload: str
    payload_id: str
    timestamp: str
    sender_id: str
    receiver_id: str
    username: str | None = None
    password: str | None = None
    payload_type: str = PAYLOAD_TYPE_270
    processing_mode: str = PROCESSING_MODE_REAL_TIME
    rule_version: str = CORE_RULE_VERSION

    def metadata(self) -> list[tuple[str, str]]:
        """Every field but the credentials, in the rule's order (``Payload`` last)."""
        return [
            ("PayloadType", self.payload_type),
            ("ProcessingMode", self.processing_mode),
            ("PayloadID", self.payload_id),
            ("TimeStamp", self.timestamp),
            ("SenderID", self.sender_id),
            ("ReceiverID", self.receiver_id),
            ("CORERuleVersion", self.rule_version),
            ("Payload", self.payload),
        ]

    def __repr__(self) -> str:
        return f"CoreRequest(payload_id={self.payload_id!r}, payload_type={self.payload_type!r})"


def core_timestamp(now: dt.datetime | None = None) -> str:
    """ISO 8601 UTC with seconds, as the rule's examples write it: ``2024-05-01T14:03:09Z``."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_request(
    x12_270: str,
    *,
    sender_id: str,
    receiver_id: str,
    username: str | None,
    password: str | None,
    now: dt.datetime | None = None,
) -> CoreRequest:
    """A request with a fresh PayloadID (a UUID: every attempt is a new message) and the current time."""
    return CoreRequest(
        payload=x12_270,
        payload_id=unique_uuid(),
        timestamp=core_timestamp(now),
        sender_id=sender_id,
        receiver_id=receiver_id,
        username=username,
        password=password,
    )
