"""Structured JSON logs with patient data taken out, and request ids carried by a context variable.

Redaction happens twice on purpose: ``RedactingFilter`` rewrites the record on the handler (so any
other formatter sees clean data), and ``JsonFormatter`` redacts what it writes (so a handler that
forgot the filter still leaks nothing).  What is removed:

* ``extra`` fields whose name is patient data (``first_name``, ``last_name``, ``name``, ``dob``,
  ``birth_date``, ``member_id``, ``subscriber``, ``patient``, address and contact fields, or any
  name made of those parts such as ``patient_name``), recursively inside dicts, lists and models;
* in free text (messages, string values, tracebacks): values after labels such as ``member_id=``,
  ``name:``, ``dob=``; anything that looks like a calendar date (a DOB cannot be told from a service
  date, so both go); the contents of X12 segments that carry people (NM1, N3, N4, DMG, REF, PER, INS).

Over-redaction is the accepted cost: a log line missing a service date is an inconvenience, a log
line holding a birth date is a breach.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel

from eligibility_svc.ids import unique_hex

REDACTED = "[REDACTED]"
REQUEST_ID_HEADER = "X-Request-ID"

# --- what counts as patient data --------------------------------------------------------------------

_PHI_PARTS = frozenset(
    {"name", "dob", "birth", "member", "subscriber", "patient", "ssn", "address", "phone", "email", "zip", "postal"}
)
_PHI_KEYS = frozenset({"city", "street", "address_line1", "address_line2", "state_and_zip", "insured", "dependent"})
_SAFE_KEYS = frozenset({"payer_name", "payer_id", "route_name", "hostname", "host_name", "logger_name", "key_name"})
_KEY_SPLIT = re.compile(r"[_.\-\s]+")


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Containers describing who asks and whom we ask: their names and ids are not patient data.
_NOT_PATIENT = frozenset({"payer", "provider", "information_receiver", "information_source"})


def is_phi_key(key: str) -> bool:
    """Whether a field called ``key`` holds patient data (by its name or any part of it)."""
    normalized = _CAMEL.sub("_", key.strip()).lower().replace("-", "_")
    if normalized in _SAFE_KEYS:
        return False
    if normalized in _PHI_KEYS:
        return True
    return any(part in _PHI_PARTS for part in _KEY_SPLIT.split(normalized))


_ID_LABELS = r"(?:member|subscriber|patient|mbr|insured)[ _\-]?(?:id|number|no)|policy(?:[ _\-]?(?:id|number|no))?|ssn"
_DOB_LABELS = r"dob|birth[ _\-]?date|date[ _\-]?of[ _\-]?birth"
_NAME_LABELS = r"(?:first|last|middle|full|patient|subscriber|member)?[ _\-]?name|patient|subscriber|member"
_QUOTED = r"\"[^\"]*\"|'[^']*'"
# An unlabelled name runs until a delimiter or the next "key=" / "key:" (so "DOE, JANE" goes whole).
_NAME_VALUE = r"[^;\n]*?(?=\s+[\w.\-]+\s*[:=]|[;\n]|$)"


def _labelled(labels: str, value: str, separator: str = r"\s*[:=#]\s*") -> re.Pattern[str]:
    return re.compile(
        rf"(?P<label>\b(?:{labels})\b[\"']?{separator})(?P<value>{_QUOTED}|{value})", re.IGNORECASE | re.MULTILINE
    )


_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # An id label is followed by the id even without punctuation ("subscriber id W123"); a name label
    # needs ":" / "=" / "#" ("patient was not found" is not a name).
    (_labelled(_ID_LABELS, r"[^\s,;]+", r"(?:\s*[:=#]\s*|\s+)"), rf"\g<label>{REDACTED}"),
    (_labelled(_DOB_LABELS, r"[^\s,;]+"), rf"\g<label>{REDACTED}"),
    (_labelled(_NAME_LABELS, _NAME_VALUE), rf"\g<label>{REDACTED}"),
    # X12 segments naming or locating a person: keep the segment id, drop its elements.
    (re.compile(r"\b(NM1|N3|N4|DMG|REF|PER|INS)([*|^])[^~\n]*"), rf"\1\2{REDACTED}"),
    # Dates: ISO, US, and X12 D8 (CCYYMMDD).
    (re.compile(r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b"), REDACTED),
    (re.compile(r"\b(?:0?[1-9]|1[0-2])[/\-](?:0?[1-9]|[12]\d|3[01])[/\-](?:19|20)?\d{2}\b"), REDACTED),
    (re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"), REDACTED),
)


def redact_text(text: str) -> str:
    """``text`` with labelled identifiers, names, dates and person segments replaced."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, *, by_key: bool = True) -> Any:
    """A JSON-ready copy of ``value`` with patient fields and text redacted (recursively).

    ``by_key=False`` (inside a payer or provider object) keeps fields whatever their name, but
    still redacts their text."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _redact_field(str(k), v, by_key=by_key) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item, by_key=by_key) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))  # str, dates, anything else: as text, redacted


def _redact_field(key: str, value: Any, *, by_key: bool) -> Any:
    if by_key and is_phi_key(key):
        return REDACTED
    return redact_value(value, by_key=by_key and key.lower() not in _NOT_PATIENT)


# --- records ---------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRS}


class RedactingFilter(logging.Filter):
    """Rewrites each record in place: message formatted and redacted, extras and traceback redacted.

    Install it on handlers (a logger's filter does not see its children's records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        for key, value in _extras(record).items():
            setattr(record, key, _redact_field(key, value, by_key=True))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``request_id``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        request_id = current_request_id()
        if request_id is not None:
            document["request_id"] = request_id
        for key, value in _extras(record).items():
            document.setdefault(key, _redact_field(key, value, by_key=True))
        trace = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else "")
        if trace:
            document["exc"] = redact_text(trace)
        if record.stack_info:
            document["stack"] = redact_text(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route all logging through one redacting JSON handler on the root logger; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# --- request ids ------------------------------------------------------------------------------------

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def current_request_id() -> str | None:
    """The id of the request this code runs for (tasks started within it inherit it)."""
    return _request_id.get()


def new_request_id() -> str:
    """32 random lower-case hex digits (the shape ``uuid4().hex`` has; ``ids``: it guards nothing)."""
    return unique_hex()


@contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    """Run a block (a request, a batch item) under ``request_id`` (a new one when not given)."""
    value = request_id or new_request_id()
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


def request_id_middleware() -> Middleware:
    """Adopts a well-formed incoming ``X-Request-ID`` (else makes one), scopes it over the request
    and echoes it on the response.  Install it outside the error middleware."""

    @web.middleware
    async def scope(request: web.Request, handler: Handler) -> web.StreamResponse:
        # ``request_id_scope`` without its generator-based context manager: this runs on every request.
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = incoming if incoming and _VALID_REQUEST_ID.fullmatch(incoming) else new_request_id()
        token = _request_id.set(request_id)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        finally:
            _request_id.reset(token)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return scope
