"""Checks by athenaNet patient id: the patient on file → an inquiry, and the two sandboxes agreeing on it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from eligibility_svc.athena.patients import AthenaCheckRef, check_for_patient, request_from_patient
from eligibility_svc.athena.records import AthenaPatient
from eligibility_svc.errors import AthenaNotFound, AthenaPatientDataInvalid, AthenaPayerUnmapped, ConfigurationError
from eligibility_svc.models import ServiceRequest
from eligibility_svc.sandbox.athena import seed_patient
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.x12.interpret import summarize
from eligibility_svc.x12.parse271 import parse_271
from tests.support.athena_servers import (
    PRACTICE,
    SCENARIOS,
    athena_client,
    athena_sandbox,
    scenario_request,
    settings_for,
)
from tests.support.ch_servers import ask, make_270

SERVICE = ServiceRequest(date=dt.date(2026, 11, 20), service_types=["30"])


def ref(patient_id: str, **more: object) -> AthenaCheckRef:
    return AthenaCheckRef.model_validate({"practice_id": PRACTICE, "patient_id": patient_id, **more})


async def test_the_patient_on_file_makes_the_scenarios_inquiry() -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box)
        async with athena_client(settings) as parts:
            check = await check_for_patient(parts.client, ref("1001"), SERVICE, settings.athena)
            dependent = await check_for_patient(parts.client, ref("1014"), SERVICE, settings.athena)
    expected = scenario_request("01")
    request = check.request
    assert request.payer.id == expected.payer.id
    assert request.payer.name == expected.payer.name
    assert request.member_id == expected.member_id
    assert request.group_number == expected.group_number
    assert request.patient.model_dump() == expected.patient.model_dump()
    assert request.subscriber is None
    assert request.provider.npi == "1234567893"
    assert request.service == SERVICE
    assert check.target.model_dump() == {
        "practice_id": PRACTICE,
        "patient_id": "1001",
        "department_id": "2",  # the patient's department on file
        "sequence_number": 1,
    }
    child = scenario_request("14")
    assert dependent.request.subscriber == child.subscriber
    assert dependent.request.patient.relationship == "19"


async def test_both_sandboxes_agree_on_every_seeded_patient(sandbox: RunningSandbox) -> None:
    """Each patient's inquiry, built from athenaNet's record, finds its scenario at the clearinghouse."""
    async with athena_sandbox() as box:
        settings = settings_for(box)
        async with athena_client(settings) as parts:
            for folder in sorted(SCENARIOS.iterdir()):
                number = int(folder.name[:2])
                scenario = json.loads((folder / "scenario.json").read_text())
                expected = json.loads((folder / "expected.json").read_text())
                service = ServiceRequest.model_validate(scenario["request"]["service"])
                if scenario["request"].get("member_id") is None:
                    with pytest.raises(AthenaPatientDataInvalid) as caught:
                        await check_for_patient(parts.client, ref(str(1000 + number)), service, settings.athena)
                    assert caught.value.details["field"] == "insuranceidnumber"
                    continue
                check = await check_for_patient(parts.client, ref(str(1000 + number)), service, settings.athena)
                result = await ask(sandbox, make_270(check.request), check.request.payer.id)
                summary = summarize(parse_271(result.x12_271)[0], check.request)
                assert summary.status.value == expected["status"], folder.name


async def test_missing_or_unusable_data_on_file_names_the_field() -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box)
        seed_patient(box.state, "3001", {"firstname": "No", "lastname": "Birthday", "sex": "F"}, [_policy()])
        seed_patient(box.state, "3002", {"firstname": "Ok", "lastname": "Person", "dob": "02/30/1980"}, [_policy()])
        seed_patient(
            box.state,
            "3003",
            {"firstname": "Ok", "lastname": "Person", "dob": "01/02/1980"},
            [_policy(insurancepackageid=4242)],
        )
        seed_patient(box.state, "3004", {"firstname": "X" * 40, "lastname": "Long", "dob": "01/02/1980"}, [_policy()])
        async with athena_client(settings) as parts:
            fields = {}
            for patient_id in ("2001", "3001", "3002", "3004"):
                with pytest.raises(AthenaPatientDataInvalid) as caught:
                    await check_for_patient(parts.client, ref(patient_id), SERVICE, settings.athena)
                fields[patient_id] = caught.value.details["field"]
                assert caught.value.http_status == 422
            with pytest.raises(AthenaPayerUnmapped) as unmapped:
                await check_for_patient(parts.client, ref("3003"), SERVICE, settings.athena)
            with pytest.raises(AthenaNotFound):
                await check_for_patient(parts.client, ref("999999"), SERVICE, settings.athena)
            with pytest.raises(AthenaPatientDataInvalid) as secondary:
                await check_for_patient(parts.client, ref("1001", sequence_number=2), SERVICE, settings.athena)
    assert fields == {"2001": "insurances[sequencenumber=1]", "3001": "dob", "3002": "dob", "3004": "firstname"}
    assert unmapped.value.details["insurance_package_id"] == 4242
    assert secondary.value.details["field"] == "insurances[sequencenumber=2]"
    assert "Birthday" not in str(fields)
    assert "X" * 40 not in repr(secondary.value.details)


def _policy(**fields: object) -> dict[str, object]:
    return {
        "insurancepackageid": 90001,
        "sequencenumber": 1,
        "insuranceidnumber": "ZZT0000001",
        "insurancepolicyholdersex": "F",
        "relationshiptoinsuredid": "1",
        **fields,
    }


def test_a_holder_who_is_the_patient_by_name_and_birth_date_is_self() -> None:
    patient = AthenaPatient.model_validate(
        {
            "firstname": "Quill",
            "lastname": "Fixturely",
            "dob": "06/12/1984",
            "insurances": [
                {
                    "insurancepackageid": "90001",
                    "sequencenumber": "1",
                    "insuranceidnumber": "ZZM0100001",
                    "insurancepolicyholderfirstname": "QUILL",
                    "insurancepolicyholderlastname": "FIXTURELY",
                    "insurancepolicyholderdob": "06/12/1984",
                    "relationshiptoinsuredid": "12",
                }
            ],
        }
    )
    settings = _settings()
    check = request_from_patient(patient, ref("1001"), SERVICE, settings)
    assert check.request.subscriber is None


def test_no_configured_provider_is_a_configuration_error() -> None:
    patient = AthenaPatient.model_validate(
        {
            "firstname": "A",
            "lastname": "B",
            "dob": "01/01/1980",
            "insurances": [{"insurancepackageid": 90001, "sequencenumber": 1, "insuranceidnumber": "Z1"}],
        }
    )
    settings = _settings()
    practice = settings.practices[PRACTICE].model_copy(update={"provider": None})
    bare = settings.model_copy(update={"practices": {PRACTICE: practice}})
    with pytest.raises(ConfigurationError) as caught:
        request_from_patient(patient, ref("1001"), SERVICE, bare)
    assert f"athena.practices.{PRACTICE}.provider" in caught.value.message


def _settings():  # type: ignore[no-untyped-def]
    from eligibility_svc.sandbox.athena_seed import practice_settings, seed_practice
    from eligibility_svc.settings import AthenaSettings

    return AthenaSettings(practices={PRACTICE: practice_settings(seed_practice(SCENARIOS.parent))})
