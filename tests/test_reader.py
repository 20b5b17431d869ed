"""The segment reader: delimiters from the ISA in every odd form real files take, and its errors.

Samples are written inline, cut off after what each test needs.  Expected values come from the
sample text itself (which byte is which delimiter, how many segments we wrote).
"""

from __future__ import annotations

import pytest

from eligibility_svc import errors
from eligibility_svc.x12.reader import (
    Delimiters,
    decode,
    detect_delimiters,
    read_interchange,
    split_components,
    split_repeats,
    split_segments,
)

# A standard 106-character ISA: '*' elements, '^' repetition, ':' components, '~' terminator.
ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240102*1200*^*00501*000000001*0*P*:~"
GS = "GS*HB*SENDER*RECEIVER*20240102*1200*1*X*005010X279A1~"
BODY = "ST*271*0001*005010X279A1~BHT*0022*11*REF1*20240102*1200~SE*3*0001~"
TRAILER = "GE*1*1~IEA*1*000000001~"


def isa(element: str = "*", repetition: str = "^", component: str = ":", terminator: str = "~") -> str:
    """The standard ISA with other delimiters (same field widths)."""
    fields = ISA[4:-3].split("*")
    fields[10] = repetition
    return "ISA" + element + element.join(fields) + element + component + terminator


def test_sample_isa_is_106_characters() -> None:
    assert len(ISA) == 106
    assert len(isa("|", "U", ">", "\n")) == 106


def test_standard_delimiters_and_offset() -> None:
    delimiters, offset = detect_delimiters(ISA + GS)
    assert delimiters == Delimiters("*", ":", "~", "^")
    assert offset == 106


def test_byte_order_mark_is_dropped() -> None:
    data = ("\ufeff" + ISA + GS + BODY + TRAILER).encode("utf-8")
    interchange = read_interchange(data)
    assert interchange.isa.id == "ISA"
    assert interchange.isa.position == 1
    assert decode(data).startswith("ISA*")


def test_crlf_and_indentation_between_segments() -> None:
    text = "\ufeff" + ISA + "\r\n  " + GS + "\r\n    " + BODY.replace("~", "~\r\n\t\t") + "  " + TRAILER
    interchange = read_interchange(text)
    segments = interchange.transactions[0].segments
    assert [s.id for s in segments] == ["ST", "BHT", "SE"]
    assert segments[1].elements == ["BHT", "0022", "11", "REF1", "20240102", "1200"]
    assert [s.position for s in segments] == [3, 4, 5]


def test_carriage_return_terminator_with_trailing_spaces() -> None:
    """The TMHP file: ISA byte 106 is CR, LF follows, every segment ends with a blank."""
    text = isa(repetition="U", terminator="\r") + "\n  " + GS.replace("~", " \r\n  ")
    text += BODY.replace("~", " \r\n    ") + TRAILER.replace("~", " \r\n")
    interchange = read_interchange(text)
    assert interchange.delimiters == Delimiters("*", ":", "\r", None)
    transaction = interchange.transactions[0]
    assert transaction.control_number == "0001"
    assert transaction.segments[-1].elements == ["SE", "3", "0001"]


def test_group_separator_control_character_as_terminator() -> None:
    text = isa(terminator="\x1d") + "\r\n" + (GS + BODY + TRAILER).replace("~", "\x1d\r\n  ")
    interchange = read_interchange(text)
    assert interchange.delimiters.segment == "\x1d"
    assert [s.id for s in interchange.transactions[0].segments] == ["ST", "BHT", "SE"]


def test_isa11_u_means_no_repetition_separator() -> None:
    text = isa(repetition="U") + GS + BODY + TRAILER
    interchange = read_interchange(text)
    assert interchange.delimiters.repetition is None
    assert any("ISA11 is 'U' in a 00501 interchange" in w for w in interchange.warnings)
    assert split_repeats("1^33", interchange.delimiters) == ["1^33"]


