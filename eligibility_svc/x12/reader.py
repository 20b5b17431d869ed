"""X12 segment reader: delimiters from the ISA, segments, and the ISA/GS/ST envelopes.

Pure: text in, ``Interchange`` out.  Nothing here knows about eligibility; the 271 parser and
the validators work on the ``Transaction`` objects this module produces.

What real files do that this reader copes with (see ``../shared/corpus``):

* a UTF-8 byte-order mark, CRLF and indentation between segments, trailing blanks after a
  terminator, terminators that are ``~``, a newline, a carriage return or a control character;
* an ISA that is not exactly 106 characters (we find its 16 elements by counting separators);
* ISA11 ``U`` (the 4010 standards identifier) in a 00501 interchange: no repetition separator;
* a repetition separator equal to the component separator: elements are kept raw here and
  split by the parser, which knows whether an element repeats or is a composite;
* several GS groups and several ST transactions, and an interchange cut off after SE (no GE or
  IEA), which is recorded as a warning rather than refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eligibility_svc.errors import X12SyntaxError

_BOM = "\ufeff"
_ISA_ELEMENTS = 16
# ISA fields that are fixed-width in the standard; a value of the wrong width is tolerated.
_BLANKS = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four delimiters an interchange declares in its ISA."""

    element: str
    component: str
    segment: str
    repetition: str | None = None

    def all(self) -> frozenset[str]:
        """Every character that cannot appear inside an element value."""
        chars = {self.element, self.component, self.segment}
        if self.repetition:
            chars.add(self.repetition)
        return frozenset(chars)


class Segment:
    """One segment: ``id`` plus its raw element values (``elements[0]`` is the ID itself).

    ``position`` is 1-based within the interchange, counting the ISA as 1, which is how error
    messages and 999 acknowledgments name a segment.
    """

    __slots__ = ("elements", "id", "position")

    def __init__(self, elements: list[str], position: int) -> None:
        self.elements = elements
        self.id = elements[0]
        self.position = position

    def el(self, index: int) -> str:
        """Element ``index`` (1-based as in the TR3: ``EB01`` is ``el(1)``), ``""`` if absent."""
        elements = self.elements
        return elements[index] if index < len(elements) else ""

    def __len__(self) -> int:
        return len(self.elements) - 1

    def __repr__(self) -> str:
        return f"Segment({self.position}, {self.id!r}, {self.elements[1:]!r})"


@dataclass(slots=True)
class Transaction:
    """One ST..SE transaction set with the envelope values a parser needs."""

    set_id: str  # ST01: "270", "271", "999" ...
    control_number: str  # ST02
    implementation: str  # ST03 if present, else GS08
    functional_id: str  # GS01: HS for a 270, HB for a 271
    group_version: str  # GS08
    segments: list[Segment]  # ST through SE inclusive (SE may be missing when cut off)
    delimiters: Delimiters
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Interchange:
    """An ISA..IEA interchange (or what there is of one)."""

    delimiters: Delimiters
    isa: Segment
    transactions: list[Transaction]
    warnings: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        """ISA12, e.g. ``00501`` or ``00401``."""
        return self.isa.el(12).strip()

    @property
    def control_number(self) -> str:
        return self.isa.el(13).strip()

    @property
    def sender_id(self) -> str:
        return self.isa.el(6).strip()

    @property
    def receiver_id(self) -> str:
        return self.isa.el(8).strip()

    @property
    def usage(self) -> str:
        """ISA15: ``P`` production, ``T`` test."""
        return self.isa.el(15).strip()


