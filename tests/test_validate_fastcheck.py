"""The fast pre-check against the full pyx12 validation: sound on everything, complete on clean documents.

Soundness: whenever ``definitely_clean`` says yes, the full walk (``_validate_slow``) finds nothing and
raises nothing: on every fixture, corpus file, clean and broken variant of test_validate, every 270
the builder writes, and mutants of clean 271s.  Completeness: every clean fixture and clean variant is
recognised, so the service skips the walk for them.  The compiled tables are also compared with the
map objects pyx12 builds from the same XML, and the format checks with pyx12's own.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyx12.validation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyx12.map_if import composite_if, element_if, loop_if, segment_if
from pyx12.path import X12Path

from eligibility_svc.errors import InquiryInvalid, X12Error
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12 import fastcheck
from eligibility_svc.x12.build270 import build_270
from eligibility_svc.x12.fastcheck import definitely_clean
from eligibility_svc.x12.inquiry_rules import check_inquiry
from eligibility_svc.x12.validate import ValidationResult, _validate_slow, load_map, map_file_for, validate_x12
from tests.test_build270_properties import TODAY, text, valid_requests
from tests.test_validate import (
    BROKEN,
    BUILDER_ENVELOPE,
    CLEAN,
    DEPENDENT_271,
    ISA,
    REJECTED_271,
    SUBSCRIBER_270,
    SUBSCRIBER_271,
    Broken,
    interchange,
    replace,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "x12_fixtures" / "scenarios"
FIXTURES = sorted(SCENARIOS.glob("*/27[01]*.x12"))


def segments_of(document: str) -> list[str]:
    return [segment.strip() for segment in document.split("~") if segment.strip()]


def joined(segments: list[str]) -> str:
    return "~\n".join(segments) + "~\n"


def two_sets_in_a_group() -> str:
    first, second = segments_of(interchange(SUBSCRIBER_271)), segments_of(interchange(REJECTED_271))
    return joined([*first[:-2], *second[2:-2], "GE*2*1", first[-1]])


def a_271_group_and_a_270_group() -> str:
    first, second = (
        segments_of(interchange(SUBSCRIBER_271)),
        segments_of(interchange(SUBSCRIBER_270, functional_id="HS")),
    )
    group = second[1].replace("*1*X*", "*2*X*")
    return joined([*first[:-1], group, *second[2:-2], "GE*1*2", "IEA*2*000000001"])


# Clean documents written differently from the plain fixtures: other separators, blanks, a BOM,
# several transaction sets and groups, other names and dates.
VARIANTS = {
    "two transaction sets in one group": two_sets_in_a_group(),
    "a 271 group then a 270 group": a_271_group_and_a_270_group(),
    "apostrophe, hyphen and blank in names, a leap day": interchange(
        replace(
            "NM1*IL*1*DOE*JANE*Q***MI*W123456789",
            "NM1*IL*1*O'BRIEN-SMITH*ANN MARIE*Q***MI*ZX9876543210",
            replace("DMG*D8*19800101*F", "DMG*D8*20000229*M"),
        )
    ),
    "ISA11 '>' with EB03 repeated on it": interchange(
        replace("EB*B*IND*98^A0*PR**27*25*****Y", "EB*B*IND*98>A0>UC*PR**27*25*****Y"),
        isa=ISA.replace("*0805*^*00501", "*0805*>*00501"),
    ),
    "BOM, CRLF, tabs and blanks between segments": "\ufeff  " + interchange(SUBSCRIBER_271).replace("~\n", "~\r\n\t  "),
    "no line breaks": interchange(DEPENDENT_271).replace("~\n", "~"),
}


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def slow_findings(document: str) -> tuple[object, ...] | None:
    """The full walk's findings, or None when it refuses the document."""
    try:
        return _validate_slow(document).findings
    except X12Error:
        return None


def assert_sound(document: str) -> bool:
    """If the fast path says clean, the full walk agrees; returns the fast verdict."""
    verdict = definitely_clean(document)
    if verdict:
        assert slow_findings(document) == (), document
    return verdict


def clean_documents() -> Iterator[tuple[str, str]]:
    yield from ((p.parent.name, read(p)) for p in FIXTURES)
    yield from CLEAN.items()
    yield from VARIANTS.items()


