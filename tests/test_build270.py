"""The 270 builder against 270 text written by hand from the TR3 (005010X279A1).

The expected interchanges below were typed from the implementation guide's rules, not produced by
the builder: HL parent/child codes, element positions of NM1, SE01 counting ST through SE, control
numbers padded to nine in ISA13/IEA02 and to four in ST02/SE02.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from eligibility_svc.errors import ConfigurationError, InquiryInvalid
from eligibility_svc.models import (
    EligibilityRequest,
    Patient,
    Payer,
    ProcedureCode,
    Provider,
    ServiceRequest,
    Subscriber,
)
from eligibility_svc.settings import X12Settings
from eligibility_svc.x12.build270 import (
    ControlNumbers,
    Envelope,
    SequentialCounter,
    build_270,
    new_trace_number,
)
from eligibility_svc.x12.reader import read_interchange

CREATED = datetime(2024, 5, 1, 9, 30)


def make_envelope(control: int = 42, **changes: Any) -> Envelope:
    values: dict[str, Any] = {
        "sender_id": "ELIGSVC",
        "sender_qualifier": "ZZ",
        "receiver_id": "CLEARINGHOUSE",
        "receiver_qualifier": "ZZ",
        "usage": "T",
        "interchange_control": control,
        "group_control": control,
        "transaction_control": control,
        "created": CREATED,
    }
    values.update(changes)
    return Envelope(**values)


def subscriber_request() -> EligibilityRequest:
    return EligibilityRequest(
        payer=Payer(id="87726", name="Acme Health Plan"),
        provider=Provider(npi="1234567893", organization_name="Bone & Joint Clinic"),
        patient=Patient(
            last_name="O'Brien",
            first_name="Robert",
            middle_name="J",
            suffix="Jr",
            birth_date=date(1943, 5, 19),
            sex="M",
        ),
        member_id="W123456789",
        group_number="GRP-100",
        service=ServiceRequest(date=date(2024, 5, 1)),
    )


def dependent_request() -> EligibilityRequest:
    return EligibilityRequest(
        payer=Payer(id="60054", name="Aetna"),
        provider=Provider(npi="1234567893", last_name="Jones", first_name="Marcus", taxonomy="207Q00000X"),
        patient=Patient(last_name="Smith", first_name="Mary", birth_date=date(2015, 3, 4), sex="F", relationship="19"),
        subscriber=Subscriber(last_name="Smith", first_name="John", birth_date=date(1970, 1, 1), sex="M"),
        member_id="ABC123",
        service=ServiceRequest(
            date=date(2024, 5, 1),
            service_types=["30", "98"],
            procedures=[ProcedureCode(code="99213", modifiers=["25"])],
            place_of_service="11",
        ),
    )


def procedures_request() -> EligibilityRequest:
    return EligibilityRequest(
        payer=Payer(id="DDCA1", name="Delta Dental"),
        provider=Provider(npi="1234567893", organization_name="Smile Dental"),
        patient=Patient(last_name="Lee", birth_date=date(1980, 2, 29)),
        member_id="XYZ-789",
        service=ServiceRequest(
            date=date(2024, 4, 1),
            end_date=date(2024, 4, 30),
            procedures=[
                ProcedureCode(code="97110", modifiers=["GP", "59"]),
                ProcedureCode(code="D0120", qualifier="AD"),
            ],
        ),
    )


SUBSCRIBER_270 = (
    "ISA*00*          *00*          *ZZ*ELIGSVC        *ZZ*CLEARINGHOUSE  *240501*0930*^*00501*000000042*0*T*:~\n"
    "GS*HS*ELIGSVC*CLEARINGHOUSE*20240501*0930*42*X*005010X279A1~\n"
    "ST*270*0042*005010X279A1~\n"
    "BHT*0022*13*TRACE-0001*20240501*0930~\n"
    "HL*1**20*1~\n"
    "NM1*PR*2*ACME HEALTH PLAN*****PI*87726~\n"
    "HL*2*1*21*1~\n"
    "NM1*1P*2*BONE & JOINT CLINIC*****XX*1234567893~\n"
    "HL*3*2*22*0~\n"
    "TRN*1*TRACE-0001*9000000000~\n"
    "NM1*IL*1*O'BRIEN*ROBERT*J**JR*MI*W123456789~\n"
    "REF*6P*GRP-100~\n"
    "DMG*D8*19430519*M~\n"
    "DTP*291*D8*20240501~\n"
    "EQ*30~\n"
    "SE*14*0042~\n"
    "GE*1*42~\n"
    "IEA*1*000000042~\n"
)

DEPENDENT_TRANSACTION = (
    "ST*270*0042*005010X279A1~\n"
    "BHT*0022*13*TRACE-0002*20240501*0930~\n"
    "HL*1**20*1~\n"
    "NM1*PR*2*AETNA*****PI*60054~\n"
    "HL*2*1*21*1~\n"
    "NM1*1P*1*JONES*MARCUS****XX*1234567893~\n"
    "PRV*PE*PXC*207Q00000X~\n"
    "HL*3*2*22*1~\n"
    "NM1*IL*1*SMITH*JOHN****MI*ABC123~\n"
    "DMG*D8*19700101*M~\n"
    "HL*4*3*23*0~\n"
    "TRN*1*TRACE-0002*9000000000~\n"
    "NM1*03*1*SMITH*MARY~\n"
    "DMG*D8*20150304*F~\n"
    "INS*N*19~\n"
    "DTP*291*D8*20240501~\n"
    "EQ*30~\n"
    "III*ZZ*11~\n"
    "EQ*98~\n"
    "III*ZZ*11~\n"
    "EQ**HC:99213:25~\n"
    "III*ZZ*11~\n"
    "SE*23*0042~\n"
)

PROCEDURES_TRANSACTION = (
    "ST*270*0007*005010X279A1~\n"
    "BHT*0022*13*T3*20240501*0930~\n"
    "HL*1**20*1~\n"
    "NM1*PR*2*DELTA DENTAL*****PI*DDCA1~\n"
    "HL*2*1*21*1~\n"
    "NM1*1P*2*SMILE DENTAL*****XX*1234567893~\n"
    "HL*3*2*22*0~\n"
    "TRN*1*T3*9000000000~\n"
    "NM1*IL*1*LEE*****MI*XYZ-789~\n"
    "DMG*D8*19800229~\n"
    "DTP*291*RD8*20240401-20240430~\n"
    "EQ**HC:97110:GP:59~\n"
    "EQ**AD:D0120~\n"
    "SE*14*0007~\n"
)


def transaction_of(text: str) -> str:
    """The ST..SE lines of an interchange written with one segment per line."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("ST*"))
    end = next(i for i, line in enumerate(lines) if line.startswith("SE*"))
    return "".join(lines[start : end + 1])


