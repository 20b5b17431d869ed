"""Reading 270s: our own (round trips) and the public corpus (values read off the files by hand)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility_svc.errors import (
    X12Error,
    X12StructureError,
    X12SyntaxError,
    X12UnsupportedVersion,
    X12WrongTransaction,
)
from eligibility_svc.models import (
    EligibilityRequest,
    Patient,
    Payer,
    ProcedureCode,
    Provider,
    ServiceRequest,
    Subscriber,
)
from eligibility_svc.x12.build270 import Envelope, build_270
from eligibility_svc.x12.parse270 import Period, parse_270
from eligibility_svc.x12.reader import Delimiters

CREATED = datetime(2024, 5, 1, 9, 30)
ENVELOPE = Envelope("ELIGSVC", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 42, 43, 44, CREATED)

FILES_5010 = [
    "EdiFabric-X12.NET__GenericRequest.txt",
    "Inteligenz-X12Parser__Example1_IG.txt",
    "Inteligenz-X12Parser__Example1_IG_0x1D.txt",
    "LinuxForHealth-x12__demo-single-line.270",
    "LinuxForHealth-x12__dependent-commercial-health-insurance@284e4b1.270",
    "LinuxForHealth-x12__dependent-health-benefit-check.270",
    "LinuxForHealth-x12__subscriber-drug-in-office@284e4b1.270",
    "LinuxForHealth-x12__subscriber-health-benefit-check.270",
]
FILES_4010 = {
    "Inteligenz-X12Parser__Example1_DHHS.txt": "004010X092",
    "Inteligenz-X12Parser__Example2_EHCCA.txt": "004010X092",
    "Inteligenz-X12Parser__Example3_Aetna.txt": "004010X092",
    "azoner-pyx12__x12testdata-repeat_init_segment.270": "004010X092A1",
    "imsweb-x12-parser__x270.txt": "004010X092A1",
}


def read(corpus_dir: Path, name: str) -> bytes:
    return (corpus_dir / "270" / name).read_bytes()


# --- round trips ------------------------------------------------------------------------------------
# Names are written upper case here because the builder upper-cases them; the last case checks that.

SUBSCRIBER = EligibilityRequest(
    payer=Payer(id="87726", name="ACME HEALTH PLAN"),
    provider=Provider(npi="1234567893", organization_name="BONE & JOINT CLINIC", taxonomy="207X00000X"),
    patient=Patient(
        last_name="O'BRIEN", first_name="ROBERT", middle_name="J", suffix="JR", birth_date=date(1943, 5, 19), sex="M"
    ),
    member_id="W123456789",
    group_number="GRP-100",
    service=ServiceRequest(
        date=date(2024, 4, 1),
        end_date=date(2024, 4, 30),
        service_types=["30", "98", "UC"],
        procedures=[ProcedureCode(code="99213", modifiers=["25", "59"]), ProcedureCode(code="D0120", qualifier="AD")],
        place_of_service="11",
    ),
)
DEPENDENT = EligibilityRequest(
    payer=Payer(id="60054", name="AETNA"),
    provider=Provider(npi="1234567893", last_name="JONES", first_name="MARCUS"),
    patient=Patient(last_name="SMITH", first_name="MARY", birth_date=date(2015, 3, 4), sex="F", relationship="19"),
    subscriber=Subscriber(last_name="SMITH", first_name="JOHN", middle_name="Q", birth_date=date(1970, 1, 1), sex="M"),
    member_id="ABC123",
    group_number="G1",
    service=ServiceRequest(date=date(2024, 5, 1), service_types=["30"]),
)
NAME_SEARCH = EligibilityRequest(
    payer=Payer(id="00431", name="MEDICAID"),
    provider=Provider(npi="1234567893", organization_name="CLINIC"),
    patient=Patient(last_name="LEE", first_name="ANN", birth_date=date(1980, 2, 29)),
    service=ServiceRequest(date=date(2024, 5, 1), service_types=["30"]),
)


@pytest.mark.parametrize("request_", [SUBSCRIBER, DEPENDENT, NAME_SEARCH], ids=["subscriber", "dependent", "no-id"])
def test_round_trip_gives_the_same_request_and_the_same_bytes(request_: EligibilityRequest) -> None:
    text = build_270(request_, ENVELOPE, "TRACE-1", trace_originator="1234567890")
    [inquiry] = parse_270(text)
    assert inquiry.request == request_
    assert (inquiry.trace_number, inquiry.trace_originator) == ("TRACE-1", "1234567890")
    assert inquiry.envelope == ENVELOPE
    assert inquiry.problems == ()
    assert inquiry.warnings == ()
    assert inquiry.trace_number is not None
    rebuilt = build_270(inquiry.request, inquiry.envelope, inquiry.trace_number, trace_originator="1234567890")
    assert rebuilt == text


def test_round_trip_reads_back_upper_case_names() -> None:
    mixed = DEPENDENT.model_copy(
        update={
            "payer": Payer(id="60054", name="Aetna"),
            "patient": Patient(last_name="Smith", first_name="Mary", birth_date=date(2015, 3, 4), relationship="19"),
        }
    )
    [inquiry] = parse_270(build_270(mixed, ENVELOPE, "T"))
    assert inquiry.request is not None
    assert inquiry.request.payer == Payer(id="60054", name="AETNA")
    assert inquiry.request.patient == Patient(
        last_name="SMITH", first_name="MARY", birth_date=date(2015, 3, 4), relationship="19"
    )


def test_a_request_without_codes_reads_back_as_eq_30() -> None:
    bare = NAME_SEARCH.model_copy(update={"service": ServiceRequest(date=date(2024, 5, 1))})
    [inquiry] = parse_270(build_270(bare, ENVELOPE, "T"))
    assert inquiry.request is not None
    assert inquiry.request.service.service_types == ["30"]


def test_our_envelope_values_are_reported_as_written() -> None:
    [inquiry] = parse_270(build_270(SUBSCRIBER, ENVELOPE, "TRACE-1"))
    header = inquiry.header
    assert (header.sender_qualifier, header.sender_id, header.receiver_qualifier, header.receiver_id) == (
        "ZZ",
        "ELIGSVC",
        "ZZ",
        "CLEARINGHOUSE",
    )
    assert (header.interchange_control, header.group_control, header.transaction_control) == ("000000042", "43", "0044")
    assert (header.interchange_date, header.group_date, header.transaction_date) == ("240501", "20240501", "20240501")
    assert (header.reference, header.implementation, header.usage) == ("TRACE-1", "005010X279A1", "T")
    assert inquiry.delimiters == Delimiters(element="*", component=":", segment="~", repetition="^")


# --- the public corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES_5010)
def test_every_5010_corpus_file_parses(corpus_dir: Path, name: str) -> None:
    inquiries = parse_270(read(corpus_dir, name))
    assert len(inquiries) == 1
    assert inquiries[0].trace_number
    assert inquiries[0].source.entity_id == "PR"
    assert inquiries[0].receiver.entity_id == "1P"


def test_tr3_example_subscriber(corpus_dir: Path) -> None:
    """LinuxForHealth subscriber-health-benefit-check.270: the TR3's generic request by a clinic."""
    [inquiry] = parse_270(read(corpus_dir, "LinuxForHealth-x12__subscriber-health-benefit-check.270"))
    header = inquiry.header
    assert (header.sender_qualifier, header.sender_id, header.receiver_qualifier, header.receiver_id) == (
        "30",
        "000000005",
        "30",
        "12345",
    )
    assert (header.interchange_control, header.group_control, header.transaction_control) == ("000000907", "1", "1234")
    assert (header.reference, header.transaction_date, header.transaction_time) == ("10001234", "20060501", "1319")
    assert (header.interchange_date, header.interchange_time, header.group_date) == ("131031", "1147", "20131031")
    assert (inquiry.source.last_or_org, inquiry.source.id_qualifier, inquiry.source.id) == (
        "ABC COMPANY",
        "PI",
        "842610001",
    )
    assert (inquiry.receiver.last_or_org, inquiry.receiver.id_qualifier, inquiry.receiver.id) == (
        "BONE AND JOINT CLINIC",
        "SV",
        "2000035",
    )
    subscriber = inquiry.subscriber
    assert (subscriber.name.last_or_org, subscriber.name.first, subscriber.name.id) == (
        "SMITH",
        "ROBERT",
        "11122333301",
    )
    assert subscriber.birth_date == date(1943, 5, 19)
    assert subscriber.dates == Period(date(2006, 5, 1))
    assert [eq.service_types for eq in subscriber.inquiries] == [("30",)]
    assert (inquiry.trace_number, inquiry.trace_originator) == ("93175-012547", "9877281234")
    assert inquiry.dependent is None
    # The provider is identified by a service provider number, which our request model cannot hold.
    assert inquiry.request is None
    assert inquiry.problems == ("2100B identifies the provider by SV '2000035', not an NPI (XX)",)


