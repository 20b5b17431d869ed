"""Implementation-guide validation of 005010X279A1 270s and 271s, and the 999 that reports it.

pyx12 4.0.0 has a sound validation engine and 999 writer but only 4010 eligibility maps; our own
maps for the 270 and the 271 live in ``maps/`` (with ``maps.xml``, the pyx12 map index naming
them).  This module runs pyx12's reader, map walker and error tree with those maps::

    validate_x12(data, want_ack=False) -> ValidationResult     findings (+ the 999 text)
    apply_policy(result, mode, direction) -> findings to record  raises X12ValidationFailed (strict)
    validate_command(path, ack_path) -> exit code                `eligibility-svc x12 validate`

First, unless a 999 is wanted, ``fastcheck.decoded_is_clean`` looks at the document in plain
Python with the same maps compiled into tables (~0.15 ms for a typical 271, against ~1.7 ms for
the steps below).  It answers True only when these steps would certainly find nothing; then the
result is the empty one, identical to theirs.  Any doubt, and the document goes through the four
steps, as every document with a finding does:

1. ``_plan``: our reader finds the delimiters; segments are re-joined without the blanks, CR/LF
   or byte-order mark around them (formatting, not content), and each GS group is matched to a
   map by its ST01 and ST03 (a wrong GS01 or GS08 is then reported by the map, not fatal).
   4010 and other transactions are refused here with an ``X12Error``.
2. ``_Walk``: pyx12's ``X12Reader``, ``walk_tree`` and ``err_handler`` do what
   ``pyx12.x12n_document`` does, but with map objects parsed once per process (pyx12 reloads its
   XML maps for every document, ~25 ms) and with an error tree that remembers each finding's loop
   and element.
3. Rules a pyx12 map cannot state are checked in the walk and recorded in the same error tree,
   so the 999 carries them too: repeated elements (EB03, EQ01) are split on the ISA11 separator
   and each repeat validated; ISA11 must be a real, distinct repetition separator; an HL's parent
   must be the level above it and HL04 must agree with the HLs that follow.
4. The error tree becomes typed ``Finding`` values; on request pyx12's 999 visitor writes the
   acknowledgment.

Every pyx12 exception is translated into an ``X12Error`` subclass at this edge.  pyx12 logs each
finding, bad values included (names, member IDs): its loggers are cut off from ours below.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import defusedxml.ElementTree as SafeXml
import pyx12.error_999
import pyx12.error_handler
import pyx12.errors
import pyx12.map_if
import pyx12.map_index
import pyx12.params
import pyx12.segment
import pyx12.x12file
from pyx12.map_if._segment import apply_segment_errors
from pyx12.map_walker import apply_walk_errors, walk_tree
from pyx12.nodeCounter import NodeCounter
from pyx12.path import X12Path

from eligibility_svc.errors import (
    X12Error,
    X12StructureError,
    X12SyntaxError,
    X12UnsupportedVersion,
    X12ValidationFailed,
    X12WrongTransaction,
)
from eligibility_svc.x12.fastcheck import (
    FUNCTIONAL_ID,
    ICVN,
    IMPLEMENTATION,
    MAP_DIR,
    PARENT_LEVEL,
    WRAPPER_LOOPS,  # loops that only wrap the transaction: a finding in them has no TR3 loop ID
    decoded_is_clean,
)
from eligibility_svc.x12.reader import Delimiters, decode, detect_delimiters

# pyx12 logs every finding at ERROR level with the offending value: patient data must not reach
# our logs through it.  Its records are not made (level) and would stop at its top logger anyway.
_pyx12_log = logging.getLogger("pyx12")
_pyx12_log.addHandler(logging.NullHandler())
_pyx12_log.setLevel(logging.CRITICAL + 1)
_pyx12_log.propagate = False

_ISA_LENGTH = 106  # the ISA is fixed-width; pyx12 reads its delimiters by offset
_SET_FOR_GROUP = {"HS": "270", "HB": "271"}
_BLANKS = " \t\r\n"
# Envelope-level codes pyx12 raises about the trailer rather than the header.
_IEA_CODES = frozenset({"001", "021", "023", "024"})
_GE_CODES = frozenset({"3", "4", "5"})
_SE_CODES = frozenset({"2", "3", "4"})
# HL03 of each level's parent: 2000B under 2000A, 2000C under 2000B, 2000D under 2000C.
# IK403 "implementation pattern match failure": used for the HL hierarchy rules.
_HIERARCHY_CODE = "I12"

Severity = Literal["error", "warning"]
_T = TypeVar("_T")


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One implementation-guide finding.

    ``position`` is the 1-based segment position in the interchange (the ISA is 1), as in every
    other error this service reports.  ``element`` is the reference designator (``EB01``,
    ``EB13-2``) when the finding is about one element, else ``None``; ``code`` is pyx12's code:
    an IK403 element code when ``element`` is set, an IK304 segment code (or pyx12's ``HL1`` /
    ``HL2`` / ``SEG1``) for a segment, an IK502 / AK905 / TA105 code for ST-SE / GS-GE / ISA-IEA.
    """

    severity: Severity
    segment_id: str
    position: int | None
    loop_id: str | None
    element: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON (error ``details``, check records)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Findings in document order, and the 999 text when it was asked for."""

    findings: tuple[Finding, ...]
    ack: str | None = None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def error_count(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warning_count(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings allowed)."""
        return self.error_count == 0