def test_subscriber_interchange_matches_the_hand_written_270() -> None:
    assert build_270(subscriber_request(), make_envelope(), "TRACE-0001") == SUBSCRIBER_270


def test_dependent_puts_the_patient_in_2000d_and_the_subscriber_in_2000c() -> None:
    text = build_270(dependent_request(), make_envelope(), "TRACE-0002")
    assert transaction_of(text) == DEPENDENT_TRANSACTION


def test_procedures_only_and_a_date_range() -> None:
    text = build_270(procedures_request(), make_envelope(7), "T3")
    assert transaction_of(text) == PROCEDURES_TRANSACTION


def test_default_eq_30_carries_the_place_of_service() -> None:
    request = subscriber_request().model_copy(
        update={"service": ServiceRequest(date=date(2024, 5, 1), place_of_service="22")}
    )
    lines = build_270(request, make_envelope(), "T").splitlines()
    assert lines[lines.index("DTP*291*D8*20240501~") :][:3] == ["DTP*291*D8*20240501~", "EQ*30~", "III*ZZ*22~"]


def test_range_of_one_day_is_still_rd8() -> None:
    request = subscriber_request().model_copy(
        update={"service": ServiceRequest(date=date(2024, 5, 1), end_date=date(2024, 5, 1))}
    )
    assert "DTP*291*RD8*20240501-20240501~\n" in build_270(request, make_envelope(), "T")


def test_trace_originator_is_written_to_trn03() -> None:
    text = build_270(subscriber_request(), make_envelope(), "ABC", trace_originator="1234567890")
    assert "TRN*1*ABC*1234567890~\n" in text


@pytest.mark.parametrize(
    ("control", "isa13", "gs06", "st02"),
    [
        (5, "000000005", "5", "0005"),
        (123456789, "123456789", "123456789", "123456789"),
        (98765, "000098765", "98765", "98765"),
    ],
)
def test_control_numbers_are_padded_where_the_standard_says(control: int, isa13: str, gs06: str, st02: str) -> None:
    lines = build_270(subscriber_request(), make_envelope(control), "T").splitlines()
    assert lines[0].split("*")[13] == isa13
    assert lines[1].split("*")[6] == gs06
    assert lines[2] == f"ST*270*{st02}*005010X279A1~"
    assert lines[-3].startswith("SE*")
    assert lines[-3].endswith(f"*{st02}~")
    assert lines[-2] == f"GE*1*{gs06}~"
    assert lines[-1] == f"IEA*1*{isa13}~"


def test_separate_control_numbers_for_interchange_group_and_transaction() -> None:
    envelope = make_envelope(interchange_control=11, group_control=22, transaction_control=33)
    lines = build_270(subscriber_request(), envelope, "T").splitlines()
    assert (lines[0][90:99], lines[1].split("*")[6], lines[2]) == ("000000011", "22", "ST*270*0033*005010X279A1~")
    assert (lines[-3][-6:], lines[-2], lines[-1]) == ("*0033~", "GE*1*22~", "IEA*1*000000011~")