CLEAN_DOCUMENTS = dict(clean_documents())


# --- soundness and completeness on known documents -------------------------------------------------


def test_there_are_fixtures_to_check() -> None:
    assert len(FIXTURES) >= 30


@pytest.mark.parametrize("name", sorted(CLEAN_DOCUMENTS))
def test_every_clean_document_is_recognised_and_gets_the_walks_result(name: str) -> None:
    document = CLEAN_DOCUMENTS[name]
    assert slow_findings(document) == ()  # the premise: the full walk finds it clean

    assert definitely_clean(document)
    assert validate_x12(document) == _validate_slow(document) == ValidationResult(())
    assert validate_x12(document.encode()) == _validate_slow(document.encode())


@pytest.mark.parametrize("case", BROKEN, ids=[case.name for case in BROKEN])
def test_no_broken_variant_passes(case: Broken) -> None:
    assert not assert_sound(case.document())


def test_every_corpus_file_is_sound_and_the_clean_ones_are_recognised(corpus_dir: Path) -> None:
    recognised = []
    for path in sorted(corpus_dir.glob("27[01]/*")):
        document = read(path)
        if assert_sound(document):
            recognised.append(path.name)
        elif slow_findings(document) == ():
            pytest.fail(f"{path.name} is clean but not recognised")
    assert len(recognised) >= 5  # the clean LinuxForHealth 270s and 271s


def test_a_999_is_always_written_by_the_walk() -> None:
    document = CLEAN_DOCUMENTS["271 subscriber: EB rows, HSD, MSG, III, LS/LE 2120C"]
    result = validate_x12(document, want_ack=True)

    assert result.findings == ()
    assert result.ack is not None
    assert "IK5*A" in result.ack


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests(), text(20))
def test_the_270s_the_builder_writes_are_recognised(request: EligibilityRequest, trace: str) -> None:
    try:
        check_inquiry(request, today=TODAY)
    except InquiryInvalid:
        return
    document = build_270(request, BUILDER_ENVELOPE, trace)

    clean = slow_findings(document) == ()
    assert assert_sound(document) == clean, document


# --- mutants of clean documents --------------------------------------------------------------------

MUTATION_BASES = [read(p) for p in FIXTURES[::3]] + [CLEAN[name] for name in sorted(CLEAN)]
VALUE_CHARACTERS = string.ascii_uppercase + string.digits + " -.*:^~>!'\t"


def near_miss(value: str, position: int, character: str) -> str:
    if not value:
        return character
    index = position % len(value)
    return value[:index] + character + value[index + 1 :]


@st.composite
def mutants(draw: st.DrawFn) -> str:
    segments = segments_of(draw(st.sampled_from(MUTATION_BASES)))
    index = draw(st.integers(1, len(segments) - 2))  # the ISA and IEA stay (the envelope has its own tests)
    other = draw(st.integers(1, len(segments) - 2))
    kind = draw(st.sampled_from(["value", "long", "empty", "near", "drop", "duplicate", "swap"]))
    if kind in ("value", "long", "empty", "near"):
        elements = segments[index].split("*")
        at = draw(st.integers(1, max(1, len(elements) - 1)))
        elements += [""] * (at + 1 - len(elements))
        new = draw(st.text(VALUE_CHARACTERS, min_size=1, max_size=12))
        elements[at] = {
            "value": new,
            "long": elements[at] * draw(st.integers(2, 40)) or new * 40,
            "empty": "",
            "near": near_miss(elements[at], draw(st.integers(0, 99)), new[0]),
        }[kind]
        segments[index] = "*".join(elements)
    elif kind == "drop":
        del segments[index]
    elif kind == "duplicate":
        segments.insert(index, segments[index])
    else:
        segments[index], segments[other] = segments[other], segments[index]
    return "~\n".join(segments) + "~\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_a_mutant_the_fast_path_passes_is_clean_for_the_walk(document: str) -> None:
    assert_sound(document)


