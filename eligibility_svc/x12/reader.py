"""X12 segment reader: delimiters from the ISA, segments, and the ISA/GS/ST envelopes.

Pure: text in, ``Interchange`` out.  Nothing here knows about eligibility; the validators work on
the ``Transaction`` objects this module produces.  ``read_elements`` is the same reading without a
``Segment`` object per segment (element lists, and which rows each transaction set spans): the
271 parser's hot path, and what ``read_interchange`` wraps.

What real files do that this reader copes with (see ``../shared/corpus``):

* a UTF-8 byte-order mark, CRLF and indentation between segments, trailing blanks after a
  terminator, terminators that are ``~``, a newline, a carriage return or a control character;
* an ISA that is not exactly 106 characters (we find its 16 elements by counting separators,
  and split the ISA off on its own so padding characters never split it);
* ISA11 ``U`` (the 4010 standards identifier) in a 00501 interchange: no repetition separator;
* a repetition separator equal to the component separator: elements are kept raw here and
  split by the parser, which knows whether an element repeats or is a composite;
* several GS groups and several ST transactions, a transaction without SE, and an interchange
  cut off after SE (no GE or IEA), which are recorded as warnings rather than refused.

What it refuses (``X12SyntaxError`` naming the segment position and what was expected): data
that does not start with an ISA, an ISA with fewer than 16 elements or with delimiters that
cannot be delimiters (letters, digits, blanks, two roles for one character), segments outside
any ST..SE other than the envelope, and an interchange without any transaction set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eligibility_svc.errors import X12SyntaxError

_BOM = "\ufeff"
_ISA_ELEMENTS = 16
_STANDARD_ISA16_SEPARATOR = 103
_BLANKS = " \t\r\n"
# Segment IDs that end a transaction set that has no SE (the reader then records a warning).
_ENVELOPE_IDS = frozenset({"ST", "GS", "GE", "IEA", "ISA"})


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


@dataclass(slots=True, init=False)
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
    group: Segment | None = None  # the GS in force (None when the ST is outside any group)

    def __init__(
        self,
        set_id: str,
        control_number: str,
        implementation: str,
        functional_id: str,
        group_version: str,
        segments: list[Segment],
        delimiters: Delimiters,
        warnings: list[str] | None = None,
        group: Segment | None = None,
    ) -> None:
        self.set_id = set_id
        self.control_number = control_number
        self.implementation = implementation
        self.functional_id = functional_id
        self.group_version = group_version
        self.segments = segments
        self.delimiters = delimiters
        self.warnings = [] if warnings is None else warnings
        self.group = group


@dataclass(slots=True, init=False)
class Interchange:
    """An ISA..IEA interchange (or what there is of one)."""

    delimiters: Delimiters
    isa: Segment
    transactions: list[Transaction]
    warnings: list[str] = field(default_factory=list)

    def __init__(
        self,
        delimiters: Delimiters,
        isa: Segment,
        transactions: list[Transaction],
        warnings: list[str] | None = None,
    ) -> None:
        self.delimiters = delimiters
        self.isa = isa
        self.transactions = transactions
        self.warnings = [] if warnings is None else warnings

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
    """Read the delimiters from the ISA at the start of ``text`` (blanks before it are skipped).

    Returns the delimiters and the offset just past the ISA's segment terminator.  Raises
    ``X12SyntaxError`` (position 1) when there is no ISA or its delimiters are unusable.
    """
    start = len(text) - len(text.lstrip(_BLANKS))
    if text[start : start + 3] != "ISA":
        got = text[start : start + 3] or "nothing"
        raise X12SyntaxError(f"the interchange starts with {got!r}", position=1, expected="an ISA segment")
    if len(text) < start + 4:
        raise X12SyntaxError("the ISA is cut off", position=1, segment_id="ISA", expected="16 elements")
    element = text[start + 3]
    if element.isalnum() or element in _BLANKS:
        raise X12SyntaxError(
            f"the element separator {element!r} is a letter, digit or blank",
            position=1,
            segment_id="ISA",
            expected="a punctuation character after 'ISA'",
        )
    before_isa16 = _isa16_separator(text, start, element)
    if before_isa16 < 0:
        raise X12SyntaxError("the ISA has fewer than 16 elements", position=1, segment_id="ISA", expected="16 elements")
    if len(text) < before_isa16 + 3:
        raise X12SyntaxError("the ISA is cut off", position=1, segment_id="ISA", expected="ISA16 and a terminator")
    component = text[before_isa16 + 1]
    terminator = text[before_isa16 + 2]
    isa11 = text[start:before_isa16].split(element)[11]
    key = (element, component, terminator, isa11)
    delimiters = _KNOWN_DELIMITERS.get(key)
    if delimiters is None:
        _check_delimiters(element, component, terminator)
        delimiters = Delimiters(element, component, terminator, _repetition(isa11, element, terminator))
        if len(_KNOWN_DELIMITERS) < _KNOWN_DELIMITERS_SIZE:
            _KNOWN_DELIMITERS[key] = delimiters
    return delimiters, before_isa16 + 3


# Delimiters are immutable and interchanges repeat the same few sets: each is checked and built once.
_KNOWN_DELIMITERS: dict[tuple[str, str, str, str], Delimiters] = {}
_KNOWN_DELIMITERS_SIZE = 64


def _isa16_separator(text: str, start: int, element: str) -> int:
    """Offset of the element separator in front of ISA16, or -1 when the ISA has fewer elements."""
    # Fast path, the 106-character ISA: exactly 16 separators up to offset 103, the last one there.
    standard = start + _STANDARD_ISA16_SEPARATOR
    if text[standard : standard + 1] == element and text.count(element, start, standard + 1) == _ISA_ELEMENTS:
        return standard
    offset = start + 3  # the separator before ISA01
    for _ in range(_ISA_ELEMENTS - 1):
        offset = text.find(element, offset + 1)
        if offset < 0:
            return -1
    return offset


def _check_delimiters(element: str, component: str, terminator: str) -> None:
    """ISA16 and the terminator must be characters that can delimit, each with one role."""
    if component.isalnum() or component in _BLANKS or component == element:
        raise X12SyntaxError(
            f"ISA16 component separator {component!r} cannot be a delimiter",
            position=1,
            segment_id="ISA",
            expected="one punctuation character in ISA16, different from the element separator",
        )
    if terminator.isalnum() or terminator in " \t" or terminator in (element, component):
        raise X12SyntaxError(
            f"the character after ISA16 ({terminator!r}) cannot be the segment terminator",
            position=1,
            segment_id="ISA",
            expected="a one-character ISA16 followed by the segment terminator",
        )


def _repetition(isa11: str, element: str, terminator: str) -> str | None:
    """ISA11 is a repetition separator in 00501 and the standards identifier ``U`` before it."""
    if len(isa11) != 1 or isa11.isalnum() or isa11 in (element, terminator) or isa11 in _BLANKS:
        return None
    return isa11


def split_segments(text: str, delimiters: Delimiters) -> list[Segment]:
    """Every segment of ``text`` (which starts with the ISA), blanks between segments dropped.

    The ISA is cut off by counting its 16 elements, not at the terminator, so an ISA whose
    padding happens to contain the terminator character still reads as one segment.
    """
    head = text.lstrip(_BLANKS)
    if head.startswith("ISA") and head[3:4] == delimiters.element:
        before_isa16 = _isa16_separator(head, 0, delimiters.element)
        if before_isa16 >= 0:
            return _split(head, delimiters, before_isa16 + 3)
    return _split(head, delimiters, 0)


def _split(text: str, delimiters: Delimiters, isa_end: int) -> list[Segment]:
    """Segments of ``text``; ``text[:isa_end]`` is the ISA with its terminator (0: no ISA)."""
    element, terminator = delimiters.element, delimiters.segment
    segments: list[Segment] = []
    pieces = text.split(terminator)
    if isa_end:
        isa = text[:isa_end].lstrip(_BLANKS)
        segments.append(Segment(isa[:-1].split(element), 1))
        # Usually the first terminator ends the ISA; only odd ISA padding needs the slower cut.
        pieces = pieces[1:] if len(pieces[0]) == isa_end - 1 else text[isa_end:].split(terminator)
    # Comprehensions rather than an append loop: this runs once per segment on the hot path.
    raws = [raw for piece in pieces if (raw := piece.strip(_BLANKS))]
    segments += [Segment(raw.split(element), position) for position, raw in enumerate(raws, len(segments) + 1)]
    return segments


@dataclass(slots=True, init=False)
class RawTransaction:
    """One ST..SE transaction set as ``read_elements`` finds it: rows ``start:end`` of the interchange."""

    set_id: str  # ST01
    control_number: str  # ST02
    implementation: str  # ST03 if present, else GS08
    functional_id: str  # GS01
    group_version: str  # GS08
    start: int  # row index of the ST (its position is start + 1)
    end: int  # row index just past the SE (or the last segment of a cut-off transaction)
    group: int  # row index of the GS in force, -1 when the ST is outside any group
    warnings: list[str] = field(default_factory=list)

    def __init__(
        self,
        set_id: str,
        control_number: str,
        implementation: str,
        functional_id: str,
        group_version: str,
        start: int,
        end: int,
        group: int,
        warnings: list[str] | None = None,
    ) -> None:
        self.set_id = set_id
        self.control_number = control_number
        self.implementation = implementation
        self.functional_id = functional_id
        self.group_version = group_version
        self.start = start
        self.end = end
        self.group = group
        self.warnings = [] if warnings is None else warnings


@dataclass(slots=True, init=False)
class RawInterchange:
    """An interchange as element lists: ``rows[i]`` is segment position ``i + 1`` (``rows[0]`` the ISA)."""

    delimiters: Delimiters
    rows: list[list[str]]
    transactions: list[RawTransaction]
    warnings: list[str] = field(default_factory=list)

    def __init__(
        self,
        delimiters: Delimiters,
        rows: list[list[str]],
        transactions: list[RawTransaction],
        warnings: list[str] | None = None,
    ) -> None:
        self.delimiters = delimiters
        self.rows = rows
        self.transactions = transactions
        self.warnings = [] if warnings is None else warnings


def read_interchange(data: bytes | str) -> Interchange:
    """Read one interchange: ISA, its groups and transactions.  Raises ``X12SyntaxError``."""
    raw = read_elements(data)
    segments = [Segment(row, position) for position, row in enumerate(raw.rows, 1)]
    transactions = [
        Transaction(
            set_id=tx.set_id,
            control_number=tx.control_number,
            implementation=tx.implementation,
            functional_id=tx.functional_id,
            group_version=tx.group_version,
            segments=segments[tx.start : tx.end],
            delimiters=raw.delimiters,
            warnings=tx.warnings,
            group=segments[tx.group] if tx.group >= 0 else None,
        )
        for tx in raw.transactions
    ]
    return Interchange(raw.delimiters, segments[0], transactions, raw.warnings)


def read_elements(data: bytes | str) -> RawInterchange:
    """``read_interchange`` without the ``Segment`` objects: the element lists and where each
    transaction set lies among them (the 271 parser's fast path).  Raises ``X12SyntaxError``."""
    text = decode(data)
    delimiters, isa_end = detect_delimiters(text)
    rows = _split_rows(text, delimiters, isa_end)
    interchange = RawInterchange(delimiters, rows, [])
    _assemble(rows, interchange)
    version = element_at(rows[0], 12).strip()
    if version.startswith("005") and delimiters.repetition is None:
        interchange.warnings.append(
            f"ISA11 is {element_at(rows[0], 11)!r} in a {version} interchange: "
            "no repetition separator, repeating elements are read as one value"
        )
    return interchange


def _split_rows(text: str, delimiters: Delimiters, isa_end: int) -> list[list[str]]:
    """``_split`` as element lists; ``text[:isa_end]`` is the ISA with its terminator."""
    element, terminator = delimiters.element, delimiters.segment
    pieces = text.split(terminator)
    isa = text[:isa_end].lstrip(_BLANKS)
    # Usually the first terminator ends the ISA; only odd ISA padding needs the slower cut.
    pieces = pieces[1:] if len(pieces[0]) == isa_end - 1 else text[isa_end:].split(terminator)
    rows = [isa[:-1].split(element)]
    # Comprehensions rather than an append loop: this runs once per segment on the hot path.
    rows += [raw.split(element) for piece in pieces if (raw := piece.strip(_BLANKS))]
    return rows


# Segment IDs that open, close or surround a transaction set: the only rows ``_assemble`` looks at.
_MARK_IDS = _ENVELOPE_IDS | {"SE"}


def _assemble(rows: list[list[str]], interchange: RawInterchange) -> None:
    """Group the rows after the ISA into transactions; envelope oddities become warnings.

    Only the envelope rows (ISA, GS, ST, SE, GE, IEA) are visited: a transaction is everything
    from its ST up to its SE (or the next envelope row, with a warning), and a row of any other
    kind between an SE and the next envelope row is outside any transaction set (an error).
    """
    marks = [index for index, row in enumerate(rows) if row[0] in _MARK_IDS]
    group = -1
    current: RawTransaction | None = None
    outside = 1  # the next row to read while no transaction is open
    for index in marks:
        if index == 0:
            continue  # the ISA itself
        sid = rows[index][0]
        if current is not None:
            if sid == "SE":
                current.end = outside = index + 1
                current = None
                continue
            current.warnings.append(f"transaction {current.control_number} has no SE (segment {index + 1} is {sid})")
            current.end = index
            current = None
        elif index > outside:
            raise _outside(rows, outside)
        if sid == "ST":
            current = _start_transaction(rows, index, group, interchange)
        else:
            group = _envelope_segment(rows, index, group, interchange)
        outside = index + 1
    if current is not None:
        current.warnings.append(f"transaction {current.control_number} is cut off before SE")
        current.end = len(rows)
    elif outside < len(rows):
        raise _outside(rows, outside)
    _check_trailer(rows, interchange)
    if not interchange.transactions:
        raise X12SyntaxError("the interchange holds no ST transaction set", expected="ST ... SE")


def _outside(rows: list[list[str]], index: int) -> X12SyntaxError:
    return X12SyntaxError(
        "this segment is outside any transaction set",
        position=index + 1,
        segment_id=rows[index][0],
        expected="ST, GS, GE or IEA",
    )


def element_at(row: list[str], index: int) -> str:
    """Element ``index`` of an element list (``Segment.el`` for ``read_elements``' rows), ``""`` if absent."""
    return row[index] if index < len(row) else ""


def _start_transaction(rows: list[list[str]], index: int, group: int, interchange: RawInterchange) -> RawTransaction:
    if group < 0:
        interchange.warnings.append(f"segment {index + 1}: ST outside a GS functional group")
    st = rows[index]
    gs = rows[group] if group >= 0 else None
    group_version = element_at(gs, 8) if gs else ""
    transaction = RawTransaction(
        element_at(st, 1),  # set_id
        element_at(st, 2),  # control_number
        element_at(st, 3) or group_version,  # implementation
        element_at(gs, 1) if gs else "",  # functional_id
        group_version,
        index,  # start
        index + 1,  # end, moved on when the SE (or what ends the set) is found
        group,
        [],
    )
    interchange.transactions.append(transaction)
    return transaction


def _envelope_segment(rows: list[list[str]], index: int, group: int, interchange: RawInterchange) -> int:
    """Handle a row outside ST..SE; returns the row index of the GS now in force (-1: none)."""
    sid = rows[index][0]
    if sid == "GS":
        return index
    if sid == "GE":
        return -1
    if sid == "IEA":
        return group
    if sid == "ISA":
        interchange.warnings.append(f"segment {index + 1}: a second ISA; read with the first interchange's delimiters")
        return group
    raise _outside(rows, index)


def _check_trailer(rows: list[list[str]], interchange: RawInterchange) -> None:
    ids = {row[0] for row in rows[-3:]}
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
    parts = value.split(rep)
    # Empty repeats (``1^^33``) carry nothing; filter only when there is one (rare, and slow).
    return [part for part in parts if part] if "" in parts else parts


def split_components(value: str, delimiters: Delimiters) -> list[str]:
    """Components of a composite element (``EB13``: ``HC:99213`` → ``["HC", "99213"]``)."""
    return value.split(delimiters.component) if value else []