def test_isa_is_106_characters_with_padded_identifiers() -> None:
    envelope = make_envelope(sender_id="A1", receiver_id="RECEIVER1234567", usage="P")
    isa = build_270(subscriber_request(), envelope, "T").splitlines()[0]
    assert len(isa) == 106
    assert isa == (
        "ISA*00*          *00*          *ZZ*A1             *ZZ*RECEIVER1234567*240501*0930*^*00501*000000042*0*P*:~"
    )


@pytest.mark.parametrize("request_factory", [subscriber_request, dependent_request, procedures_request])
def test_hierarchy_and_counts_are_consistent(request_factory: Callable[[], EligibilityRequest]) -> None:
    """Checked through the segment reader: HL parents exist with the right level, HL04 says whether
    a child follows, SE01 counts ST..SE."""
    request = request_factory()
    interchange = read_interchange(build_270(request, make_envelope(), "T"))
    [transaction] = interchange.transactions
    hls = [segment for segment in transaction.segments if segment.id == "HL"]
    parent_level = {"20": "", "21": "20", "22": "21", "23": "22"}
    levels = {hl.el(1): hl.el(3) for hl in hls}
    for index, hl in enumerate(hls):
        assert hl.el(1) == str(index + 1)
        assert levels.get(hl.el(2), "") == parent_level[hl.el(3)]
        has_child = any(other.el(2) == hl.el(1) for other in hls)
        assert hl.el(4) == ("1" if has_child else "0")
    se = transaction.segments[-1]
    assert (se.id, se.el(1)) == ("SE", str(len(transaction.segments)))


def test_output_is_one_segment_per_line_ending_in_a_newline() -> None:
    text = build_270(subscriber_request(), make_envelope(), "T")
    assert text.endswith("IEA*1*000000042~\n")
    assert all(line.endswith("~") for line in text.splitlines())
    assert not any(line.endswith("*~") for line in text.splitlines())  # no trailing empty elements


def test_a_value_with_a_delimiter_is_refused_not_written() -> None:
    request = subscriber_request().model_copy(update={"group_number": "A*B", "member_id": "W1~2"})
    with pytest.raises(InquiryInvalid) as caught:
        build_270(request, make_envelope(), "T")
    assert [field for field, _ in caught.value.problems] == ["member_id", "group_number"]


@pytest.mark.parametrize(
    ("trace", "originator"),
    [("", "9000000000"), ("A*B", "9000000000"), ("X" * 51, "9000000000"), ("T", "900000000"), ("T", "2000000000")],
)
def test_bad_trace_numbers_are_programming_errors(trace: str, originator: str) -> None:
    with pytest.raises(ValueError, match="trace"):
        build_270(subscriber_request(), make_envelope(), trace, trace_originator=originator)


# --- envelope and control numbers -------------------------------------------------------------------


def test_envelope_from_settings_uses_the_configured_parties() -> None:
    settings = X12Settings(sender_id="PRACTICE1", sender_qualifier="30", receiver_id="CH", usage="P")
    envelope = Envelope.from_settings(settings, control=ControlNumbers(1, 2, 3), created=CREATED)
    assert envelope == Envelope("PRACTICE1", "30", "CH", "ZZ", "P", 1, 2, 3, CREATED)


def test_envelope_from_settings_with_one_number_uses_it_three_times() -> None:
    envelope = Envelope.from_settings(X12Settings(), control=77, created=CREATED)
    assert envelope == Envelope("ELIGSVC", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 77, 77, 77, CREATED)


def test_new_trace_numbers_are_distinct_and_writable() -> None:
    traces = {new_trace_number() for _ in range(100)}
    assert len(traces) == 100
    for trace in traces:
        assert len(trace) == 32
        assert set(trace) <= set("0123456789ABCDEF")


def test_control_numbers_from_a_counter_use_one_number_for_all_three() -> None:
    counter = SequentialCounter(start=41)
    assert ControlNumbers.from_counter(counter) == ControlNumbers(41, 41, 41)
    assert ControlNumbers.from_counter(counter) == ControlNumbers(42, 42, 42)


def test_sequential_counter_wraps_after_nine_digits() -> None:
    counter = SequentialCounter(start=999_999_998)
    assert [counter.next_control() for _ in range(3)] == [999_999_998, 999_999_999, 1]


@pytest.mark.parametrize("number", [0, -1, 1_000_000_000])
def test_control_numbers_outside_nine_digits_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="control number"):
        ControlNumbers(1, number, 1)
    with pytest.raises(ValueError, match="control number"):
        SequentialCounter(start=number)


@pytest.mark.parametrize(
    "changes",
    [
        {"sender_id": "S"},
        {"sender_id": "SIXTEEN-CHARS-ID"},
        {"receiver_id": "CH*1"},
        {"receiver_id": " CH"},
        {"sender_qualifier": "Z"},
        {"receiver_qualifier": "Z*"},
        {"usage": "X"},
    ],
)
def test_unusable_envelope_settings_are_configuration_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        make_envelope(**changes)