RAW_CHARACTERS = "AZ09 -.*:^~>|\t\r\n\ufeff\x1d"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(MUTATION_BASES),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from("ird"), st.sampled_from(RAW_CHARACTERS)),
        min_size=1,
        max_size=3,
    ),
)
def test_a_character_level_edit_the_fast_path_passes_is_clean_for_the_walk(
    document: str, edits: list[tuple[int, str, str]]
) -> None:
    # Anywhere, the envelope included: delimiters, blanks, byte-order marks, terminators.
    for where, how, character in edits:
        at = where % len(document)
        document = document[:at] + (character if how != "d" else "") + document[at + (how != "i") :]
    assert_sound(document)


# --- the compiled tables against pyx12's own objects -------------------------------------------


def pyx12_nodes(node: object) -> Iterator[loop_if | segment_if]:
    positions = node.pos_map  # type: ignore[attr-defined]  # the map root and loops both have one
    for child in (child for pos in sorted(positions) for child in positions[pos]):
        yield child
        if isinstance(child, loop_if):
            yield from pyx12_nodes(child)


def our_nodes(loop: fastcheck._Loop) -> Iterator[fastcheck._Loop | fastcheck._Seg]:
    for child in loop.children():
        yield child
        if isinstance(child, fastcheck._Loop):
            yield from our_nodes(child)


def describe_element(node: element_if) -> tuple[object, ...]:
    return (node.id, node.usage, node.data_type, node.min_len, node.max_len, tuple(node.valid_codes), node.seq)


def describe_ours(elem: fastcheck._Elem, seq: int) -> tuple[object, ...]:
    return (elem.xid, elem.usage, elem.data_type, elem.min_len, elem.max_len, elem.code_list, seq)


def describe_children(node: segment_if) -> list[object]:
    found: list[object] = []
    for child in node.children:
        if isinstance(child, composite_if):
            found.append((child.usage, [describe_element(e) for e in child.children]))
        else:
            found.append(describe_element(child))
    return found


def describe_our_children(seg: fastcheck._Seg) -> list[object]:
    found: list[object] = []
    for seq, child in enumerate(seg.children, start=1):
        if isinstance(child, fastcheck._Comp):
            parts = [describe_ours(e, i) for i, e in enumerate(child.parts, start=1)]
            found.append((child.usage, parts))
        else:
            found.append(describe_ours(child, seq))
    return found


@pytest.mark.parametrize("set_id", ["270", "271"])
def test_the_tables_have_pyx12s_tree_paths_limits_and_elements(set_id: str) -> None:
    theirs = list(pyx12_nodes(load_map(map_file_for(set_id))))
    maps = fastcheck._maps()
    assert maps is not None
    ours = list(our_nodes(maps[set_id].root))

    assert len(ours) == len(theirs) > 60
    for mine, node in zip(ours, theirs, strict=True):
        assert mine.path == X12Path(node.get_path()).format() == node.get_path()
        assert (mine.usage, mine.pos) == (node.usage, node.pos)
        if isinstance(node, loop_if):
            assert isinstance(mine, fastcheck._Loop)
            assert mine.max_repeat == node.get_max_repeat()
            continue
        assert isinstance(mine, fastcheck._Seg)
        assert mine.max_use == node.get_max_repeat()
        assert describe_our_children(mine) == describe_children(node)
        assert [[kind, *indices] for kind, indices in mine.syntax] == node.syntax
        key = node._resolve_unique_key_field(node.id, with_qual=False)
        assert (mine.key[1] if mine.key else None) == (key[0]._valid_codes_set if key else None)


def test_pyx12_checks_values_with_the_settings_the_tables_assume() -> None:
    # The 5010 extended character set (charset E, ICVN 00501) and no external code list excluded.
    for set_id in ("270", "271"):
        tree = load_map(map_file_for(set_id))
        assert (tree.param.get("charset"), tree.icvn, tree.param.get("exclude_external_codes")) == ("E", "00501", None)


def test_our_maps_can_be_modeled() -> None:
    assert fastcheck.compile_maps()


def test_the_map_index_is_read_as_pyx12_reads_it() -> None:
    assert fastcheck._index() == {"270": map_file_for("270"), "271": map_file_for("271")}


def test_the_character_set_is_pyx12s() -> None:
    for code in range(0x250):
        character = chr(code)
        theirs = not pyx12.validation.not_match_re("ID", character, "E", "00501")
        assert (fastcheck._AN.fullmatch(character) is not None) == theirs, hex(code)