def test_isa11_u_in_a_4010_interchange_is_not_a_warning() -> None:
    text = isa(repetition="U").replace("*00501*", "*00401*") + GS + BODY + TRAILER
    interchange = read_interchange(text)
    assert interchange.version == "00401"
    assert interchange.warnings == []


def test_repetition_equal_to_component_separator() -> None:
    text = isa(repetition="^", component="^") + GS + BODY + TRAILER
    delimiters = read_interchange(text).delimiters
    assert (delimiters.repetition, delimiters.component) == ("^", "^")
    # The element's meaning decides: EB03 repeats, EB13 is a composite.
    assert split_repeats("1^33^35", delimiters) == ["1", "33", "35"]
    assert split_components("HC^99213^25", delimiters) == ["HC", "99213", "25"]


@pytest.mark.parametrize(("component", "composite"), [("|", "HC|90669"), (">", "HC>99213")])
def test_pipe_and_greater_than_component_separators(component: str, composite: str) -> None:
    text = isa(component=component) + GS + BODY + TRAILER
    delimiters = read_interchange(text).delimiters
    assert delimiters.component == component
    assert split_components(composite, delimiters) == ["HC", composite[3:]]


def test_other_element_separator() -> None:
    text = isa(element="|", component=">") + (GS + BODY + TRAILER).replace("*", "|")
    interchange = read_interchange(text)
    assert interchange.delimiters == Delimiters("|", ">", "~", "^")
    assert interchange.transactions[0].segments[1].el(3) == "REF1"


def test_isa_shorter_than_106_characters() -> None:
    short = "ISA*00**00**ZZ*SENDER*ZZ*RECEIVER*240102*1200*^*00501*1*0*P*:~"
    interchange = read_interchange(short + GS + BODY + TRAILER)
    assert interchange.delimiters == Delimiters("*", ":", "~", "^")
    assert (interchange.sender_id, interchange.receiver_id, interchange.control_number) == ("SENDER", "RECEIVER", "1")
    assert len(interchange.isa) == 16


def test_isa_padding_containing_the_terminator_character() -> None:
    """The ISA is cut by counting its 16 elements, so a '~' inside ISA02 does not split it."""
    padded = ISA.replace("*00*          *00*", "*03*PASS~WORD *00*", 1)
    interchange = read_interchange(padded + GS + BODY + TRAILER)
    assert interchange.isa.el(2) == "PASS~WORD "
    assert interchange.isa.el(16) == ":"
    assert interchange.transactions[0].functional_id == "HB"


def test_isa_segment_keeps_its_fixed_width_fields() -> None:
    segments = split_segments(ISA + GS, Delimiters("*", ":", "~", "^"))
    assert segments[0].elements[1:5] == ["00", " " * 10, "00", " " * 10]
    assert segments[0].el(16) == ":"
    assert segments[1].position == 2


def test_several_groups_and_transactions() -> None:
    second_group = "GS*HB*SENDER*RECEIVER*20240102*1200*2*X*005010X279~"
    two = BODY + BODY.replace("0001", "0002")
    text = ISA + GS + two + "GE*2*1~" + second_group + BODY.replace("0001", "0003") + "GE*1*2~IEA*2*000000001~"
    interchange = read_interchange(text)
    assert [t.control_number for t in interchange.transactions] == ["0001", "0002", "0003"]
    assert [t.group_version for t in interchange.transactions] == ["005010X279A1", "005010X279A1", "005010X279"]
    third = interchange.transactions[2]
    assert third.group is not None
    assert third.group.el(6) == "2"
    assert third.segments[0].position == 11  # ISA, GS, 3 + 3 segments, GE, GS, ST
    assert interchange.warnings == []


def test_implementation_falls_back_to_gs08_without_st03() -> None:
    text = ISA + GS.replace("005010X279A1", "004010X092A1") + BODY.replace("*005010X279A1", "") + TRAILER
    transaction = read_interchange(text).transactions[0]
    assert transaction.implementation == "004010X092A1"


