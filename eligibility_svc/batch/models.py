"""The batch's data: what goes in (rows, items), what comes out (one result row per appointment).  Pure."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from eligibility_svc.athena.patients import WriteTarget
from eligibility_svc.models import EligibilityRequest


class Action(StrEnum):
    """What the front desk should do about an appointment."""

    OK = "ok"
    NEEDS_AUTH = "needs_auth"
    INACTIVE = "inactive"
    NOT_FOUND = "not_found_fix_demographics"
    PAYER_UNAVAILABLE = "payer_unavailable_retry_scheduled"
    ERROR = "error"


NEEDS_ATTENTION = frozenset(
    {Action.NEEDS_AUTH, Action.INACTIVE, Action.NOT_FOUND, Action.PAYER_UNAVAILABLE, Action.ERROR}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchSpec(_Frozen):
    """Where a batch's appointments come from (kept with the batch for the record; no PHI)."""

    source: str  # "csv", "jsonl", "athena"
    practice_id: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    department_ids: list[str] = []
    writeback: bool = False


class AppointmentRow(_Frozen):
    """One appointment to check: the question and where it came from."""

    row: int  # 1-based position in the input (header excluded)
    appointment_id: str
    patient_id: str | None = None
    request: EligibilityRequest
    target: WriteTarget | None = None


class RowError(_Frozen):
    """An input row that cannot be checked, and why (the rest of the batch goes on)."""

    row: int
    appointment_id: str | None = None
    patient_id: str | None = None
    field: str | None = None
    code: str = "request.invalid"
    message: str


class AppointmentRef(_Frozen):
    appointment_id: str
    patient_id: str | None = None
    row: int


class BatchItem(_Frozen):
    """One check: a distinct patient/payer/date with the procedures of all its appointments."""

    item_id: str
    request: EligibilityRequest
    appointments: list[AppointmentRef]
    target: WriteTarget | None = None


class ProcedureVerdict(_Frozen):
    code: str
    covered: str
    auth_required: str


class ItemResult(_Frozen):
    """One result row: one appointment's verdict (an item with two appointments gives two rows)."""

    appointment_id: str
    patient_id: str | None = None
    row: int | None = None
    item_id: str | None = None
    payer_id: str | None = None
    service_date: dt.date | None = None
    action: Action
    status: str | None = None  # CoverageSummary.status, when the payer answered
    plan_name: str | None = None
    copay: str | None = None  # in network, of the first procedure that has one
    coinsurance: str | None = None
    deductible_remaining: str | None = None
    out_of_pocket_remaining: str | None = None
    procedures: list[ProcedureVerdict] = []
    check_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    attempts: int = Field(default=1, ge=0)
    final_failure: bool = False  # still failing when the batch gave up on it


class BatchProgress(_Frozen):
    """A batch's counters as stored (``GET /v1/batches/{id}``)."""

    batch_id: str
    state: str  # "running" or "done"
    source: str
    items: int
    rows: int
    row_errors: int
    done: int
    failed: int
    retrying: int
    created_at: float
    finished_at: float | None = None

    @property
    def finished(self) -> int:
        return self.done + self.failed
