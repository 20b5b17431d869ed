"""Parse 005010X279A1 271 transactions into the loop classes of ``loops271``.

Pure: a ``reader.Transaction`` (or the bytes of an interchange) in, ``Transaction271`` out.

The loop tree is built from the HL segments (HL03 20/21/22/23, HL02 parent links).  Within an
HL, ``NM1`` starts the 2100 loop, ``EB`` starts a 2110, ``III`` belongs to the current 2110
(2115), ``LS``..``LE`` bracket 2120 entities (``NM1``/``N3``/``N4``/``PER``/``PRV``), ``AAA``
attaches to the loop it appears in (2000A before the NM1, 2100A/B/C/D, 2110C/D), ``TRN`` to
2000C/2000D, and ``REF``/``DTP``/``MSG``/``HSD`` to the current 2110, else to the 2100.

Tolerance: what real payers get wrong but can still be placed (a parent HL that does not
exist, HL04 0 with children, a missing 2100A, NM1*IL in 2100D, LS/LE after the last EB, a
wrong SE01, an unparseable date ...) becomes a human-readable entry in
``Transaction271.warnings``.  Only data that cannot be placed at all raises, always an
``X12Error`` subclass naming the segment position, its ID and what was expected:

* ``X12WrongTransaction``: ST01 is not 271;
* ``X12UnsupportedVersion``: ST03 (or GS08 without ST03) is not 005010X279...;
* ``X12StructureError``: a segment that cannot occur in a 271, or one with no loop to go to
  (EB before any subscriber HL, a second DMG in one 2100C ...);
* ``X12SyntaxError``: a value that is not of its type (a non-numeric EB07: we do not guess).

Speed: ``parse_271`` reads the interchange as element lists (``reader.read_elements``: no
per-segment objects; a handler gets the list and its segment position), one dict lookup per segment
dispatches to a small handler, values are read by index and the slotted dataclasses are built
positionally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypeVar

from eligibility_svc.errors import (
    X12StructureError,
    X12SyntaxError,
    X12UnsupportedVersion,
    X12WrongTransaction,
)
from eligibility_svc.x12.loops271 import (
    Aaa,
    Address,
    Bht,
    CompositeProcedure,
    Diagnosis,
    Dmg,
    Dtp,
    Eb,
    Hl,
    Hsd,
    Iii,
    Ins,
    Loop2000A,
    Loop2000B,
    Loop2000C,
    Loop2000D,
    Loop2100A,
    Loop2100B,
    Loop2100C,
    Loop2100D,
    Loop2100Member,
    Loop2110,
    Loop2110C,
    Loop2110D,
    Loop2115C,
    Loop2115D,
    Loop2120,
    Loop2120C,
    Loop2120D,
    Mpi,
    Msg,
    Nm1,
    Per,
    Prv,
    Ref,
    Transaction271,
    Trn,
)
from eligibility_svc.x12.reader import (
    Delimiters,
    RawInterchange,
    Transaction,
    read_elements,
    split_components,
    split_repeats,
)

__all__ = ["SUPPORTED_IMPLEMENTATION", "parse_271", "parse_elements", "parse_transaction"]

SUPPORTED_IMPLEMENTATION = "005010X279A1"
_FAMILY = "005010X279"
_SET_NAMES = {
    "270": "270 (eligibility inquiry)",
    "276": "276 (claim status request)",
    "277": "277 (claim status response)",
    "835": "835 (payment advice)",
    "837": "837 (claim)",
    "997": "997 (functional acknowledgment)",
    "999": "999 (implementation acknowledgment)",
}
_NUMBER_CHARS = frozenset("0123456789.-")
# _PADS[n] is n empty strings: padding a short segment costs one list concatenation.
_PADS = [[""] * size for size in range(20)]
_DECIMALS: dict[str, Decimal] = {}
_DECIMAL_MEMO_SIZE = 4096
_from_iso = date.fromisoformat
_LEVEL_NAMES = {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D"}
# NM101 values the TR3 allows for each level's 2100 name; anything else is kept with a warning.
_ENTITY_CODES = {
    "20": frozenset({"2B", "36", "GP", "P5", "PR"}),
    "21": frozenset({"1P", "2B", "36", "80", "FA", "GP", "P5", "PR"}),
    "22": frozenset({"IL"}),
    "23": frozenset({"03"}),
}

_Hierarchy = Loop2000A | Loop2000B | Loop2000C | Loop2000D
_NameLoop = Loop2100A | Loop2100B | Loop2100Member
_P = TypeVar("_P", Loop2000A, Loop2000B, Loop2000C)


class _State:
    """Where the parser is: the open loop at each level and the transaction being filled."""

    __slots__ = (
        "benefit",
        "delimiters",
        "entity",
        "hl",
        "hls",
        "in_ls",
        "level",
        "member",
        "name_loop",
        "parents",
        "receiver",
        "seen_bht",
        "source",
        "subscriber",
        "suffix",
        "trace_loop",
        "tx",
        "warnings",
    )

    def __init__(self, tx: Transaction271, delimiters: Delimiters) -> None:
        self.tx = tx
        self.warnings = tx.warnings
        self.delimiters = delimiters
        self.level = ""  # HL03 of the open HL; "" before the first HL
        self.suffix = "C"  # "C" under a 2000C, "D" under a 2000D: picks 2110C/2110D ...
        self.hl: Hl | None = None  # the open HL
        self.hls: dict[str, _Hierarchy] = {}
        self.parents: set[str] = set()  # HL01 of every HL that turned out to have children
        self.source: Loop2000A | None = None
        self.receiver: Loop2000B | None = None
        self.subscriber: Loop2000C | None = None
        self.trace_loop: Loop2000C | Loop2000D | None = None
        self.name_loop: _NameLoop | None = None  # the 2100 of the open HL
        self.member: Loop2100Member | None = None  # the 2100C/2100D of the open HL
        self.benefit: Loop2110 | None = None  # the open 2110
        self.entity: Loop2120 | None = None  # the open 2120 (after its NM1)
        self.in_ls = False
        self.seen_bht = False

    def warn(self, row: list[str], position: int, message: str) -> None:
        self.warnings.append(f"segment {position} ({row[0]}): {message}")


_Handler = Callable[[_State, list[str], int], None]


# --- entry points -----------------------------------------------------------------------------


def parse_271(data: bytes | str) -> list[Transaction271]:
    """Every 271 transaction of one interchange, in file order.

    Interchange-level oddities (no IEA, ISA11 ``U`` in 00501 ...) are copied to the front of
    each transaction's warnings.  Raises only ``X12Error`` subclasses, for the first
    transaction that cannot be parsed (a 270 among 271s raises ``X12WrongTransaction``).
    """
    return parse_elements(read_elements(data))


def parse_elements(interchange: RawInterchange) -> list[Transaction271]:
    """``parse_271`` of an interchange already read (``read_elements``)."""
    rows = interchange.rows
    parsed = []
    for transaction in interchange.transactions:
        start, end = transaction.start, transaction.end
        # Row i is segment position i + 1: the positions of rows start..end are start+1..end.
        result = _parse(transaction, interchange.delimiters, rows[start:end], range(start + 1, end + 1))
        result.warnings[:0] = interchange.warnings
        parsed.append(result)
    return parsed


def parse_transaction(tx: Transaction) -> Transaction271:
    """Parse one ST..SE transaction set that the reader produced (see the module docstring)."""
    segments = tx.segments
    return _parse(tx, tx.delimiters, [s.elements for s in segments], [s.position for s in segments])


class _Envelope(Protocol):
    """What the parser reads of a transaction set's envelope (``Transaction`` or ``RawTransaction``)."""

    @property
    def set_id(self) -> str: ...
    @property
    def control_number(self) -> str: ...
    @property
    def implementation(self) -> str: ...
    @property
    def functional_id(self) -> str: ...
    @property
    def group_version(self) -> str: ...
    @property
    def warnings(self) -> list[str]: ...