def test_interchange_cut_off_after_se() -> None:
    interchange = read_interchange(ISA + GS + BODY)
    assert len(interchange.transactions) == 1
    assert interchange.transactions[0].segments[-1].id == "SE"
    assert any("ends without IEA" in w for w in interchange.warnings)


def test_transaction_without_se_is_closed_by_the_next_st() -> None:
    text = ISA + GS + BODY.replace("SE*3*0001~", "") + BODY.replace("0001", "0002") + TRAILER
    interchange = read_interchange(text)
    first, second = interchange.transactions
    assert [s.id for s in first.segments] == ["ST", "BHT"]
    assert any("has no SE" in w for w in first.warnings)
    assert [s.id for s in second.segments] == ["ST", "BHT", "SE"]


def test_transaction_cut_off_before_se() -> None:
    interchange = read_interchange(ISA + GS + "ST*271*0009*005010X279A1~BHT*0022*11")
    transaction = interchange.transactions[0]
    assert [s.id for s in transaction.segments] == ["ST", "BHT"]
    assert transaction.warnings == ["transaction 0009 is cut off before SE"]


def test_segment_accessors() -> None:
    segment = read_interchange(ISA + GS + BODY).transactions[0].segments[1]
    assert (segment.id, segment.el(1), segment.el(5), segment.el(9), len(segment)) == ("BHT", "0022", "1200", "", 5)


# --- errors ----------------------------------------------------------------------------------------


def assert_syntax_error(error: errors.X12Error, position: int | None, expected: str) -> None:
    assert isinstance(error, errors.X12SyntaxError)
    assert error.code == "x12.syntax"
    assert error.http_status == 422
    assert error.expected == expected
    assert f"expected {expected}" in error.message
    if position is not None:
        assert error.position == position
        assert f"segment {position}" in error.message


def test_no_isa() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(GS + BODY)
    assert_syntax_error(caught.value, 1, "an ISA segment")
    assert "'GS*'" in caught.value.message


def test_empty_input() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(b"")
    assert_syntax_error(caught.value, 1, "an ISA segment")


def test_isa_with_too_few_elements() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange("ISA*00*          *00*          *ZZ*SENDER~GS*HB~")
    assert_syntax_error(caught.value, 1, "16 elements")
    assert caught.value.segment_id == "ISA"
    assert "(ISA)" in caught.value.message


def test_isa_cut_off_after_isa16_separator() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(ISA[:-2])
    assert_syntax_error(caught.value, 1, "ISA16 and a terminator")


def test_letter_as_element_separator() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange("ISAX00X")
    assert_syntax_error(caught.value, 1, "a punctuation character after 'ISA'")


def test_isa16_followed_by_data_instead_of_a_terminator() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(ISA[:-1] + "GS*HB~")
    assert caught.value.segment_id == "ISA"
    assert "cannot be the segment terminator" in caught.value.message


def test_segment_outside_st_se() -> None:
    text = ISA + GS + "NM1*PR*2*PAYER~" + BODY + TRAILER
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(text)
    assert_syntax_error(caught.value, 3, "ST, GS, GE or IEA")
    assert caught.value.segment_id == "NM1"
    assert "outside any transaction set" in caught.value.message


def test_interchange_without_transactions() -> None:
    with pytest.raises(errors.X12SyntaxError) as caught:
        read_interchange(ISA + GS + TRAILER)
    assert_syntax_error(caught.value, None, "ST ... SE")


def test_split_helpers_on_empty_values() -> None:
    delimiters = Delimiters("*", ":", "~", "^")
    assert split_repeats("", delimiters) == []
    assert split_repeats("1^^33^", delimiters) == ["1", "33"]
    assert split_components("", delimiters) == []
    assert split_components("HC:99213::26", delimiters) == ["HC", "99213", "", "26"]