# --- maps, parsed once per process ------------------------------------------------------------

# The separators of the document being walked; the maps are shared, the separators are not.
_SEPARATORS: ContextVar[tuple[str | None, str]] = ContextVar("x12_separators", default=(None, ":"))


# Control characters pyx12 refuses in a value (its list: BEL, HT-CR, FS-US, and SOH-ACK, DC1-ETB).
_CONTROL_CHARACTER = re.compile("[\x01-\x07\x09-\x0d\x11-\x17\x1c-\x1f]")


class _Element(pyx12.map_if.element_if):  # type: ignore[misc]  # pyx12 is untyped
    """pyx12's element with a faster control-character screen (same rule, same message).

    pyx12 builds two dictionaries of 23 characters for every value it checks; a compiled class
    screens clean values (nearly all of them) in one search and leaves the rest to pyx12.
    """

    def _validate_control_chars(self, elem_val: str) -> list[Any]:
        if _CONTROL_CHARACTER.search(elem_val) is None:
            return []
        return super()._validate_control_chars(elem_val)  # type: ignore[no-any-return]


class _RepeatingElement(_Element):
    """A map element the TR3 lets repeat (EB03, EQ01): each repetition is validated on its own.

    pyx12 does not know the ISA11 repetition separator, so ``1^33^35`` would be one value, too long
    and not a code.  When ISA11 equals ISA16 pyx12 has already split the value as a composite;
    for an element that repeats, those parts are the repetitions.
    """

    def is_valid_errors(self, elem: Any, type_list: Any = None) -> tuple[bool, list[Any]]:
        values = _repetitions(elem)
        if values is None:
            return super().is_valid_errors(elem, type_list)  # type: ignore[no-any-return]
        ok, errors = True, []
        for value in values:
            one_ok, one_errors = super().is_valid_errors(pyx12.segment.Element(value), type_list)
            ok = ok and one_ok
            errors.extend(one_errors)
        return ok, errors


def _repetitions(elem: Any) -> list[str] | None:
    """The repetitions in ``elem``, or ``None`` when it is a single value."""
    if elem is None:
        return None
    repetition, component = _SEPARATORS.get()
    if elem.is_composite():
        if repetition is not None and repetition == component:
            return [elem[i].get_value() for i in range(len(elem))]
        return None
    value: str = elem.get_value()
    if repetition and repetition in value:
        return value.split(repetition)
    return None


@cache
def _index() -> Any:
    """pyx12's map index over our ``maps.xml``."""
    return pyx12.map_index.map_index(str(MAP_DIR))


@cache
def _params() -> Any:
    # ParamsBase: pyx12's defaults only; ``params()`` would also read ~/.pyx12.conf.xml.
    return pyx12.params.ParamsBase()


@cache
def load_map(filename: str) -> Any:
    """Parse one of our maps into pyx12's map objects, once per process.

    The code lists (states, countries) and data element dictionary come from pyx12's package;
    elements declared with ``repeat`` become ``_RepeatingElement``.
    """
    root = SafeXml.parse(MAP_DIR / filename).getroot()
    if root is None:
        raise X12StructureError(f"map {filename} is empty")
    repeats = {el.get("xid") for el in root.iter("element") if int(el.get("repeat") or 1) > 1}
    try:
        tree = pyx12.map_if.map_if(root, _params(), None)
    except pyx12.errors.EngineError as exc:
        raise X12StructureError(f"map {filename} cannot be loaded: {exc}") from exc
    for node in _elements(tree):
        # Same objects, our subclass: pyx12 builds element_if nodes itself from the XML.
        node.__class__ = _RepeatingElement if node.id in repeats else _Element
    return tree