def _parse(tx: _Envelope, delimiters: Delimiters, rows: list[list[str]], positions: Sequence[int]) -> Transaction271:
    """``rows`` are the ST..SE element lists and ``positions`` their segment positions."""
    _check_set(tx, positions[0])
    result = Transaction271(tx.control_number, tx.implementation, Bht("", "", "", None))
    result.warnings.extend(tx.warnings)
    _check_version(tx, positions[0], result.warnings)
    state = _State(result, delimiters)
    has_se = len(rows) > 1 and rows[-1][0] == "SE"
    body = slice(1, -1 if has_se else None)
    _run(state, rows[body], positions[body])
    _finish(state, rows, positions, has_se)
    return result


def _run(state: _State, rows: list[list[str]], positions: Sequence[int]) -> None:
    for row, position in zip(rows, positions, strict=True):
        if not _handled(state, row, position):
            _unknown(state, row, position)(state, row, position)


def _handled(state: _State, row: list[str], position: int) -> bool:
    """``_HANDLERS[row[0]]`` applied; False for an ID not in the table.  The commonest IDs are written
    out: compiled, each is then a direct call, where a call through the table goes through the
    handler's Python entry point.  ``tests/test_parse271.py`` holds them to the table."""
    sid = row[0]
    if sid == "EB":
        _eb(state, row, position)
    elif sid == "NM1":
        _nm1(state, row, position)
    elif sid == "HL":
        _hl(state, row, position)
    elif sid == "DTP":
        _dtp(state, row, position)
    elif sid == "DMG":
        _dmg(state, row, position)
    elif sid == "TRN":
        _trn(state, row, position)
    elif sid == "REF":
        _ref(state, row, position)
    elif sid == "MSG":
        _msg(state, row, position)
    else:
        handler = _HANDLERS.get(sid)
        if handler is None:
            return False
        handler(state, row, position)
    return True