FORMATS = ["D8", "D6", "DT", "RD8", "TM"]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(FORMATS),
    st.one_of(
        st.text("0123456789", min_size=1, max_size=13),
        st.text("0123456789-", min_size=1, max_size=18),
        st.from_regex(r"(1[789]|20)[0-9]{2}(0[0-9]|1[0-3])([0-2][0-9]|3[0-2])", fullmatch=True),
        st.text(min_size=1, max_size=12),
    ),
)
def test_date_and_time_checks_accept_only_what_pyx12_accepts(kind: str, value: str) -> None:
    ours = fastcheck._typed_ok(kind, value)
    try:
        theirs = pyx12.validation.IsValidDataType(value, kind, "E", "00501")
    except ValueError:  # pyx12 raises on an RD8 with two dashes
        theirs = False
    assert ours == theirs, (kind, value)


def test_a_map_the_tables_cannot_model_turns_the_fast_path_off(tmp_path: Path) -> None:
    source = (fastcheck.MAP_DIR / "271.5010.X279.A1.xml").read_text()
    changed = source.replace(
        '<element xid="BHT03" data_ele="127" usage="S" seq="03" name="Submitter Transaction Identifier"'
        ' data_type="AN" min_len="1" max_len="50"/>',
        '<element xid="BHT03" data_ele="127" usage="S" seq="03" name="Submitter Transaction Identifier"'
        ' data_type="AN" min_len="1" max_len="50"><regex>^[A-Z]+$</regex></element>',
    )
    assert changed != source
    (tmp_path / "271.xml").write_text(changed)

    with pytest.raises(fastcheck._NotModeled, match="regular expressions"):
        fastcheck._compile(tmp_path / "271.xml", fastcheck._dictionary(), fastcheck._external_codes())


# --- remembered element checks ---------------------------------------------------------------------

PPO_271 = read(SCENARIOS / "01-ppo-active-deductible-copays" / "271.x12")


def test_a_remembered_segment_is_not_trusted_under_other_separators() -> None:
    """The same EB text under swapped repetition and component separators: its EB03 ``1^33^35...`` is a
    repetition in the first document and an invalid composite in the second."""
    assert "EB*1**1^33^35" in PPO_271
    assert PPO_271.count(":") == 1  # ISA16 is its only component separator
    swapped = PPO_271.replace("*0801*^*00501", "*0801*:*00501").replace("*T*:~", "*T*^~", 1)
    assert swapped != PPO_271
    fastcheck._CHECKED.clear()
    assert definitely_clean(PPO_271)
    assert not definitely_clean(swapped)  # with the first document's rows remembered
    fastcheck._CHECKED.clear()
    assert not definitely_clean(swapped)
    assert slow_findings(swapped)  # and the full walk finds what the fast path refused


def test_no_patient_identifier_is_remembered() -> None:
    fastcheck._CHECKED.clear()
    for document in CLEAN_DOCUMENTS.values():
        definitely_clean(document)
    remembered = "~".join(piece for _, piece, _ in fastcheck._CHECKED)
    assert remembered.count("EB*") > 50
    for identifier in ("FIXTURELY", "QUILL", "ZZM0100001", "DOE", "W123456789", "DMG", "NM1", "REF"):
        assert identifier not in remembered


def test_the_remembered_results_stay_bounded() -> None:
    """A document with more distinct benefit rows than are remembered is still judged, and the
    memory starts over instead of growing."""
    rows = [f"EB*C*IND*30***23*{amount}.00" for amount in range(1, fastcheck._CHECKED_LIMIT + 500)]
    segments = segments_of(PPO_271)
    first_eb = next(i for i, segment in enumerate(segments) if segment.startswith("EB*"))
    se = next(i for i, segment in enumerate(segments) if segment.startswith("SE*"))
    body = [*segments[:first_eb], *rows, *segments[first_eb:se]]
    st = next(i for i, segment in enumerate(body) if segment.startswith("ST*"))
    control = segments[se].split("*")[2]
    document = joined([*body, f"SE*{len(body) - st + 1}*{control}", *segments[se + 1 :]])
    fastcheck._CHECKED.clear()
    assert definitely_clean(document)
    assert 0 < len(fastcheck._CHECKED) <= fastcheck._CHECKED_LIMIT
