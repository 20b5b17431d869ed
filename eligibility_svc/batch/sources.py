"""Reading a batch's input into rows and per-row errors (files, request bodies, athenaNet)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from eligibility_svc.athena.appointments import AppointmentQuery
from eligibility_svc.athena.intake import AthenaIntake
from eligibility_svc.batch.inputs import Parsed, RowFeed, athena_rows, kind_of
from eligibility_svc.batch.models import Action, AppointmentRow, BatchSpec, ItemResult, RowError

CHUNK_ROWS = 500  # rows planned at a time: what a batch's intake holds in memory


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
    """Booked appointments from athenaNet (paged), as rows and per-appointment errors, all at once."""
    return await gather_rows(athena_chunks(athena, source))


async def gather_rows(chunks: AsyncIterator[list[Parsed]]) -> tuple[list[AppointmentRow], list[ItemResult]]:
    """Every chunk's rows and row errors, held in memory (the embedded default's in-process batches)."""
    rows: list[AppointmentRow] = []
    errors: list[ItemResult] = []
    async for chunk in chunks:
        more_rows, more_errors = split(chunk)
        rows += more_rows
        errors += more_errors
    return rows, errors


async def athena_chunks(athena: AthenaIntake, source: AthenaSource) -> AsyncIterator[list[Parsed]]:
    """Booked appointments from athenaNet, ``CHUNK_ROWS`` at a time, as athenaNet pages them in."""
    query = AppointmentQuery(
        practice_id=source.practice_id,
        start=source.start,
        end=source.end,
        department_ids=tuple(source.department_ids),
        provider_ids=tuple(source.provider_ids),
    )
    chunk: list[Parsed] = []
    async for entry in athena_rows(athena.client, query, athena.settings):
        chunk.append(entry)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def athena_spec(source: AthenaSource, *, writeback: bool) -> BatchSpec:
    return BatchSpec(
        source="athena",
        practice_id=source.practice_id,
        start=source.start,
        end=source.end,
        department_ids=source.department_ids,
        writeback=writeback,
    )


def line_chunks(lines: Iterable[str], kind: str) -> Iterator[list[Parsed]]:
    """Rows of a CSV or JSONL input read ``CHUNK_ROWS`` lines at a time (``RowFeed``)."""
    feed = RowFeed(kind)
    block: list[str] = []
    for line in lines:
        block.append(line)
        if len(block) >= CHUNK_ROWS:
            if parsed := feed.feed(block):
                yield parsed
            block = []
    if parsed := feed.feed(block) + feed.close():
        yield parsed


async def file_chunks(path: Path) -> AsyncIterator[list[Parsed]]:
    """A CSV or JSONL file (by its name), a chunk at a time."""
    with path.open(encoding="utf-8-sig", newline="") as lines:
        for chunk in line_chunks(lines, kind_of(path.name)):
            yield chunk


def tomorrow(today: dt.date) -> tuple[dt.date, dt.date]:
    return today + dt.timedelta(days=1), today + dt.timedelta(days=1)


def practice_or_only(given: str | None, configured: Sequence[str]) -> str | None:
    """The practice asked for, or the only one configured."""
    if given:
        return given
    return configured[0] if len(configured) == 1 else None