def _unknown(state: _State, row: list[str], position: int) -> _Handler:
    """The handler for a lower-case segment ID; raises for an ID that has no place in a 271."""
    sid = row[0]
    upper = sid.strip().upper()
    handler = _HANDLERS.get(upper)
    if handler is None:
        raise X12StructureError(
            f"segment ID {sid!r} cannot occur inside a 271",
            position=position,
            segment_id=sid,
            expected="one of " + ", ".join(sorted(_HANDLERS)),
        )
    state.warn(row, position, f"segment ID {sid!r} is not upper case; read as {upper}")
    return handler


# --- envelope checks ----------------------------------------------------------------------------


def _check_set(tx: _Envelope, position: int) -> None:
    if tx.set_id != "271":
        got = _SET_NAMES.get(tx.set_id, repr(tx.set_id))
        raise X12WrongTransaction(
            f"transaction {tx.control_number!r} is a {got}, not a 271 eligibility response",
            position=position,
            segment_id="ST",
            expected="ST*271",
        )


def _check_version(tx: _Envelope, position: int, warnings: list[str]) -> None:
    """ST03 wins over GS08 (a 4010 envelope around a 5010 transaction is parsed as 5010)."""
    version = tx.implementation.strip().upper()
    if not version.startswith(_FAMILY):
        found = repr(tx.implementation) if version else "not stated (no ST03 and no GS08)"
        raise X12UnsupportedVersion(
            f"transaction {tx.control_number!r} is version {found}; "
            f"only {SUPPORTED_IMPLEMENTATION} (the 5010 eligibility response) is supported",
            position=position,
            segment_id="ST",
            expected=SUPPORTED_IMPLEMENTATION,
            details={"version": tx.implementation},
        )
    where = f"segment {position} (ST)"
    if version != SUPPORTED_IMPLEMENTATION:
        warnings.append(f"{where}: version {tx.implementation!r} read as {SUPPORTED_IMPLEMENTATION}")
    if tx.group_version and tx.group_version.strip().upper() != version:
        warnings.append(f"{where}: GS08 says {tx.group_version!r} but ST03 says {tx.implementation!r}; read as ST03")
    if tx.functional_id != "HB":
        warnings.append(f"{where}: GS01 is {tx.functional_id!r}, expected HB for a 271")


def _finish(state: _State, rows: list[list[str]], positions: Sequence[int], has_se: bool) -> None:
    """End of transaction: close the open HL, then check BHT, HL04 promises and SE."""
    tx = state.tx
    _close_hl(state)
    tx.segment_count = len(rows)
    st, st_position = rows[0], positions[0]
    if not state.seen_bht:
        state.warn(st, st_position, "no BHT follows the ST; the header is empty")
    if not tx.sources:
        state.warn(st, st_position, "the transaction has no information source level (HL*..*20)")
    for loop in state.hls.values():
        if loop.hl.has_children == "1" and loop.hl.id not in state.parents:
            tx.warnings.append(
                f"segment {loop.hl.position} (HL): HL {loop.hl.id!r} says it has children (HL04 1) but none follow"
            )
    if has_se:
        _check_se(state, rows[-1], positions[-1], len(rows))


def _check_se(state: _State, se: list[str], position: int, counted: int) -> None:
    declared = _el(se, 1)
    if declared != str(counted) and declared.lstrip("0") != str(counted):
        state.warn(se, position, f"SE01 says {declared!r} segments but ST..SE holds {counted}")
    if _el(se, 2) != state.tx.control_number:
        state.warn(se, position, f"SE02 {_el(se, 2)!r} does not match ST02 {state.tx.control_number!r}")


def _el(row: list[str], index: int) -> str:
    """Element ``index`` (1-based as in the TR3), ``""`` if absent."""
    return row[index] if index < len(row) else ""


# --- element values ------------------------------------------------------------------------------


def _fields(state: _State, row: list[str], position: int, count: int) -> list[str]:
    """The elements padded to ``count`` (ID at 0); extra non-empty elements are reported, not kept."""
    elements = row
    size = len(elements)
    if size == count + 1:
        return elements
    if size <= count:
        return elements + _PADS[count + 1 - size]
    if any(elements[count + 1 :]):
        state.warn(row, position, f"elements after {row[0]}{count:02d} are not used in a 271 and were dropped")
    return elements


