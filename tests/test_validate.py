"""005010X279A1 validation with pyx12 and our maps: clean documents, broken variants, the 999, policy, CLI.

The documents are written here segment by segment; each broken variant changes one thing in a clean
document and names the finding that change must produce (segment, loop, element, pyx12 code) and
nothing else, so a map that stops checking something, or starts flagging valid data, fails a test.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import defusedxml.ElementTree as SafeXml
import pytest
import pyx12.map_index
import pyx12.params
import pyx12.x12n_document
from hypothesis import HealthCheck, given, settings

from eligibility_svc.errors import (
    InquiryInvalid,
    X12StructureError,
    X12SyntaxError,
    X12UnsupportedVersion,
    X12ValidationFailed,
    X12WrongTransaction,
)
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.build270 import Envelope, build_270
from eligibility_svc.x12.inquiry_rules import check_inquiry
from eligibility_svc.x12.validate import (
    MAP_DIR,
    Finding,
    ValidationResult,
    _validate_slow,
    apply_policy,
    load_map,
    map_file_for,
    validate_command,
    validate_x12,
)
from tests.test_build270_properties import TODAY, text, valid_requests

SCENARIOS = Path(__file__).resolve().parent.parent / "x12_fixtures" / "scenarios"
FIXTURE_271S = sorted(SCENARIOS.glob("*/271.x12"))

ISA = "ISA*00*          *00*          *ZZ*CLEARINGHOUSE  *ZZ*ELIGSVC        *240515*0805*^*00501*000000001*0*T*:"


def interchange(body: list[str], *, functional_id: str = "HB", se: str | None = None, isa: str = ISA) -> str:
    """ISA/GS around ``body`` (ST ... last segment before SE), with a correct SE unless one is given."""
    control = body[0].split("*")[2]
    trailer = se or f"SE*{len(body) + 1}*{control}"
    segments = [isa, f"GS*{functional_id}*CLEARINGHOUSE*ELIGSVC*20240515*0805*1*X*005010X279A1", *body, trailer]
    return "~\n".join([*segments, "GE*1*1", "IEA*1*000000001"]) + "~\n"


SUBSCRIBER_271 = [
    "ST*271*0001*005010X279A1",
    "BHT*0022*11*TRACE123*20240515*0805",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "PER*IC*PROVIDER SERVICES*TE*8005550100*UR*WWW.ACME.EXAMPLE",
    "HL*2*1*21*1",
    "NM1*1P*2*GOOD CLINIC*****XX*1234567893",
    "HL*3*2*22*0",
    "TRN*2*TRACE123*9ELIGSVC00",
    "NM1*IL*1*DOE*JANE*Q***MI*W123456789",
    "REF*6P*GRP100*ACME EMPLOYER",
    "N3*1 MAIN ST",
    "N4*SPRINGFIELD*IL*62701",
    "DMG*D8*19800101*F",
    "DTP*346*D8*20240101",
    "EB*1*FAM*30*PR*GOLD PPO",
    "EB*C*IND*30*PR**23*1000*****Y",
    "EB*B*IND*98^A0*PR**27*25*****Y",
    "HSD*VS*20***22",
    "DTP*292*RD8*20240101-20241231",
    "EB*A*IND*30*PR****.2****N",
    "MSG*OUT OF NETWORK COINSURANCE",
    "EB*1*IND*62*PR*******Y*Y*HC:70551",
    "III*ZZ*11",
    "EB*L",
    "LS*2120",
    "NM1*P3*1*SMITH*JOHN****XX*1234567893",
    "PER*IC**TE*8005550101",
    "LE*2120",
]

DEPENDENT_271 = [
    "ST*271*0002*005010X279A1",
    "BHT*0022*11*TRACE124*20240515*0805",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "HL*2*1*21*1",
    "NM1*1P*1*SMITH*JOHN****XX*1234567893",
    "PRV*PE*PXC*207Q00000X",
    "HL*3*2*22*1",
    "NM1*IL*1*DOE*JANE****MI*W123456789",
    "HL*4*3*23*0",
    "TRN*2*TRACE124*9ELIGSVC00",
    "NM1*03*1*DOE*JIMMY",
    "DMG*D8*20150601*M",
    "INS*N*19",
    "DTP*346*D8*20240101",
    "EB*1*CHD*30^1^33^35^47^86^88^98^AL^MH^UC*PR*GOLD PPO",
    "EB*B*CHD*98*PR**27*15*****Y",
    "AAA*Y**70*C",
]

REJECTED_271 = [
    "ST*271*0003*005010X279A1",
    "BHT*0022*11*TRACE125*20240515*0805",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "HL*2*1*21*1",
    "NM1*1P*2*GOOD CLINIC*****XX*1234567893",
    "HL*3*2*22*0",
    "TRN*2*TRACE125*9ELIGSVC00",
    "NM1*IL*1*DOE*JANE****MI*W000000000",
    "AAA*Y**72*C",
    "DMG*D8*19800101*F",
]

PAYER_DOWN_271 = [
    "ST*271*0004*005010X279A1",
    "BHT*0022*11*TRACE126*20240515*0805",
    "HL*1**20*0",
    "AAA*Y**42*R",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "PER*IC**TE*8005550100",
]

SUBSCRIBER_270 = [
    "ST*270*0005*005010X279A1",
    "BHT*0022*13*TRACE123*20240515*0805",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "HL*2*1*21*1",
    "NM1*1P*2*GOOD CLINIC*****XX*1234567893",
    "REF*4A*ABC123",
    "N3*1 CLINIC WAY",
    "N4*SPRINGFIELD*IL*62701",
    "PRV*PE*PXC*207Q00000X",
    "HL*3*2*22*0",
    "TRN*1*TRACE123*9ELIGSVC00",
    "NM1*IL*1*DOE*JANE****MI*W123456789",
    "REF*6P*GRP100",
    "DMG*D8*19800101*F",
    "INS*Y*18***************1",
    "HI*ABK:M545*ABF:R51",
    "DTP*291*D8*20240515",
    "EQ*30^1^33^35^47^86^88^98^AL^MH^UC",
    "AMT*R*150",
    "AMT*PB*300.50",
    "EQ**HC:99213:25*IND",
    "III*ZZ*11",
    "REF*G1*AUTH0001",
    "DTP*291*RD8*20240515-20240531",
]

DEPENDENT_270 = [
    "ST*270*0006*005010X279A1",
    "BHT*0022*13*TRACE124*20240515*0805",
    "HL*1**20*1",
    "NM1*PR*2*ACME HEALTH*****PI*ACME01",
    "HL*2*1*21*1",
    "NM1*1P*1*SMITH*JOHN****XX*1234567893",
    "HL*3*2*22*1",
    "NM1*IL*1*DOE*JANE****MI*W123456789",
    "HL*4*3*23*0",
    "TRN*1*TRACE124*9ELIGSVC00",
    "NM1*03*1*DOE*JIMMY",
    "DMG*D8*20150601*M",
    "INS*N*19",
    "DTP*291*D8*20240515",
    "EQ*98",
    "EQ**HC:99392",
]

CLEAN = {
    "271 subscriber: EB rows, HSD, MSG, III, LS/LE 2120C": interchange(SUBSCRIBER_271),
    "271 dependent: 2000D, INS, repeated EB03, 2110D AAA": interchange(DEPENDENT_271),
    "271 subscriber rejected with AAA 72 at 2100C": interchange(REJECTED_271),
    "271 payer unavailable: AAA 42 at 2000A, no 2000B": interchange(PAYER_DOWN_271),
    "270 subscriber: EQ repeats, AMT R and PB, III, REF, DTP": interchange(SUBSCRIBER_270, functional_id="HS"),
    "270 dependent: 2000D, INS, EQ by procedure": interchange(DEPENDENT_270, functional_id="HS"),
}


@pytest.mark.parametrize("document", CLEAN.values(), ids=CLEAN.keys())
def test_clean_documents_have_no_findings(document: str) -> None:
    result = validate_x12(document)

    assert result.findings == ()
    assert result.ok


@pytest.mark.parametrize("path", FIXTURE_271S, ids=[p.parent.name for p in FIXTURE_271S])
def test_every_fixture_271_validates_clean(path: Path) -> None:
    result = validate_x12(path.read_bytes())

    assert [f.to_dict() for f in result.findings] == []


def test_the_fixture_scenarios_are_there() -> None:
    # The parametrized test above would pass vacuously on an empty folder.
    assert len(FIXTURE_271S) >= 30


# --- broken variants ------------------------------------------------------------------------------


def replace(old: str, new: str, body: list[str] = SUBSCRIBER_271) -> list[str]:
    assert old in body, old
    return [new if segment == old else segment for segment in body]


def without(old: str, body: list[str] = SUBSCRIBER_271) -> list[str]:
    assert old in body, old
    return [segment for segment in body if segment != old]


def insert_after(anchor: str, new: str, body: list[str] = SUBSCRIBER_271) -> list[str]:
    index = body.index(anchor) + 1
    return [*body[:index], new, *body[index:]]


Key = tuple[str, int | None, str | None, str | None, str]  # segment, position, loop, element, code


@dataclass(frozen=True)
class Broken:
    name: str
    document: Callable[[], str]
    errors: set[Key]  # every error expected, and nothing else
    says: str  # a fragment of the first expected error's message


BROKEN = [
    Broken(
        "missing required segment: 2100A NM1",
        lambda: interchange(without("NM1*PR*2*ACME HEALTH*****PI*ACME01")),
        # The PER has no NM1 to follow, then the walker reports the loop the NM1 opens as missing.
        {("PER", 6, "2000A", None, "1"), ("NM1", 7, "2100A", None, "3")},
        'Mandatory loop "Information Source Name" (2100A) missing',
    ),
    Broken(
        "bad code value: EB06 99",
        lambda: interchange(replace("EB*C*IND*30*PR**23*1000*****Y", "EB*C*IND*30*PR**99*1000*****Y")),
        {("EB", 19, "2110C", "EB06", "7")},
        "(99) is not a valid code for Time Period Qualifier (EB06)",
    ),
    Broken(
        "wrong HL parent: subscriber under the source",
        lambda: interchange(replace("HL*3*2*22*0", "HL*3*1*22*0")),
        {("HL", 10, "2000C", "HL02", "I12")},
        "HL02 names HL 1 (level 20) as the parent of a level 22 HL",
    ),
    Broken(
        "element too long: NM103 of 61 characters",
        lambda: interchange(
            replace("NM1*IL*1*DOE*JANE*Q***MI*W123456789", f"NM1*IL*1*{'D' * 61}*JANE*Q***MI*W123456789")
        ),
        {("NM1", 12, "2100C", "NM103", "5")},
        "Name Last or Organization Name (NM103) is too long: 61 characters, at most 60",
    ),
    Broken(
        "EB without EB01",
        lambda: interchange(replace("EB*A*IND*30*PR****.2****N", "EB**IND*30*PR****.2****N")),
        # EB01 tells the walker an EB opens a 2110C loop: without it the segment has no place.
        {("EB", 23, "2110C", None, "1")},
        "Segment EB* not found",
    ),
    Broken(
        "AAA with a bad follow-up code",
        lambda: interchange(insert_after("N4*SPRINGFIELD*IL*62701", "AAA*N**72*Z")),
        {("AAA", 16, "2100C", "AAA04", "7")},
        "(Z) is not a valid code for Follow-up Action Code (AAA04)",
    ),
    Broken(
        "AAA reason code not allowed at 2110C",
        lambda: interchange(insert_after("EB*1*IND*62*PR*******Y*Y*HC:70551", "AAA*N**72*C")),
        {("AAA", 26, "2110C", "AAA03", "7")},
        "(72) is not a valid code for Reject Reason Code (AAA03)",
    ),
    Broken(
        "SE count wrong",
        lambda: interchange(SUBSCRIBER_271, se="SE*31*0001"),
        {("SE", 32, None, None, "4")},
        "SE count of 31 for SE02=0001 is wrong. I count 30",
    ),
    Broken(
        "bad date: 30 February",
        lambda: interchange(replace("DTP*346*D8*20240101", "DTP*346*D8*20240230")),
        {("DTP", 17, "2100C", "DTP03", "8")},
        "Date Time Period (DTP03) is not a valid date",
    ),
    Broken(
        "DTP format mismatch: a range under D8",
        lambda: interchange(replace("DTP*346*D8*20240101", "DTP*346*D8*20240101-20241231")),
        {("DTP", 17, "2100C", "DTP03", "8")},
        "Date Time Period (DTP03) is not a valid date",
    ),
    Broken(
        "invalid NM1 qualifier for the loop: PR as the subscriber",
        lambda: interchange(
            replace("NM1*IL*1*DOE*JANE****MI*W000000000", "NM1*PR*1*DOE*JANE****MI*W000000000", REJECTED_271[:9])
        ),
        {("NM1", 11, "2000C", None, "1"), ("NM1", 12, "2100C", None, "3")},
        "Segment NM1*PR not found",
    ),
    Broken(
        "a repetition of EB03 that is not a service type",
        lambda: interchange(replace("EB*B*IND*98^A0*PR**27*25*****Y", "EB*B*IND*98^ZZ*PR**27*25*****Y")),
        {("EB", 20, "2110C", "EB03", "7")},
        "(ZZ) is not a valid code for Service Type Code (EB03)",
    ),
    Broken(
        "not-used element present: NM106 in 2100B",
        lambda: interchange(
            replace("NM1*1P*2*GOOD CLINIC*****XX*1234567893", "NM1*1P*1*CLINIC*GOOD**DR**XX*1234567893")
        ),
        {("NM1", 9, "2100B", "NM106", "10")},
        "is marked as Not Used",
    ),
    Broken(
        "dependent with a member ID (2100D NM108/NM109 are not used)",
        lambda: interchange(replace("NM1*03*1*DOE*JIMMY", "NM1*03*1*DOE*JIMMY****MI*W1", DEPENDENT_271)),
        {("NM1", 14, "2100D", "NM108", "10"), ("NM1", 14, "2100D", "NM109", "10")},
        "is marked as Not Used",
    ),
    Broken(
        "HL04 0 on a subscriber that has a dependent",
        lambda: interchange(replace("HL*3*2*22*1", "HL*3*2*22*0", DEPENDENT_271)),
        {("HL", 10, "2000C", "HL04", "I12")},
        "HL 3 says it has no subordinate HL (HL04 0) but has",
    ),
    Broken(
        "paired elements: EB09 without EB10",
        lambda: interchange(replace("EB*1*FAM*30*PR*GOLD PPO", "EB*1*FAM*30*PR*GOLD PPO****VS")),
        {("EB", 18, "2110C", None, "8")},
        "Syntax Error (P0910)",
    ),
    Broken(
        "segment over its maximum use: ten REF in 2100C",
        lambda: interchange([*SUBSCRIBER_271[:11], *[f"REF*1L*G{n}" for n in range(9)], *SUBSCRIBER_271[11:]]),
        {("REF", 22, "2100C", None, "5")},
        "Segment REF exceeded max count.  Found 10, should have 9",
    ),
    Broken(
        "trailing element separator",
        lambda: interchange(replace("EB*L", "EB*L*")),
        {("EB", 27, "2110C", None, "SEG1")},
        "trailing element terminators",
    ),
    Broken(
        "control character in a value",
        lambda: interchange(replace("MSG*OUT OF NETWORK COINSURANCE", "MSG*OUT OF NETWORK\tCOINSURANCE")),
        {("MSG", 24, "2110C", "MSG01", "6")},
        "Free Form Message Text (MSG01) contains a control character <HT>",
    ),
    Broken(
        "2120C without LS",
        lambda: interchange(without("LS*2120")),
        {("LS", 28, "2110C", None, "3")},
        "LS missing before loop 2120C",
    ),
    Broken(
        "2120C without LE",
        lambda: interchange(without("LE*2120")),
        {("LE", 31, "2110C", None, "3")},
        "LE missing after the 2120 loop",
    ),
    Broken(
        "GS01 of a 270 on a 271",
        lambda: interchange(SUBSCRIBER_271, functional_id="HS"),
        {("GS", 2, None, "GS01", "7")},
        "(HS) is not a valid code for Functional Identifier Code (GS01)",
    ),
    Broken(
        "ISA11 U in a 00501 interchange: no repetition separator, so EB03 98^A0 is one bad value",
        lambda: interchange(SUBSCRIBER_271, isa=ISA.replace("*0805*^*00501", "*0805*U*00501")),
        {("ISA", 1, None, "ISA11", "7"), ("EB", 20, "2110C", "EB03", "5"), ("EB", 20, "2110C", "EB03", "7")},
        "ISA11 'U' is not a repetition separator",
    ),
    Broken(
        "270 EQ with neither a service type nor a procedure",
        lambda: interchange(replace("EQ**HC:99392", "EQ", DEPENDENT_270), functional_id="HS"),
        {("EQ", 18, "2110D", None, "8")},
        "Syntax Error (R0102)",
    ),
    Broken(
        "270 INS02 34 (a 4010 relationship code) on a dependent",
        lambda: interchange(replace("INS*N*19", "INS*N*34", DEPENDENT_270), functional_id="HS"),
        {("INS", 15, "2100D", "INS02", "7")},
        "(34) is not a valid code for Individual Relationship Code (INS02)",
    ),
    Broken(
        "interchange cut off after SE",
        lambda: interchange(SUBSCRIBER_271).split("GE*1*1")[0],
        {("GE", None, None, None, "3"), ("IEA", None, None, None, "023")},
        'Mandatory segment "Functional Group Trailer" (GE=1) missing',
    ),
]


@pytest.mark.parametrize("case", BROKEN, ids=[case.name for case in BROKEN])
def test_broken_variant_produces_exactly_its_finding(case: Broken) -> None:
    result = validate_x12(case.document())

    found = {(f.segment_id, f.position, f.loop_id, f.element, f.code) for f in result.errors}
    assert found == case.errors
    assert any(case.says in f.message for f in result.errors), [f.message for f in result.errors]
    assert not result.ok


def test_the_broken_variants_are_at_least_ten_distinct_defects() -> None:
    assert len({case.name for case in BROKEN}) >= 10


def test_messages_carry_codes_but_not_patient_data() -> None:
    # Findings go into error details and check records: no names, birth dates or addresses.
    body = replace("NM1*IL*1*DOE*JANE*Q***MI*W123456789", f"NM1*IL*1*{'ZEBULON' * 9}*JANE*Q***MI*W123456789")
    body = replace("DMG*D8*19800101*F", "DMG*D8*19800231*F", body)
    body = insert_after("HL*2*1*21*1", "N3*42 ELM STREET", body)
    body = replace("EB*C*IND*30*PR**23*1000*****Y", "EB*C*IND*30*PR**99*1000*****Y", body)
    result = validate_x12(interchange(body))

    messages = " | ".join(f.message for f in result.findings)
    assert {f.segment_id for f in result.findings} == {"N3", "NM1", "DMG", "EB"}
    for private in ("ZEBULON", "19800231", "ELM STREET"):
        assert private not in messages
    assert "(99) is not a valid code for Time Period Qualifier (EB06)" in messages
    assert "Segment N3 not found" in messages


# --- separators -----------------------------------------------------------------------------------


def test_repetitions_are_split_on_whatever_isa11_declares() -> None:
    isa = ISA.replace("*0805*^*00501", "*0805*>*00501")
    body = replace("EB*B*IND*98^A0*PR**27*25*****Y", "EB*B*IND*98>A0>UC*PR**27*25*****Y")

    assert validate_x12(interchange(body, isa=isa)).findings == ()
    # With '>' declared, '^' is data: the value is one (bad) service type.
    broken = validate_x12(interchange(SUBSCRIBER_271, isa=isa))
    assert {(f.element, f.code) for f in broken.errors} == {("EB03", "5"), ("EB03", "7")}


def test_repetition_separator_equal_to_component_separator_is_one_finding_not_many() -> None:
    # ISA11 = ISA16 = '^' (the Inteligenz corpus files): each EB03 repetition still gets checked.
    isa = ISA[:-1] + "^"
    body = replace("EB*1*IND*62*PR*******Y*Y*HC:70551", "EB*1*IND*62*PR")
    result = validate_x12(interchange(body, isa=isa))

    assert [(f.segment_id, f.element, f.code) for f in result.errors] == [("ISA", "ISA11", "7")]
    assert "both '^'" in result.errors[0].message


def test_blank_lines_indentation_and_byte_order_mark_are_not_findings() -> None:
    document = "\ufeff  " + interchange(SUBSCRIBER_271).replace("~\n", "~\r\n\t  ")

    assert validate_x12(document.encode()).findings == ()


def test_positions_count_segments_of_the_interchange_from_the_isa() -> None:
    document = interchange(replace("EB*C*IND*30*PR**23*1000*****Y", "EB*C*IND*30*PR**99*1000*****Y"))
    [finding] = validate_x12(document).findings

    segments = [s.strip() for s in document.split("~") if s.strip()]
    assert segments[finding.position - 1].startswith("EB*C*IND*30*PR**99")


# --- refusals -------------------------------------------------------------------------------------


def test_a_4010_interchange_is_refused_with_the_version() -> None:
    document = interchange(SUBSCRIBER_271).replace("005010X279A1", "004010X092A1")

    with pytest.raises(X12UnsupportedVersion, match="004010X092A1"):
        validate_x12(document)


def test_another_transaction_set_is_refused() -> None:
    document = interchange(["ST*276*0001*005010X279A1", *SUBSCRIBER_271[1:]])

    with pytest.raises(X12WrongTransaction, match="276"):
        validate_x12(document)


def test_not_x12_is_a_syntax_error() -> None:
    with pytest.raises(X12SyntaxError):
        validate_x12(b"<html>502 Bad Gateway</html>")


def test_an_isa_that_is_not_106_characters_is_a_syntax_error() -> None:
    document = interchange(SUBSCRIBER_271, isa=ISA.replace("CLEARINGHOUSE  ", "CLEARINGHOUSE"))

    with pytest.raises(X12SyntaxError, match="the ISA is 104 characters"):
        validate_x12(document)


def test_pyx12_failures_on_malformed_envelopes_come_out_as_our_errors() -> None:
    # pyx12 does int(GE01) when it closes the group.
    document = interchange(SUBSCRIBER_271).replace("GE*1*1", "GE*ONE*1")

    with pytest.raises(X12SyntaxError, match="pyx12 failed on malformed input"):
        validate_x12(document)


def test_an_st_outside_any_group_is_a_structure_error() -> None:
    document = interchange(SUBSCRIBER_271).replace("GS*HB", "XX*HB")

    with pytest.raises(X12StructureError, match="ST outside a GS"):
        validate_x12(document)


def test_an_st_without_its_set_identifier_is_refused_not_passed_silently() -> None:
    # pyx12's walker cannot place such an ST, and then drops every finding after it: never "clean".
    document = interchange(["ST**0001*005010X279A1", *SUBSCRIBER_271[1:]])

    with pytest.raises(X12StructureError, match="ST01") as raised:
        _validate_slow(document)
    assert raised.value.position == 3  # ISA, GS, then the ST
    with pytest.raises(X12StructureError, match="ST01"):
        validate_x12(document)


# --- the 999 --------------------------------------------------------------------------------------


def ack_segments(ack: str) -> list[str]:
    return [line.rstrip("~") for line in ack.splitlines()]


def test_999_for_a_broken_271_names_the_segment_and_element_and_rejects() -> None:
    document = interchange(replace("EB*C*IND*30*PR**23*1000*****Y", "EB*C*IND*30*PR**99*1000*****Y"))
    result = validate_x12(document, want_ack=True)

    assert result.ack is not None
    segments = ack_segments(result.ack)
    # IK302 counts from the ST (the EB is the 17th segment of the transaction set).
    assert "IK3*EB*17**8" in segments
    assert "IK4*6*615*7*99" in segments
    assert "IK5*R*5" in segments
    assert [s for s in segments if s.startswith("AK9")] == ["AK9*R*1*1*0"]
    assert "AK2*271*0001*005010X279A1" in segments


def test_999_for_a_missing_segment_uses_ik3_code_3() -> None:
    result = validate_x12(interchange(without("LS*2120")), want_ack=True)

    assert result.ack is not None
    assert "IK3*LS*26**3" in ack_segments(result.ack)


def test_999_for_a_clean_270_accepts() -> None:
    result = validate_x12(interchange(SUBSCRIBER_270, functional_id="HS"), want_ack=True)

    assert result.ack is not None
    segments = ack_segments(result.ack)
    assert "AK1*HS*1*005010X279A1" in segments
    assert "IK5*A" in segments
    assert "AK9*A*1*1*1" in segments
    assert not any(s.startswith(("IK3", "IK4")) for s in segments)


def test_no_999_unless_asked() -> None:
    assert validate_x12(interchange(SUBSCRIBER_271)).ack is None


# --- policy ---------------------------------------------------------------------------------------

WARNING = Finding("warning", "HL", 8, "2000B", "HL04", "I12", "HL 2 says subordinate HLs follow (HL04 1) but none does")
ERROR = Finding("error", "EB", 19, "2110C", "EB06", "7", "(99) is not a valid code for Time Period Qualifier (EB06)")


def test_off_records_nothing() -> None:
    assert apply_policy(ValidationResult((ERROR, WARNING)), "off", "incoming") == ()


def test_warn_records_every_finding_and_never_raises() -> None:
    assert apply_policy(ValidationResult((ERROR, WARNING)), "warn", "outgoing") == (ERROR, WARNING)


@pytest.mark.parametrize(("direction", "what"), [("outgoing", "the 270 we built"), ("incoming", "the 271 received")])
def test_strict_raises_with_the_findings(direction: str, what: str) -> None:
    with pytest.raises(X12ValidationFailed) as raised:
        apply_policy(ValidationResult((ERROR, WARNING)), "strict", direction)  # type: ignore[arg-type]

    error = raised.value
    assert error.code == "x12.validation_failed"
    assert error.message.startswith(f"segment 19 (EB): {what} fails 005010X279A1 validation with 1 error(s)")
    assert error.details["findings"] == [ERROR.to_dict(), WARNING.to_dict()]
    assert error.details["direction"] == direction


def test_strict_lets_warnings_through() -> None:
    assert apply_policy(ValidationResult((WARNING,)), "strict", "incoming") == (WARNING,)


def test_counts() -> None:
    result = ValidationResult((ERROR, WARNING, WARNING))

    assert (result.error_count, result.warning_count, result.ok) == (1, 2, False)


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_prints_findings_writes_the_999_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "broken.271"
    source.write_text(interchange(replace("EB*C*IND*30*PR**23*1000*****Y", "EB*C*IND*30*PR**99*1000*****Y")))
    ack = tmp_path / "999.txt"

    assert validate_command(source, ack) == 1

    err = capsys.readouterr().err
    assert "error [7] segment 19 EB (2110C) EB06: (99) is not a valid code for Time Period Qualifier (EB06)" in err
    assert "1 error(s), 0 warning(s)" in err
    assert "IK5*R*5~" in ack.read_text()


def test_cli_on_a_clean_file_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "clean.270"
    source.write_text(interchange(SUBSCRIBER_270, functional_id="HS"))

    assert validate_command(source, None) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().err


def test_cli_reports_a_refused_file_with_its_error_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "old.271"
    source.write_text(interchange(SUBSCRIBER_271).replace("005010X279A1", "004010X092A1"))

    assert validate_command(source, None) == 1
    assert capsys.readouterr().err.startswith("x12.unsupported_version: ")


def test_cli_reports_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_command(tmp_path / "missing.271", None) == 2
    assert "cannot read" in capsys.readouterr().err


# --- maps -----------------------------------------------------------------------------------------


def pyx12_dictionary() -> dict[str, tuple[str, int, int]]:
    root = SafeXml.parse(Path(pyx12.map_index.__file__).parent / "map" / "dataele.xml").getroot()
    return {e.get("ele_num"): (e.get("data_type"), int(e.get("min_len")), int(e.get("max_len"))) for e in root}


@pytest.mark.parametrize("name", ["270.5010.X279.A1.xml", "271.5010.X279.A1.xml"])
def test_map_element_types_agree_with_the_dictionary_pyx12_enforces(name: str) -> None:
    dictionary = pyx12_dictionary()
    elements = list(SafeXml.parse(MAP_DIR / name).getroot().iter("element"))

    assert len(elements) > 300
    for element in elements:
        declared = (element.get("data_type"), int(element.get("min_len")), int(element.get("max_len")))
        assert dictionary[element.get("data_ele")] == declared, element.get("xid")


def test_maps_xml_names_our_two_maps_for_pyx12() -> None:
    index = pyx12.map_index.map_index(str(MAP_DIR))

    assert index.get_filename("00501", "005010X279A1", "HS") == map_file_for("270") == "270.5010.X279.A1.xml"
    assert index.get_filename("00501", "005010X279A1", "HB") == map_file_for("271") == "271.5010.X279.A1.xml"


def test_maps_are_parsed_once_per_process() -> None:
    load_map(map_file_for("271"))
    before = load_map.cache_info()

    for _ in range(3):
        _validate_slow(interchange(SUBSCRIBER_271))  # the pyx12 walk (a clean 271 skips it in validate_x12)

    after = load_map.cache_info()
    assert after.misses == before.misses
    assert after.hits > before.hits


def test_the_maps_also_work_in_pyx12s_own_pipeline(tmp_path: Path) -> None:
    # pyx12's map_path wants every file in one folder: our maps and index, its control map and
    # dictionaries.  Stock pyx12 does not split repetitions, so the document avoids them.
    package_maps = Path(pyx12.map_index.__file__).parent / "map"
    for name in ("x12.control.00501.xml", "codes.xml", "dataele.xml"):
        shutil.copy(package_maps / name, tmp_path / name)
    for path in MAP_DIR.glob("*.xml"):
        shutil.copy(path, tmp_path / path.name)
    source = tmp_path / "rejected.271"
    source.write_text(interchange(REJECTED_271))
    broken = tmp_path / "broken.271"
    broken.write_text(interchange(replace("AAA*Y**72*C", "AAA*Y**72*Q", REJECTED_271)))

    params = pyx12.params.ParamsBase()
    assert pyx12.x12n_document.x12n_document(params, str(source), None, None, map_path=str(tmp_path))
    assert not pyx12.x12n_document.x12n_document(params, str(broken), None, None, map_path=str(tmp_path))


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pyx12_does_not_log_patient_data_through_our_loggers() -> None:
    # pyx12 logs each finding with the bad value; what reaches the root logger reaches our logs.
    # (caplog cannot tell: pytest also attaches its handler to non-propagating loggers.)
    document = interchange(replace("NM1*IL*1*DOE*JANE*Q***MI*W123456789", f"NM1*IL*1*{'ZEBULON' * 9}*JANE"))
    root, handler = logging.getLogger(), Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        assert not validate_x12(document).ok
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    assert not [message for message in handler.messages if "ZEBULON" in message]


# --- the builder ----------------------------------------------------------------------------------

BUILDER_ENVELOPE = Envelope("ELIGSVC", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 11, 11, 11, datetime(2024, 5, 15, 8, 5))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests(), text(20))
def test_every_270_the_builder_writes_validates_without_errors(request: EligibilityRequest, trace: str) -> None:
    try:
        check_inquiry(request, today=TODAY)
    except InquiryInvalid:
        return  # refused before building: nothing is sent
    document = build_270(request, BUILDER_ENVELOPE, trace)

    result = validate_x12(document)

    assert [f.to_dict() for f in result.errors] == [], document
