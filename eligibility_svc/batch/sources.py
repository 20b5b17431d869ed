"""Reading a batch's input into rows and per-row errors (files, request bodies, athenaNet)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from eligibility_svc.athena.appointments import AppointmentQuery
from eligibility_svc.athena.intake import AthenaIntake
from eligibility_svc.batch.inputs import Parsed, athena_rows
from eligibility_svc.batch.models import Action, AppointmentRow, ItemResult, RowError


class AthenaSource(BaseModel):
    """Booked appointments of a practice for a date range (inclusive), optionally some departments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    practice_id: str = Field(pattern=r"^[0-9]{1,12}$")
    start: dt.date
    end: dt.date
    department_ids: list[str] = []
    provider_ids: list[str] = []


class AthenaBatchBody(BaseModel):
    """``POST /v1/batches`` with athenaNet as the source (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    athena: AthenaSource
    writeback: bool = True  # verified plans go back to athenaNet through the outbox


def error_result(error: RowError) -> ItemResult:
    """A bad input row as a result row: reported with its reason, never checked."""
    where = f" (field {error.field})" if error.field else ""
    return ItemResult(
        appointment_id=error.appointment_id or f"row-{error.row}",
        patient_id=error.patient_id,
        row=error.row,
        action=Action.ERROR,
        error_code=error.code,
        message=f"row {error.row}{where}: {error.message}",
        attempts=0,
    )


def split(parsed: Iterable[Parsed]) -> tuple[list[AppointmentRow], list[ItemResult]]:
    """Rows to check, and the result rows of those that cannot be."""
    rows: list[AppointmentRow] = []
    errors: list[ItemResult] = []
    for entry in parsed:
        if isinstance(entry, RowError):
            errors.append(error_result(entry))
        else:
            rows.append(entry)
    return rows, errors


async def read_athena(athena: AthenaIntake, source: AthenaSource) -> tuple[list[AppointmentRow], list[ItemResult]]:
    """Booked appointments from athenaNet (paged), as rows and per-appointment errors."""
    query = AppointmentQuery(
        practice_id=source.practice_id,
        start=source.start,
        end=source.end,
        department_ids=tuple(source.department_ids),
        provider_ids=tuple(source.provider_ids),
    )
    parsed = [entry async for entry in athena_rows(athena.client, query, athena.settings)]
    return split(parsed)


def tomorrow(today: dt.date) -> tuple[dt.date, dt.date]:
    return today + dt.timedelta(days=1), today + dt.timedelta(days=1)


def practice_or_only(given: str | None, configured: Sequence[str]) -> str | None:
    """The practice asked for, or the only one configured."""
    if given:
        return given
    return configured[0] if len(configured) == 1 else None