def _decimal(row: list[str], position: int, index: int, value: str) -> Decimal | None:
    """An X12 numeric (R/N2) value; ``None`` when empty.  Anything else is a syntax error."""
    # Payers repeat the same few amounts ("0", "25", ".2") row after row; Decimal is immutable,
    # so a bounded memo of the values already checked skips both the parse and the checks.
    number = _DECIMALS.get(value)
    if number is not None:
        return number
    number = _checked_decimal(row, position, index, value)
    if number is not None and len(_DECIMALS) < _DECIMAL_MEMO_SIZE:
        _DECIMALS[value] = number
    return number


def _checked_decimal(row: list[str], position: int, index: int, value: str) -> Decimal | None:
    if not value:
        return None
    number = None
    # Decimal() alone would also take " 1", "1_000", "1E3" and "NaN"; X12 numbers are plainer.
    if _NUMBER_CHARS.issuperset(value):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():  # NaN when a caller's context does not trap
        raise X12SyntaxError(
            f"{row[0]}{index:02d} is {value!r}, not a number",
            position=position,
            segment_id=row[0],
            expected=f"a decimal number in {row[0]}{index:02d}",
        )
    return number


def _date(value: str) -> date | None:
    """CCYYMMDD as a date, or ``None`` when it is not one."""
    # fromisoformat reads the basic CCYYMMDD form since 3.11; the guard keeps it to exactly that.
    if len(value) == 8 and value.isdigit() and value.isascii():
        try:
            return _from_iso(value)
        except ValueError:
            return None
    return None


def _period(state: _State, row: list[str], position: int, fmt: str, value: str) -> tuple[date | None, date | None]:
    """Start and end of a D8 or RD8 value; a value that is not one is kept raw with a warning."""
    if fmt == "D8":
        single = _date(value)
        if single is not None:
            return single, single
        if not value:
            state.warn(row, position, "D8 date is empty")
            return None, None
    elif fmt == "RD8" and len(value) == 17 and value[8] == "-":
        start, end = _date(value[:8]), _date(value[9:])
        if start is not None and end is not None:
            if end < start:
                state.warn(row, position, f"the range {value!r} ends before it starts")
            return start, end
    elif fmt not in ("D8", "RD8"):
        state.warn(row, position, f"date format {fmt!r} is not D8 or RD8; {value!r} kept as sent")
        return None, None
    state.warn(row, position, f"{value!r} is not a valid {fmt} date; kept as sent")
    return None, None


# --- the header and the hierarchy -------------------------------------------------------------------


def _bht(state: _State, row: list[str], position: int) -> None:
    if state.seen_bht or state.hl is not None:
        raise X12StructureError(
            "a BHT after the header", position=position, segment_id="BHT", expected="one BHT right after ST"
        )
    e = row if len(row) == 6 else _fields(state, row, position, 5)
    when = _date(e[4])
    if e[4] and when is None:
        state.warn(row, position, f"BHT04 {e[4]!r} is not a CCYYMMDD date; kept as sent")
    state.tx.header = Bht(e[1], e[2], e[3], when, e[5], e[4])
    state.seen_bht = True


def _hl(state: _State, row: list[str], position: int) -> None:
    _close_hl(state)
    e = row if len(row) == 5 else _fields(state, row, position, 4)
    hl = Hl(e[1], e[2], e[3], e[4], position)
    opener = _HL_OPENERS.get(hl.level)
    if opener is None:
        raise X12StructureError(
            f"HL03 level code {hl.level!r} does not occur in a 271",
            position=position,
            segment_id="HL",
            expected="HL03 20, 21, 22 or 23",
        )
    if hl.id in state.hls:
        state.warn(row, position, f"HL01 {hl.id!r} is used twice; later children attach to this one")
    state.hls[hl.id] = opener(state, row, hl)
    state.hl = hl
    state.level = hl.level


def _close_hl(state: _State) -> None:
    """Leave the open HL: report a missing 2100 name and an LS without LE."""
    if state.in_ls:
        _close_ls(state)
    state.entity = None
    hl, loop = state.hl, state.name_loop
    if hl is not None and loop is not None and loop.name is None:
        state.warnings.append(
            f"segment {hl.position} (HL): {_LEVEL_NAMES[hl.level]} HL {hl.id!r} has no "
            f"{_NAME_LOOP_IDS[hl.level]} name (NM1); left empty"
        )
    state.benefit = None
    state.name_loop = None
    state.member = None


