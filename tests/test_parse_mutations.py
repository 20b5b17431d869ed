"""Property tests: whatever happens to a valid 271, the parser answers or raises an X12Error.

Valid 271s (the 5010 files of the public corpus and one written here) are damaged the ways
files get damaged in transit and by careless generators: segments deleted, duplicated or
swapped, the data cut at any byte, elements replaced with random text, delimiters swapped.
``parse_271`` must then either return transactions or raise an ``errors.X12Error`` subclass:
an ``IndexError``, ``ValueError`` or ``decimal.InvalidOperation`` escaping is a bug.  When the
damaged data still parses, rendering it back must hold to the same rule.
"""

from __future__ import annotations

import contextlib
import string
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility_svc import errors
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import detect_delimiters, read_interchange
from eligibility_svc.x12.render import render_transaction

OWN_SAMPLE = (
    "ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *240102*1200*^*00501*000000007*0*T*:~"
    "GS*HB*PAYER*PRACTICE*20240102*1200*7*X*005010X279A1~ST*271*0001*005010X279A1~BHT*0022*11*REQ1*20240102*1200~"
    "HL*1**20*1~NM1*PR*2*ACME*****PI*12345~PER*IC**TE*8005551212~HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~"
    "HL*3*2*22*1~TRN*2*T-1*9876543210~NM1*IL*1*DOE*JOHN****MI*W1~REF*6P*G1~N3*5 MAIN ST~N4*TOWN*NY*10001~"
    "DMG*D8*19800101*M~INS*Y*18~DTP*291*RD8*20240101-20241231~EB*1*FAM*30*PR*GOLD~EB*C*IND*30***29*500.25*****Y~"
    "EB*A*IND*98****.2****N~EB*B*IND*98^UC***27*25*****Y*HC:99213:25~HSD*VS*20***22~REF*18*P9~DTP*292*D8*20240101~"
    "AAA*N**70*C~MSG*SEE PLAN~III*ZZ*11~EB*L~LS*2120~NM1*P3*1*SMITH****XX*1~N3*9 RD~N4*TOWN*NY*10001~"
    "PER*IC**TE*5551234567~PRV*PC*PXC*207Q00000X~LE*2120~HL*4*3*23*0~TRN*2*T-2*9876543210~NM1*03*1*DOE*JANE~"
    "AAA*Y**35*N~EB*6**30~SE*47*0001~GE*1*7~IEA*1*000000007~"
)
PRINTABLE = st.text(alphabet=string.printable, max_size=12)
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def samples(corpus_dir: Path) -> list[str]:
    """Every corpus 271 that parses (the 5010 ones), and our own sample."""
    texts = [OWN_SAMPLE]
    for path in sorted((corpus_dir / "271").iterdir()):
        text = path.read_bytes().decode("utf-8-sig")  # the BOM is the reader's business, tested there
        try:
            parse_271(text)
        except errors.X12UnsupportedVersion:
            continue
        texts.append(text)
    assert len(texts) == 24  # 23 corpus files in 5010, and ours
    return texts


def check(data: str | bytes) -> None:
    """The property: transactions come back (and render), or an X12Error is raised."""
    try:
        transactions = parse_271(data)
    except errors.X12Error:
        return
    delimiters = read_interchange(data).delimiters
    for transaction in transactions:
        with contextlib.suppress(errors.X12Error):
            render_transaction(transaction, delimiters)


def pieces(text: str) -> tuple[str, list[str]]:
    """The ISA (kept intact) and the remaining segments of a valid sample, terminators dropped."""
    delimiters, offset = detect_delimiters(text)
    return text[:offset], text[offset:].split(delimiters.segment)


def join(text: str, isa: str, segments: list[str]) -> str:
    return isa + detect_delimiters(text)[0].segment.join(segments)


def test_every_sample_parses_unmutated(samples: list[str]) -> None:
    for text in samples:
        assert parse_271(text)


@FAST
@given(data=st.data())
def test_deleted_segment(samples: list[str], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(samples))
    isa, segments = pieces(text)
    index = data.draw(st.integers(0, len(segments) - 1))
    check(join(text, isa, segments[:index] + segments[index + 1 :]))


@FAST
@given(data=st.data())
def test_duplicated_segment(samples: list[str], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(samples))
    isa, segments = pieces(text)
    index = data.draw(st.integers(0, len(segments) - 1))
    check(join(text, isa, segments[: index + 1] + segments[index:]))


@FAST
@given(data=st.data())
def test_swapped_segments(samples: list[str], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(samples))
    isa, segments = pieces(text)
    first = data.draw(st.integers(0, len(segments) - 1))
    second = data.draw(st.integers(0, len(segments) - 1))
    segments[first], segments[second] = segments[second], segments[first]
    check(join(text, isa, segments))


@FAST
@given(data=st.data())
def test_truncated_at_any_byte(samples: list[str], data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(samples)).encode("utf-8")
    check(raw[: data.draw(st.integers(0, len(raw)))])


@FAST
@given(data=st.data(), value=PRINTABLE)
def test_element_replaced_with_random_text(samples: list[str], data: st.DataObject, value: str) -> None:
    text = data.draw(st.sampled_from(samples))
    isa, segments = pieces(text)
    element = detect_delimiters(text)[0].element
    index = data.draw(st.integers(0, len(segments) - 1))
    elements = segments[index].split(element)
    position = data.draw(st.integers(0, len(elements) - 1))
    elements[position] = value
    segments[index] = element.join(elements)
    check(join(text, isa, segments))


@FAST
@given(data=st.data())
def test_delimiters_flipped(samples: list[str], data: st.DataObject) -> None:
    """One delimiter character becomes another (everywhere, or in one spot)."""
    text = data.draw(st.sampled_from(samples))
    delimiters = detect_delimiters(text)[0]
    chars = sorted(delimiters.all())
    old = data.draw(st.sampled_from(chars))
    new = data.draw(st.sampled_from([*chars, "|", ">", "\n", "A"]))
    if data.draw(st.booleans()):
        check(text.replace(old, new))
    else:
        spots = [i for i, char in enumerate(text) if char == old]
        spot = data.draw(st.sampled_from(spots))
        check(text[:spot] + new + text[spot + 1 :])


@FAST
@given(data=st.data(), junk=st.binary(min_size=1, max_size=8))
def test_random_bytes_inserted(samples: list[str], data: st.DataObject, junk: bytes) -> None:
    raw = data.draw(st.sampled_from(samples)).encode("utf-8")
    at = data.draw(st.integers(0, len(raw)))
    check(raw[:at] + junk + raw[at:])


def plain_decimal(value: str) -> bool:
    """The X12 R type as the TR3 writes it: an optional minus, digits, at most one decimal point."""
    body = value.removeprefix("-").replace(".", "", 1)
    return body.isascii() and body.isdigit()


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(st.characters(blacklist_characters="*~^:"), max_size=12)
    | st.from_regex(r"-?\d*\.?\d*", fullmatch=True)
)
def test_eb07_is_a_plain_number_or_a_syntax_error(value: str) -> None:
    """EB07 text (delimiters aside) is read as exactly that number, or refused: never guessed."""
    text = OWN_SAMPLE.replace("*500.25*", f"*{value}*")
    if value and not plain_decimal(value):
        with pytest.raises(errors.X12SyntaxError) as caught:
            parse_271(text)
        assert (caught.value.segment_id, caught.value.expected) == ("EB", "a decimal number in EB07")
        return
    row = parse_271(text)[0].sources[0].receivers[0].subscribers[0].subscriber.benefits[1]
    assert row.eb.amount == (Decimal(value) if value else None)