def _elements(tree: Any) -> Iterator[Any]:
    """Every simple element node of a map (composites' members too)."""
    for node in tree.loop_segment_iterator():
        if isinstance(node, pyx12.map_if.segment_if):
            for child in node.children:
                yield from child.children if child.is_composite() else (child,)


def map_file_for(set_id: str) -> str:
    """The map that validates a 270 or a 271, by our map index."""
    filename: str | None = _index().get_filename(ICVN, IMPLEMENTATION, FUNCTIONAL_ID[set_id])
    if filename is None:
        raise X12UnsupportedVersion(f"maps.xml has no map for the {set_id} {IMPLEMENTATION}")
    return filename


# --- step 1: plan -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    text: str  # the segments as pyx12 will read them
    delimiters: Delimiters
    group_maps: list[str]  # map file per GS group, in order


def _plan(text: str) -> _Plan:
    """``text`` has been through ``reader.decode`` (once: it strips one byte-order mark)."""
    delimiters, _ = detect_delimiters(text)
    pieces = _pieces(text, delimiters.segment)
    groups = _group_maps(pieces, delimiters.element)  # refuse other versions before anything else
    if len(pieces[0]) + 1 != _ISA_LENGTH:
        raise X12SyntaxError(
            f"the ISA is {len(pieces[0]) + 1} characters",
            position=1,
            segment_id="ISA",
            expected=f"{_ISA_LENGTH} characters (its elements are fixed-width)",
        )
    joined = delimiters.segment.join(pieces) + delimiters.segment
    return _Plan(joined, delimiters, groups)


def _pieces(text: str, terminator: str) -> list[str]:
    """Segments without the blanks between them; blanks inside a segment stay (they are data)."""
    pieces = (piece.lstrip(_BLANKS) for piece in text.lstrip(_BLANKS).split(terminator))
    return [piece for piece in pieces if piece.strip(_BLANKS)]


def _group_maps(pieces: list[str], separator: str) -> list[str]:
    """The map for each GS group, chosen by its first ST (ST01, ST03 or else GS08)."""
    groups: list[list[str]] = []  # [GS01, GS08, ST01, ST03] per group
    for position, piece in enumerate(pieces, start=1):
        elements = piece.split(separator)
        if elements[0] == "GS":
            groups.append([_element_value(elements, 1), _element_value(elements, 8), "", ""])
        elif elements[0] == "ST":
            if not groups:
                raise X12StructureError("ST outside a GS functional group", position=position, segment_id="ST")
            if not _element_value(elements, 1):  # pyx12's walker cannot place such an ST and then reports nothing
                raise X12StructureError(
                    "ST01 (the transaction set identifier) is empty",
                    position=position,
                    segment_id="ST",
                    expected="ST01 270 or 271",
                )
            if not groups[-1][2]:
                groups[-1][2:] = [_element_value(elements, 1), _element_value(elements, 3)]
    if not groups:
        raise X12StructureError("the interchange holds no GS functional group", expected="GS ... GE")
    return [_choose_map(*group) for group in groups]


def _element_value(elements: list[str], index: int) -> str:
    return elements[index].strip() if index < len(elements) else ""


def _choose_map(gs01: str, gs08: str, st01: str, st03: str) -> str:
    set_id = st01 or _SET_FOR_GROUP.get(gs01, "")
    guide = st03 or gs08
    if guide.startswith("004010"):
        raise X12UnsupportedVersion(f"{guide} is a 4010 guide", expected=IMPLEMENTATION)
    if set_id not in FUNCTIONAL_ID:
        raise X12WrongTransaction(f"transaction set {set_id or '(none)'}", expected="a 270 or a 271")
    if not guide.startswith("005010X279"):
        raise X12UnsupportedVersion(f"implementation guide {guide or '(none)'}", expected=IMPLEMENTATION)
    return map_file_for(set_id)


# --- step 2 and 3: the walk -------------------------------------------------------------------