def _close_ls(state: _State) -> None:
    benefit = state.benefit
    if state.in_ls and benefit is not None:
        state.warnings.append(f"segment {benefit.eb.position} (EB): LS without a closing LE in this 2110{state.suffix}")
    state.in_ls = False
    state.entity = None


def _parent(state: _State, row: list[str], hl: Hl, kind: type[_P], latest: _P | None) -> _P:
    """The loop HL02 points to, or (with a warning) the latest loop of the right level."""
    position = hl.position
    parent = state.hls.get(hl.parent_id)
    if isinstance(parent, kind):
        found: _P = parent
    elif latest is not None:
        found = latest
        what = "does not exist" if parent is None else f"is a {_LEVEL_NAMES[parent.hl.level]} HL"
        state.warn(
            row,
            position,
            f"parent HL {hl.parent_id!r} of {_LEVEL_NAMES[hl.level]} HL {hl.id!r} {what}; "
            f"attached to HL {latest.hl.id!r}",
        )
    else:
        raise X12StructureError(
            f"{_LEVEL_NAMES[hl.level]} HL {hl.id!r} has no {_PARENT_NAMES[hl.level]} to belong to",
            position=position,
            segment_id="HL",
            expected=f"an {_PARENT_NAMES[hl.level]} HL before it",
        )
    if found.hl.has_children == "0" and found.hl.id not in state.parents:
        state.warn(row, position, f"HL {found.hl.id!r} says it has no children (HL04 0) but HL {hl.id!r} is its child")
    state.parents.add(found.hl.id)
    return found


def _open_source(state: _State, row: list[str], hl: Hl) -> Loop2000A:
    if hl.parent_id:
        state.warn(row, hl.position, f"HL02 {hl.parent_id!r} on an information source HL (20), which has no parent")
    # Positional list literals: cheaper than the dataclasses' default factories (same values).
    loop = Loop2000A(hl, [], Loop2100A(None, [], []), [])
    state.tx.sources.append(loop)
    state.source = loop
    state.receiver = state.subscriber = state.trace_loop = None
    state.name_loop = loop.source
    return loop


def _open_receiver(state: _State, row: list[str], hl: Hl) -> Loop2000B:
    parent = _parent(state, row, hl, Loop2000A, state.source)
    loop = Loop2000B(hl, Loop2100B(None, [], None, [], None), [])
    parent.receivers.append(loop)
    state.receiver = loop
    state.subscriber = state.trace_loop = None
    state.name_loop = loop.receiver
    return loop


def _open_subscriber(state: _State, row: list[str], hl: Hl) -> Loop2000C:
    parent = _parent(state, row, hl, Loop2000B, state.receiver)
    loop = Loop2000C(hl, [], Loop2100C(None, [], None, [], None, None, None, [], [], [], None), [])
    parent.subscribers.append(loop)
    state.subscriber = state.trace_loop = loop
    state.name_loop = state.member = loop.subscriber
    state.suffix = "C"
    return loop


def _open_dependent(state: _State, row: list[str], hl: Hl) -> Loop2000D:
    parent = _parent(state, row, hl, Loop2000C, state.subscriber)
    loop = Loop2000D(hl, [], Loop2100D(None, [], None, [], None, None, None, [], [], [], None))
    parent.dependents.append(loop)
    state.trace_loop = loop
    state.name_loop = state.member = loop.dependent
    state.suffix = "D"
    return loop


def _trn(state: _State, row: list[str], position: int) -> None:
    loop = state.trace_loop
    if loop is None or state.member is None:
        raise _misplaced(row, position, "a TRN in a subscriber (2000C) or dependent (2000D) level")
    if state.member.name is not None:
        state.warn(row, position, f"TRN after the NM1; kept with 2000{state.suffix}")
    e = row if len(row) == 5 else _fields(state, row, position, 4)
    loop.traces.append(Trn(e[1], e[2], e[3], e[4], position))


def _misplaced(row: list[str], position: int, expected: str) -> X12StructureError:
    return X12StructureError(
        "this segment has no loop to belong to here",
        position=position,
        segment_id=row[0],
        expected=expected,
    )


# --- 2100 names and the segments around them ------------------------------------------------------------


def _nm1(state: _State, row: list[str], position: int) -> None:
    size = len(row)
    e = row + _PADS[11 - size] if size <= 11 else _fields(state, row, position, 10)
    name = Nm1(e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], position)
    if state.benefit is not None:
        _open_entity(state, row, position, name, state.benefit)
        return
    loop, hl = state.name_loop, state.hl
    if loop is None or hl is None:
        raise _misplaced(row, position, "an NM1 after an HL")
    if loop.name is not None:
        raise X12StructureError(
            f"a second NM1 in {_NAME_LOOP_IDS[hl.level]}",
            position=position,
            segment_id="NM1",
            expected=f"one NM1 per {_NAME_LOOP_IDS[hl.level]} (a new HL before the next name)",
        )
    if name.entity_id not in _ENTITY_CODES[hl.level]:
        allowed = ", ".join(sorted(_ENTITY_CODES[hl.level]))
        state.warn(row, position, f"NM101 {name.entity_id!r} in {_NAME_LOOP_IDS[hl.level]}; expected {allowed}")
    loop.name = name


