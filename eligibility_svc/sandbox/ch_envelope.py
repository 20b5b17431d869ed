"""Check an incoming CORE real-time request envelope the way a strict server does.  Pure.

Error codes follow the CORE Connectivity Rule's pattern: ``<FieldName>Required`` when a required
field is missing or empty, ``<FieldName>Illegal`` when its value is not acceptable,
``VersionMismatch`` for a ``CORERuleVersion`` we do not speak and ``UnAuthorized`` for credentials
that do not match.  Fields are checked in the rule's order and the first problem is reported, with
a message that says what was expected.  Field names are case-sensitive, as on real servers.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from eligibility_svc.clearinghouse.transport import CORE_RULE_VERSION, PAYLOAD_TYPE_270, PROCESSING_MODE_REAL_TIME
from eligibility_svc.sandbox.ch_config import SandboxClearinghouseConfig

REQUIRED = ("PayloadType", "ProcessingMode", "PayloadID", "TimeStamp", "SenderID", "ReceiverID", "CORERuleVersion")
CREDENTIALS = ("UserName", "Password")


@dataclass(frozen=True, slots=True)
class EnvelopeProblem:
    code: str
    message: str
    http_status: int = 400


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None
    password: str | None


def check_fields(
    fields: Sequence[tuple[str, str]], config: SandboxClearinghouseConfig, *, credentials: Credentials | None
) -> EnvelopeProblem | None:
    """The first problem with ``fields`` (MIME parts, or SOAP body children), or None.

    ``credentials`` is None for MIME (they are fields there); SOAP passes the UsernameToken's.
    """
    values, repeated = _collect(fields)
    if repeated:
        return EnvelopeProblem(f"{repeated[0]}Illegal", f"the field {repeated[0]} is given more than once")
    if credentials is None:
        problem = _check_present(values, CREDENTIALS)
        if problem:
            return problem
        credentials = Credentials(values["UserName"], values["Password"])
    problem = check_credentials(credentials, config)
    if problem:
        return problem
    return _check_present(values, (*REQUIRED, "Payload")) or _check_values(values, config)


def check_credentials(credentials: Credentials, config: SandboxClearinghouseConfig) -> EnvelopeProblem | None:
    """Constant-time comparison; one message for a wrong user or a wrong password (no user probing)."""
    if not credentials.username:
        return EnvelopeProblem("UserNameRequired", "the UserName is required (username/password authentication)")
    if not credentials.password:
        return EnvelopeProblem("PasswordRequired", "the Password is required (username/password authentication)")
    user_ok = hmac.compare_digest(credentials.username.encode(), config.username.encode())
    password_ok = hmac.compare_digest(credentials.password.encode(), config.password.get_secret_value().encode())
    if not (user_ok and password_ok):
        return EnvelopeProblem("UnAuthorized", "the UserName and Password are not valid for this endpoint", 401)
    return None


def _collect(fields: Sequence[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    repeated: list[str] = []
    for name, value in fields:
        if name in values:
            repeated.append(name)
        values[name] = value
    return values, repeated


def _check_present(values: dict[str, str], names: Sequence[str]) -> EnvelopeProblem | None:
    for name in names:
        if not values.get(name, "").strip():
            near = next((given for given in values if given.lower() == name.lower() and given != name), None)
            hint = f" (field names are case-sensitive: {near!r} was sent)" if near else ""
            return EnvelopeProblem(f"{name}Required", f"the field {name} is required{hint}")
    return None


def _check_values(values: dict[str, str], config: SandboxClearinghouseConfig) -> EnvelopeProblem | None:
    checks = (
        _payload_type(values["PayloadType"]),
        _processing_mode(values["ProcessingMode"]),
        _payload_id(values["PayloadID"]),
        _timestamp(values["TimeStamp"]),
        _sender(values["SenderID"], config),
        _receiver(values["ReceiverID"], config),
        _version(values["CORERuleVersion"]),
    )
    return next((problem for problem in checks if problem is not None), None)


def _payload_type(value: str) -> EnvelopeProblem | None:
    if value == PAYLOAD_TYPE_270:
        return None
    return EnvelopeProblem("PayloadTypeIllegal", f"PayloadType {value!r} is not served here; send {PAYLOAD_TYPE_270}")


def _processing_mode(value: str) -> EnvelopeProblem | None:
    if value == PROCESSING_MODE_REAL_TIME:
        return None
    return EnvelopeProblem(
        "ProcessingModeIllegal", f"ProcessingMode {value!r}: this endpoint is {PROCESSING_MODE_REAL_TIME} only"
    )


def _payload_id(value: str) -> EnvelopeProblem | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return EnvelopeProblem("PayloadIDIllegal", f"PayloadID {value!r} is not a UUID")
    return None


def _timestamp(value: str) -> EnvelopeProblem | None:
    text = value.strip()
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return EnvelopeProblem("TimeStampIllegal", f"TimeStamp {value!r} is not ISO 8601 (2024-05-01T14:03:09Z)")
    if "T" not in text:
        return EnvelopeProblem("TimeStampIllegal", f"TimeStamp {value!r} has no time of day")
    return None


def _sender(value: str, config: SandboxClearinghouseConfig) -> EnvelopeProblem | None:
    if config.sender_ids is None or value in config.sender_ids:
        return None
    return EnvelopeProblem("SenderIDIllegal", f"SenderID {value!r} is not a trading partner of this account")


def _receiver(value: str, config: SandboxClearinghouseConfig) -> EnvelopeProblem | None:
    if value == config.receiver_id:
        return None
    return EnvelopeProblem(
        "ReceiverIDIllegal", f"ReceiverID {value!r} is not this clearinghouse ({config.receiver_id})"
    )


def _version(value: str) -> EnvelopeProblem | None:
    if value == CORE_RULE_VERSION:
        return None
    return EnvelopeProblem("VersionMismatch", f"CORERuleVersion {value!r} is not supported; use {CORE_RULE_VERSION}")
