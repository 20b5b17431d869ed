"""Batch inputs, streamed: CSV and JSONL files (one appointment a row) and athenaNet booked appointments.

A row that cannot be checked becomes a ``RowError`` naming the row, the field and the reason; the
readers go on with the next row.  CSV columns (a header row; order free; ``procedures`` separated by
``;`` or spaces)::

    appointment_id, patient_id, service_date, payer_id, payer_name, member_id, group_number,
    last_name, first_name, birth_date, sex, provider_npi, provider_name, procedures

A JSONL line is an object with the same members, or with ``appointment_id`` (and ``patient_id``)
and a full ``request`` (an ``EligibilityRequest``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from eligibility_svc.athena.appointments import AppointmentQuery, appointment_check, booked_appointments
from eligibility_svc.athena.client import AthenaClient
from eligibility_svc.batch.models import AppointmentRow, RowError
from eligibility_svc.settings import AthenaSettings

Parsed = AppointmentRow | RowError
CSV_COLUMNS = (
    "appointment_id",
    "patient_id",
    "service_date",
    "payer_id",
    "payer_name",
    "member_id",
    "group_number",
    "last_name",
    "first_name",
    "birth_date",
    "sex",
    "provider_npi",
    "provider_name",
    "procedures",
)
REQUIRED = ("appointment_id", "service_date", "payer_id", "last_name", "provider_npi")
# Request fields → the flat column a person would fix.
_COLUMN_OF = {
    "payer.id": "payer_id",
    "payer.name": "payer_name",
    "member_id": "member_id",
    "group_number": "group_number",
    "patient.last_name": "last_name",
    "patient.first_name": "first_name",
    "patient.birth_date": "birth_date",
    "patient.sex": "sex",
    "provider.npi": "provider_npi",
    "provider.organization_name": "provider_name",
    "service.date": "service_date",
}


def _blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def flat_request(fields: dict[str, Any]) -> dict[str, Any]:
    """The ``EligibilityRequest`` document for a flat row (pure; validation happens after)."""
    codes = [c for c in re.split(r"[;\s,]+", str(fields.get("procedures") or "")) if c]
    request: dict[str, Any] = {
        "payer": {"id": fields.get("payer_id"), "name": _blank(fields.get("payer_name")) or fields.get("payer_id")},
        "provider": {
            "npi": fields.get("provider_npi"),
            "organization_name": _blank(fields.get("provider_name")) or "Practice",
        },
        "patient": {
            key: _blank(fields.get(column))
            for key, column in (
                ("last_name", "last_name"),
                ("first_name", "first_name"),
                ("birth_date", "birth_date"),
                ("sex", "sex"),
            )
            if _blank(fields.get(column)) is not None
        },
        "service": {"date": fields.get("service_date"), "procedures": [{"code": code} for code in codes]},
    }
    for key in ("member_id", "group_number"):
        if _blank(fields.get(key)) is not None:
            request[key] = fields[key].strip() if isinstance(fields[key], str) else fields[key]
    return request


def parse_row(number: int, fields: dict[str, Any]) -> Parsed:
    """One input row (flat or with a ``request``) → the appointment to check, or why not (pure)."""
    appointment_id = _blank(fields.get("appointment_id"))
    if "request" not in fields:
        missing = next((name for name in REQUIRED if _blank(fields.get(name)) is None), None)
        if missing is not None:
            return RowError(row=number, appointment_id=appointment_id, field=missing, message=f"{missing} is missing")
    elif appointment_id is None:
        return RowError(row=number, field="appointment_id", message="appointment_id is missing")
    document = fields["request"] if "request" in fields else flat_request(fields)
    try:
        return AppointmentRow.model_validate(
            {
                "row": number,
                "appointment_id": str(appointment_id),
                "patient_id": _blank(fields.get("patient_id")),
                "request": document,
            }
        )
    except ValidationError as exc:
        return _invalid(number, str(appointment_id), exc, flat="request" not in fields)


def _invalid(number: int, appointment_id: str, exc: ValidationError, *, flat: bool) -> RowError:
    first = exc.errors(include_url=False, include_input=False)[0]
    location = [str(part) for part in first["loc"]]
    if location and location[0] == "request":
        location = location[1:]
    path = ".".join(location)
    if flat:
        path = _COLUMN_OF.get(
            path, _COLUMN_OF.get(".".join(location[:2]), "procedures" if "procedures" in location else path)
        )
    return RowError(row=number, appointment_id=appointment_id, field=path or None, message=f"{path}: {first['msg']}")


def read_csv(lines: Iterable[str]) -> Iterator[Parsed]:
    """Rows of a CSV file with a header (streamed: one row in memory at a time)."""
    return _csv_rows(csv.DictReader(lines), 1)


def _csv_rows(reader: csv.DictReader[str], first: int) -> Iterator[Parsed]:
    for number, fields in enumerate(reader, start=first):
        if None in fields:
            yield RowError(
                row=number,
                appointment_id=fields.get("appointment_id"),
                message="the row has more cells than the header",
            )
            continue
        yield parse_row(number, {key.strip(): value for key, value in fields.items() if key})


def read_jsonl(lines: Iterable[str], *, first: int = 1) -> Iterator[Parsed]:
    """Rows of a JSONL file, one JSON object a line (blank lines skipped, still counted)."""
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RowError(row=number, message=f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(fields, dict):
            yield RowError(row=number, message="the line is not a JSON object")
            continue
        yield parse_row(number, fields)


def read_rows(lines: Iterable[str], kind: str) -> Iterator[Parsed]:
    """``kind`` "csv" or "jsonl"."""
    return read_csv(lines) if kind == "csv" else read_jsonl(lines)


class RowFeed:
    """``read_rows`` for input that arrives in pieces (an upload read as it comes).

    ``feed`` lines as they arrive and ``close`` at the end; each returns the rows completed.  Only
    the lines of one unfinished CSV record are held back (a quoted cell may span lines), so memory
    does not grow with the input.  Rows are numbered as ``read_rows`` numbers them for the whole.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._header: list[str] | None = None
        self._rows = 0  # rows numbered so far
        self._held: list[str] = []
        self._quotes = 0  # '"' in the held lines: odd while a quoted cell is open

    def feed(self, lines: Iterable[str]) -> list[Parsed]:
        if self.kind != "csv":
            return self._jsonl(list(lines))
        ready: list[str] = []
        for line in lines:
            self._held.append(line)
            self._quotes += line.count('"')
            if self._quotes % 2 == 0:  # a record boundary: quotes come in pairs outside an open cell
                ready += self._held
                self._held, self._quotes = [], 0
        return self._csv(ready)

    def close(self) -> list[Parsed]:
        """The rows left: a record cut off inside quotes is read the way ``csv`` reads it."""
        held, self._held, self._quotes = self._held, [], 0
        return self._csv(held) if self.kind == "csv" else []

    def _jsonl(self, lines: list[str]) -> list[Parsed]:
        parsed = list(read_jsonl(lines, first=self._rows + 1))
        self._rows += len(lines)
        return parsed

    def _csv(self, lines: list[str]) -> list[Parsed]:
        if not lines:
            return []
        reader = csv.DictReader(lines, fieldnames=self._header)
        parsed = list(_csv_rows(reader, self._rows + 1))
        if self._header is None and reader.fieldnames is not None:
            self._header = list(reader.fieldnames)
        self._rows += len(parsed)
        return parsed


def kind_of(name: str) -> str:
    """The input kind by file name (``.csv`` → csv, anything else JSONL)."""
    return "csv" if name.lower().endswith(".csv") else "jsonl"


async def athena_rows(client: AthenaClient, query: AppointmentQuery, settings: AthenaSettings) -> AsyncIterator[Parsed]:
    """athenaNet booked appointments in ``query`` (cancelled ones and open slots left out)."""
    number = 0
    async for appointment in booked_appointments(client, query):
        if (appointment.appointmentstatus or "").lower() in ("x", "o") or not appointment.patientid:
            continue
        number += 1
        check = appointment_check(appointment, query.practice_id, settings)
        if check.problem is not None or check.request is None:
            problem = check.problem
            yield RowError(
                row=number,
                appointment_id=check.appointment_id,
                patient_id=check.patient_id,
                field=problem.field if problem else None,
                code=problem.code if problem else "athena.bad_response",
                message=problem.message if problem else "the appointment cannot be checked",
            )
            continue
        yield AppointmentRow(
            row=number,
            appointment_id=check.appointment_id,
            patient_id=check.patient_id,
            request=check.request,
            target=check.target,
        )