def decode(data: bytes | str) -> str:
    """Bytes to text without a byte-order mark.  X12 is ASCII; anything else is kept, not lost."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return text.removeprefix(_BOM)


def detect_delimiters(text: str) -> tuple[Delimiters, int]:
    """Read the delimiters from the ISA at the start of ``text``.

    Returns the delimiters and the offset just past the ISA's segment terminator.
    """
    start = len(text) - len(text.lstrip(_BLANKS))
    if text[start : start + 3] != "ISA":
        got = text[start : start + 3] or "nothing"
        raise X12SyntaxError(f"the interchange starts with {got!r}", position=1, expected="an ISA segment")
    if len(text) < start + 4:
        raise X12SyntaxError("the ISA is cut off", position=1, segment_id="ISA")
    element = text[start + 3]
    if element.isalnum() or element in _BLANKS:
        raise X12SyntaxError(
            f"the element separator {element!r} is a letter, digit or blank",
            position=1,
            segment_id="ISA",
            expected="a punctuation character after 'ISA'",
        )
    offset = start + 3  # the separator before ISA01
    for _ in range(_ISA_ELEMENTS - 1):
        offset = text.find(element, offset + 1)
        if offset < 0:
            raise X12SyntaxError(
                "the ISA has fewer than 16 elements", position=1, segment_id="ISA", expected="16 elements"
            )
    # ``offset`` now points at the separator before ISA16; ISA16 is one character.
    if len(text) < offset + 3:
        raise X12SyntaxError("the ISA is cut off", position=1, segment_id="ISA", expected="ISA16 and a terminator")
    component = text[offset + 1]
    terminator = text[offset + 2]
    isa11 = text[start:offset].split(element)[11] if text[start:offset].count(element) >= 11 else ""
    return (
        Delimiters(element, component, terminator, _repetition(isa11, element, terminator)),
        offset + 3,
    )


def _repetition(isa11: str, element: str, terminator: str) -> str | None:
    """ISA11 is a repetition separator in 00501 and the standards identifier ``U`` before it."""
    if len(isa11) != 1 or isa11.isalnum() or isa11 in (element, terminator) or isa11 in _BLANKS:
        return None
    return isa11


def split_segments(text: str, delimiters: Delimiters) -> list[Segment]:
    """Every segment of ``text`` (which starts with the ISA), blanks between segments dropped."""
    element = delimiters.element
    segments: list[Segment] = []
    append = segments.append
    position = 0
    for piece in text.split(delimiters.segment):
        raw = piece.strip(_BLANKS)
        if raw:
            position += 1
            append(Segment(raw.split(element), position))
    if segments:
        segments[0] = _clean_isa(segments[0])
    return segments


def _clean_isa(isa: Segment) -> Segment:
    """The ISA is split like any segment; ISA16 is the component separator, not data."""
    if len(isa.elements) > _ISA_ELEMENTS + 1:
        isa.elements = isa.elements[: _ISA_ELEMENTS + 1]
    return isa


def read_interchange(data: bytes | str) -> Interchange:
    """Read one interchange: ISA, its groups and transactions.  Raises ``X12SyntaxError``."""
    text = decode(data)
    delimiters, _ = detect_delimiters(text)
    segments = split_segments(text, delimiters)
    return _assemble(segments, delimiters)


def _assemble(segments: list[Segment], delimiters: Delimiters) -> Interchange:
    interchange = Interchange(delimiters, segments[0], [])
    group: Segment | None = None
    current: Transaction | None = None
    for segment in segments[1:]:
        sid = segment.id
        if current is not None:
            current.segments.append(segment)
            if sid == "SE":
                current = None
            elif sid in ("ST", "GE", "IEA", "GS", "ISA"):
                current.segments.pop()
                current.warnings.append(f"transaction {current.control_number} has no SE")
                current = None
                group = _envelope_segment(segment, group, interchange)
            continue
        if sid == "ST":
            current = _start_transaction(segment, group, delimiters, interchange)
        else:
            group = _envelope_segment(segment, group, interchange)
    if current is not None:
        current.warnings.append(f"transaction {current.control_number} is cut off before SE")
    _check_trailer(segments, interchange)
    if not interchange.transactions:
        raise X12SyntaxError("the interchange holds no ST transaction set", expected="ST ... SE")
    return interchange


def _start_transaction(
    st: Segment, group: Segment | None, delimiters: Delimiters, interchange: Interchange
) -> Transaction:
    if group is None:
        interchange.warnings.append(f"segment {st.position}: ST outside a GS functional group")
    transaction = Transaction(
        set_id=st.el(1),
        control_number=st.el(2),
        implementation=st.el(3) or (group.el(8) if group else ""),
        functional_id=group.el(1) if group else "",
        group_version=group.el(8) if group else "",
        segments=[st],
        delimiters=delimiters,
    )
    interchange.transactions.append(transaction)
    return transaction


def _envelope_segment(segment: Segment, group: Segment | None, interchange: Interchange) -> Segment | None:
    """Handle a segment outside ST..SE; returns the GS now in force."""
    sid = segment.id
    if sid == "GS":
        return segment
    if sid == "GE":
        return None
    if sid in ("IEA", "ISA"):
        return group
    raise X12SyntaxError(
        "this segment is outside any transaction set",
        position=segment.position,
        segment_id=sid,
        expected="ST, GS, GE or IEA",
    )


def _check_trailer(segments: list[Segment], interchange: Interchange) -> None:
    ids = {segment.id for segment in segments[-3:]}
    if "IEA" not in ids:
        interchange.warnings.append("the interchange ends without IEA (cut off after the last segment)")
    if "GE" not in ids and "IEA" in ids:
        interchange.warnings.append("the functional group has no GE")


def split_repeats(value: str, delimiters: Delimiters) -> list[str]:
    """Values of a repeating simple element (``EB03``: ``1^33^35`` → ``["1", "33", "35"]``)."""
    if not value:
        return []
    rep = delimiters.repetition
    if rep is None:
        return [value]
    return [part for part in value.split(rep) if part]


def split_components(value: str, delimiters: Delimiters) -> list[str]:
    """Components of a composite element (``EB13``: ``HC:99213`` → ``["HC", "99213"]``)."""
    return value.split(delimiters.component) if value else []