class _PathCounter(NodeCounter):  # type: ignore[misc]  # pyx12 is untyped
    """pyx12's loop and segment counter keyed by path text instead of parsed ``X12Path`` objects.

    Same counts: a path's key is its formatted text, so "children of P" are the keys below
    ``P/``.  pyx12's counter re-parses and re-formats every key on every loop entry, which was
    a fifth of the time to validate a 271.
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def reset_to_node(self, xpath: Any) -> None:
        below = _path_key(xpath) + "/"
        for key in [key for key in self._counts if key.startswith(below)]:
            del self._counts[key]

    def increment(self, xpath: Any) -> None:
        key = _path_key(xpath)
        self._counts[key] = self._counts.get(key, 0) + 1

    def setCount(self, xpath: Any, ct: int) -> None:  # pyx12's name
        self._counts[_path_key(xpath)] = ct

    def get_count(self, xpath: Any) -> int:
        return self._counts.get(_path_key(xpath), 0)

    def getState(self) -> dict[str, int]:  # pyx12's name
        return dict(self._counts)


def _path_key(xpath: Any) -> str:
    """The formatted text of a path; map nodes' ``X12Path`` objects keep theirs once computed."""
    if isinstance(xpath, str):
        return _path_text(xpath)
    key: str | None = xpath.__dict__.get("_key")
    if key is None:
        key = xpath._key = xpath.format()
    return key


@cache
def _path_text(path: str) -> str:
    return str(X12Path(path).format())


class _Walker(walk_tree):  # type: ignore[misc]  # pyx12 is untyped
    """pyx12's map walker with the faster counter."""

    def __init__(self) -> None:
        super().__init__()
        self.counter = _PathCounter()


class _ErrorTree(pyx12.error_handler.err_handler):  # type: ignore[misc]  # pyx12 is untyped
    """pyx12's error tree, remembering the loop of each segment node and the refdes of each element.

    pyx12 keeps neither (its 999 needs only positions); our findings name both.
    """

    def add_seg(self, map_node: Any, seg_data: Any, seg_count: int, cur_line: int, ls_id: Any) -> None:
        super().add_seg(map_node, seg_data, seg_count, cur_line, ls_id)
        self.cur_seg_node.loop_id = _loop_of(map_node)

    def add_ele(self, map_node: Any) -> None:
        super().add_ele(map_node)
        self.cur_ele_node.refdes = map_node.id
        self.cur_ele_node.map_node = map_node


def _loop_of(map_node: Any) -> str | None:
    """The TR3 loop ID (2110C ...) holding a map node, ``None`` for the envelope and header."""
    node = map_node
    while node is not None and not node.is_map_root():
        if node.is_loop():
            return None if node.id in WRAPPER_LOOPS else str(node.id)
        node = node.parent
    return None


@dataclass(slots=True)
class _HlLevel:
    """What the hierarchy check needs to know about one HL segment."""

    level: str  # HL03
    child_code: str  # HL04
    map_node: Any
    segment: Any
    seg_count: int
    line: int
    loop_id: str | None
    has_children: bool = False


class _Hierarchy:
    """The HL rules a map cannot state: parent levels (HL02) and the child code (HL04)."""

    def __init__(self) -> None:
        self.levels: dict[str, _HlLevel] = {}

    def check(self, errh: _ErrorTree, node: Any, seg: Any, seg_count: int, line: int) -> None:
        """Record an HL; an HL02 naming an HL of the wrong level is an error on HL02."""
        parent_id, level = seg.get_value("HL02") or "", seg.get_value("HL03") or ""
        parent = self.levels.get(parent_id)
        if parent is not None:
            parent.has_children = True
            wanted = PARENT_LEVEL.get(level)
            if wanted is not None and parent.level != wanted:
                message = (
                    f"HL02 names HL {parent_id} (level {parent.level}) as the parent of a level {level} HL; "
                    f"its parent must be a level {wanted} HL"
                )
                errh.add_ele(node.get_child_node_by_idx(1))
                errh.ele_error(_HIERARCHY_CODE, message, parent_id)
        self.levels[seg.get_value("HL01") or ""] = _HlLevel(
            level, seg.get_value("HL04") or "", node, seg, seg_count, line, _loop_of(node)
        )

    def finish(self, errh: _ErrorTree, warnings: list[Finding]) -> None:
        """At SE: HL04 0 with subordinate HLs is an error; HL04 1 without any is a warning.

        Payers routinely send HL04 1 on a level they then reject with AAA and end; nothing is
        lost, so that is a warning.  HL04 0 followed by children contradicts the data.
        """
        for hl_id, hl in self.levels.items():
            if hl.child_code == "0" and hl.has_children:
                errh.add_seg(hl.map_node, hl.segment, hl.seg_count, hl.line, None)
                errh.add_ele(hl.map_node.get_child_node_by_idx(3))
                errh.ele_error(_HIERARCHY_CODE, f"HL {hl_id} says it has no subordinate HL (HL04 0) but has", "0")
            elif hl.child_code == "1" and not hl.has_children and hl.level in PARENT_LEVEL.values():
                warnings.append(
                    Finding(
                        "warning",
                        "HL",
                        hl.line,
                        hl.loop_id,
                        "HL04",
                        _HIERARCHY_CODE,
                        f"HL {hl_id} says subordinate HLs follow (HL04 1) but none does",
                    )
                )
        self.levels.clear()


