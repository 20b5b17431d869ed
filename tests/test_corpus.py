"""Every public 271 in ``../shared/corpus/271``: 5010 ones parse, 4010 ones are refused by version.

The expected numbers below were counted by reading each file (``cat -A``), not by running the
parser: subscribers (HL 22), dependents (HL 23), EB rows, every AAA with the loop it sits in,
and the TRN values.  A file added to the corpus without an entry here fails
``test_every_corpus_file_is_covered``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from eligibility_svc import errors
from eligibility_svc.x12.loops271 import Aaa, Loop2000C, Loop2000D, Loop2110, Transaction271
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import read_interchange
from eligibility_svc.x12.render import envelope_of, render_interchange, transaction_segments

# Repeated TR3 example values.
TR3_TRACE = ("2", "93175-012547", "9877281234")


@dataclass(frozen=True)
class Expected:
    subscribers: int
    dependents: int
    eb_rows: int
    aaa: tuple[tuple[str, str, str, str], ...] = ()  # (loop, AAA01, AAA03, AAA04) in file order
    traces: tuple[tuple[str, str, str], ...] = ()  # (TRN01, TRN02, TRN03) in file order
    warnings: tuple[str, ...] = ()  # fragments that must appear among the warnings
    se_count: int | None = None  # the real ST..SE count when SE01 is wrong


WRONG_SE = "SE01 says '22'"
NO_A1 = "version '005010X279' read as 005010X279A1"
GS_XX = "GS01 is 'XX'"

EXPECTED_5010: dict[str, Expected] = {
    "EdiFabric-X12.NET__GenericResponse.txt": Expected(1, 0, 5, traces=(TR3_TRACE,), warnings=("GS01 is 'HC'",)),
    "Inteligenz-X12Parser__Example_3_1_3.txt": Expected(
        0, 0, 0, aaa=(("2100B", "Y", "50", "N"),), warnings=(NO_A1, GS_XX, "HL '2' says it has children")
    ),
    "Inteligenz-X12Parser__Example_3_2_2.txt": Expected(
        1, 1, 5, traces=(TR3_TRACE,), warnings=(NO_A1, GS_XX, "HL '4' says it has children")
    ),
    "Inteligenz-X12Parser__Example_ErrorWithoutBenefitInfo.txt": Expected(
        1,
        0,
        0,
        aaa=(
            ("2000A", "N", "80", "P"),
            ("2000A", "Y", "79", "N"),
            ("2100A", "Y", "79", "N"),
            ("2100A", "N", "80", "P"),
            ("2100B", "Y", "41", "C"),
            ("2100B", "N", "41", "C"),
            ("2100C", "Y", "42", "Y"),
        ),
        traces=(TR3_TRACE,),
        warnings=(NO_A1, GS_XX),
    ),
    "Inteligenz-X12Parser__From_georgiosd.txt": Expected(1, 0, 1, aaa=(("2100C", "Y", "42", "R"),)),
    "Inteligenz-X12Parser__Hipaa-Example_3_1_2.txt": Expected(
        1,
        0,
        6,
        aaa=(
            ("2000A", "N", "80", "P"),
            ("2000A", "Y", "79", "N"),
            ("2100A", "Y", "79", "N"),
            ("2100A", "N", "80", "P"),
            ("2100B", "Y", "41", "C"),
            ("2100B", "N", "41", "C"),
            ("2100C", "Y", "42", "Y"),
            ("2110C", "N", "51", "N"),
            ("2110C", "Y", "60", "W"),
        ),
        traces=(TR3_TRACE,),
        warnings=(NO_A1, GS_XX, WRONG_SE),
        se_count=40,
    ),
    "Inteligenz-X12Parser__Parsing-Example_3_1_2.txt": Expected(1, 0, 5, traces=(TR3_TRACE,), warnings=(NO_A1, GS_XX)),
    "Inteligenz-X12Parser__ValidationForDependentBenefitInfo.txt": Expected(
        1,
        1,
        1,
        aaa=(("2110D", "N", "70", "C"),),
        warnings=(NO_A1, GS_XX, WRONG_SE, "HL '3' says it has no children (HL04 0) but HL '4' is its child"),
        se_count=16,
    ),
    "Inteligenz-X12Parser__ValidationForDependentName.txt": Expected(
        1,
        1,
        1,
        aaa=(("2100D", "N", "58", "C"),),
        warnings=(NO_A1, GS_XX, WRONG_SE, "HL '3' says it has no children"),
        se_count=16,
    ),
    "Inteligenz-X12Parser__ValidationForReceiverName.txt": Expected(
        0,
        0,
        0,
        aaa=(
            ("2100B", "N", "43", "C"),
            ("2100B", "N", "44", "C"),
            ("2100B", "N", "45", "C"),
            ("2100B", "N", "47", "C"),
        ),
        warnings=(NO_A1, GS_XX, WRONG_SE),
        se_count=11,
    ),
    "Inteligenz-X12Parser__ValidationForSource.txt": Expected(
        0,
        0,
        0,
        aaa=(("2000A", "Y", "42", "Y"),),
        warnings=(NO_A1, GS_XX, WRONG_SE, "2000A HL '1' has no 2100A name (NM1)"),
        se_count=5,
    ),
    "Inteligenz-X12Parser__ValidationForSourceName.txt": Expected(
        0, 0, 0, aaa=(("2100A", "N", "79", "C"),), warnings=(NO_A1, GS_XX, WRONG_SE), se_count=6
    ),
    "Inteligenz-X12Parser__ValidationForSubscriberBenefitInfo.txt": Expected(
        1,
        0,
        1,
        aaa=(("2110C", "N", "CI", "C"), ("2110C", "N", "70", "C")),
        traces=(TR3_TRACE,),
        warnings=(NO_A1, GS_XX, WRONG_SE),
        se_count=17,
    ),
    "Inteligenz-X12Parser__ValidationForSubscriberName.txt": Expected(
        1,
        0,
        0,
        aaa=(("2100C", "N", "72", "C"), ("2100C", "N", "75", "C")),
        traces=(TR3_TRACE,),
        warnings=(NO_A1, GS_XX, WRONG_SE),
        se_count=16,
    ),
    "Inteligenz-X12Parser__ValidationOnAll.txt": Expected(
        1,
        1,
        1,
        aaa=(
            ("2000A", "Y", "79", "N"),
            ("2000A", "N", "42", "C"),
            ("2100A", "Y", "79", "N"),
            ("2100A", "N", "80", "P"),
            ("2100B", "Y", "41", "C"),
            ("2100B", "N", "41", "C"),
            ("2100C", "Y", "42", "W"),
            ("2100D", "Y", "35", "N"),
            ("2110D", "N", "52", "N"),
            ("2110D", "Y", "60", "W"),
        ),
        traces=(TR3_TRACE,),
        warnings=(NO_A1, GS_XX, WRONG_SE, "HL '3' says it has no children"),
        se_count=29,
    ),
    "LinuxForHealth-x12__dependent-health-benefit-check.271": Expected(1, 1, 5, traces=(TR3_TRACE,)),
    "LinuxForHealth-x12__dependent@284e4b1.271": Expected(
        1, 1, 5, traces=(("2", "930000000000", "9800000004"),), warnings=("NM101 'IL' in 2100D; expected 03",)
    ),
    "LinuxForHealth-x12__dependent@a391dfb.271": Expected(1, 1, 5, traces=(("2", "930000000000", "9800000004"),)),
    "LinuxForHealth-x12__subscriber-health-benefit-check-error.271": Expected(
        0, 0, 0, aaa=(("2100B", "Y", "50", "N"),), warnings=("SE02 '4323' does not match ST02 '4321'",)
    ),
    "LinuxForHealth-x12__subscriber-health-benefit-check.271": Expected(1, 0, 5, traces=(TR3_TRACE,)),
    "LinuxForHealth-x12__subscriber@284e4b1.271": Expected(1, 0, 5, traces=(("2", "930000000000", "9800000004"),)),
    "aaronhuggins-node-x12__271.edi": Expected(
        1,
        0,
        9,
        traces=(("1", "2223255592", "99Trizetto"),),
        warnings=("ends without IEA", "GS01 is 'HS'"),
    ),
    "imsweb-x12-parser__x271.txt": Expected(
        1,
        0,
        1,
        traces=(TR3_TRACE,),
        warnings=("GS08 says '004010X092A1' but ST03 says '005010X279A1'", "SE01 says '22'"),
        se_count=18,
    ),
}

# File → the version its ST03 (or GS08 when there is no ST03) names.
EXPECTED_4010: dict[str, str] = {
    "Inteligenz-X12Parser__Example2_TMHP.txt": "004010X092A1",
    "Inteligenz-X12Parser__FromMunawarAbad.txt": "004010X092A1",
    "Inteligenz-X12Parser__From_tcplex.txt": "004010X092A1",
    "Inteligenz-X12Parser__Hipaa-Example1_DHHS.txt": "004010X092",
    "Inteligenz-X12Parser__Parsing-Example1_DHHS.txt": "004010X092",
    "Inteligenz-X12Parser__Hipaa-Example3_CMS_HETS.txt": "004010X092A1",
    "Inteligenz-X12Parser__Parsing-Example3_CMS_HETS.txt": "004010X092A1",
}

# These five are canonical (correct counts, no trailing empties, TR3 order, '\n' after each '~').
BYTE_IDENTICAL = (
    "LinuxForHealth-x12__dependent-health-benefit-check.271",
    "LinuxForHealth-x12__dependent@284e4b1.271",
    "LinuxForHealth-x12__dependent@a391dfb.271",
    "LinuxForHealth-x12__subscriber-health-benefit-check.271",
    "LinuxForHealth-x12__subscriber@284e4b1.271",
)


def _read(corpus_dir: Path, name: str) -> bytes:
    return (corpus_dir / "271" / name).read_bytes()


def _only(corpus_dir: Path, name: str) -> Transaction271:
    transactions = parse_271(_read(corpus_dir, name))
    assert len(transactions) == 1
    return transactions[0]


def _subscribers(tx: Transaction271) -> list[Loop2000C]:
    return [c for a in tx.sources for b in a.receivers for c in b.subscribers]


def _dependents(tx: Transaction271) -> list[Loop2000D]:
    return [d for c in _subscribers(tx) for d in c.dependents]


def _benefits(tx: Transaction271) -> list[Loop2110]:
    rows = [row for c in _subscribers(tx) for row in c.subscriber.benefits]
    return rows + [row for d in _dependents(tx) for row in d.dependent.benefits]


def _all_aaa(tx: Transaction271) -> list[Aaa]:
    found: list[Aaa] = []
    for source in tx.sources:
        found += source.errors + source.source.errors
        for receiver in source.receivers:
            found += receiver.receiver.errors
            for sub in receiver.subscribers:
                members = [sub.subscriber, *(d.dependent for d in sub.dependents)]
                for member in members:
                    found += member.errors
                    for row in member.benefits:
                        found += row.errors
    return sorted(found, key=lambda aaa: aaa.position)


def test_every_corpus_file_is_covered(corpus_dir: Path) -> None:
    on_disk = {path.name for path in (corpus_dir / "271").iterdir()}
    assert on_disk == set(EXPECTED_5010) | set(EXPECTED_4010)


@pytest.mark.parametrize("name", sorted(EXPECTED_5010))
def test_5010_file_parses_into_the_loops_we_read(corpus_dir: Path, name: str) -> None:
    expected = EXPECTED_5010[name]
    tx = _only(corpus_dir, name)
    assert len(_subscribers(tx)) == expected.subscribers
    assert len(_dependents(tx)) == expected.dependents
    assert len(_benefits(tx)) == expected.eb_rows
    assert [(a.loop, a.valid, a.reason, a.follow_up) for a in _all_aaa(tx)] == list(expected.aaa)
    levels: list[Loop2000C | Loop2000D] = [*_subscribers(tx), *_dependents(tx)]
    traces = [t for level in levels for t in level.traces]
    assert [(t.type, t.reference, t.originator) for t in traces] == list(expected.traces)
    for fragment in expected.warnings:
        assert any(fragment in warning for warning in tx.warnings), (fragment, tx.warnings)
    if not expected.warnings:
        assert tx.warnings == []


@pytest.mark.parametrize("name", sorted(EXPECTED_4010))
def test_4010_file_is_refused_naming_its_version(corpus_dir: Path, name: str) -> None:
    with pytest.raises(errors.X12UnsupportedVersion) as caught:
        parse_271(_read(corpus_dir, name))
    assert caught.value.code == "x12.unsupported_version"
    assert EXPECTED_4010[name] in caught.value.message
    assert "only 005010X279A1" in caught.value.message
    assert caught.value.segment_id == "ST"


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED_5010.items() if e.se_count is not None))
def test_wrong_se_count_is_counted_not_trusted(corpus_dir: Path, name: str) -> None:
    tx = _only(corpus_dir, name)
    assert tx.segment_count == EXPECTED_5010[name].se_count


@pytest.mark.parametrize("name", BYTE_IDENTICAL)
def test_canonical_corpus_file_renders_back_byte_for_byte(corpus_dir: Path, name: str) -> None:
    text = _read(corpus_dir, name).decode("ascii")
    interchange = read_interchange(text)
    rendered = render_interchange(parse_271(text), envelope_of(interchange), interchange.delimiters, line_end="\n")
    assert rendered == text


@pytest.mark.parametrize("name", sorted(EXPECTED_5010))
def test_every_5010_file_renders_back_to_the_same_segments(corpus_dir: Path, name: str) -> None:
    """Nothing the file says is lost: rendering gives the file's own segments, in its order.

    Only SE01 may differ (we write the true count) and SE02 (we write ST02); trailing empty
    elements are dropped on both sides because X12 omits them.
    """
    interchange = read_interchange(_read(corpus_dir, name))
    original = interchange.transactions[0].segments
    rendered = transaction_segments(parse_271(_read(corpus_dir, name))[0], interchange.delimiters)

    def trimmed(elements: list[str]) -> list[str]:
        while len(elements) > 1 and not elements[-1]:
            elements = elements[:-1]
        return elements

    assert [trimmed(s.elements) for s in original[:-1]] == [trimmed(s) for s in rendered[:-1]]
    assert rendered[-1] == ["SE", str(len(original)), original[0].el(2)]


# --- what is special about single files -------------------------------------------------------------


def test_edifabric_repetition_separator_and_ls_after_the_last_eb(corpus_dir: Path) -> None:
    """ISA11 is '>' here; the LS/LE with the PCP follows the last EB and is kept there."""
    tx = _only(corpus_dir, "EdiFabric-X12.NET__GenericResponse.txt")
    rows = _benefits(tx)
    assert rows[2].eb.service_types == ["1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC"]
    assert [r.eb.info for r in rows] == ["1", "L", "1", "B", "B"]
    assert [len(r.related_entities) for r in rows] == [0, 0, 0, 0, 1]
    pcp = rows[4].related_entities[0].name
    assert (pcp.entity_id, pcp.last_or_org, pcp.first, pcp.id_qualifier, pcp.id) == (
        "P3",
        "JONES",
        "MARCUS",
        "SV",
        "0202034",
    )
    assert [(r.eb.amount, r.eb.in_plan_network) for r in rows[3:]] == [(Decimal(10), "Y"), (Decimal(30), "N")]


def test_equal_repetition_and_component_separators(corpus_dir: Path) -> None:
    """ISA11 and ISA16 are both '^': EB03 still splits into its service types."""
    tx = _only(corpus_dir, "Inteligenz-X12Parser__Hipaa-Example_3_1_2.txt")
    rows = _benefits(tx)
    assert rows[3].eb.service_types == ["1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC"]
    limitation = rows[1].eb
    assert (limitation.info, limitation.coverage_level, limitation.service_types) == ("F", "IND", ["12"])
    assert (limitation.time_period, limitation.auth_required, limitation.in_plan_network) == ("32", "Y", "N")


def test_2120_entity_with_address_contact_and_provider(corpus_dir: Path) -> None:
    """Hipaa 3.1.2: after two 2110C AAAs, LS / NM1*PR / N3 / N4 / PER / PRV / LE (two on one line)."""
    tx = _only(corpus_dir, "Inteligenz-X12Parser__Hipaa-Example_3_1_2.txt")
    entity = _benefits(tx)[0].related_entities[0]
    assert entity.name.last_or_org == "COVENTRY HEALTH AND LIFE INSURANCE"
    assert entity.address is not None
    assert (entity.address.line1, entity.address.line2) == ("6705 ROCKLEDGE DR", "STE 900")
    assert (entity.address.city, entity.address.state, entity.address.postal_code) == ("BETHESDA", "MD", "208177828")
    assert [(c.function, c.numbers) for c in entity.contacts] == [("IC", [("TE", "8008823822")])]
    assert entity.provider is not None
    assert (entity.provider.code, entity.provider.reference_qualifier, entity.provider.reference) == (
        "PE",
        "PXC",
        "207Q00000X",
    )
    source = tx.sources[0].source
    assert [(c.function, c.name, c.numbers) for c in source.contacts] == [
        ("IC", "MEMBER SERVICES", [("EM", "MS@CARE.COM")])
    ]
    receiver = tx.sources[0].receivers[0].receiver.name
    assert receiver is not None
    assert (receiver.last_or_org, receiver.first, receiver.middle, receiver.prefix, receiver.suffix) == (
        "Smith",
        "John",
        "M",
        "Mr",
        "Sr",
    )


def test_imsweb_5010_transaction_inside_a_4010_envelope(corpus_dir: Path) -> None:
    tx = _only(corpus_dir, "imsweb-x12-parser__x271.txt")
    assert tx.implementation == "005010X279A1"
    row = _benefits(tx)[0]
    assert (row.eb.info, row.eb.service_types, row.eb.plan_description) == ("1", ["30"], "GOLD 123 PLAN")
    assert row.related_entities[0].name.entity_id == "P3"


def test_medicare_271_rows_dates_and_cob_payer(corpus_dir: Path) -> None:
    """The Trizetto/CMS response: RD8 ranges, 39 service types, zero amounts, a Part D payer in 2120C."""
    tx = _only(corpus_dir, "aaronhuggins-node-x12__271.edi")
    member = _subscribers(tx)[0].subscriber
    assert [(d.qualifier, d.format, str(d.start), str(d.end)) for d in member.dates] == [
        ("307", "RD8", "2019-12-30", "2019-12-30")
    ]
    rows = _benefits(tx)
    assert len(rows[2].eb.service_types) == 39
    assert rows[2].eb.service_types[:3] == ["30", "2", "23"]
    assert rows[2].eb.service_types[-1] == "UC"
    assert (rows[3].eb.info, rows[3].eb.percent, rows[3].eb.amount) == ("A", Decimal(0), None)
    assert (rows[4].eb.info, rows[4].eb.amount, rows[4].eb.time_period) == ("C", Decimal(0), "26")
    assert [(d.qualifier, str(d.start), str(d.end)) for d in rows[3].dates] == [("291", "2019-01-01", "2019-12-31")]
    assert rows[6].eb.service_types == ["41", "54"]
    part_d = rows[8]
    assert [(r.qualifier, r.value, r.description) for r in part_d.refs] == [
        ("18", "S5601", ""),
        ("N6", "008", "SilverScript Choice"),
    ]
    payer = part_d.related_entities[0]
    assert payer.name.last_or_org == "SILVERSCRIPT INSURANCE COMPANY"
    assert payer.address is not None
    assert (payer.address.city, payer.address.state, payer.address.postal_code) == ("Nashville", "TN", "37228")
    assert payer.contacts[0].numbers == [("TE", "8664430934"), ("UR", "www.silverscript.com")]


def test_dependent_benefits_live_in_2110d(corpus_dir: Path) -> None:
    tx = _only(corpus_dir, "LinuxForHealth-x12__dependent-health-benefit-check.271")
    subscriber = _subscribers(tx)[0]
    assert subscriber.subscriber.benefits == []
    dependent = subscriber.dependents[0].dependent
    assert dependent.name is not None
    assert (dependent.name.entity_id, dependent.name.last_or_org, dependent.name.first) == ("03", "SMITH", "MARY")
    assert dependent.relationship is not None
    assert (dependent.relationship.subscriber, dependent.relationship.relationship) == ("N", "19")
    assert dependent.demographics is not None
    assert (str(dependent.demographics.birth_date), dependent.demographics.sex) == ("1998-10-14", "F")
    assert [type(row).__name__ for row in dependent.benefits] == ["Loop2110D"] * 5
    assert [str(row.eb.amount) for row in dependent.benefits[3:]] == ["10.00", "30.00"]
    assert type(dependent.benefits[1].related_entities[0]).__name__ == "Loop2120D"


def test_lowercase_names_and_trailing_spaces_are_kept_as_sent(corpus_dir: Path) -> None:
    tx = _only(corpus_dir, "Inteligenz-X12Parser__ValidationForDependentBenefitInfo.txt")
    dependent = _dependents(tx)[0].dependent
    assert dependent.name is not None
    assert (dependent.name.last_or_org, dependent.name.first) == ("smith", "mary")
    assert dependent.benefits[0].eb.plan_description == "bronze 123 plan"


def test_empty_city_in_n4(corpus_dir: Path) -> None:
    tx = _only(corpus_dir, "Inteligenz-X12Parser__ValidationForSubscriberName.txt")
    address = _subscribers(tx)[0].subscriber.address
    assert address is not None
    assert (address.line1, address.city, address.state, address.postal_code) == (
        "15197 BROADWAY AVENUE",
        "",
        "MO",
        "64108",
    )


def test_header_keeps_a_guid_reference_and_long_time(corpus_dir: Path) -> None:
    tx = _only(corpus_dir, "Inteligenz-X12Parser__From_georgiosd.txt")
    header = tx.header
    assert (header.reference, str(header.date), header.time) == (
        "6A9402DB-1857-43D3-8396-1DF01A7E3440",
        "2012-02-23",
        "1039276",
    )
    assert _benefits(tx)[0].eb.info == "P"