def test_tr3_example_dependent(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "LinuxForHealth-x12__dependent-health-benefit-check.270"))
    assert (inquiry.subscriber.name.last_or_org, inquiry.subscriber.name.id) == ("", "11122333301")
    dependent = inquiry.dependent
    assert dependent is not None
    assert (dependent.loop, dependent.name.entity_id, dependent.name.last_or_org, dependent.name.first) == (
        "2000D",
        "03",
        "SMITH",
        "MARY",
    )
    assert dependent.birth_date == date(1978, 10, 14)
    assert dependent.dates == Period(date(2006, 5, 1))
    assert [eq.service_types for eq in dependent.inquiries] == [("30",)]
    assert (inquiry.trace_number, inquiry.trace_originator) == ("93175-012547", "9877281234")  # TRN in 2000D


def test_drug_in_office_subscriber_becomes_a_request(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "LinuxForHealth-x12__subscriber-drug-in-office@284e4b1.270"))
    assert inquiry.request == EligibilityRequest(
        payer=Payer(id="12345", name="PAYER C"),
        provider=Provider(npi="1467857193", last_name="DOE", first_name="JOHN"),
        patient=Patient(last_name="DOE", first_name="JOHN", birth_date=date(1970, 1, 1)),
        member_id="00000000001",
        group_number="0123456789",
        service=ServiceRequest(date=date(2013, 10, 31), service_types=["30"], place_of_service="21"),
    )
    assert (inquiry.trace_number, inquiry.trace_originator) == ("930000000000", "9800000004")
    [eq] = inquiry.subscriber.inquiries
    assert eq.places_of_service == ("21",)
    assert eq.dates == Period(date(2013, 10, 31))
    assert inquiry.subscriber.relationship == "18"