def _open_entity(state: _State, row: list[str], position: int, name: Nm1, benefit: Loop2110) -> None:
    """An NM1 inside a 2110 starts a 2120 benefit related entity (normally after LS)."""
    if not state.in_ls:
        state.warn(row, position, f"NM1 after an EB without LS; read as a 2120{state.suffix} benefit related entity")
    entity: Loop2120 = Loop2120C(name) if state.suffix == "C" else Loop2120D(name)
    benefit.related_entities.append(entity)
    state.entity = entity


def _address_holder(state: _State, row: list[str], position: int) -> Loop2120 | Loop2100B | Loop2100Member:
    """The loop an N3 or N4 belongs to: the open 2120, else the 2100B/C/D."""
    if state.entity is not None:
        return state.entity
    if state.benefit is None and state.member is not None:
        return state.member
    if state.benefit is None and state.receiver is not None and state.level == "21":
        return state.receiver.receiver
    raise _misplaced(row, position, f"{row[0]} in 2100B, 2100C, 2100D or after an NM1 between LS and LE")


def _n3(state: _State, row: list[str], position: int) -> None:
    holder = _address_holder(state, row, position)
    e = row if len(row) == 3 else _fields(state, row, position, 2)
    address = holder.address
    if address is None:
        holder.address = Address(e[1], e[2])
    elif address.line1 or address.line2:
        raise _repeated(row, position, "one N3 per loop")
    else:
        address.line1, address.line2 = e[1], e[2]


def _n4(state: _State, row: list[str], position: int) -> None:
    holder = _address_holder(state, row, position)
    e = row if len(row) == 8 else _fields(state, row, position, 7)
    address = holder.address
    if address is None:
        address = holder.address = Address()
    elif address.city or address.state or address.postal_code or address.country or address.location_id:
        raise _repeated(row, position, "one N4 per loop")
    address.city, address.state, address.postal_code, address.country = e[1], e[2], e[3], e[4]
    address.location_qualifier, address.location_id, address.country_subdivision = e[5], e[6], e[7]


def _repeated(row: list[str], position: int, expected: str) -> X12StructureError:
    return X12StructureError(
        f"a second {row[0]} in the same loop", position=position, segment_id=row[0], expected=expected
    )


def _per(state: _State, row: list[str], position: int) -> None:
    e = row if len(row) == 9 else _fields(state, row, position, 8)
    numbers = [(e[i], e[i + 1]) for i in (3, 5, 7) if e[i] or e[i + 1]]
    contact = Per(e[1], e[2], numbers)
    if state.entity is not None:
        state.entity.contacts.append(contact)
    elif state.benefit is None and state.level == "20" and state.source is not None:
        state.source.source.contacts.append(contact)
    else:
        raise _misplaced(row, position, "PER in 2100A or in a 2120 entity between LS and LE")


def _prv(state: _State, row: list[str], position: int) -> None:
    e = row if len(row) == 4 else _fields(state, row, position, 3)
    provider = Prv(e[1], e[2], e[3])
    holder: Loop2120 | Loop2100B | Loop2100Member
    if state.entity is not None:
        holder = state.entity
    elif state.benefit is None and state.member is not None:
        holder = state.member
    elif state.benefit is None and state.level == "21" and state.receiver is not None:
        holder = state.receiver.receiver
    else:
        raise _misplaced(row, position, "PRV in 2100B, 2100C, 2100D or a 2120 entity")
    if holder.provider is not None:
        raise _repeated(row, position, "one PRV per loop")
    holder.provider = provider


def _ref(state: _State, row: list[str], position: int) -> None:
    e = row if len(row) == 4 else _fields(state, row, position, 3)
    ref = Ref(e[1], e[2], e[3], position)
    benefit = state.benefit
    if benefit is not None:
        if state.in_ls:
            state.warn(row, position, f"REF between LS and LE; kept with 2110{state.suffix}")
        benefit.refs.append(ref)
    elif state.member is not None:
        state.member.refs.append(ref)
    elif state.level == "21" and state.receiver is not None:
        state.receiver.receiver.refs.append(ref)
    else:
        raise _misplaced(row, position, "REF in 2100B, 2100C, 2100D, 2110C or 2110D")


