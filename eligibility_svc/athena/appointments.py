"""Booked appointments → pre-visit batch inputs.

``booked_appointments`` reads ``GET /appointments/booked`` for a date range (inclusive, ``mm/dd/yyyy``)
with ``showinsurance`` and ``showpatientdetail``, one department at a time (one source requires
``departmentid``, another makes it optional: both are honoured), providers as a comma list, and
follows the paging: the ``next`` link (``/v1/{practiceid}`` stripped) when athenaNet gives one, else
``offset`` += page size until ``totalcount`` is reached or a page comes back short.  A page that
does not move forward ends the walk (a server bug must not loop us forever).

``appointment_checks`` (pure) turns each appointment into an ``AppointmentCheck``: the
``EligibilityRequest`` built from the patient and the insurance on file (``patients``), the procedures
its appointment type maps to (``athena.appointment_procedures``, a practice's own mapping first), and
the write-back target; or the reason (code, message, field) it cannot be checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict

from eligibility_svc.athena.client import BOOKED, AthenaClient
from eligibility_svc.athena.patients import WriteTarget, request_from_patient
from eligibility_svc.athena.records import AthenaAppointment, as_int, format_date
from eligibility_svc.errors import AthenaBadResponse, EligibilityError
from eligibility_svc.models import EligibilityRequest, ProcedureCode, ServiceRequest
from eligibility_svc.settings import AthenaSettings

CANCELLED = "x"
OPEN_SLOT = "o"  # an open slot holds no patient
MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class AppointmentQuery:
    practice_id: str
    start: dt.date
    end: dt.date
    department_ids: Sequence[str] = ()  # none: one query without departmentid
    provider_ids: Sequence[str] = ()
    appointment_type_id: str | None = None
    page_size: int = 1000  # athenaNet's default; at most 10000
    extra: dict[str, str] = field(default_factory=dict)

    def params(self, department_id: str | None) -> dict[str, str]:
        query = {
            "startdate": format_date(self.start),
            "enddate": format_date(self.end),
            "showinsurance": "true",
            "showpatientdetail": "true",
            "limit": str(self.page_size),
            "offset": "0",
            **self.extra,
        }
        if department_id:
            query["departmentid"] = department_id
        if self.provider_ids:
            query["providerid"] = ",".join(self.provider_ids)
        if self.appointment_type_id:
            query["appointmenttypeid"] = self.appointment_type_id
        return query


class AppointmentProblem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    field: str | None = None


class AppointmentCheck(BaseModel):
    """One batch input: an appointment and the eligibility question it asks (or why it cannot)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    practice_id: str
    appointment_id: str
    patient_id: str | None
    department_id: str | None
    provider_id: str | None
    appointment_type_id: str | None
    date: dt.date | None
    start_time: str | None
    procedures: list[ProcedureCode]
    request: EligibilityRequest | None = None
    target: WriteTarget | None = None
    problem: AppointmentProblem | None = None


# --- paging ----------------------------------------------------------------------------------------


def next_query(payload: dict[str, Any], current: dict[str, str], received: int) -> dict[str, str] | None:
    """The query of the next page, or ``None`` when this was the last (pure)."""
    offset = as_int(current.get("offset")) or 0
    link = payload.get("next")
    if isinstance(link, str) and link:
        following = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
        if (as_int(following.get("offset")) or 0) > offset:
            return following
        return None
    total = as_int(payload.get("totalcount"))
    limit = as_int(current.get("limit")) or received
    reached = offset + received
    if received == 0 or (total is not None and reached >= total) or (total is None and received < limit):
        return None
    return {**current, "offset": str(reached)}


async def booked_appointments(client: AthenaClient, query: AppointmentQuery) -> AsyncIterator[AthenaAppointment]:
    """Every booked appointment matching ``query``, page by page (see the module docstring)."""
    departments: list[str | None] = [*query.department_ids] or [None]
    for department_id in departments:
        params: dict[str, str] | None = query.params(department_id)
        pages = 0
        while params is not None and pages < MAX_PAGES:
            payload = await client.call("GET", BOOKED, {"practiceid": query.practice_id}, query=params)
            items = _appointments(payload)
            for item in items:
                yield AthenaAppointment.model_validate(item)
            params = next_query(payload, params, len(items))
            pages += 1


def _appointments(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("appointments", []), list):
        raise AthenaBadResponse(
            "athenaNet answered the booked-appointments query without an appointments list",
            details={"endpoint": BOOKED},
        )
    return [item for item in payload.get("appointments", []) if isinstance(item, dict)]


# --- batch inputs (pure) ---------------------------------------------------------------------------------


def procedures_for(settings: AthenaSettings, practice_id: str, appointment_type_id: str | None) -> list[ProcedureCode]:
    """The procedures an appointment type maps to (the practice's mapping first); [] when unmapped."""
    if not appointment_type_id:
        return []
    practice = settings.practices.get(practice_id)
    codes = (practice.appointment_procedures.get(appointment_type_id) if practice else None) or (
        settings.appointment_procedures.get(appointment_type_id, [])
    )
    return [_procedure(code) for code in codes]


def _procedure(text: str) -> ProcedureCode:
    qualifier, _, code = text.rpartition(":")
    return ProcedureCode.model_validate({"code": code, "qualifier": qualifier or "HC"})


def appointment_checks(
    appointments: Iterable[AthenaAppointment], practice_id: str, settings: AthenaSettings, *, sequence: int = 1
) -> list[AppointmentCheck]:
    """The batch inputs for ``appointments`` (cancelled ones and open slots left out)."""
    return [
        appointment_check(item, practice_id, settings, sequence=sequence)
        for item in appointments
        if (item.appointmentstatus or "").lower() not in (CANCELLED, OPEN_SLOT) and item.patientid
    ]


def appointment_check(
    item: AthenaAppointment, practice_id: str, settings: AthenaSettings, *, sequence: int = 1
) -> AppointmentCheck:
    procedures = procedures_for(settings, practice_id, item.appointmenttypeid)
    base = AppointmentCheck(
        practice_id=practice_id,
        appointment_id=item.appointmentid or "",
        patient_id=item.patientid,
        department_id=item.departmentid,
        provider_id=item.providerid,
        appointment_type_id=item.appointmenttypeid,
        date=item.date,
        start_time=item.starttime,
        procedures=procedures,
    )
    if item.date is None:
        return base.model_copy(
            update={
                "problem": AppointmentProblem(
                    code="athena.bad_response", message="the appointment has no date", field="date"
                )
            }
        )
    if item.patient is None or not item.patientid:
        problem = AppointmentProblem(
            code="athena.bad_response", message="the appointment came without patient details", field="patient"
        )
        return base.model_copy(update={"problem": problem})
    return _with_request(base, item, settings, sequence)


def _with_request(
    base: AppointmentCheck, item: AthenaAppointment, settings: AthenaSettings, sequence: int
) -> AppointmentCheck:
    assert item.patient is not None
    assert item.patientid is not None
    assert item.date is not None
    target = WriteTarget(
        practice_id=base.practice_id,
        patient_id=item.patientid,
        department_id=item.departmentid,
        sequence_number=sequence,
    )
    service = ServiceRequest(date=item.date, procedures=base.procedures)
    insurances = item.insurances or item.patient.insurances
    try:
        check = request_from_patient(item.patient, target, service, settings, insurances=insurances)
    except EligibilityError as exc:
        problem = AppointmentProblem(code=exc.code, message=exc.message, field=exc.details.get("field"))
        return base.model_copy(update={"problem": problem})
    return base.model_copy(update={"request": check.request, "target": check.target})