class _EntityLoopBrackets:
    """LS before and LE after each 2120 loop: pyx12 sees two unrelated optional segments."""

    def __init__(self) -> None:
        self.open_ls: Any = None  # the LS map node while a 2120 loop is open

    def check(self, errh: _ErrorTree, node: Any, seg_id: str, seg_count: int, line: int) -> None:
        """Report a missing LS or LE when ``node`` (just found) shows one was skipped."""
        loop = _loop_of(node) or ""
        if seg_id == "LE":
            if self.open_ls is None:
                _missing(errh, node, seg_count, line, code="2", message="LE without the LS that opens its 2120 loop")
            self.open_ls = None
        elif seg_id == "LS":
            if self.open_ls is not None:
                _missing(
                    errh,
                    _sibling(self.open_ls, "LE"),
                    seg_count,
                    line,
                    code="3",
                    message="LE missing before the next LS",
                )
            self.open_ls = node
        elif loop.startswith("2120"):
            if self.open_ls is None:
                ls = _sibling(node.parent, "LS")
                _missing(errh, ls, seg_count, line, code="3", message=f"LS missing before loop {loop}")
                self.open_ls = ls
        elif self.open_ls is not None:
            _missing(
                errh, _sibling(self.open_ls, "LE"), seg_count, line, code="3", message="LE missing after the 2120 loop"
            )
            self.open_ls = None


def _sibling(node: Any, segment_id: str) -> Any:
    """The segment node ``segment_id`` in the loop holding ``node``."""
    return next(child for child in node.parent.childIterator() if child.id == segment_id)


def _missing(errh: _ErrorTree, node: Any, seg_count: int, line: int, *, code: str, message: str) -> None:
    """Record a segment-level error about ``node``'s segment at the current position."""
    errh.add_seg(node, pyx12.segment.Segment(node.id, "~", "*", ":"), seg_count, line, None)
    errh.seg_error(code, message)


