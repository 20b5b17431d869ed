"""The 271 parser on small inline transactions, and parse → render round trips.

Each sample is written here by hand; the expected values are read off the sample text.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eligibility_svc import errors
from eligibility_svc.x12 import parse271
from eligibility_svc.x12.loops271 import (
    Bht,
    Eb,
    Hl,
    Loop2000A,
    Loop2000B,
    Loop2000C,
    Loop2100A,
    Loop2100B,
    Loop2110C,
    Loop2115C,
    Loop2120C,
    Nm1,
    Transaction271,
)
from eligibility_svc.x12.parse271 import parse_271, parse_transaction
from eligibility_svc.x12.reader import Delimiters, read_interchange
from eligibility_svc.x12.render import (
    EnvelopeValues,
    envelope_of,
    interchange_segments,
    isa_elements,
    render_interchange,
    render_isa,
    render_segments,
    render_transaction,
)

ISA = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *240102*1200*^*00501*000000007*0*T*:~"
GS = "GS*HB*PAYER*PRACTICE*20240102*1200*7*X*005010X279A1~"

SOURCE = "HL*1**20*1~NM1*PR*2*ACME HEALTH*****PI*12345~"
RECEIVER = "HL*2*1*21*1~NM1*1P*2*GOOD CLINIC*****XX*1234567893~"
SUBSCRIBER = "HL*3*2*22*0~TRN*2*TRACE-1*9876543210~NM1*IL*1*DOE*JOHN****MI*W123~"


def st(body: str, control: str = "0001", version: str = "005010X279A1") -> str:
    """ST, BHT, ``body`` and a correct SE around it."""
    text = f"ST*271*{control}*{version}~BHT*0022*11*REQ1*20240102*1200~{body}"
    return f"{text}SE*{text.count('~') + 1}*{control}~"


def interchange(*transactions: str, isa: str = ISA, gs: str = GS) -> str:
    return isa + gs + "".join(transactions) + f"GE*{len(transactions)}*7~IEA*1*000000007~"


def one(body: str, **kwargs: str) -> Transaction271:
    (transaction,) = parse_271(interchange(st(body), **kwargs))
    return transaction


def subscriber_loop(tx: Transaction271, index: int = 0) -> Loop2000C:
    return tx.sources[0].receivers[0].subscribers[index]


# --- loop placement ----------------------------------------------------------------------------------


def test_header_and_hierarchy() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "EB*1**30~")
    assert tx.control_number == "0001"
    assert tx.implementation == "005010X279A1"
    assert tx.header == Bht("0022", "11", "REQ1", date(2024, 1, 2), "1200", "20240102")
    source = tx.sources[0]
    assert source.hl == Hl("1", "", "20", "1", 5)
    assert source.source.name is not None
    assert (source.source.name.entity_id, source.source.name.id) == ("PR", "12345")
    receiver = source.receivers[0]
    assert receiver.receiver.name is not None
    assert receiver.receiver.name.id_qualifier == "XX"
    member = receiver.subscribers[0].subscriber
    assert member.name is not None
    assert (member.name.last_or_org, member.name.first, member.name.id) == ("DOE", "JOHN", "W123")
    assert tx.segment_count == 11
    assert tx.warnings == []


def test_aaa_at_every_level() -> None:
    body = (
        "HL*1**20*1~AAA*Y**42*R~NM1*PR*2*ACME~AAA*Y**79*P~"
        "HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1~AAA*N**43*C~"
        "HL*3*2*22*1~NM1*IL*1*DOE*JOHN~AAA*N**72*C~EB*1**30~AAA*N**53*C~"
        "HL*4*3*23*0~NM1*03*1*DOE*JANE~AAA*N**73*C~EB*6**30~AAA*Y**57*N~"
    )
    tx = one(body)
    source = tx.sources[0]
    sub = subscriber_loop(tx)
    dep = sub.dependents[0].dependent
    placed = {
        "2000A": source.errors,
        "2100A": source.source.errors,
        "2100B": source.receivers[0].receiver.errors,
        "2100C": sub.subscriber.errors,
        "2110C": sub.subscriber.benefits[0].errors,
        "2100D": dep.errors,
        "2110D": dep.benefits[0].errors,
    }
    reasons = {"2000A": "42", "2100A": "79", "2100B": "43", "2100C": "72", "2110C": "53", "2100D": "73", "2110D": "57"}
    for loop, found in placed.items():
        assert [(a.loop, a.reason) for a in found] == [(loop, reasons[loop])]
    assert (source.errors[0].valid, source.errors[0].follow_up, source.errors[0].position) == ("Y", "R", 6)
    assert tx.warnings == []


def test_iii_goes_to_2115c_of_its_eb() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "EB*B**98***27*25~EB*B**98***27*40~III*ZZ*11~III***44*BROKEN ARM~")
    first, second = subscriber_loop(tx).subscriber.benefits
    assert first.additional_info == []
    assert [type(a) for a in second.additional_info] == [Loop2115C, Loop2115C]
    place, injury = (a.info for a in second.additional_info)
    assert (place.qualifier, place.code) == ("ZZ", "11")
    assert (injury.category, injury.text) == ("44", "BROKEN ARM")


def test_ls_le_2120c_with_address_contact_and_provider() -> None:
    body = (
        SOURCE + RECEIVER + SUBSCRIBER + "EB*L~LS*2120~NM1*P3*1*SMITH*JANE****XX*1234567893~N3*9 DOCTOR RD~"
        "N4*TOWN*NY*10001~PER*IC*OFFICE*TE*5551234567*FX*5557654321~PRV*PC*PXC*207Q00000X~"
        "NM1*PR*2*OTHER PAYER~LE*2120~EB*1**30~"
    )
    tx = one(body)
    pcp_row, plan_row = subscriber_loop(tx).subscriber.benefits
    assert plan_row.related_entities == []
    pcp, other = pcp_row.related_entities
    assert isinstance(pcp, Loop2120C)
    assert (pcp.name.entity_id, pcp.name.last_or_org, pcp.name.id) == ("P3", "SMITH", "1234567893")
    assert pcp.address is not None
    assert (pcp.address.line1, pcp.address.city, pcp.address.state, pcp.address.postal_code) == (
        "9 DOCTOR RD",
        "TOWN",
        "NY",
        "10001",
    )
    assert [(c.function, c.name, c.numbers) for c in pcp.contacts] == [
        ("IC", "OFFICE", [("TE", "5551234567"), ("FX", "5557654321")])
    ]
    assert pcp.provider is not None
    assert pcp.provider.code == "PC"
    assert (other.name.last_or_org, other.address, other.contacts) == ("OTHER PAYER", None, [])
    assert tx.warnings == []


def test_dependent_benefits_are_2110d() -> None:
    body = (
        SOURCE + RECEIVER + "HL*3*2*22*1~NM1*IL*1*DOE*JOHN****MI*W123~"
        "HL*4*3*23*0~TRN*2*DEP-TRACE*9876543210~NM1*03*1*DOE*JANE~DMG*D8*20100315*F~INS*N*19~"
        "EB*1**30**GOLD~EB*B**33***27*40~MSG*CHIROPRACTIC COPAY~LS*2120~NM1*P3*1*SMITH~LE*2120~"
    )
    tx = one(body)
    sub = subscriber_loop(tx)
    assert sub.traces == []
    assert sub.subscriber.benefits == []
    dependent = sub.dependents[0]
    assert [t.reference for t in dependent.traces] == ["DEP-TRACE"]
    member = dependent.dependent
    assert member.demographics is not None
    assert member.demographics.birth_date == date(2010, 3, 15)
    assert member.relationship is not None
    assert member.relationship.relationship == "19"
    assert [type(row).__name__ for row in member.benefits] == ["Loop2110D", "Loop2110D"]
    copay = member.benefits[1]
    assert [m.text for m in copay.messages] == ["CHIROPRACTIC COPAY"]
    assert type(copay.related_entities[0]).__name__ == "Loop2120D"


def test_several_subscribers_in_one_271() -> None:
    body = (
        SOURCE + RECEIVER + "HL*3*2*22*0~TRN*2*T-1*9876543210~NM1*IL*1*DOE*JOHN~EB*1**30~"
        "HL*4*2*22*0~TRN*2*T-2*9876543210~NM1*IL*1*ROE*RITA~EB*6**30~EB*1**88~"
    )
    tx = one(body)
    subscribers = tx.sources[0].receivers[0].subscribers
    assert [s.hl.id for s in subscribers] == ["3", "4"]
    assert [s.traces[0].reference for s in subscribers] == ["T-1", "T-2"]
    assert [[row.eb.info for row in s.subscriber.benefits] for s in subscribers] == [["1"], ["6", "1"]]


def test_trn_echo_and_clearinghouse_trace() -> None:
    tx = one(SOURCE + RECEIVER + "HL*3*2*22*0~TRN*2*OUR-TRACE*9876543210~TRN*1*CH-9*1999999999*CLEARING~NM1*IL*1*X~")
    traces = subscriber_loop(tx).traces
    assert [(t.type, t.reference, t.originator, t.supplemental) for t in traces] == [
        ("2", "OUR-TRACE", "9876543210", ""),
        ("1", "CH-9", "1999999999", "CLEARING"),
    ]
    assert [t.position for t in traces] == [10, 11]


def test_dates_d8_rd8_and_bad_ones() -> None:
    body = (
        SOURCE + RECEIVER + SUBSCRIBER + "DTP*346*D8*20240101~DTP*291*RD8*20240101-20241231~"
        "DTP*307*D8*20240231~DTP*356*RD8*20241231-20240101~DMG*D8*19800101*M~EB*1**30~DTP*292*RD8*2024~"
    )
    tx = one(body)
    member = subscriber_loop(tx).subscriber
    plan_begin, plan, bad, backwards = member.dates
    assert (plan_begin.start, plan_begin.end) == (date(2024, 1, 1), date(2024, 1, 1))
    assert (plan.format, plan.start, plan.end) == ("RD8", date(2024, 1, 1), date(2024, 12, 31))
    assert (bad.value, bad.start, bad.end) == ("20240231", None, None)
    assert (backwards.start, backwards.end) == (date(2024, 12, 31), date(2024, 1, 1))
    row_date = member.benefits[0].dates[0]
    assert (row_date.qualifier, row_date.value, row_date.start) == ("292", "2024", None)
    # Positions: ISA 1, GS 2, ST 3, BHT 4, HL NM1 HL NM1 HL TRN NM1 5-11, the DTPs 12-15, DMG 16, EB 17.
    assert tx.warnings == [
        "segment 14 (DTP): '20240231' is not a valid D8 date; kept as sent",
        "segment 15 (DTP): the range '20241231-20240101' ends before it starts",
        "segment 18 (DTP): '2024' is not a valid RD8 date; kept as sent",
    ]


def test_eb_values_are_typed() -> None:
    body = SOURCE + RECEIVER + SUBSCRIBER + "EB*C*IND*30^98*PR*GOLD*29*500.25*.2*VS*12.5*Y*W*HC:99213:25:59*1:3~"
    eb = subscriber_loop(one(body)).subscriber.benefits[0].eb
    assert eb == Eb(
        "C",
        "IND",
        ["30", "98"],
        "PR",
        "GOLD",
        "29",
        Decimal("500.25"),
        Decimal("0.2"),
        "VS",
        Decimal("12.5"),
        "Y",
        "W",
        eb.procedure,
        ["1", "3"],
        12,  # ISA, GS, ST, BHT, HL, NM1, HL, NM1, HL, TRN, NM1, EB
    )
    assert eb.procedure is not None
    assert (eb.procedure.qualifier, eb.procedure.code, eb.procedure.modifiers) == ("HC", "99213", ["25", "59"])


def test_eb13_composite_when_repetition_and_component_separators_are_equal() -> None:
    isa = ISA.replace("*^*00501*", "*^*00501*").replace("*T*:~", "*T*^~")
    body = SOURCE + RECEIVER + SUBSCRIBER + "EB*B*IND*98^UC***27*25*****Y*HC^99213^^26~"
    eb = subscriber_loop(one(body, isa=isa)).subscriber.benefits[0].eb
    assert eb.service_types == ["98", "UC"]
    assert eb.procedure is not None
    assert (eb.procedure.qualifier, eb.procedure.code, eb.procedure.modifiers) == ("HC", "99213", ["", "26"])


def test_hsd_ref_msg_belong_to_the_eb_before_them() -> None:
    body = (
        SOURCE + RECEIVER + SUBSCRIBER + "REF*6P*GRP1*ACME CORP~EB*F*IND*AD****27**VS*20~HSD*VS*20*DA**22*1~"
        "REF*18*PLAN-9~MSG*LIMIT 20 VISITS~"
    )
    member = subscriber_loop(one(body)).subscriber
    assert [(r.qualifier, r.value, r.description) for r in member.refs] == [("6P", "GRP1", "ACME CORP")]
    row = member.benefits[0]
    assert [r.value for r in row.refs] == ["PLAN-9"]
    hsd = row.delivery[0]
    assert (hsd.quantity_qualifier, hsd.quantity, hsd.unit, hsd.time_period, hsd.period_count) == (
        "VS",
        Decimal(20),
        "DA",
        "22",
        Decimal(1),
    )
    assert row.messages[0].text == "LIMIT 20 VISITS"


def test_several_transactions_in_one_interchange() -> None:
    second = st(SOURCE + RECEIVER + "HL*3*2*22*0~NM1*IL*1*ROE~EB*6~", control="0002")
    transactions = parse_271(interchange(st(SOURCE), second))
    assert [t.control_number for t in transactions] == ["0001", "0002"]
    assert [len(t.sources[0].receivers) for t in transactions] == [0, 1]


# --- tolerance: placed, with a warning ----------------------------------------------------------------


def test_hl_parent_pointing_nowhere_attaches_to_the_latest_receiver() -> None:
    tx = one(SOURCE + RECEIVER + "HL*3*9*22*0~NM1*IL*1*DOE~EB*1**30~")
    assert len(subscriber_loop(tx).subscriber.benefits) == 1
    assert tx.warnings == ["segment 9 (HL): parent HL '9' of 2000C HL '3' does not exist; attached to HL '2'"]


def test_lowercase_segment_id_is_read_with_a_warning() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "eb*1**30~")
    assert subscriber_loop(tx).subscriber.benefits[0].eb.info == "1"
    assert tx.warnings == ["segment 12 (eb): segment ID 'eb' is not upper case; read as EB"]


def test_nm1_in_2110_without_ls_becomes_an_entity() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "EB*L~NM1*P3*1*SMITH~PER*IC**TE*5551234567~")
    entity = subscriber_loop(tx).subscriber.benefits[0].related_entities[0]
    assert (entity.name.last_or_org, entity.contacts[0].numbers) == ("SMITH", [("TE", "5551234567")])
    assert tx.warnings == [
        "segment 13 (NM1): NM1 after an EB without LS; read as a 2120C benefit related entity",
    ]


def test_ls_without_le_and_le_without_ls() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "EB*L~LS*2120~NM1*P3*1*SMITH~EB*1**30~LE*2120~")
    assert len(subscriber_loop(tx).subscriber.benefits[0].related_entities) == 1
    assert tx.warnings == [
        "segment 12 (EB): LS without a closing LE in this 2110C",
        "segment 16 (LE): LE without an open LS",
    ]


def test_missing_bht_and_version_without_a1() -> None:
    text = "ST*271*0001*005010X279~" + SOURCE + "SE*4*0001~"
    (tx,) = parse_271(interchange(text))
    assert tx.header == Bht("", "", "", None)
    assert "segment 3 (ST): version '005010X279' read as 005010X279A1" in tx.warnings
    assert "segment 3 (ST): no BHT follows the ST; the header is empty" in tx.warnings


def test_extra_elements_and_aaa02_are_reported() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "AAA*N*X*72*C~REF*SY*123*DESC*EXTRA~")
    assert tx.warnings == [
        "segment 12 (AAA): AAA02 'X' is not used in a 271 and was dropped",
        "segment 13 (REF): elements after REF03 are not used in a 271 and were dropped",
    ]


# --- what cannot be placed raises -------------------------------------------------------------------------


def test_eb_before_any_subscriber_level() -> None:
    with pytest.raises(errors.X12StructureError) as caught:
        one(SOURCE + RECEIVER + "EB*1**30~")
    error = caught.value
    assert (error.code, error.position, error.segment_id) == ("x12.structure", 9, "EB")
    assert error.expected is not None
    assert "HL*..*22" in error.expected
    assert error.message.startswith("segment 9 (EB): ")


def test_non_numeric_amount_is_a_syntax_error() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        one(SOURCE + RECEIVER + SUBSCRIBER + "EB*B**98***27*$25~")
    error = caught.value
    assert (error.code, error.position, error.segment_id) == ("x12.syntax", 12, "EB")
    assert "EB07 is '$25', not a number" in error.message
    assert error.expected == "a decimal number in EB07"


@pytest.mark.parametrize("amount", ["1E3", "NaN", " 25", "1_000", "--1", "Infinity"])
def test_amounts_decimal_would_accept_but_x12_does_not(amount: str) -> None:
    with pytest.raises(errors.X12SyntaxError):
        one(SOURCE + RECEIVER + SUBSCRIBER + f"EB*C**30***23*{amount}~")


def test_segment_that_cannot_occur_in_a_271() -> None:
    with pytest.raises(errors.X12StructureError) as caught:
        one(SOURCE + RECEIVER + SUBSCRIBER + "EQ*30~")
    assert (caught.value.position, caught.value.segment_id) == (12, "EQ")
    assert "cannot occur inside a 271" in caught.value.message


@pytest.mark.parametrize(
    ("body", "segment_id"),
    [
        (SOURCE + "HL*2*1*21*1~NM1*1P*2*A~NM1*1P*2*B~", "NM1"),
        (SOURCE + RECEIVER + SUBSCRIBER + "DMG*D8*19800101~DMG*D8*19800102~", "DMG"),
        (SOURCE + RECEIVER + SUBSCRIBER + "EB*1~N3*1 MAIN ST~", "N3"),
        (SOURCE + "DTP*346*D8*20240101~", "DTP"),
        (SOURCE + RECEIVER + "PER*IC**TE*1~", "PER"),
        ("TRN*2*X*Y~" + SOURCE, "TRN"),
        ("HL*1**24*1~", "HL"),
        ("HL*2**21*1~NM1*1P*2*A~", "HL"),
        (SOURCE + RECEIVER + SUBSCRIBER + "MSG*TEXT~", "MSG"),
        (SOURCE + RECEIVER + SUBSCRIBER + "BHT*0022*11~", "BHT"),
    ],
)
def test_segments_with_no_loop_to_go_to(body: str, segment_id: str) -> None:
    with pytest.raises(errors.X12StructureError) as caught:
        one(body)
    assert caught.value.segment_id == segment_id
    assert caught.value.expected
    assert f"({segment_id})" in caught.value.message


def test_a_270_is_the_wrong_transaction() -> None:
    text = interchange("ST*270*0001*005010X279A1~BHT*0022*13*REQ*20240102*1200~SE*3*0001~")
    with pytest.raises(errors.X12WrongTransaction) as caught:
        parse_271(text)
    assert caught.value.code == "x12.wrong_transaction"
    assert "270 (eligibility inquiry)" in caught.value.message
    assert caught.value.expected == "ST*271"


def test_4010_is_refused_naming_the_version() -> None:
    with pytest.raises(errors.X12UnsupportedVersion) as caught:
        parse_271(interchange(st(SOURCE, version="004010X092A1")))
    assert "'004010X092A1'" in caught.value.message
    assert "only 005010X279A1" in caught.value.message


def test_st03_wins_over_gs08() -> None:
    tx = one("HL*1**20*0~NM1*PR*2*ACME~", gs=GS.replace("005010X279A1", "004010X092A1"))
    assert tx.implementation == "005010X279A1"
    assert tx.warnings == [
        "segment 3 (ST): GS08 says '004010X092A1' but ST03 says '005010X279A1'; read as ST03",
    ]


def test_parse_transaction_takes_a_reader_transaction() -> None:
    read = read_interchange(interchange(st(SOURCE)))
    assert parse_transaction(read.transactions[0]).sources[0].source.name is not None


# --- parse → render round trips ----------------------------------------------------------------------

CANONICAL_BODY = (
    "HL*1**20*1~NM1*PR*2*ACME HEALTH*****PI*12345~PER*IC*PROVIDER SERVICES*TE*8005551212*UR*www.acme.example~"
    "HL*2*1*21*1~NM1*1P*2*GOOD CLINIC*****XX*1234567893~REF*TJ*123456789~N3*1 CLINIC WAY~N4*TOWN*NY*10001~"
    "PRV*PE*PXC*207Q00000X~"
    "HL*3*2*22*1~TRN*2*TRACE-1*9876543210~TRN*1*CH-555*1999999999*CLEARING~NM1*IL*1*DOE*JOHN*Q**JR*MI*W123456789~"
    "REF*6P*GRP001*ACME CORP~N3*5 MAIN ST*APT 2~N4*TOWN*NY*100011234**CY*85~DMG*D8*19800101*M~INS*Y*18*001*25~"
    "HI*ABK:E119*ABF:I10~DTP*346*D8*20240101~DTP*291*RD8*20240101-20241231~MPI*C*AO*A*ARMY*E5*RD8*20000101-20201231~"
    "EB*1*FAM*30*PR*GOLD PPO~REF*18*PLAN-9~DTP*291*RD8*20240101-20241231~"
    "EB*C*IND*30***23*1500*****Y~EB*C*IND*30***29*500.25*****Y~MSG*DEDUCTIBLE REMAINING AS OF TODAY~"
    "EB*A*IND*98****.2****N~EB*B*IND*98^UC***27*25*****Y*HC:99213:25~HSD*VS*20*VS**22~III*ZZ*11~"
    "EB*F*IND*AD****27**VS*20***Y~HSD*VS*20***22~AAA*N**70*C~EB*B*IND*86***27*150*******1:2~"
    "EB*L~LS*2120~NM1*P3*1*SMITH*JANE****XX*1234567893~N3*9 DOCTOR RD~N4*TOWN*NY*10001~PER*IC**TE*5551234567~"
    "PRV*PC*PXC*207Q00000X~LE*2120~"
    "HL*4*3*23*0~TRN*2*TRACE-2*9876543210~NM1*03*1*DOE*JANE~AAA*Y**35*N~DMG*D8*20100315*F~"
    "INS*N*19*001*25*************1~EB*1**30**GOLD PPO~EB*B*IND*33***27*40*****Y~III*ZZ*22~"
)
REJECTION_BODY = (
    "HL*1**20*1~AAA*Y**42*R~NM1*PR*2*ACME HEALTH*****PI*12345~AAA*Y**79*P~AAA*N**80*Y~"
    "HL*5*1*21*0~NM1*1P*1*HOUSE*GREGORY*M*DR*MD*XX*1234567893~AAA*N**43*C~"
)


@pytest.mark.parametrize("body", [CANONICAL_BODY, REJECTION_BODY], ids=["benefits", "rejection"])
def test_canonical_transaction_renders_back_byte_for_byte(body: str) -> None:
    text = st(body)
    (tx,) = parse_271(interchange(text))
    assert tx.warnings == []
    assert render_transaction(tx, Delimiters("*", ":", "~", "^")) == text


def test_canonical_interchange_renders_back_byte_for_byte() -> None:
    text = interchange(st(CANONICAL_BODY), st(REJECTION_BODY, control="0002"))
    read = read_interchange(text)
    assert render_interchange(parse_271(text), envelope_of(read), read.delimiters) == text


def test_round_trip_with_other_delimiters_and_line_ends() -> None:
    """'|' elements, '>' components, '!' repetition, newline after each '~'."""
    text = interchange(st(CANONICAL_BODY)).replace("*", "|").replace(":", ">").replace("^", "!")
    text = text.replace("~", "~\n")[:-1]
    read = read_interchange(text)
    assert read.delimiters == Delimiters("|", ">", "~", "!")
    rendered = render_interchange(parse_271(text), envelope_of(read), read.delimiters, line_end="\n")
    assert rendered == text


def test_round_trip_with_equal_repetition_and_component_separators() -> None:
    isa = ISA.replace("*T*:~", "*T*^~")
    text = interchange(st(CANONICAL_BODY.replace(":", "^")), isa=isa)
    read = read_interchange(text)
    assert render_interchange(parse_271(text), envelope_of(read), read.delimiters) == text


# --- rendering helpers --------------------------------------------------------------------------------

ENVELOPE = EnvelopeValues(
    sender_id="PAYER",
    receiver_id="PRACTICE",
    control_number=7,
    group_control_number=7,
    date="20240102",
    time="1200",
    usage="T",
)


def test_isa_is_106_characters_with_padded_fields() -> None:
    delimiters = Delimiters("*", ":", "~", "^")
    assert render_isa(ENVELOPE, delimiters) == ISA
    assert len(render_isa(ENVELOPE, delimiters)) == 106
    fields = isa_elements(ENVELOPE, Delimiters("|", ">", "\n", None))
    assert fields[6] == "PAYER          "
    assert (fields[11], fields[13], fields[16]) == ("U", "000000007", ">")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sender_id": "S" * 16}, "ISA06"),
        ({"sender_id": "A*B"}, "ISA06"),
        ({"date": "240102"}, "ISA09"),
        ({"time": "12:0"}, "ISA10"),
        ({"control_number": 1_000_000_000}, "ISA13"),
    ],
)
def test_isa_values_that_do_not_fit_raise(change: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        render_isa(replace(ENVELOPE, **change), Delimiters("*", ":", "~", "^"))
    assert field in caught.value.message


def test_render_segments_drops_trailing_empties_and_refuses_delimiters() -> None:
    delimiters = Delimiters("*", ":", "~", "^")
    assert render_segments([["NM1", "PR", "2", "ACME", "", ""], ["LE", "2120"]], delimiters) == "NM1*PR*2*ACME~LE*2120~"
    assert render_segments([["LS", "2120"], ["LE", "2120"]], delimiters, line_end="\r\n") == "LS*2120~\r\nLE*2120~"
    with pytest.raises(errors.X12SyntaxError) as caught:
        render_segments([["MSG", "SEE ~ BELOW"]], delimiters)
    assert (caught.value.position, caught.value.segment_id) == (1, "MSG")


def test_render_refuses_component_separator_in_a_simple_value() -> None:
    tx = Transaction271("0001", "005010X279A1", Bht("0022", "11", "A:B", date(2024, 1, 2), "1200"))
    with pytest.raises(errors.X12SyntaxError) as caught:
        render_transaction(tx, Delimiters("*", ":", "~", "^"))
    assert "BHT03 'A:B'" in caught.value.message


def test_render_refuses_repeats_without_a_repetition_separator() -> None:
    tx = one(SOURCE + RECEIVER + SUBSCRIBER + "EB*1**30^98~")
    with pytest.raises(errors.X12SyntaxError):
        render_transaction(tx, Delimiters("*", ":", "~", None))


def test_a_transaction_built_in_code_renders_with_counted_se() -> None:
    """What the sandbox clearinghouse does: build the loops, render, and read it back."""
    source = Loop2000A(Hl("1", "", "20", "1"), source=Loop2100A(Nm1("PR", "2", "ACME", id_qualifier="PI", id="1")))
    receiver = Loop2000B(Hl("2", "1", "21", "1"), receiver=Loop2100B(Nm1("1P", "2", "CLINIC")))
    subscriber = Loop2000C(Hl("3", "2", "22", "0"))
    subscriber.subscriber.name = Nm1("IL", "1", "DOE", "JOHN")
    subscriber.subscriber.benefits.append(Loop2110C(Eb("1", service_types=["30"])))
    receiver.subscribers.append(subscriber)
    source.receivers.append(receiver)
    tx = Transaction271("0042", "005010X279A1", Bht("0022", "11", "REQ", date(2024, 1, 2), "1200"), [source])
    body = render_transaction(tx, Delimiters("*", ":", "~", "^"))
    assert body == (
        "ST*271*0042*005010X279A1~BHT*0022*11*REQ*20240102*1200~HL*1**20*1~NM1*PR*2*ACME*****PI*1~"
        "HL*2*1*21*1~NM1*1P*2*CLINIC~HL*3*2*22*0~NM1*IL*1*DOE*JOHN~EB*1**30~SE*10*0042~"
    )
    segments = interchange_segments([[s.split("*") for s in body.split("~")[:-1]]], ENVELOPE, Delimiters("*", ":", "~"))
    assert [s[0] for s in segments] == [
        "ISA",
        "GS",
        "ST",
        "BHT",
        "HL",
        "NM1",
        "HL",
        "NM1",
        "HL",
        "NM1",
        "EB",
        "SE",
        "GE",
        "IEA",
    ]
    assert segments[-2:] == [["GE", "1", "7"], ["IEA", "1", "000000007"]]


def test_the_written_out_dispatch_is_the_handler_table() -> None:
    """``_handled`` writes the commonest IDs out (direct calls when compiled): each to its handler in
    ``_HANDLERS``, each once.  Read from the source, which the compiled module lacks."""
    source = Path(__file__).resolve().parent.parent / "eligibility_svc" / "x12" / "parse271.py"
    function = next(
        node
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "_handled"
    )
    written: list[tuple[str, str]] = []
    for node in ast.walk(function):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "sid":
            sid, call = test.comparators[0], node.body[0]
            assert isinstance(sid, ast.Constant)
            assert isinstance(call, ast.Expr)
            assert isinstance(call.value, ast.Call)
            assert isinstance(call.value.func, ast.Name)
            written.append((sid.value, call.value.func.id))
    assert len(written) >= 5
    assert len(written) == len(dict(written))
    table = {sid: handler.__name__ for sid, handler in parse271._HANDLERS.items()}
    assert {sid: table.get(sid) for sid, _ in written} == dict(written)
