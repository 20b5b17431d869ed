"""Properties of the builder and the rules over random requests (hypothesis).

1. Any request the rules accept is written with no delimiter inside an element: the segment reader
   finds every segment with the element count the TR3 gives it, and the values read back through
   ``parse_270`` are the request's (names upper-cased).
2. Any request carrying a delimiter, a control character or a non-ASCII character in a text field
   is refused by ``check_inquiry`` and by ``build_270`` with ``InquiryInvalid`` naming that field.
"""

from __future__ import annotations

import string
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eligibility_svc.errors import InquiryInvalid
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.build270 import Envelope, build_270
from eligibility_svc.x12.codes import TR3_SERVICE_TYPES
from eligibility_svc.x12.inquiry_rules import check_inquiry
from eligibility_svc.x12.parse270 import parse_270
from eligibility_svc.x12.reader import read_interchange

TODAY = date(2024, 5, 15)
WINDOW = (date(2023, 5, 15), date(2024, 5, 31))  # CORE 154 for TODAY, worked out by hand
ENVELOPE = Envelope("ELIGSVC", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 7, 7, 7, datetime(2024, 5, 15, 8, 5))

# The X12 extended character set without our delimiters (* ^ : ~), written out from X12.6.
X12_TEXT = string.ascii_letters + string.digits + " !\"&'()+,-./;?=%@[]_{}\\|<>#$"
BAD_CHARACTERS = "*^:~\x00\x07\t\x1d\u00a0éüßØ€\u2019"

# Elements per segment (after the segment ID) the TR3 allows in what we write: (fewest, most).
ELEMENT_COUNTS = {
    "ISA": (16, 16),
    "GS": (8, 8),
    "ST": (3, 3),
    "BHT": (5, 5),
    "HL": (4, 4),
    "NM1": (3, 9),
    "PRV": (3, 3),
    "TRN": (3, 3),
    "REF": (2, 2),
    "DMG": (2, 3),
    "INS": (2, 2),
    "DTP": (3, 3),
    "EQ": (1, 2),
    "III": (2, 2),
    "SE": (2, 2),
    "GE": (2, 2),
    "IEA": (2, 2),
}


def text(max_size: int) -> st.SearchStrategy[str]:
    """Non-empty X12 text without outer blanks (the API model strips them)."""
    return st.text(alphabet=X12_TEXT, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def member_ids() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z0-9-]{2,20}", fullmatch=True).filter(
        lambda value: len(set(value)) > 1 and value.upper() not in {"NA", "UNK", "TBD", "NONE", "NULL"}
    )


@st.composite
def procedures(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "code": draw(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True)),
        "qualifier": draw(st.sampled_from(["HC", "AD", "CJ", "N4", "ZZ"])),
        "modifiers": draw(st.lists(st.from_regex(r"[A-Z0-9]{2}", fullmatch=True), max_size=4)),
    }


@st.composite
def services(draw: st.DrawFn) -> dict[str, Any]:
    day = draw(st.dates(*WINDOW))
    return {
        "date": day,
        "end_date": draw(st.none() | st.dates(day, WINDOW[1])),
        "service_types": draw(st.lists(st.sampled_from(sorted(TR3_SERVICE_TYPES)), max_size=4)),
        "procedures": draw(st.lists(procedures(), max_size=3)),
        "place_of_service": draw(st.none() | st.from_regex(r"[0-9]{2}", fullmatch=True)),
    }


@st.composite
def providers(draw: st.DrawFn) -> dict[str, Any]:
    provider: dict[str, Any] = {"npi": "1234567893", "taxonomy": draw(st.none() | st.just("207Q00000X"))}
    if draw(st.booleans()):
        provider["organization_name"] = draw(text(30))
    else:
        provider.update(last_name=draw(text(20)), first_name=draw(text(20)))
    return provider


@st.composite
def people(draw: st.DrawFn, *, needs_first: bool, needs_birth: bool, latest: date) -> dict[str, Any]:
    person: dict[str, Any] = {
        "last_name": draw(text(20)),
        "first_name": draw(text(20)) if needs_first else draw(st.none() | text(20)),
        "middle_name": draw(st.none() | text(10)),
        "suffix": draw(st.none() | text(5)),
    }
    birth = (
        draw(st.dates(date(1900, 1, 1), latest))
        if needs_birth
        else draw(st.none() | st.dates(date(1900, 1, 1), latest))
    )
    person["birth_date"] = birth
    person["sex"] = draw(st.none() | st.sampled_from(["M", "F", "U"])) if birth else None
    return person


