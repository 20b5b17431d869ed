"""Checks by athenaNet patient ID: what athenaNet holds for a patient → an ``EligibilityRequest``.

An intake system on athenaNet sends ``{"athena": {"practice_id", "patient_id", "department_id"?,
"sequence_number"?}, "service": {...}}``.  We read the patient (``GET /patients/{id}?showinsurance=true``)
and build the inquiry from it (pure, ``request_from_patient``):

* patient: ``firstname``, ``lastname``, ``middlename``, ``suffix``, ``dob``, ``sex``;
* the active policy at the requested sequence (primary by default): ``insuranceidnumber`` (member ID),
  ``policynumber`` (group), the policy holder and ``relationshiptoinsuredid``; a holder other than the
  patient makes the patient a dependent (2000D) of the holder as subscriber;
* ``insurancepackageid`` → payer ID through the practice's mapping (the one the write-back uses);
* the information receiver from the practice's (or department's) configured provider.

The write-back goes to that same policy (``WriteTarget``).  Anything missing or unusable on file is
``AthenaPatientDataInvalid`` naming the athenaNet field (``details["field"]``), never patient values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eligibility_svc.athena.client import AthenaClient
from eligibility_svc.athena.diff import ATHENA_SELF
from eligibility_svc.athena.records import AthenaInsurance, AthenaPatient, policy_at
from eligibility_svc.cache import normalize_last_name, normalize_name
from eligibility_svc.errors import AthenaPatientDataInvalid, AthenaPayerUnmapped, ConfigurationError
from eligibility_svc.models import EligibilityRequest, ServiceRequest
from eligibility_svc.settings import AthenaPracticeSettings, AthenaProviderSettings, AthenaSettings

# athenaNet relationshiptoinsuredid → 5010 INS02 of a dependent.
ATHENA_TO_X12_RELATIONSHIP: dict[int, str] = {
    2: "01",  # spouse
    3: "19",  # child
    4: "G8",  # other
    12: "20",  # employee
    13: "21",  # unknown
    18: "G8",  # mother
    19: "G8",  # father
    26: "53",  # life partner
}
_SEXES = frozenset({"M", "F", "U"})
AthenaId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,20}$")]


class AthenaCheckRef(BaseModel):
    """The ``athena`` member of ``POST /v1/eligibility``: whom to check, by athenaNet IDs."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    practice_id: AthenaId
    patient_id: AthenaId
    department_id: AthenaId | None = None
    sequence_number: int = Field(default=1, ge=1, le=2, description="1 primary, 2 secondary")


class WriteTarget(BaseModel):
    """The athenaNet policy a check's verified plan is written back to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    practice_id: AthenaId
    patient_id: AthenaId
    department_id: AthenaId | None = None
    sequence_number: int = Field(default=1, ge=1, le=2)


@dataclass(frozen=True, slots=True)
class PatientCheck:
    request: EligibilityRequest
    target: WriteTarget


def _invalid(field: str, problem: str, ref: WriteTarget | AthenaCheckRef) -> AthenaPatientDataInvalid:
    return AthenaPatientDataInvalid(
        f"athenaNet's record of the patient (practice {ref.practice_id}) cannot make an inquiry: {field} {problem}",
        details={"field": field, "problem": problem, "practice_id": ref.practice_id, "patient_id": ref.patient_id},
    )


# --- pure ------------------------------------------------------------------------------------------


def payer_for_package(practice: AthenaPracticeSettings | None, practice_id: str, package_id: int) -> str:
    """The payer ID whose mapping holds ``package_id``; ``AthenaPayerUnmapped`` when none does."""
    for payer_id, mapping in (practice.payers if practice else {}).items():
        if package_id == mapping.insurance_package_id or package_id in mapping.also_accept:
            return payer_id
    raise AthenaPayerUnmapped(
        f"insurance package {package_id} maps to no payer in athena.practices.{practice_id}.payers; "
        "add the payer's ID with this insurance_package_id",
        details={"practice_id": practice_id, "insurance_package_id": package_id},
    )


def provider_for(settings: AthenaSettings, practice_id: str, department_id: str | None) -> AthenaProviderSettings:
    """The information receiver for checks of ``practice_id`` (department, then practice, then default)."""
    practice = settings.practices.get(practice_id)
    found = None
    if practice is not None:
        found = (practice.department_providers.get(department_id) if department_id else None) or practice.provider
    found = found or settings.default_provider
    if found is None:
        raise ConfigurationError(
            f"no provider is configured for athenaNet practice {practice_id}: set "
            f"athena.practices.{practice_id}.provider (npi and organization_name) or athena.default_provider"
        )
    return found


def request_from_patient(
    patient: AthenaPatient,
    ref: AthenaCheckRef | WriteTarget,
    service: ServiceRequest,
    settings: AthenaSettings,
    *,
    insurances: list[AthenaInsurance] | None = None,
) -> PatientCheck:
    """The inquiry athenaNet's record of ``patient`` makes for ``service``, and where to write back."""
    department = ref.department_id or patient.departmentid or patient.primarydepartmentid
    target = WriteTarget(
        practice_id=ref.practice_id,
        patient_id=ref.patient_id,
        department_id=department,
        sequence_number=ref.sequence_number,
    )
    policy = policy_at(insurances if insurances is not None else patient.insurances, ref.sequence_number)
    if policy is None:
        raise _invalid(f"insurances[sequencenumber={ref.sequence_number}]", "is missing: no active policy", ref)
    if policy.insurancepackageid is None:
        raise _invalid("insurancepackageid", "is missing on the policy", ref)
    practice = settings.practices.get(ref.practice_id)
    payer_id = payer_for_package(practice, ref.practice_id, policy.insurancepackageid)
    document = {
        "payer": {"id": payer_id, "name": _payer_name(practice, payer_id, policy)},
        "provider": provider_for(settings, ref.practice_id, department).model_dump(exclude_none=True),
        **_people(patient, policy, ref),
        "member_id": _required(policy.insuranceidnumber, "insuranceidnumber", ref),
        "group_number": policy.policynumber,
        "service": service.model_dump(),
    }
    return PatientCheck(_validated(document, ref), target)