def _dtp(state: _State, row: list[str], position: int) -> None:
    e = row
    if len(e) != 4:
        e = _fields(state, row, position, 3)
    fmt, value = e[2], e[3]
    start = end = _date(value) if fmt == "D8" else None
    if start is None:
        start, end = _period(state, row, position, fmt, value)
    dtp = Dtp(e[1], fmt, value, start, end, position)
    benefit = state.benefit
    if benefit is not None:
        if state.in_ls:
            state.warn(row, position, f"DTP between LS and LE; kept with 2110{state.suffix}")
        benefit.dates.append(dtp)
    elif state.member is not None:
        state.member.dates.append(dtp)
    else:
        raise _misplaced(row, position, "DTP in 2100C, 2100D, 2110C or 2110D")


def _aaa(state: _State, row: list[str], position: int) -> None:
    e = row if len(row) == 5 else _fields(state, row, position, 4)
    if e[2]:
        state.warn(row, position, f"AAA02 {e[2]!r} is not used in a 271 and was dropped")
    benefit, level = state.benefit, state.level
    if benefit is not None:
        if state.in_ls:
            state.warn(row, position, f"AAA between LS and LE; kept with 2110{state.suffix}")
        benefit.errors.append(Aaa("2110" + state.suffix, e[1], e[3], e[4], position))
        return
    loop = state.name_loop
    if loop is None or state.hl is None:
        raise _misplaced(row, position, "AAA after an HL")
    if level == "20" and loop.name is None and state.source is not None:
        state.source.errors.append(Aaa("2000A", e[1], e[3], e[4], position))
        return
    loop_id = _NAME_LOOP_IDS[level]
    if loop.name is None:
        state.warn(row, position, f"AAA before the NM1 of {loop_id}; kept with {loop_id}")
    loop.errors.append(Aaa(loop_id, e[1], e[3], e[4], position))


# --- 2100C/2100D member segments ----------------------------------------------------------------------


def _member(state: _State, row: list[str], position: int) -> Loop2100Member:
    member = state.member
    if member is None:
        raise _misplaced(row, position, f"{row[0]} in 2100C or 2100D")
    if state.benefit is not None:
        state.warn(row, position, f"{row[0]} after an EB; kept with 2100{state.suffix}")
    return member


def _dmg(state: _State, row: list[str], position: int) -> None:
    member = _member(state, row, position)
    if member.demographics is not None:
        raise _repeated(row, position, "one DMG per 2100C/2100D")
    e = row if len(row) == 4 else _fields(state, row, position, 3)
    born = _date(e[2]) if e[1] == "D8" else None
    if e[2] and born is None:
        state.warn(row, position, f"birth date {e[2]!r} ({e[1] or 'no format'}) is not a valid D8 date; kept as sent")
    member.demographics = Dmg(e[1], e[2], born, e[3])


def _ins(state: _State, row: list[str], position: int) -> None:
    member = _member(state, row, position)
    if member.relationship is not None:
        raise _repeated(row, position, "one INS per 2100C/2100D")
    e = row if len(row) == 18 else _fields(state, row, position, 17)
    if any(e[5:17]):
        state.warn(row, position, "INS05 to INS16 are not used in a 271 and were dropped")
    member.relationship = Ins(e[1], e[2], e[3], e[4], e[17])


def _hi(state: _State, row: list[str], position: int) -> None:
    member = _member(state, row, position)
    delimiters = state.delimiters
    for value in row[1:]:
        if value:
            parts = split_components(value, delimiters)
            member.diagnoses.append(Diagnosis(parts[0], parts[1] if len(parts) > 1 else ""))


def _mpi(state: _State, row: list[str], position: int) -> None:
    member = _member(state, row, position)
    if member.military is not None:
        raise _repeated(row, position, "one MPI per 2100C/2100D")
    e = row if len(row) == 8 else _fields(state, row, position, 7)
    member.military = Mpi(e[1], e[2], e[3], e[4], e[5], e[6], e[7], position)


# --- 2110 benefits and what hangs off them ----------------------------------------------------------------