@st.composite
def valid_requests(draw: st.DrawFn) -> EligibilityRequest:
    """Requests meeting the TR3 search options: who is asked about decides what must be present."""
    service = draw(services())
    dependent = draw(st.booleans())
    member_id = draw(member_ids()) if dependent else draw(st.none() | member_ids())
    if dependent:
        patient = draw(people(needs_first=True, needs_birth=True, latest=min(service["date"], TODAY)))
        patient["relationship"] = draw(st.none() | st.sampled_from(["01", "19", "20", "21", "39", "40", "53", "G8"]))
        subscriber = draw(people(needs_first=False, needs_birth=False, latest=TODAY))
    else:
        first = member_id is None or draw(st.booleans())
        patient = draw(
            people(needs_first=first, needs_birth=not first or member_id is None, latest=min(service["date"], TODAY))
        )
        subscriber = None
    return EligibilityRequest.model_validate(
        {
            "payer": {"id": draw(st.from_regex(r"[A-Z0-9]{2,10}", fullmatch=True)), "name": draw(text(30))},
            "provider": draw(providers()),
            "patient": patient,
            "subscriber": subscriber,
            "member_id": member_id,
            "group_number": draw(st.none() | text(20)),
            "service": service,
        }
    )


def with_upper_names(request: EligibilityRequest) -> EligibilityRequest:
    """What the 270 carries: the request with every name upper-cased (IDs keep their case)."""
    data = request.model_dump()
    data["payer"]["name"] = data["payer"]["name"].upper()
    for part, names in (
        ("provider", ("organization_name", "last_name", "first_name")),
        ("patient", ("last_name", "first_name", "middle_name", "suffix")),
        ("subscriber", ("last_name", "first_name", "middle_name", "suffix")),
    ):
        for name in names:
            if data[part] is not None and data[part][name] is not None:
                data[part][name] = data[part][name].upper()
    return EligibilityRequest.model_validate(data)


def patient_nm1(request: EligibilityRequest) -> list[str]:
    """The patient's NM1 elements as the TR3 lays them out (NM101..NM109, trailing empties dropped)."""
    person = request.patient
    dependent = request.subscriber is not None
    elements = [
        "03" if dependent else "IL",
        "1",
        person.last_name.upper(),
        (person.first_name or "").upper(),
        (person.middle_name or "").upper(),
        "",
        (person.suffix or "").upper(),
        "" if dependent or not request.member_id else "MI",
        "" if dependent or not request.member_id else request.member_id,
    ]
    while not elements[-1]:
        elements.pop()
    return elements


@settings(max_examples=150)
@given(valid_requests(), text(20))
def test_valid_requests_are_written_without_delimiters_inside_elements(request: EligibilityRequest, trace: str) -> None:
    check_inquiry(request, today=TODAY)
    text_270 = build_270(request, ENVELOPE, trace)

    interchange = read_interchange(text_270)
    [transaction] = interchange.transactions
    for segment in [interchange.isa, *transaction.segments]:
        fewest, most = ELEMENT_COUNTS[segment.id]
        assert fewest <= len(segment) <= most, segment
    patient_entity = "03" if request.subscriber is not None else "IL"
    [nm1] = [s for s in transaction.segments if s.id == "NM1" and s.el(1) == patient_entity]
    assert nm1.elements[1:] == patient_nm1(request)
    assert transaction.segments[-1].el(1) == str(len(transaction.segments))

    [inquiry] = parse_270(text_270)
    expected = with_upper_names(request)
    if not request.service.service_types and not request.service.procedures:
        expected = expected.model_copy(
            update={"service": expected.service.model_copy(update={"service_types": ["30"]})}
        )
    assert inquiry.request == expected
    assert inquiry.trace_number == trace


TEXT_FIELDS = (
    "payer.id",
    "payer.name",
    "provider.organization_name",
    "provider.last_name",
    "provider.first_name",
    "patient.last_name",
    "patient.first_name",
    "patient.middle_name",
    "patient.suffix",
    "subscriber.last_name",
    "subscriber.first_name",
    "member_id",
    "group_number",
)


@settings(max_examples=150)
@given(valid_requests(), st.sampled_from(TEXT_FIELDS), st.sampled_from(BAD_CHARACTERS), st.data())
def test_requests_with_characters_x12_cannot_carry_are_refused(
    request: EligibilityRequest, field: str, bad: str, data: st.DataObject
) -> None:
    values = request.model_dump()
    *parents, name = field.split(".")
    holder = values
    for parent in parents:
        holder = holder[parent]
        assume(holder is not None)  # no subscriber in this request: nothing to spoil
    value: str = holder.get(name) or ""
    assume(bool(value))
    at = data.draw(st.integers(1, len(value)))  # never first: the model strips outer blanks
    holder[name] = value[:at] + bad + value[at:] + "x"  # nor last, for the same reason
    spoiled = EligibilityRequest.model_validate(values)

    with pytest.raises(InquiryInvalid) as caught:
        check_inquiry(spoiled, today=TODAY)
    assert field in {problem_field for problem_field, _ in caught.value.problems}
    with pytest.raises(InquiryInvalid) as refused:
        build_270(spoiled, ENVELOPE, "T")
    assert field in {problem_field for problem_field, _ in refused.value.problems}