def test_dependent_with_unnamed_subscriber_is_read_but_not_a_request(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "LinuxForHealth-x12__dependent-commercial-health-insurance@284e4b1.270"))
    dependent = inquiry.dependent
    assert dependent is not None
    assert (dependent.name.last_or_org, dependent.name.first, dependent.relationship) == ("DOE", "JANE", "01")
    assert dependent.references == (("6P", "0123456789"),)
    assert inquiry.trace_number == "930000000000"
    assert inquiry.request is None
    assert inquiry.problems == ("subscriber.last_name: String should have at least 1 character",)


def test_byte_order_mark_crlf_and_4010_isa_around_a_5010_group(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "Inteligenz-X12Parser__Example1_IG.txt"))
    assert (inquiry.header.version, inquiry.header.implementation) == ("00401", "005010X279")
    assert inquiry.delimiters.repetition is None  # ISA11 is 'U'
    assert (inquiry.header.sender_qualifier, inquiry.header.sender_id) == ("01", "9012345720000")
    assert inquiry.header.group_sender_id == "901234572000"
    assert inquiry.subscriber.name.id == "11122333301"


def test_control_character_terminator(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "Inteligenz-X12Parser__Example1_IG_0x1D.txt"))
    assert inquiry.delimiters.segment == "\x1d"
    assert inquiry.subscriber.birth_date == date(1943, 5, 19)


def test_wrong_functional_group_is_a_warning(corpus_dir: Path) -> None:
    [inquiry] = parse_270(read(corpus_dir, "EdiFabric-X12.NET__GenericRequest.txt"))
    assert inquiry.header.functional_id == "HC"
    assert "GS01 is 'HC'; a 270 belongs in an HS group" in inquiry.warnings


@pytest.mark.parametrize(("name", "version"), FILES_4010.items())
def test_4010_is_refused_naming_the_version(corpus_dir: Path, name: str, version: str) -> None:
    with pytest.raises(X12UnsupportedVersion) as caught:
        parse_270(read(corpus_dir, name))
    assert f"version {version} (4010)" in caught.value.message
    assert (caught.value.position, caught.value.segment_id, caught.value.expected) == (2, "GS", "005010X279A1")


def test_a_271_is_the_wrong_transaction(corpus_dir: Path) -> None:
    data = (corpus_dir / "271" / "LinuxForHealth-x12__subscriber-health-benefit-check.271").read_bytes()
    with pytest.raises(X12WrongTransaction) as caught:
        parse_270(data)
    assert (caught.value.segment_id, caught.value.expected, caught.value.position) == ("ST", "ST*270", 3)


# --- broken 270s -----------------------------------------------------------------------------------------

GOOD = build_270(DEPENDENT, ENVELOPE, "T")


def broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "error", "segment_id", "expected"),
    [
        (broken("HL*3*2*22*1~", "HL*3*9*22*1~"), X12StructureError, "HL", "HL02 naming an earlier HL with HL03 21"),
        (broken("HL*4*3*23*0~", "HL*4*3*24*0~"), X12StructureError, "HL", "20, 21, 22 or 23"),
        (broken("HL*2*1*21*1~", "HL*1*1*21*1~"), X12StructureError, "HL", "a new HL01"),
        (broken("HL*1**20*1~\n", ""), X12StructureError, "NM1", "HL*1**20*1"),
        (broken("NM1*PR*2*AETNA*****PI*60054~\n", ""), X12StructureError, "HL", "an NM1"),
        (broken("DMG*D8*20150304*F~", "DMG*D8*20150231*F~"), X12SyntaxError, "DMG", "CCYYMMDD"),
        (broken("DMG*D8*20150304*F~", "DMG*D6*150304*F~"), X12SyntaxError, "DMG", "DMG01 D8 (CCYYMMDD)"),
        (broken("DTP*291*D8*20240501~", "DTP*291*RD8*20240501~"), X12SyntaxError, "DTP", "D8*CCYYMMDD or RD8"),
        (broken("EQ*30~", "EQ**HC~"), X12SyntaxError, "EQ", "HC:99213"),
        (broken("BHT*0022*13*T*20240501*0930~", "REF*XX*1~"), X12StructureError, "REF", "BHT*0022*13"),
    ],
)
def test_broken_270s_raise_x12_errors_with_a_position(
    text: str, error: type[X12Error], segment_id: str, expected: str
) -> None:
    with pytest.raises(error) as caught:
        parse_270(text)
    assert caught.value.segment_id == segment_id
    assert caught.value.expected == expected
    assert isinstance(caught.value.position, int)


def test_a_270_asking_about_nobody_is_refused() -> None:
    text = GOOD[: GOOD.index("HL*3*2*22*1~")] + "SE*7*0044~\nGE*1*43~\nIEA*1*000000042~\n"
    with pytest.raises(X12StructureError, match="asks about nobody"):
        parse_270(text)


def test_counts_that_do_not_match_are_warnings() -> None:
    [inquiry] = parse_270(broken("SE*18*0044~", "SE*17*0045~"))
    assert inquiry.warnings == (
        "SE01 says 17 segments; the transaction has 18",
        "SE02 '0045' does not match ST02 '0044'",
    )


def test_lossy_details_are_listed_as_problems() -> None:
    text = broken("EQ*30~\n", "EQ*30**FAM~\nIII*ZZ*11~\nEQ*98~\nIII*ZZ*22~\n")
    [inquiry] = parse_270(text)
    assert inquiry.request is not None
    assert inquiry.request.service.place_of_service == "11"
    assert inquiry.problems == (
        "several places of service (11, 22); the request keeps 11",
        "EQ03 coverage level FAM is not carried by the request",
    )


def test_a_dependents_own_date_wins_over_the_subscribers() -> None:
    text = broken("HL*4*3*23*0~", "DTP*291*D8*20240401~\nHL*4*3*23*0~")
    [inquiry] = parse_270(text)
    assert inquiry.subscriber.dates == Period(date(2024, 4, 1))
    assert inquiry.request is not None
    assert inquiry.request.service.date == date(2024, 5, 1)


def test_several_dependents_are_several_inquiries() -> None:
    second = (
        "HL*5*3*23*0~\nTRN*1*T2*9000000000~\nNM1*03*1*SMITH*JANE~\nDMG*D8*20170101~\nDTP*291*D8*20240501~\nEQ*30~\n"
    )
    text = broken("SE*18*0044~\n", second + "SE*24*0044~\n")
    inquiries = parse_270(text)
    assert [(i.trace_number, i.dependent.name.first if i.dependent else None) for i in inquiries] == [
        ("T", "MARY"),
        ("T2", "JANE"),
    ]
    assert inquiries[1].request is not None
    assert inquiries[1].request.patient == Patient(last_name="SMITH", first_name="JANE", birth_date=date(2017, 1, 1))


# --- robustness: whatever arrives, only X12Error comes out -------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_270s_raise_only_x12_errors(data: st.DataObject) -> None:
    text = GOOD
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 12))
        insert = data.draw(st.text(alphabet="*~:^\n 0123456789ABHLSENQ-", max_size=8))
        text = text[:at] + insert + text[at + cut :]
    try:
        inquiries = parse_270(text)
    except X12Error:
        return
    assert all(inquiry.header is not None for inquiry in inquiries)