def _payer_name(practice: AthenaPracticeSettings | None, payer_id: str, policy: AthenaInsurance) -> str:
    mapping = practice.payers.get(payer_id) if practice else None
    name = (mapping.payer_name if mapping else None) or policy.plan_name or payer_id
    return name[:60]


def _required(value: str | None, field: str, ref: AthenaCheckRef | WriteTarget) -> str:
    if not value:
        raise _invalid(field, "is missing", ref)
    return value


def _people(patient: AthenaPatient, policy: AthenaInsurance, ref: AthenaCheckRef | WriteTarget) -> dict[str, Any]:
    person: dict[str, Any] = {
        "last_name": _required(patient.lastname, "lastname", ref),
        "first_name": patient.firstname,
        "middle_name": patient.middlename,
        "suffix": patient.suffix,
        "birth_date": _dob(patient.dob, "dob", ref),
        "sex": _sex(patient.sex),
    }
    if _holder_is_patient(patient, policy):
        return {"patient": person}
    relationship = ATHENA_TO_X12_RELATIONSHIP.get(policy.relationshiptoinsuredid or 13, "21")
    subscriber = {
        "last_name": _required(policy.insurancepolicyholderlastname, "insurancepolicyholderlastname", ref),
        "first_name": policy.insurancepolicyholderfirstname,
        "middle_name": policy.insurancepolicyholdermiddlename,
        "suffix": policy.insurancepolicyholdersuffix,
        "birth_date": policy.insurancepolicyholderdob,
        "sex": _sex(policy.insurancepolicyholdersex),
    }
    return {"patient": {**person, "relationship": relationship}, "subscriber": subscriber}


def _holder_is_patient(patient: AthenaPatient, policy: AthenaInsurance) -> bool:
    """Self when athenaNet says so, or when the holder is the patient by name and birth date."""
    if policy.relationshiptoinsuredid == ATHENA_SELF:
        return True
    if policy.insurancepolicyholderlastname is None:
        return policy.relationshiptoinsuredid is None  # nobody else is named: the patient holds it
    same_name = normalize_last_name(policy.insurancepolicyholderlastname) == normalize_last_name(
        patient.lastname
    ) and normalize_name(policy.insurancepolicyholderfirstname) == normalize_name(patient.firstname)
    return same_name and policy.insurancepolicyholderdob in (None, patient.dob)


def _dob(value: dt.date | None, field: str, ref: AthenaCheckRef | WriteTarget) -> dt.date:
    if value is None:
        raise _invalid(field, "is missing or not a mm/dd/yyyy date", ref)
    return value


def _sex(value: str | None) -> str | None:
    text = (value or "").strip().upper()[:1]
    return text if text in _SEXES else None


_FIELD_NAMES = {
    ("patient", "last_name"): "lastname",
    ("patient", "first_name"): "firstname",
    ("patient", "middle_name"): "middlename",
    ("patient", "suffix"): "suffix",
    ("subscriber", "last_name"): "insurancepolicyholderlastname",
    ("subscriber", "first_name"): "insurancepolicyholderfirstname",
    ("subscriber", "middle_name"): "insurancepolicyholdermiddlename",
    ("subscriber", "suffix"): "insurancepolicyholdersuffix",
    ("member_id",): "insuranceidnumber",
    ("group_number",): "policynumber",
    ("payer", "name"): "insuranceplanname",
}


def _validated(document: dict[str, Any], ref: AthenaCheckRef | WriteTarget) -> EligibilityRequest:
    try:
        return EligibilityRequest.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(str(part) for part in first["loc"])
        field = _FIELD_NAMES.get(loc, ".".join(loc))
        raise _invalid(field, f"is unusable ({first['msg']})", ref) from exc


# --- I/O -------------------------------------------------------------------------------------------


async def check_for_patient(
    client: AthenaClient, ref: AthenaCheckRef, service: ServiceRequest, settings: AthenaSettings
) -> PatientCheck:
    """Read the patient with insurances and build the check (``AthenaNotFound`` for an unknown patient)."""
    patient = await client.get_patient(ref.practice_id, ref.patient_id, show_insurance=True)
    return request_from_patient(patient, ref, service, settings)
