"""The athenaNet sandbox's practice, seeded from the same ``x12_fixtures`` scenarios as the clearinghouse.

Scenario ``NN`` becomes, in practice 195900 (athenaNet's preview practice):

* insurance package ``90000 + NN`` for the scenario's payer (named after it);
* patient ``str(1000 + NN)`` with the scenario's patient demographics, and a primary policy holding
  the scenario's member ID and group number, the subscriber as policy holder for a dependent;
* a booked appointment on the scenario's service date.

So a check by athenaNet patient ID (patient 1001) asks the sandbox clearinghouse exactly what
scenario 01 answers, and both sandboxes agree.  Patients ``2001``-``2003`` have no policy (for
write-backs that create one), and one cancelled appointment and one open slot test the filters.
``practice_settings`` is the matching configuration (payer → package, provider, appointment types).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eligibility_svc.athena.diff import X12_TO_ATHENA_RELATIONSHIP
from eligibility_svc.athena.records import format_date
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.sandbox.ch_payer import load_scenarios
from eligibility_svc.settings import AthenaPayerPackage, AthenaPracticeSettings, AthenaProviderSettings

PRACTICE_ID = "195900"
PACKAGE_BASE = 90000
PATIENT_BASE = 1000
DEPARTMENTS = ("1", "2")
PROVIDERS = ("71", "72", "73")
PROVIDER = AthenaProviderSettings(npi="1234567893", organization_name="Sandbox Family Practice")
# appointmenttypeid → (name, procedures the pre-visit batch asks about)
APPOINTMENT_TYPES: dict[str, tuple[str, list[str]]] = {
    "2": ("Office Visit", ["99213"]),
    "3": ("New Patient", ["99203"]),
    "4": ("Physical Therapy", ["97110"]),
    "5": ("Knee Arthroscopy Consult", ["29881"]),
    "6": ("MRI Brain", ["70551"]),
}
UNINSURED = ("2001", "2002", "2003")


@dataclass
class Package:
    insurancepackageid: int
    name: str
    payer_id: str
    payer_name: str
    insurancetype: str = "Group Policy"


@dataclass
class Policy:
    """One patient insurance: ``fields`` as athenaNet shows them (plus the sandbox's bookkeeping)."""

    insuranceid: str
    fields: dict[str, Any]
    cancelled: dt.date | None = None
    cancellation_note: str | None = None

    @property
    def active(self) -> bool:
        return self.cancelled is None


@dataclass
class PatientRecord:
    patientid: str
    demographics: dict[str, Any]
    policies: list[Policy] = field(default_factory=list)


@dataclass
class Practice:
    practice_id: str
    packages: dict[int, Package] = field(default_factory=dict)
    patients: dict[str, PatientRecord] = field(default_factory=dict)
    appointments: list[dict[str, Any]] = field(default_factory=list)
    next_insurance_id: int = 5001

    def new_insurance_id(self) -> str:
        value = self.next_insurance_id
        self.next_insurance_id += 1
        return str(value)


def _number(name: str) -> int | None:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def seed_practice(fixtures_dir: Path, practice_id: str = PRACTICE_ID) -> Practice:
    """The sandbox practice (see the module docstring)."""
    practice = Practice(practice_id)
    for scenario in load_scenarios(fixtures_dir):
        number = _number(scenario.name)
        if number is None:
            continue
        request = scenario.request
        package = Package(
            PACKAGE_BASE + number, f"{request.payer.name} Plan"[:60], request.payer.id, request.payer.name
        )
        practice.packages[package.insurancepackageid] = package
        patient_id = str(PATIENT_BASE + number)
        record = PatientRecord(patient_id, _demographics(request.patient, number))
        record.policies.append(Policy(practice.new_insurance_id(), _policy_fields(request, package)))
        practice.patients[patient_id] = record
        practice.appointments.append(_appointment(number, patient_id, request.service.date))
    _uninsured(practice)
    _odd_appointments(practice)
    return practice


def _demographics(person: Any, number: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "firstname": person.first_name,
        "lastname": person.last_name,
        "dob": format_date(person.birth_date) if person.birth_date else None,
        "sex": person.sex,
        "departmentid": DEPARTMENTS[number % len(DEPARTMENTS)],
        "status": "active",
        "homebound": "false",  # older responses carry booleans as strings
        "consenttotext": "false",
    }
    return {key: value for key, value in found.items() if value is not None}


def _policy_fields(request: EligibilityRequest, package: Package) -> dict[str, Any]:
    holder = request.subscriber or request.patient
    relationship = 1
    if request.subscriber is not None:
        relationship = X12_TO_ATHENA_RELATIONSHIP.get(request.patient.relationship or "G8", 4)
    found: dict[str, Any] = {
        "insurancepackageid": package.insurancepackageid,
        "sequencenumber": 1,
        "insuranceidnumber": request.member_id,
        "policynumber": request.group_number,
        "insuranceplanname": package.name,
        "insurancetype": package.insurancetype,
        "insurancepolicyholderfirstname": holder.first_name,
        "insurancepolicyholderlastname": holder.last_name,
        "insurancepolicyholderdob": format_date(holder.birth_date) if holder.birth_date else None,
        "insurancepolicyholdersex": holder.sex,
        "relationshiptoinsuredid": relationship,
        "eligibilitystatus": "Unverified",
    }
    return {key: value for key, value in found.items() if value is not None}


def _appointment(number: int, patient_id: str, date: dt.date) -> dict[str, Any]:
    types = sorted(APPOINTMENT_TYPES)
    type_id = types[number % len(types)]
    return {
        "appointmentid": str(700000 + number),
        "patientid": patient_id,
        "departmentid": DEPARTMENTS[number % len(DEPARTMENTS)],
        "providerid": PROVIDERS[number % len(PROVIDERS)],
        "appointmenttypeid": type_id,
        "appointmenttype": APPOINTMENT_TYPES[type_id][0],
        "date": format_date(date),
        "starttime": f"{8 + number % 9:02d}:{(number * 15) % 60:02d}",
        "duration": 30,
        "appointmentstatus": "f",
        "copay": 25,
    }


def _uninsured(practice: Practice) -> None:
    people = [
        ("Nopolicy", "Nell", "1980-01-01", "F"),
        ("Nopolicy", "Ned", "1981-02-02", "M"),
        ("Bare", "Uma", "1990-03-03", "F"),
    ]
    for patient_id, (last, first, dob, sex) in zip(UNINSURED, people, strict=True):
        demographics = {
            "firstname": first,
            "lastname": last,
            "dob": format_date(dt.date.fromisoformat(dob)),
            "sex": sex,
            "departmentid": "1",
            "status": "active",
        }
        practice.patients[patient_id] = PatientRecord(patient_id, demographics)


def _odd_appointments(practice: Practice) -> None:
    cancelled = {**_appointment(1, str(PATIENT_BASE + 1), dt.date(2026, 11, 20)), "appointmentid": "799001"}
    cancelled["appointmentstatus"] = "x"
    slot = {**_appointment(2, "", dt.date(2026, 11, 20)), "appointmentid": "799002", "appointmentstatus": "o"}
    del slot["patientid"]
    practice.appointments.extend([cancelled, slot])


def practice_settings(practice: Practice) -> AthenaPracticeSettings:
    """The configuration that maps this practice's packages, provider and appointment types."""
    payers = {
        package.payer_id: AthenaPayerPackage(
            insurance_package_id=package.insurancepackageid, payer_name=package.payer_name
        )
        for package in practice.packages.values()
    }
    procedures = {type_id: codes for type_id, (_, codes) in APPOINTMENT_TYPES.items()}
    return AthenaPracticeSettings(payers=payers, provider=PROVIDER, appointment_procedures=procedures)
