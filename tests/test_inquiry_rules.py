"""Each inquiry rule fails with the right field and an actionable message; valid requests pass."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from eligibility_svc.errors import InquiryInvalid
from eligibility_svc.models import (
    EligibilityRequest,
    Patient,
    Payer,
    ProcedureCode,
    Provider,
    ServiceRequest,
    Subscriber,
)
from eligibility_svc.x12.codes import TR3_SERVICE_TYPES
from eligibility_svc.x12.inquiry_rules import check_inquiry, core_date_window, npi_is_valid, writable_problems

TODAY = date(2024, 5, 15)  # CORE 154 window: 2023-05-15 through 2024-05-31


def base(**changes: Any) -> EligibilityRequest:
    """A valid subscriber request; ``changes`` replace top-level fields."""
    request = EligibilityRequest(
        payer=Payer(id="87726", name="Acme Health Plan"),
        provider=Provider(npi="1234567893", organization_name="Bone & Joint Clinic"),
        patient=Patient(last_name="Smith", first_name="Robert", birth_date=date(1980, 1, 2), sex="M"),
        member_id="W123456789",
        group_number="GRP-100",
        service=ServiceRequest(date=date(2024, 5, 15), service_types=["30"]),
    )
    return request.model_copy(update=changes)


def dependent(**changes: Any) -> EligibilityRequest:
    values: dict[str, Any] = {
        "patient": Patient(last_name="Smith", first_name="Mary", birth_date=date(2015, 3, 4), relationship="19"),
        "subscriber": Subscriber(last_name="Smith", first_name="John", birth_date=date(1980, 1, 2)),
    }
    values.update(changes)
    return base(**values)


def patient(**fields: Any) -> Patient:
    values: dict[str, Any] = {"last_name": "Smith", "first_name": "Robert", "birth_date": date(1980, 1, 2)}
    values.update(fields)
    return Patient(**values)


def service(**fields: Any) -> ServiceRequest:
    values: dict[str, Any] = {"date": date(2024, 5, 15)}
    values.update(fields)
    return ServiceRequest(**values)


def problems(request: EligibilityRequest, today: date = TODAY) -> dict[str, str]:
    """``{field: message}`` of what check_inquiry refuses, ``{}`` when it accepts."""
    try:
        check_inquiry(request, today=today)
    except InquiryInvalid as exc:
        found = exc.problems
    else:
        return {}
    assert len({field for field, _ in found}) == len(found), "one message per field"
    return dict(found)


# --- valid requests ---------------------------------------------------------------------------------


def test_a_complete_subscriber_request_passes() -> None:
    assert problems(base()) == {}


def test_a_complete_dependent_request_passes() -> None:
    assert problems(dependent()) == {}


@pytest.mark.parametrize(
    "request_",
    [
        base(patient=Patient(last_name="Smith", first_name="Robert")),  # member ID + last + first
        base(patient=Patient(last_name="Smith", birth_date=date(1980, 1, 2))),  # member ID + DOB
        base(member_id=None),  # last + first + DOB without a member ID
        base(provider=Provider(npi="1234567893", last_name="Jones", first_name="Marcus")),
        base(patient=patient(last_name="O'Donnell-Griswold", first_name="Mary Ann", suffix="Jr.")),
        base(payer=Payer(id="AB", name="Plan (PPO) #1 & Co/Partners; 100% @home")),
    ],
)
def test_valid_variants_pass(request_: EligibilityRequest) -> None:
    assert problems(request_) == {}


# --- X12 character set -------------------------------------------------------------------------------


def test_accented_name_names_the_character_and_the_plain_spelling() -> None:
    found = problems(base(patient=patient(last_name="Müller")))
    assert found == {
        "patient.last_name": "'Müller' contains 'ü', which X12 cannot carry; send it without accents (MULLER)"
    }


@pytest.mark.parametrize(
    ("changes", "field", "character"),
    [
        ({"payer": Payer(id="87726", name="Acme*Health")}, "payer.name", "'*' (an X12 delimiter)"),
        ({"payer": Payer(id="877^26", name="Acme")}, "payer.id", "'^' (an X12 delimiter)"),
        ({"group_number": "G~1"}, "group_number", "'~' (an X12 delimiter)"),
        (
            {"provider": Provider(npi="1234567893", organization_name="Clinic: North")},
            "provider.organization_name",
            "':' (an X12 delimiter)",
        ),
        ({"patient": patient(first_name="Ro\tbert")}, "patient.first_name", "the control character U+0009"),
        ({"patient": patient(middle_name="Ø")}, "patient.middle_name", "'Ø'"),
        ({"patient": patient(suffix="J\u00a0r")}, "patient.suffix", "the character U+00A0 (NO-BREAK SPACE)"),
    ],
)
def test_characters_x12_cannot_carry_are_named_with_their_field(
    changes: dict[str, Any], field: str, character: str
) -> None:
    found = problems(base(**changes))
    assert field in found
    assert f"contains {character}, which X12 cannot carry" in found[field]


def test_subscriber_names_are_checked_too() -> None:
    request = dependent(subscriber=Subscriber(last_name="Smith", first_name="Jöhn"))
    assert "'ö'" in problems(request)["subscriber.first_name"]


def test_writable_problems_only_reports_characters() -> None:
    request = base(patient=patient(last_name="Smith~"), member_id="UNKNOWN")
    assert [field for field, _ in writable_problems(request)] == ["patient.last_name"]


# --- NPI ------------------------------------------------------------------------------------------------

# CMS's published NPI check-digit example: 123456789 gets check digit 3.
PUBLISHED_VALID_NPI = "1234567893"


def test_published_npi_is_valid() -> None:
    assert npi_is_valid(PUBLISHED_VALID_NPI)


@pytest.mark.parametrize("last", [d for d in "0123456789" if d != "3"])
def test_any_other_check_digit_is_invalid(last: str) -> None:
    # A check digit is unique, so every other last digit on the published example must fail.
    assert not npi_is_valid(PUBLISHED_VALID_NPI[:9] + last)


def test_wrong_npi_is_reported_on_provider_npi() -> None:
    found = problems(base(provider=Provider(npi="1234567890", organization_name="Clinic")))
    assert found == {
        "provider.npi": "1234567890 is not a valid NPI (its check digit is wrong); copy the NPI again from NPPES"
    }


@pytest.mark.parametrize("npi", ["123456789", "12345678931", "123456789X", "１２３４５６７８９３"])
def test_npi_shape_is_part_of_validity(npi: str) -> None:
    assert not npi_is_valid(npi)


# --- dates (CORE 154) -----------------------------------------------------------------------------------


def test_core_window_runs_from_twelve_months_back_to_month_end() -> None:
    assert core_date_window(TODAY) == (date(2023, 5, 15), date(2024, 5, 31))
    assert core_date_window(date(2024, 2, 29)) == (date(2023, 2, 28), date(2024, 2, 29))
    assert core_date_window(date(2023, 12, 1)) == (date(2022, 12, 1), date(2023, 12, 31))


@pytest.mark.parametrize("day", [date(2023, 5, 15), date(2024, 5, 31), TODAY])
def test_dates_inside_the_window_pass(day: date) -> None:
    assert problems(base(service=service(date=day))) == {}


def test_a_date_before_the_window_says_what_range_works() -> None:
    found = problems(base(service=service(date=date(2023, 5, 14))))
    assert found == {
        "service.date": "2023-05-14 is more than 12 months ago; payers answer for dates from 2023-05-15 "
        "through 2024-05-31 (CORE 154): ask about a date in that range"
    }


def test_a_date_after_this_month_is_refused() -> None:
    found = problems(base(service=service(date=date(2024, 6, 1))))
    assert "2024-06-01 is after the end of this month" in found["service.date"]


def test_end_date_before_date_is_refused() -> None:
    found = problems(base(service=service(date=date(2024, 5, 10), end_date=date(2024, 5, 9))))
    assert found == {"service.end_date": "2024-05-09 is before service.date 2024-05-10; swap the two dates"}


def test_end_date_outside_the_window_is_refused() -> None:
    found = problems(base(service=service(date=date(2024, 5, 10), end_date=date(2024, 7, 1))))
    assert "after the end of this month" in found["service.end_date"]


@pytest.mark.parametrize(
    ("born", "message"),
    [
        (date(2024, 5, 16), "2024-05-16 is in the future; check the birth date"),
        (date(1899, 12, 31), "1899-12-31 is before 1900-01-01; check the birth date (year typed wrong?)"),
    ],
)
def test_impossible_birth_dates(born: date, message: str) -> None:
    assert problems(base(patient=patient(birth_date=born))) == {"patient.birth_date": message}


def test_birth_after_the_service_date_is_refused() -> None:
    request = base(patient=patient(birth_date=date(2024, 5, 10)), service=service(date=date(2024, 5, 1)))
    assert problems(request) == {
        "patient.birth_date": "2024-05-10 is after the service date 2024-05-01; check both dates"
    }


def test_subscriber_birth_date_in_the_future_is_refused() -> None:
    request = dependent(subscriber=Subscriber(last_name="Smith", first_name="John", birth_date=date(2025, 1, 1)))
    assert problems(request) == {"subscriber.birth_date": "2025-01-01 is in the future; check the birth date"}


# --- member ID -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("member_id", ["UNKNOWN", "none", "000000000", "XX", "NA", "11111111111"])
def test_placeholder_member_ids_are_refused(member_id: str) -> None:
    message = problems(base(member_id=member_id))["member_id"]
    assert message.startswith(f"{member_id!r} looks like a placeholder, not a member ID;")


@pytest.mark.parametrize(("member_id", "shown"), [("123 456", "' '"), ("ABC/123", "'/'"), ("A.B_C", "'.', '_'")])
def test_member_id_holds_letters_digits_and_hyphens(member_id: str, shown: str) -> None:
    assert problems(base(member_id=member_id)) == {
        "member_id": f"{member_id!r} contains {shown}; a member ID holds only letters, digits and hyphens"
    }


@pytest.mark.parametrize("member_id", ["W1", "XJBH12345678", "123-45-6789A", "a" * 79 + "b"])
def test_card_shaped_member_ids_pass(member_id: str) -> None:
    assert problems(base(member_id=member_id)) == {}


# --- search options and combinations -------------------------------------------------------------------


def test_member_id_with_only_a_last_name_is_not_a_search_option() -> None:
    found = problems(base(patient=Patient(last_name="Smith")))
    assert set(found) == {"patient"}
    assert "add the patient's first name or birth date" in found["patient"]


def test_without_member_id_first_name_and_birth_date_are_required() -> None:
    found = problems(base(member_id=None, patient=Patient(last_name="Smith")))
    assert set(found) == {"patient.first_name", "patient.birth_date"}
    assert "send the member ID from the insurance card" in found["patient.birth_date"]


def test_dependent_needs_subscriber_member_id_and_own_name_and_birth_date() -> None:
    request = dependent(member_id=None, patient=Patient(last_name="Smith", relationship="19"))
    found = problems(request)
    assert set(found) == {"member_id", "patient.first_name", "patient.birth_date"}
    assert "subscriber's member ID" in found["member_id"]


def test_more_than_99_codes_do_not_fit_one_inquiry() -> None:
    codes = sorted(TR3_SERVICE_TYPES)[:60]
    procedures = [ProcedureCode(code=f"992{n:02d}") for n in range(40)]
    found = problems(base(service=service(service_types=codes, procedures=procedures)))
    assert found == {
        "service": "100 service types and procedures were asked about; one inquiry carries at most 99: "
        "split the request"
    }


def test_99_codes_fit() -> None:
    codes = sorted(TR3_SERVICE_TYPES)[:60]
    procedures = [ProcedureCode(code=f"992{n:02d}") for n in range(39)]
    assert problems(base(service=service(service_types=codes, procedures=procedures))) == {}


def test_a_provider_person_needs_a_first_name() -> None:
    found = problems(base(provider=Provider(npi="1234567893", last_name="Jones")))
    assert found == {
        "provider.first_name": "a provider who is a person needs a first name; add it, or send "
        "organization_name for a practice"
    }


def test_relationship_is_for_dependents_only() -> None:
    found = problems(base(patient=patient(relationship="19")))
    assert found == {
        "patient.relationship": "only a dependent has a relationship to the subscriber; "
        "remove it, or add the subscriber"
    }


def test_sex_without_birth_date_cannot_be_sent() -> None:
    found = problems(base(patient=Patient(last_name="Smith", first_name="Robert", sex="F")))
    assert found == {"patient.sex": "can only be sent with the birth date; add patient.birth_date or leave sex out"}


def test_every_problem_is_reported_at_once() -> None:
    request = base(
        provider=Provider(npi="1234567890", organization_name="Clinic*1"),
        member_id="UNKNOWN",
        service=service(date=date(2020, 1, 1)),
    )
    with pytest.raises(InquiryInvalid) as caught:
        check_inquiry(request, today=TODAY)
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["provider.organization_name", "provider.npi", "service.date", "member_id"]
    assert caught.value.details["fields"][1] == {"field": "provider.npi", "problem": caught.value.problems[1][1]}
    assert caught.value.code == "request.inquiry_invalid"


def test_service_types_outside_the_tr3_list_are_refused() -> None:
    # "0", "29" and "E0" have the right shape but are not 005010X279A1 service types ("E0" came later).
    request = base(service=service(service_types=["30", "0", "29", "98", "E0"]))
    found = problems(request)
    assert set(found) == {"service.service_types[1]", "service.service_types[2]", "service.service_types[4]"}
    assert "'29' is not a 005010X279A1 service type code" in found["service.service_types[2]"]


def test_common_service_types_are_accepted() -> None:
    check_inquiry(
        base(service=service(service_types=["30", "1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC"])),
        today=TODAY,
    )
