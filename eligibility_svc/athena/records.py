"""athenaNet's wire formats, read leniently and written exactly (pure: no I/O).

What athenaNet sends varies by endpoint and age (see ``shared/reference/athenanet.md``):

* dates are ``mm/dd/yyyy`` (``dob``, ``issuedate``, appointment ``date``); we write only that form;
* IDs are JSON strings, but ``insurancepackageid`` is an integer in insurance objects and a string
  elsewhere, and ``sequencenumber`` arrives either way: every ID and number is read from both;
* booleans may be the strings ``"true"`` / ``"false"``;
* key order is not guaranteed, and fields we do not use are ignored.

The models below keep only the fields the service reads.  Unknown or malformed values become
``None`` rather than failing the whole record: the decision that needs a field reports it by name.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DATE_FORMAT = "%m/%d/%Y"
_US_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
_TRUE = frozenset({"true", "t", "y", "yes", "1"})
_FALSE = frozenset({"false", "f", "n", "no", "0", ""})


# --- scalars --------------------------------------------------------------------------------------


def format_date(value: dt.date) -> str:
    """``mm/dd/yyyy``, as every athenaNet date field wants it."""
    return value.strftime(DATE_FORMAT)


def parse_date(value: object) -> dt.date | None:
    """A ``mm/dd/yyyy`` (or ISO ``yyyy-mm-dd``) date; ``None`` for anything else."""
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    match = _US_DATE.match(value)
    try:
        if match:
            month, day, year = (int(part) for part in match.groups())
            return dt.date(year, month, day)
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


def parse_bool(value: object) -> bool | None:
    """``True``/``False`` from a JSON boolean or its string spelling; ``None`` when neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def format_bool(value: bool) -> str:
    return "true" if value else "false"


def as_id(value: object) -> str | None:
    """An athenaNet ID as a string, whether it arrived as a string or a number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def as_int(value: object) -> int | None:
    """An integer from a number or a numeric string (``"1"``, ``1``); ``None`` otherwise."""
    text = as_id(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def as_text(value: object) -> str | None:
    """A stripped non-empty string, or ``None``."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


Id = Annotated[str | None, BeforeValidator(as_id)]
Int = Annotated[int | None, BeforeValidator(as_int)]
Text = Annotated[str | None, BeforeValidator(as_text)]
Date = Annotated[dt.date | None, BeforeValidator(parse_date)]
Bool = Annotated[bool | None, BeforeValidator(parse_bool)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- records --------------------------------------------------------------------------------------


class AthenaInsurance(_Wire):
    """One patient insurance (policy) as athenaNet returns it."""

    insuranceid: Id = None
    insurancepackageid: Int = None
    sequencenumber: Int = None
    insuranceidnumber: Text = None  # member ID on the card
    policynumber: Text = None  # group number
    insuranceplanname: Text = None
    insuranceplandisplayname: Text = None
    ircname: Text = None
    insurancetype: Text = None
    issuedate: Date = None
    expirationdate: Date = None
    insurancepolicyholderfirstname: Text = None
    insurancepolicyholderlastname: Text = None
    insurancepolicyholdermiddlename: Text = None
    insurancepolicyholdersuffix: Text = None
    insurancepolicyholderdob: Date = None
    insurancepolicyholdersex: Text = None
    relationshiptoinsuredid: Int = None
    relationshiptoinsured: Text = None
    eligibilitystatus: Text = None  # read-only in athenaNet: never written
    cancelled: Text = None  # a cancellation date, or a boolean string

    @property
    def active(self) -> bool:
        """Not cancelled (athenaNet lists cancelled policies only with ``showcancelled``)."""
        if self.cancelled is None:
            return True
        flag = parse_bool(self.cancelled)
        return flag is False

    @property
    def plan_name(self) -> str | None:
        return self.insuranceplanname or self.insuranceplandisplayname or self.ircname


class AthenaPatient(_Wire):
    """A patient's demographics (``GET /patients/{id}``), with ``insurances`` when asked for."""

    patientid: Id = None
    firstname: Text = None
    lastname: Text = None
    middlename: Text = None
    suffix: Text = None
    dob: Date = None
    sex: Text = None
    status: Text = None
    departmentid: Id = None
    primarydepartmentid: Id = None
    insurances: list[AthenaInsurance] = Field(default_factory=list)


class AthenaAppointment(_Wire):
    """A booked appointment (``GET /appointments/booked``), with patient and insurances when asked for."""

    appointmentid: Id = None
    patientid: Id = None
    departmentid: Id = None
    providerid: Id = None
    appointmenttypeid: Id = None
    appointmenttype: Text = None
    appointmentstatus: Text = None
    date: Date = None
    starttime: Text = None
    duration: Int = None
    patient: AthenaPatient | None = None
    insurances: list[AthenaInsurance] = Field(default_factory=list)


def insurances_of(payload: Any) -> list[AthenaInsurance]:
    """The insurances in a ``{"insurances": [...]}`` answer (or a bare list); [] when there are none."""
    items = payload.get("insurances") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        return []
    return [AthenaInsurance.model_validate(item) for item in items if isinstance(item, dict)]


def policy_at(insurances: list[AthenaInsurance], sequence: int) -> AthenaInsurance | None:
    """The active policy holding ``sequence`` (1 primary, 2 secondary), if any."""
    for insurance in insurances:
        if insurance.active and insurance.sequencenumber == sequence:
            return insurance
    return None