def _eb(state: _State, row: list[str], position: int) -> None:
    member = state.member
    if member is None:
        raise X12StructureError(
            "benefit information (EB) outside a subscriber or dependent level",
            position=position,
            segment_id="EB",
            expected="an HL*..*22 (2000C) or HL*..*23 (2000D) and its NM1 before the first EB",
        )
    if state.in_ls:
        _close_ls(state)
    state.entity = None
    e = row
    if len(e) < 15:
        e = e + _PADS[15 - len(e)]
    elif len(e) > 15:
        e = _fields(state, row, position, 14)
    # The numeric and structured elements are mostly empty: test before calling.
    eb = Eb(
        e[1],
        e[2],
        split_repeats(e[3], state.delimiters) if e[3] else [],  # EB03 repeats; never a composite
        e[4],
        e[5],
        e[6],
        _decimal(row, position, 7, e[7]) if e[7] else None,
        _decimal(row, position, 8, e[8]) if e[8] else None,
        e[9],
        _decimal(row, position, 10, e[10]) if e[10] else None,
        e[11],
        e[12],
        _procedure(state, row, position, e[13]) if e[13] else None,
        e[14].split(state.delimiters.component) if e[14] else [],
        position,
    )
    # List literals for the seven collections: measurably cheaper than seven default factories.
    loop: Loop2110 = (Loop2110C if state.suffix == "C" else Loop2110D)(eb, [], [], [], [], [], [], [])
    member.benefits.append(loop)
    state.benefit = loop


def _procedure(state: _State, row: list[str], position: int, value: str) -> CompositeProcedure:
    """EB13 (C003): qualifier, code, modifiers 1-4, description, range end."""
    parts = split_components(value, state.delimiters)
    if len(parts) > 8:
        state.warn(row, position, f"EB13 has {len(parts)} components; only 8 are defined and the rest were dropped")
    parts += [""] * (8 - len(parts))
    modifiers = parts[2:6]
    while modifiers and not modifiers[-1]:
        modifiers.pop()
    return CompositeProcedure(parts[0], parts[1], modifiers, parts[6], parts[7])


def _benefit(state: _State, row: list[str], position: int, before_ls: bool) -> Loop2110:
    """The open 2110 for a segment that only exists there (HSD, MSG, III)."""
    benefit = state.benefit
    if benefit is None:
        raise _misplaced(row, position, f"{row[0]} after an EB (in 2110C or 2110D)")
    if before_ls and state.in_ls:
        state.warn(row, position, f"{row[0]} between LS and LE; kept with 2110{state.suffix}")
    return benefit


def _hsd(state: _State, row: list[str], position: int) -> None:
    benefit = _benefit(state, row, position, True)
    e = row if len(row) == 9 else _fields(state, row, position, 8)
    benefit.delivery.append(
        Hsd(
            e[1],
            _decimal(row, position, 2, e[2]),
            e[3],
            _decimal(row, position, 4, e[4]),
            e[5],
            _decimal(row, position, 6, e[6]),
            e[7],
            e[8],
            position,
        )
    )


def _msg(state: _State, row: list[str], position: int) -> None:
    benefit = _benefit(state, row, position, True)
    e = row if len(row) == 2 else _fields(state, row, position, 1)
    benefit.messages.append(Msg(e[1], position))


def _iii(state: _State, row: list[str], position: int) -> None:
    benefit = _benefit(state, row, position, True)
    e = row if len(row) == 5 else _fields(state, row, position, 4)
    info = Iii(e[1], e[2], e[3], e[4], position)
    benefit.additional_info.append(Loop2115C(info) if state.suffix == "C" else Loop2115D(info))


def _ls(state: _State, row: list[str], position: int) -> None:
    _benefit(state, row, position, False)
    if state.in_ls:
        state.warn(row, position, "LS while an LS is already open; read as one LS..LE")
    if _el(row, 1) != "2120":
        state.warn(row, position, f"LS01 is {_el(row, 1)!r}, expected 2120")
    state.in_ls = True
    state.entity = None


def _le(state: _State, row: list[str], position: int) -> None:
    if not state.in_ls:
        state.warn(row, position, "LE without an open LS")
    state.in_ls = False
    state.entity = None


# --- dispatch tables ---------------------------------------------------------------------------------------

_HANDLERS: dict[str, _Handler] = {
    "AAA": _aaa,
    "BHT": _bht,
    "DMG": _dmg,
    "DTP": _dtp,
    "EB": _eb,
    "HI": _hi,
    "HL": _hl,
    "HSD": _hsd,
    "III": _iii,
    "INS": _ins,
    "LE": _le,
    "LS": _ls,
    "MPI": _mpi,
    "MSG": _msg,
    "N3": _n3,
    "N4": _n4,
    "NM1": _nm1,
    "PER": _per,
    "PRV": _prv,
    "REF": _ref,
    "TRN": _trn,
}

_HL_OPENERS: dict[str, Callable[[_State, list[str], Hl], _Hierarchy]] = {
    "20": _open_source,
    "21": _open_receiver,
    "22": _open_subscriber,
    "23": _open_dependent,
}
_NAME_LOOP_IDS = {"20": "2100A", "21": "2100B", "22": "2100C", "23": "2100D"}
_PARENT_NAMES = {"21": "information source (20)", "22": "information receiver (21)", "23": "subscriber (22)"}