class _Walk:
    """One document through pyx12's reader and walker (pyx12.x12n_document's loop, trimmed)."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.src = pyx12.x12file.X12Reader(io.StringIO(plan.text))
        self.errh = _ErrorTree()
        self.walker = _Walker()
        self.groups = iter(plan.group_maps)
        self.map = load_map(plan.group_maps[0])
        self.node: Any = self.map.getnodebypath("/ISA_LOOP/ISA")
        self.hierarchy = _Hierarchy()
        self.brackets = _EntityLoopBrackets()
        self.warnings: list[Finding] = []

    def run(self) -> None:
        for seg in self.src:
            self._segment(seg)
        if self.hierarchy.levels:  # cut off before SE
            self.hierarchy.finish(self.errh, self.warnings)
        self.src.cleanup()  # missing trailers
        self.errh.handle_errors(self.src.pop_errors())

    def ack(self) -> str:
        """The 999 for what was walked (pyx12's visitor, two faults mended)."""
        out = io.StringIO()
        self.errh.accept(_Ack999(out, self.src.get_term()))
        return out.getvalue()

    def _segment(self, seg: Any) -> None:
        seg_id = seg.get_seg_id()
        node = self._find(seg, seg_id)
        if node is None:  # not in the map where it stands: the walker has recorded why
            self.errh.handle_errors(self.src.pop_errors())
            return
        self.node = node
        self.brackets.check(self.errh, node, seg_id, self.src.get_seg_count(), self.src.get_cur_line())
        self._record(node, seg, seg_id)
        apply_segment_errors(node, seg, self.errh)
        if seg_id == "ISA":
            self._check_separators(node, seg)
        elif seg_id == "HL":
            self.hierarchy.check(self.errh, node, seg, self.src.get_seg_count(), self.src.get_cur_line())

    def _find(self, seg: Any, seg_id: str) -> Any:
        """The map node for ``seg``; ISA and GS restart the walk (a GS may switch maps)."""
        if seg_id == "ISA":
            self.walker.forceWalkCounterToLoopStart("/ISA_LOOP", "/ISA_LOOP/ISA")
            return self.map.getnodebypath("/ISA_LOOP/ISA")
        if seg_id == "GS":
            self.map = load_map(next(self.groups, None) or self.plan.group_maps[-1])
            self.walker.forceWalkCounterToLoopStart("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
            return self.map.getnodebypath("/ISA_LOOP/GS_LOOP/GS")
        src = self.src
        node, _, _, errors = self.walker.walk_errors(
            self.node, seg, src.get_seg_count(), src.get_cur_line(), src.get_ls_id()
        )
        apply_walk_errors(self.errh, errors)
        return node

    def _record(self, node: Any, seg: Any, seg_id: str) -> None:
        """Open or close the envelope levels of the error tree; attach the reader's errors."""
        errh, src = self.errh, self.src
        if seg_id == "ISA":
            errh.add_isa_loop(seg, src)
        elif seg_id == "GS":
            errh.add_gs_loop(seg, src)
        elif seg_id == "ST":
            errh.add_st_loop(seg, src)
        elif seg_id == "SE":
            self.hierarchy.finish(errh, self.warnings)
        elif seg_id not in ("IEA", "GE"):
            errh.add_seg(node, seg, src.get_seg_count(), src.get_cur_line(), src.get_ls_id())
        errh.handle_errors(src.pop_errors())
        closers = {"IEA": errh.close_isa_loop, "GE": errh.close_gs_loop, "SE": errh.close_st_loop}
        if seg_id in closers:
            closers[seg_id](node, seg, src)

    def _check_separators(self, node: Any, seg: Any) -> None:
        """A 00501 ISA11 must be a repetition separator distinct from the other delimiters."""
        if seg.get_value("ISA12") != ICVN:
            return  # the wrong version is the finding (ISA12); ISA11 follows from it
        delimiters = self.plan.delimiters
        isa11 = seg.get_value("ISA11") or ""
        if delimiters.repetition is None:
            problem = f"ISA11 {isa11!r} is not a repetition separator (a 00501 interchange declares one)"
        elif delimiters.repetition == delimiters.component:
            problem = f"the repetition separator (ISA11) and the component separator (ISA16) are both {isa11!r}"
        else:
            return
        self.errh.add_ele(node.get_child_node_by_idx(10))
        self.errh.ele_error("7", problem, isa11)


# IK502 for an element error in ST or SE: 6 (transaction set identifier), 7 (control number),
# I6 (implementation convention not supported, ST03); SE01 is 4 (count), SE02 3 (control number).
_IK5_FOR_ELEMENT = {"ST01": "6", "ST02": "7", "ST03": "I6", "SE01": "4", "SE02": "3"}


class _Ack999(pyx12.error_999.error_999_visitor):  # type: ignore[misc]  # pyx12 is untyped
    """pyx12's 999 writer, mended where it fails a 5010 eligibility transaction.

    pyx12 knows only ST01 and ST02 (an ST03 error raised ``KeyError``), and sets IK501 and AK901
    from segment errors only, so an ST, SE or GS element error came out as accepted.
    """

    def visit_gs_post(self, err_gs: Any) -> None:
        if err_gs.ack_code == "A" and _element_errors(err_gs):
            err_gs.ack_code = "R"
        super().visit_gs_post(err_gs)

    def visit_st_post(self, err_st: Any) -> None:
        codes = {str(code) for code, _ in err_st.errors}
        if err_st.child_err_count() > 0:
            codes.add("5")
        codes.update(_IK5_FOR_ELEMENT.get(getattr(ele, "refdes", ""), "5") for ele in _element_errors(err_st))
        ik5 = pyx12.segment.Segment("IK5", "~", "*", ":")
        ik5.set("01", "R" if codes else "A")
        for code in sorted(codes)[:5]:
            ik5.append(code)
        if codes:
            err_st.ack_code = "R"  # AK9 counts accepted transaction sets from this
        self.wr.Write(ik5)


def _element_errors(node: Any) -> list[Any]:
    return [ele for ele in node.elements if ele.errors]


# --- step 4: findings -------------------------------------------------------------------------


def _findings(errh: Any) -> list[Finding]:
    """Every error in pyx12's tree, envelope levels included."""
    found: list[Finding] = []
    for isa in errh.children:
        found += _level(isa, "ISA", "IEA", _IEA_CODES, isa.cur_line_isa)
        for gs in isa.children:
            found += _level(gs, "GS", "GE", _GE_CODES, gs.cur_line_gs)
            for st in gs.children:
                found += _level(st, "ST", "SE", _SE_CODES, st.cur_line_st)
                for seg in st.children:
                    found += _segment_findings(seg)
    return found


def _level(node: Any, header: str, trailer: str, trailer_codes: frozenset[str], header_line: int) -> list[Finding]:
    """Findings of an ISA, GS or ST level: its own codes and its header/trailer element errors."""
    found = []
    # A trailer never seen (an interchange cut off after SE) has no position.
    trailer_line = node.get_cur_line() if node.is_closed() else None
    for code, message in node.errors:
        segment_id = trailer if code in trailer_codes else header
        position = header_line if segment_id == header else trailer_line
        found.append(Finding("error", segment_id, position, None, None, str(code), str(message)))
    for ele in node.elements:
        refdes = getattr(ele, "refdes", None) or f"{header}{ele.ele_pos:02d}"
        segment_id = _segment_of(refdes)
        position = header_line if segment_id == header else trailer_line
        for code, message, _ in ele.errors:
            found.append(Finding("error", segment_id, position, None, refdes, str(code), str(message)))
    return found


def _segment_findings(seg: Any) -> list[Finding]:
    """Findings of one segment of the transaction, worded without patient data (see below)."""
    loop_id = getattr(seg, "loop_id", None)
    found = [
        Finding("error", str(seg.seg_id), seg.cur_line, loop_id, None, str(code), _segment_message(str(message)))
        for code, message, _ in seg.errors
    ]
    for ele in seg.elements:
        refdes = getattr(ele, "refdes", None)
        for code, message, value in ele.errors:
            text = _element_message(str(code), str(message), value, getattr(ele, "map_node", None))
            found.append(Finding("error", str(seg.seg_id), seg.cur_line, loop_id, refdes, str(code), text))
    return found


# pyx12 quotes the offending value in its messages: a name, a birth date, a member ID.  Findings
# travel in error details and check records, which never hold patient data, so messages about
# transaction values are reworded without them.  Code values (ID elements) are kept: "(99) is not
# a valid code for EB06" is what a reader needs, and a code is not about a person.  The 999 keeps
# pyx12's IK404 copy of the bad value, as X12 intends (it goes back to the sender of the data).
_NOT_FOUND = re.compile(r"^Segment ([A-Z][A-Z0-9]{1,2})\*.*? not found\.", re.S)
# Segments whose first element is a qualifier code, so "NM1*PR not found" is safe and useful.
_CODED_FIRST_ELEMENT = frozenset(
    {"AAA", "AMT", "DMG", "DTP", "EB", "EQ", "HL", "HSD", "III", "INS", "LE", "LS", "NM1", "PER", "PRV", "REF", "TRN"}
)
_CONTROL_NAME = re.compile(r"<[A-Z]{2,3}>")


def _segment_message(message: str) -> str:
    """pyx12's segment message, with the first element dropped from "segment not found"."""
    match = _NOT_FOUND.match(message)
    if match is None or match.group(1) in _CODED_FIRST_ELEMENT:
        return message
    return f"Segment {match.group(1)} not found.{message[match.end() :]}"


def _element_message(code: str, message: str, value: str | None, node: Any) -> str:
    """The finding's text for an element error, without the value unless it is a code."""
    if node is None or code == _HIERARCHY_CODE or node.data_type == "ID":
        return message  # our own wording, or a code value
    subject = f"{node.name} ({node.id})"
    size = len(value or "")
    wording = {
        "1": "is required and missing",
        "4": f"is too short: {size} characters, at least {node.min_len}",
        "5": f"is too long: {size} characters, at most {node.max_len}",
        "7": "has a value this implementation guide does not allow",
        "8": "is not a valid date",
        "9": "is not a valid time",
        "10": "is marked as Not Used but is present",
    }
    if code == "6":
        return f"{subject} {_character_problem(message, node.data_type)}"
    return f"{subject} {wording.get(code, f'fails check {code}')}"


def _character_problem(message: str, data_type: str) -> str:
    """What pyx12's code 6 was about (it uses the code for four problems)."""
    control = _CONTROL_NAME.search(message)
    if control:
        return f"contains a control character {control.group(0)}"
    if "trailing spaces" in message:
        return "has trailing spaces"
    if "composite" in message:
        return "holds components where one value belongs"
    return f"contains characters not allowed in a {data_type} value"


_REFDES = re.compile(r"^([A-Z][A-Z0-9]{1,2}?)\d\d(?:-\d+)?$")


def _segment_of(refdes: str) -> str:
    """``ISA11`` → ``ISA``, ``N401`` → ``N4``, ``EB13-2`` → ``EB``."""
    match = _REFDES.match(refdes)
    return match.group(1) if match else refdes


# --- the API ------------------------------------------------------------------------------------


def validate_x12(data: bytes | str, *, want_ack: bool = False) -> ValidationResult:
    """Validate an interchange of 005010X279A1 270s or 271s against the TR3.

    Raises ``X12SyntaxError`` / ``X12StructureError`` when the bytes cannot be walked at all,
    ``X12UnsupportedVersion`` for 4010 or another guide, ``X12WrongTransaction`` for another set.

    A document ``fastcheck`` finds certainly clean returns the empty result at once, exactly what
    the walk would return; a 999 is always written by the walk.
    """
    text = decode(data)
    if not want_ack and decoded_is_clean(text):
        return _CLEAN
    return _validated(text, want_ack=want_ack)


_CLEAN = ValidationResult(())


def _validate_slow(data: bytes | str, *, want_ack: bool = False) -> ValidationResult:
    """``validate_x12`` without the fast path: pyx12's walk for every document (tests, benchmarks)."""
    return _validated(decode(data), want_ack=want_ack)


def _validated(text: str, *, want_ack: bool) -> ValidationResult:
    plan = _plan(text)
    token = _SEPARATORS.set((plan.delimiters.repetition, plan.delimiters.component))
    try:
        walk = _walk(plan)
        ack = _translated(walk.ack) if want_ack else None
    finally:
        _SEPARATORS.reset(token)
    findings = sorted(_findings(walk.errh) + walk.warnings, key=_document_order)
    return ValidationResult(tuple(findings), ack)


def _walk(plan: _Plan) -> _Walk:
    def run() -> _Walk:
        walk = _Walk(plan)
        walk.run()
        return walk

    return _translated(run)


def _translated(call: Callable[[], _T]) -> _T:
    """Run a pyx12 call, turning its exceptions into ours (the adapter edge)."""
    try:
        return call()
    except pyx12.errors.X12Error as exc:
        raise X12SyntaxError(f"pyx12 cannot read the interchange: {exc}") from exc
    except pyx12.errors.EngineError as exc:
        raise X12StructureError(f"pyx12 cannot walk the interchange: {exc}") from exc
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        # pyx12 assumes well-formed envelopes in places (int(GE01), a GS before ST ...).
        raise X12SyntaxError(f"pyx12 failed on malformed input: {exc!r}") from exc


def _document_order(finding: Finding) -> tuple[int, int]:
    return (finding.position or 0, 0 if finding.severity == "error" else 1)


Mode = Literal["off", "warn", "strict"]
Direction = Literal["outgoing", "incoming"]


def apply_policy(result: ValidationResult, mode: Mode, direction: Direction) -> tuple[Finding, ...]:
    """What the ``x12.validation`` setting does with a result.

    ``off``: nothing to record.  ``warn``: every finding is returned, to be recorded on the check
    and counted.  ``strict``: errors raise ``X12ValidationFailed`` (an outgoing 270 is not sent,
    an incoming 271 is not interpreted); warnings alone are returned as in ``warn``.
    """
    if mode == "off":
        return ()
    if mode == "strict" and not result.ok:
        what = "the 270 we built" if direction == "outgoing" else "the 271 received"
        first = result.errors[0]
        raise X12ValidationFailed(
            f"{what} fails 005010X279A1 validation with {result.error_count} error(s); first: {first.message}",
            position=first.position,
            segment_id=first.segment_id,
            details={"direction": direction, "findings": [f.to_dict() for f in result.findings]},
        )
    return result.findings


# --- the CLI -------------------------------------------------------------------------------------


def validate_command(path: Path, ack_path: Path | None) -> int:
    """``eligibility-svc x12 validate FILE [--ack 999.txt]``: findings on stderr, 1 on errors."""
    try:
        result = validate_x12(path.read_bytes(), want_ack=ack_path is not None)
    except OSError as exc:
        print(f"io.error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except X12Error as exc:
        print(str(exc), file=sys.stderr)
        return 1
    for finding in result.findings:
        print(_describe(finding), file=sys.stderr)
    if ack_path is not None and result.ack is not None:
        ack_path.write_text(result.ack, encoding="ascii")
    print(f"{path}: {result.error_count} error(s), {result.warning_count} warning(s)", file=sys.stderr)
    return 0 if result.ok else 1


def _describe(finding: Finding) -> str:
    """``error [7] segment 21 EB (2110C) EB06: (99) is not a valid code ...``"""
    where = [f"segment {finding.position}" if finding.position else "", finding.segment_id]
    if finding.loop_id:
        where.append(f"({finding.loop_id})")
    if finding.element:
        where.append(finding.element)
    return f"{finding.severity} [{finding.code}] {' '.join(w for w in where if w)}: {finding.message}"


__all__: Sequence[str] = (
    "Finding",
    "ValidationResult",
    "apply_policy",
    "load_map",
    "map_file_for",
    "validate_command",
    "validate_x12",
)
