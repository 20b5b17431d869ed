"""A sound, fast pre-check: is this 270/271 certainly clean for ``validate_x12``?

``definitely_clean(text)`` returns True only when the full validation (pyx12's reader, map walker
and element checks with our maps, plus the rules of ``validate.py``) would report no finding and
raise nothing.  Anything it does not model, or any doubt, is False, and the full validation runs.
Nearly every 271 is clean, so the service pays the pyx12 walk only for the few that are not.

Our map XML files (``maps/``) are compiled once per process (``functools.cache``, ~20 ms) into
plain tables: the loop/segment tree with usage, maximum use and repeat counts, positions and the
paths pyx12 counts by; each element's usage, data type, lengths and code lists (the map's, and
pyx12's external states and country lists); composites; the P/R/C/E/L syntax rules.  The map walk
mirrors pyx12's ``walk_tree`` step for step; each walk (start node, segment ID, qualifier values)
is traced once and replayed after: which counts must already be non-zero (a "mandatory missing"
record pyx12 might make is treated as a finding) and which counts go up (a maximum passed is a
finding).  The element, segment and syntax checks, the reader's envelope and HL checks and the
rules of ``validate.py`` (EB03/EQ01 repetitions, ISA11, HL parents and HL04, LS/LE) are
restated over the same values.  The element checks of benefit rows, dates and delivery patterns
(never of segments with patient identifiers) are remembered per process, by map node, segment text
and separators: a payer sends the same rows in answer after answer.

What it refuses outright (the full validation then decides): more than one interchange, anything
around or between the envelope segments (ISA (GS (ST ... SE)+ GE)+ IEA), delimiters that are not
four distinct punctuation characters agreeing with ``reader.detect_delimiters``, an ISA that is not
the fixed-width one, a group whose first ST is not a 270 or 271 of 005010X279A1, control numbers
and counts not written as plain digits, an HL01 that is not its plain count, a DTP03 or other
date-format value whose format the map does not name.  It never asks for a 999: that is pyx12's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element as XmlNode
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeXml

from eligibility_svc.errors import X12Error
from eligibility_svc.x12.reader import decode, detect_delimiters

# Shared with ``validate`` (which imports them from here: it calls this module, not the reverse).
MAP_DIR = Path(__file__).resolve().parent / "maps"
IMPLEMENTATION = "005010X279A1"
ICVN = "00501"
FUNCTIONAL_ID = {"270": "HS", "271": "HB"}
PARENT_LEVEL = {"21": "20", "22": "21", "23": "22"}  # an HL's level → the level its parent must be
WRAPPER_LOOPS = frozenset({"ISA_LOOP", "GS_LOOP", "ST_LOOP", "HEADER", "DETAIL"})  # map loops, not TR3 loops
_BLANKS = " \t\r\n"
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})
_LEVELS_WITH_CHILDREN = frozenset(PARENT_LEVEL.values())
_DTP_TYPES = frozenset({"RD8", "D8", "D6", "DT", "TM"})
_UNLIMITED = 2147483647  # pyx12's MAXINT
_USAGES = frozenset({"R", "S", "N"})

# pyx12's 5010 extended character set for AN and ID values (validation.rec_ID_E5, inverted); it
# excludes every control character, so values it accepts pass pyx12's control-character screen too.
_AN = re.compile(r"""[A-Z0-9!"&'()*+,\-./:;?= a-z%~@\[\]_{}\\|<>^`#$]*""", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]*(?:\.[0-9]+)?", re.ASCII)
_DIGITS = re.compile(r"[0-9]*", re.ASCII)
_DATE_KINDS = frozenset({"DT", "D8", "D6"})


class _NotModeled(Exception):
    """The maps hold something this module does not model: the fast path stays off."""


# --- compiled tables ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, slots=True)
class _Elem:
    xid: str
    usage: str
    data_ele: str
    data_type: str  # as pyx12's dictionary has it
    kind: str  # AN (AN and ID), N, R, DT, D8, D6, TM
    min_len: int
    max_len: int
    codes: frozenset[str] | None  # None: no code list to check
    code_list: tuple[str, ...]  # the map's own codes, in order
    repeats: bool  # split on the repetition separator (validate._RepeatingElement)
    empty_is_error: bool
    # Character set and length in one pattern, for AN, ID and N values (None for the others).
    pattern: re.Pattern[str] | None = None
    # With a code list: the codes that pass every check, so one look-up decides a single value.
    accepts: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class _Comp:
    usage: str
    parts: tuple[_Elem, ...]


_Syntax = tuple[str, tuple[int, ...]]


@dataclass(eq=False, slots=True)
class _Seg:
    sid: str
    usage: str
    pos: int
    max_use: int
    parent: _Loop
    children: tuple[_Elem | _Comp, ...]
    syntax: tuple[_Syntax, ...]
    key: tuple[str, frozenset[str]] | None  # what pyx12's segment_if.is_match reads
    opaque: bool  # a syntax rule pyx12 always fails
    path: str = ""
    tr3_loop: str = ""
    plain: bool = False  # no DTP, ISA or date-format pair: the short check applies
    absent_fails: tuple[bool, ...] = ()  # [n]: an element from the n+1st on would be missing


@dataclass(eq=False, slots=True)
class _Loop:
    lid: str
    usage: str
    pos: int
    max_repeat: int
    parent: _Loop | None
    by_pos: list[tuple[int, list[_Seg | _Loop]]] = field(default_factory=list)
    path: str = "/"

    def children(self) -> Iterator[_Seg | _Loop]:
        for _, nodes in self.by_pos:
            yield from nodes

    def first(self) -> _Seg | _Loop | None:
        return self.by_pos[0][1][0] if self.by_pos else None


_Op = tuple[str, int, bool]  # counter path, maximum, whether the counts under it are reset first


@dataclass(frozen=True, slots=True)
class _Trace:
    target: _Seg
    required: tuple[str, ...]  # counts that must be >= 1 (else pyx12 records a missing segment/loop)
    ops: tuple[_Op, ...]


_Probe = str | tuple[str | None, ...] | None  # the qualifier values a segment is matched by
_TraceKey = tuple[_Seg, str, _Probe]
_KeySpec = tuple[tuple[str, frozenset[str]], ...]  # per segment ID: where qualifiers sit, every code there


@dataclass(eq=False, slots=True)
class _Map:
    root: _Loop
    isa: _Seg
    gs: _Seg
    candidates: dict[str, list[_Seg]]
    keys: dict[str, _KeySpec]
    traces: dict[_TraceKey, _Trace | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Sources:
    dictionary: dict[str, tuple[str, int, int]]
    external: dict[str, frozenset[str]]
    repeats: frozenset[str]


# --- compiling the maps ------------------------------------------------------------------------


@cache
def _maps() -> dict[str, _Map] | None:
    """Our maps by transaction set, compiled once per process; None when one cannot be modeled."""
    try:
        dictionary, external = _dictionary(), _external_codes()
        return {set_id: _compile(MAP_DIR / name, dictionary, external) for set_id, name in _index().items()}
    except (_NotModeled, OSError, ParseError, ValueError, KeyError, IndexError):
        return None


def _xml(path: Path | str) -> XmlNode:
    root = SafeXml.parse(path).getroot()
    if root is None:
        raise _NotModeled(f"{path} is empty")
    return root


def _index() -> dict[str, str]:
    """maps.xml: the map file for the 270 and the 271 of 005010X279A1 (as pyx12's map_index reads it)."""
    found: dict[str, str] = {}
    for version in _xml(MAP_DIR / "maps.xml").iter("version"):
        if version.get("icvn") != ICVN:
            continue
        for entry in version.iter("map"):
            for set_id, fic in FUNCTIONAL_ID.items():
                if entry.get("vriic") == IMPLEMENTATION and entry.get("fic") == fic and entry.text:
                    found.setdefault(set_id, entry.text.strip())
    if found.keys() != FUNCTIONAL_ID.keys():
        raise _NotModeled("maps.xml lacks a 270 or 271 map")
    return found


def _pyx12_data(name: str) -> XmlNode:
    return _xml(str(files("pyx12").joinpath("map", name)))


def _dictionary() -> dict[str, tuple[str, int, int]]:
    """pyx12's data element dictionary: what it enforces for each element number."""
    return {
        str(e.get("ele_num")): (str(e.get("data_type")), int(e.get("min_len") or ""), int(e.get("max_len") or ""))
        for e in _pyx12_data("dataele.xml").iter("data_ele")
    }


def _external_codes() -> dict[str, frozenset[str]]:
    """pyx12's external code lists (states, country ...)."""
    return {
        str(s.findtext("id")): frozenset(c.text or "" for c in s.iterfind("version/code"))
        for s in _pyx12_data("codes.xml").iter("codeset")
    }


def _compile(path: Path, dictionary: dict[str, tuple[str, int, int]], external: dict[str, frozenset[str]]) -> _Map:
    root_xml = _xml(path)
    repeats = frozenset(str(e.get("xid")) for e in root_xml.iter("element") if int(e.get("repeat") or 1) > 1)
    sources = _Sources(dictionary, external, repeats)
    root = _Loop("", "R", 0, _UNLIMITED, None)
    _fill(root, root_xml, sources)
    _assign_paths(root)
    candidates: dict[str, list[_Seg]] = {}
    for seg in _segments(root):
        candidates.setdefault(seg.sid, []).append(seg)
    isa, gs = _find(root, ("ISA_LOOP", "ISA")), _find(root, ("ISA_LOOP", "GS_LOOP", "GS"))
    isa12 = isa.children[11] if len(isa.children) > 11 else None
    if not isinstance(isa12, _Elem) or isa12.code_list[:1] != (ICVN,):
        raise _NotModeled("the map's ISA12 is not 00501")
    return _Map(root, isa, gs, candidates, {sid: _key_spec(segs) for sid, segs in candidates.items()})


def _key_spec(segments: list[_Seg]) -> _KeySpec:
    codes: dict[str, frozenset[str]] = {}
    for seg in segments:
        if seg.key is not None:
            codes[seg.key[0]] = codes.get(seg.key[0], frozenset()) | seg.key[1]
    return tuple(sorted(codes.items()))


def _fill(loop: _Loop, xml: XmlNode, sources: _Sources) -> None:
    """pyx12's pos_map: per position, the loops (in map order) then the segments."""
    by_pos: dict[int, list[_Seg | _Loop]] = {}
    for child in xml.findall("loop"):
        sub = _Loop(_attr(child, "xid"), _usage(child), int(_attr(child, "pos")), _max(child.get("repeat")), loop)
        _fill(sub, child, sources)
        by_pos.setdefault(sub.pos, []).append(sub)
    for child in xml.findall("segment"):
        seg = _segment(child, loop, sources)
        by_pos.setdefault(seg.pos, []).append(seg)
    loop.by_pos = sorted(by_pos.items())


def _attr(xml: XmlNode, name: str) -> str:
    value = xml.get(name)
    if not value:
        raise _NotModeled(f"<{xml.tag}> without {name}")
    return value


def _usage(xml: XmlNode) -> str:
    usage = _attr(xml, "usage")
    if usage not in _USAGES:
        raise _NotModeled(f"usage {usage!r}")
    return usage


def _max(value: str | None) -> int:
    return _UNLIMITED if value is None or value in (">1", "&gt;1") else int(value)


def _segment(xml: XmlNode, parent: _Loop, sources: _Sources) -> _Seg:
    sid = _attr(xml, "xid")
    if sid in ("ENT", "CTX"):
        raise _NotModeled("pyx12 matches ENT and CTX specially")
    by_seq: dict[int, XmlNode] = {}
    for child in [*xml.findall("element"), *xml.findall("composite")]:
        by_seq[int(_attr(child, "seq"))] = child
    if sorted(by_seq) != list(range(1, len(by_seq) + 1)):
        raise _NotModeled(f"{sid}: element positions are not 1..n")
    children = tuple(_child(by_seq[seq], sources) for seq in sorted(by_seq))
    syntax, opaque = _syntax_rules(xml)
    position, max_use = int(_attr(xml, "pos")), _max(xml.get("max_use"))
    seg = _Seg(sid, _usage(xml), position, max_use, parent, children, syntax, _key(sid, children), opaque)
    seg.plain = sid not in ("ISA", "DTP") and not any(
        isinstance(c, _Elem) and c.data_ele in ("1250", "1251") for c in children
    )
    seg.absent_fails = tuple(any(_fails_absent(c) for c in children[n:]) for n in range(len(children) + 1))
    return seg


def _fails_absent(child: _Elem | _Comp) -> bool:
    """Whether pyx12 reports this element or composite when the segment ends before it."""
    return child.usage == "R" if isinstance(child, _Comp) else child.empty_is_error


def _child(xml: XmlNode, sources: _Sources) -> _Elem | _Comp:
    if xml.tag == "element":
        return _element(xml, sources, None)
    usage = _usage(xml)
    return _Comp(usage, tuple(_element(e, sources, usage) for e in xml.findall("element")))


_KINDS = {"AN": "AN", "ID": "AN", "R": "R", "DT": "DT", "D8": "D8", "D6": "D6", "TM": "TM"}


def _element(xml: XmlNode, sources: _Sources, composite_usage: str | None) -> _Elem:
    xid, data_ele, usage, seq = _attr(xml, "xid"), _attr(xml, "data_ele"), _usage(xml), int(_attr(xml, "seq"))
    declared = (_attr(xml, "data_type"), int(_attr(xml, "min_len")), int(_attr(xml, "max_len")))
    if sources.dictionary.get(data_ele) != declared:
        raise _NotModeled(f"{xid}: the map and pyx12's dictionary disagree")
    if (xml.findtext("regex") or "") != "":
        raise _NotModeled(f"{xid}: regular expressions are not modeled")
    data_type = declared[0]
    kind = "N" if re.fullmatch(r"N[0-9]?", data_type) else _KINDS.get(data_type)
    if kind is None:
        raise _NotModeled(f"{xid}: data type {data_type}")
    code_list, codes = _codes(xml, sources)
    empty_is_error = usage == "R" and (composite_usage is None or seq != 1 or composite_usage == "R")
    elem = _Elem(
        xid, usage, data_ele, data_type, kind, declared[1], declared[2], codes, code_list, xid in sources.repeats,
        empty_is_error, _pattern(kind, declared[1], declared[2]),
    )  # fmt: skip
    if codes is None:
        return elem
    return replace(elem, accepts=frozenset(code for code in codes if code and _single_ok(elem, code, [])))


@cache
def _pattern(kind: str, min_len: int, max_len: int) -> re.Pattern[str] | None:
    """AN/ID: pyx12's character set, min..max long; N: a sign and min..max digits (pyx12 measures
    numbers without sign and point).  R and dates are checked in two steps instead."""
    if kind == "AN":
        return re.compile(_AN.pattern.removesuffix("*") + f"{{{min_len},{max_len}}}", re.ASCII)
    if kind == "N":
        return re.compile(f"-?[0-9]{{{min_len},{max_len}}}", re.ASCII)
    return None


def _codes(xml: XmlNode, sources: _Sources) -> tuple[tuple[str, ...], frozenset[str] | None]:
    valid = xml.find("valid_codes")
    if valid is None:
        return (), None
    code_list = tuple(c.text or "" for c in valid.findall("code"))
    name = valid.get("external")
    if name is None:
        return code_list, frozenset(code_list)
    if name not in sources.external:
        raise _NotModeled(f"external code list {name}")
    return code_list, frozenset(code_list) | sources.external[name]


def _syntax_rules(xml: XmlNode) -> tuple[tuple[_Syntax, ...], bool]:
    """pyx12's _split_syntax; a rule naming fewer than two elements always fails in pyx12."""
    rules: list[_Syntax] = []
    opaque = False
    for node in xml.findall("syntax"):
        text = node.text
        if text is None:
            continue
        if text[:1] not in ("P", "R", "C", "L", "E"):
            if text == "":
                raise _NotModeled("empty syntax rule")
            continue
        indices = tuple(int(text[i * 2 + 1 : i * 2 + 3]) for i in range(len(text[1:]) // 2))
        opaque = opaque or len(indices) < 2
        rules.append((text[0], indices))
    return tuple(rules), opaque


def _key(sid: str, children: tuple[_Elem | _Comp, ...]) -> tuple[str, frozenset[str]] | None:
    """segment_if._resolve_unique_key_field (with_qual=False) for the segments our maps have."""
    first = children[0] if children else None
    if isinstance(first, _Elem) and _is_coded_id(first) and first.usage == "R":
        return ("01", frozenset(first.code_list))
    if isinstance(first, _Comp) and first.parts and _is_coded_id(first.parts[0]):
        return ("01-1", frozenset(first.parts[0].code_list))
    third = children[2] if len(children) > 2 else None
    if sid == "HL" and isinstance(third, _Elem) and third.code_list:
        return ("03", frozenset(third.code_list))
    return None


def _is_coded_id(elem: _Elem) -> bool:
    return elem.data_type == "ID" and bool(elem.code_list)


def _guess_key_code(seg: _Seg) -> str | None:
    """segment_if.guess_unique_key_id_element: the code pyx12 appends to a shared-position path."""
    first = seg.children[0] if seg.children else None
    if isinstance(first, _Elem) and _is_coded_id(first):
        return first.code_list[0]
    if isinstance(first, _Comp) and first.parts and _is_coded_id(first.parts[0]):
        return first.parts[0].code_list[0]
    third = seg.children[2] if len(seg.children) > 2 else None
    if seg.sid == "HL" and isinstance(third, _Elem) and third.code_list:
        return third.code_list[0]
    return None


def _assign_paths(root: _Loop) -> None:
    """Each node's path as pyx12's counter keys it (``/ISA_LOOP/.../2110C/EB``, ``AMT[R]``)."""
    stack = [root]
    while stack:
        loop = stack.pop()
        prefix = "" if loop is root else loop.path
        for _, nodes in loop.by_pos:
            for node in nodes:
                if isinstance(node, _Loop):
                    node.path = f"{prefix}/{node.lid}"
                    stack.append(node)
                else:
                    code = _guess_key_code(node) if len(nodes) > 1 else None
                    node.path = f"{prefix}/{node.sid}" + (f"[{code}]" if code is not None else "")
                    node.tr3_loop = "" if loop is root or loop.lid in WRAPPER_LOOPS else loop.lid


def _loops(loop: _Loop) -> Iterator[_Loop]:
    yield loop
    for child in loop.children():
        if isinstance(child, _Loop):
            yield from _loops(child)


def _segments(loop: _Loop) -> Iterator[_Seg]:
    for child in loop.children():
        if isinstance(child, _Loop):
            yield from _segments(child)
        else:
            yield child


def _find(root: _Loop, names: tuple[str, ...]) -> _Seg:
    node: _Seg | _Loop = root
    for name in names:
        assert isinstance(node, _Loop)
        node = next(c for c in node.children() if (c.lid if isinstance(c, _Loop) else c.sid) == name)
    if not isinstance(node, _Seg):
        raise _NotModeled(f"{'/'.join(names)} is not a segment")
    return node


# --- the map walk (pyx12's walk_tree, traced once per start node and match pattern) --------------


class _Tracer:
    """One ``walk_tree.walk_errors`` call, recording what it counts instead of counting.

    The walk's choices depend only on which map segments the data segment matches; the counters
    only decide whether it reports something.  ``required`` are the counts pyx12 compares with 1
    before recording a missing segment or loop (any such record is treated as a finding), ``ops``
    the counts it raises and compares with a maximum.
    """

    def __init__(self, matches: Callable[[_Seg], bool]) -> None:
        self.matches = matches
        self.required: list[str] = []
        self.ops: list[_Op] = []
        self.doubt = False

    def walk(self, start: _Seg) -> _Trace | None:
        loop: _Loop | None = start.parent
        position = start.pos
        while loop is not None:
            hit, target = self._scan(loop, position)
            if hit:
                return None if target is None or self.doubt else _Trace(target, tuple(self.required), tuple(self.ops))
            position = loop.pos
            loop = loop.parent
        return None  # segment not found: a finding

    def _scan(self, loop: _Loop, position: int) -> tuple[bool, _Seg | None]:
        for pos, nodes in loop.by_pos:
            if pos < position:
                continue
            for child in nodes:
                if isinstance(child, _Loop):
                    if self._loop_matches(child):
                        return True, self._enter(child)
                elif self.matches(child):
                    return True, self._segment_hit(loop, child)
                elif child.usage == "R":
                    self.required.append(child.path)
        return False, None

    def _segment_hit(self, loop: _Loop, child: _Seg) -> _Seg | None:
        if loop.parent is not None and self._loop_matches(loop):
            return self._enter(loop)
        self.doubt = self.doubt or child.usage == "N"
        self.ops.append((child.path, child.max_use, False))
        return child

    def _loop_matches(self, loop: _Loop) -> bool:
        first = loop.first()
        if first is None:
            return False
        if isinstance(first, _Loop):
            return any(isinstance(c, _Loop) and self._loop_matches(c) for c in loop.children())
        if self.matches(first):
            return True
        if loop.usage == "R":
            self.required.append(loop.path)
        return False

    def _enter(self, loop: _Loop) -> _Seg | None:
        first = loop.first()
        if isinstance(first, _Seg) and self.matches(first):
            self.doubt = self.doubt or loop.usage == "N"
            self.ops.append((loop.path, loop.max_repeat, True))
            self.ops.append((first.path, _UNLIMITED, False))
            return first
        for child in loop.children():
            if isinstance(child, _Loop):
                found = self._enter(child)
                if found is not None:
                    return found
        return None


_UNKNOWN = object()


def _formatted(value: str, component: str) -> str:
    """pyx12's Composite.format: the components up to the last non-empty one."""
    if component not in value:
        return value
    parts = value.split(component)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return component.join(parts)


def _qualifier(where: str, values: list[str], component: str) -> str | None:
    """The value segment_if.is_match compares with a code list (``01``, ``01-1`` or HL ``03``)."""
    index = 2 if where == "03" else 0
    if index >= len(values):
        return None
    value = values[index]
    return value.split(component)[0] if where == "01-1" else _formatted(value, component)


def _is_match(seg: _Seg, values: list[str], component: str) -> bool:
    """segment_if.is_match for a data segment with this ID."""
    return seg.key is None or _qualifier(seg.key[0], values, component) in seg.key[1]


def _trace(m: _Map, start: _Seg, sid: str, values: list[str], component: str) -> _Trace | None:
    """The walk from ``start`` for this segment, traced on first sight.

    Which map segments a data segment matches depends only on its ID and qualifier values, and
    only on whether each is a code there: a qualifier that is no code at all is probed as None,
    so the traces are finitely many.
    """
    spec = m.keys.get(sid)
    if spec is None:
        return None  # no such segment in the map: "not found"
    probe: _Probe = None
    if len(spec) == 1:
        probe = _qualifier(spec[0][0], values, component)
        probe = probe if probe in spec[0][1] else None
    elif spec:
        probes = [_qualifier(where, values, component) for where, _ in spec]
        probe = tuple(p if p in codes else None for p, (_, codes) in zip(probes, spec, strict=True))
    key = (start, sid, probe)
    trace = m.traces.get(key, _UNKNOWN)
    if trace is _UNKNOWN:
        matching = {id(c) for c in m.candidates[sid] if _is_match(c, values, component)}
        trace = m.traces[key] = _Tracer(lambda seg: id(seg) in matching).walk(start)
    return trace  # type: ignore[return-value]


# --- element and segment checks (pyx12's segment_if / composite_if / element_if) -----------------


def _segment_ok(seg: _Seg, values: list[str], component: str, repetition: str) -> bool:
    count = len(values)
    if seg.opaque or count > len(seg.children) or seg.absent_fails[count]:
        return False
    if not seg.plain:
        return _any_segment_ok(seg, values, component, repetition)
    for elem, value in zip(seg.children, values, strict=False):  # the rest are absent: checked above
        if not _child_ok(elem, value, component, repetition):
            return False
    return not seg.syntax or _syntax_ok(seg.syntax, values, component)


def _child_ok(child: _Elem | _Comp, value: str, component: str, repetition: str) -> bool:
    """One element or composite of a segment without DTP or date-format pairs."""
    if isinstance(child, _Comp):
        return _composite_ok(child, value, component, repetition)
    if not value:
        return not child.empty_is_error
    if component in value:
        return False  # "is an invalid composite"
    if child.repeats and repetition in value:
        return all(_single_ok(child, one, []) for one in value.split(repetition))
    return value in child.accepts if child.accepts is not None else _single_ok(child, value, [])


def _any_segment_ok(seg: _Seg, values: list[str], component: str, repetition: str) -> bool:
    """The general case: composites, DTP and date-format pairs, the ISA."""
    split = seg.sid != "ISA"  # pyx12 never splits ISA values into components
    type_list: list[str] = []
    dtp_types = _dtp_types(seg.sid, values, component)
    for index, child in enumerate(seg.children):
        value = values[index] if index < len(values) else None
        if isinstance(child, _Comp):
            ok = _composite_ok(child, value, component, repetition)
        elif value is None:
            ok = not child.empty_is_error
        elif split and component in value:
            ok = False  # "is an invalid composite"
        else:
            if child.data_ele == "1250":
                type_list.extend(child.code_list)
            types = dtp_types if index == 2 and seg.sid == "DTP" else (type_list if child.data_ele == "1251" else [])
            ok = _value_ok(child, value, types, repetition)
        if not ok:
            return False
    return _syntax_ok(seg.syntax, values, component)


def _dtp_types(sid: str, values: list[str], component: str) -> list[str]:
    """The DTP03 format pyx12 checks: DTP02 when it names one it knows."""
    if sid != "DTP" or len(values) < 2:
        return []
    qualifier = _formatted(values[1], component)
    return [qualifier] if qualifier in _DTP_TYPES else []


def _composite_ok(comp: _Comp, value: str | None, component: str, repetition: str) -> bool:
    parts = value.split(component) if value is not None else []
    empty = all(part == "" for part in parts)
    if empty:
        return comp.usage != "R"
    if comp.usage == "N" or len(parts) > len(comp.parts):
        return False
    for index, elem in enumerate(comp.parts):
        part = parts[index] if index < len(parts) else ""
        if not _value_ok(elem, part, [], repetition):
            return False
    return True


def _value_ok(elem: _Elem, value: str, types: list[str], repetition: str) -> bool:
    if elem.repeats and repetition in value:
        return all(_single_ok(elem, one, types) for one in value.split(repetition))
    return _single_ok(elem, value, types)


def _single_ok(elem: _Elem, value: str, types: list[str]) -> bool:
    if value == "":
        return not elem.empty_is_error
    if elem.usage == "N":
        return False
    pattern = elem.pattern
    if pattern is None:
        if not (_length_ok(elem, value) and _type_ok(elem, value)):
            return False
    elif pattern.fullmatch(value) is None or (_trailing_spaces(elem, value) if value[-1] == " " else False):
        return False
    if elem.codes is not None and value not in elem.codes:
        return False
    return not types or any(_typed_ok(kind, value) for kind in types)


def _length_ok(elem: _Elem, value: str) -> bool:
    size = len(value)
    if elem.kind in ("N", "R"):
        size -= value.count("-") + value.count(".")
    return elem.min_len <= size <= elem.max_len


def _type_ok(elem: _Elem, value: str) -> bool:
    kind = elem.kind
    if kind == "AN":
        return _AN.fullmatch(value) is not None and not _trailing_spaces(elem, value)
    if kind == "N":
        return _NUMBER.fullmatch(value) is not None
    if kind == "R":
        return _DECIMAL.fullmatch(value) is not None
    return _typed_ok(kind, value)


def _trailing_spaces(elem: _Elem, value: str) -> bool:
    """pyx12's "unnecessary trailing spaces" (AN and ID): only when the value is long enough without them."""
    return elem.kind == "AN" and value[-1] == " " and len(value.rstrip()) >= elem.min_len


def _typed_ok(kind: str, value: str) -> bool:
    """validation.IsValidDataType for the date and time formats (anything else: doubt)."""
    if kind in _DATE_KINDS:
        return _date_ok(kind, value)
    if kind == "TM":
        return _time_ok(value)
    if kind == "RD8":
        start, dash, end = value.partition("-")
        return dash == "-" and "-" not in end and _date_ok("D8", start) and _date_ok("D8", end)
    return False


def _date_ok(kind: str, value: str) -> bool:
    size = len(value)
    if (kind == "D8" and size != 8) or (kind == "D6" and size != 6) or size not in (6, 8, 12):
        return False
    if _DIGITS.fullmatch(value) is None:
        return False
    full = (("20" if int(value[:2]) < 50 else "19") + value) if size == 6 else value
    year, month, day = int(full[:4]), int(full[4:6]), int(full[6:8])
    if year < 1800 or not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
        return False
    return size != 12 or _time_ok(value[8:12])


def _days_in(year: int, month: int) -> int:
    if month in (4, 6, 9, 11):
        return 30
    if month != 2:
        return 31
    leap = year % 4 == 0 and not (year % 100 == 0 and year % 400 != 0)
    return 29 if leap else 28


def _time_ok(value: str) -> bool:
    if _DIGITS.fullmatch(value) is None or value[:2] > "23" or value[2:4] > "59":
        return False
    size = len(value)
    return size <= 4 or (6 <= size <= 8 and value[4:6] <= "59")


def _syntax_ok(rules: tuple[_Syntax, ...], values: list[str], component: str) -> bool:
    for kind, indices in rules:
        present = [i <= len(values) and values[i - 1].replace(component, "") != "" for i in indices]
        count = sum(present)
        if kind == "P" and count not in (0, len(indices)):
            return False
        if (kind == "R" and count == 0) or (kind == "E" and count > 1):
            return False
        if kind == "C" and present[0] and count != len(indices):
            return False
        if kind == "L" and present[0] and count == 1:
            return False
    return True


# --- the document --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Delimiters:
    element: str
    component: str
    segment: str
    repetition: str


def _tokenize(text: str) -> tuple[_Delimiters, list[str]] | None:
    """validate._plan's segments (blanks between them dropped), or None for an unusual interchange."""
    body = text.lstrip(_BLANKS)
    if len(body) < 106 or not body.startswith("ISA"):
        return None
    pieces = [piece.lstrip(_BLANKS) for piece in body.split(body[105])]
    pieces = [piece for piece in pieces if piece.strip(_BLANKS)]
    isa = pieces[0].split(body[3])
    if len(pieces[0]) != 105 or tuple(len(value) for value in isa[1:]) != _ISA_WIDTHS:
        return None
    delimiters = _Delimiters(body[3], isa[16], body[105], isa[11])
    chosen = (delimiters.element, delimiters.component, delimiters.segment, delimiters.repetition)
    if len(set(chosen)) != 4 or any(c.isalnum() or c in " \t" for c in chosen):
        return None
    try:
        found, _ = detect_delimiters(text)
    except X12Error:
        return None
    if (found.element, found.component, found.segment, found.repetition) != chosen:
        return None
    return delimiters, pieces


# The envelope grammar accepted: ISA (GS (ST ... SE)+ GE)+ IEA, nothing else around it.
_NEXT: dict[str, dict[str, str]] = {
    "start": {"ISA": "isa"},
    "isa": {"GS": "gs"},
    "gs": {"ST": "st"},
    "st": {"SE": "se", "": "st"},
    "se": {"ST": "st", "GE": "ge"},
    "ge": {"GS": "gs", "IEA": "end"},
    "end": {},
}


@dataclass(slots=True, init=False)
class _HlLevel:
    level: str
    child_code: str
    has_children: bool = False

    def __init__(self, level: str, child_code: str, has_children: bool = False) -> None:
        self.level = level
        self.child_code = child_code
        self.has_children = has_children


# The element checks of a segment depend only on its map node, its text and the separators, and the
# same benefit rows, dates and delivery patterns come back in answer after answer from a payer:
# their results are remembered per process.  Only segments that carry no patient identifiers are
# (no NM1, N3/N4, DMG, REF, TRN, MSG free text); the memory is bounded and starts over when full.
_REMEMBERED: Final = frozenset({"EB", "HSD", "DTP", "III", "LS", "LE"})
_CHECKED_LIMIT: Final = 4096
_CHECKED: Final[dict[tuple[_Seg, str, str], bool]] = {}


class _Document:
    """One pass over the segments, mirroring what the full validation would track."""

    def __init__(self, maps: dict[str, _Map], delimiters: _Delimiters, pieces: list[str]) -> None:
        self.maps = maps
        self.d = delimiters
        self.separators = delimiters.element + delimiters.component + delimiters.repetition
        self.pieces = pieces
        self.state = "start"
        self.map: _Map | None = None
        self.node: _Seg | None = None
        self.counts: dict[str, int] = {}
        self.created: list[str] = []  # counter paths in the order their counts were created
        self.resets: dict[str, int] = {}  # loop path -> len(created) when its counts were last reset
        self.open_ls = False
        self.ids: dict[str, str | None] = {}  # ISA13, GS06, ST02 of the open envelopes
        self.gs_ids: set[str | None] = set()  # pyx12: GS06 unique in the interchange
        self.st_ids: set[str | None] = set()  # ST02 unique in the group
        self.groups = self.sets = self.seg_count = self.hl_count = 0
        self.hl_stack: list[int] = []
        self.levels: dict[str, _HlLevel] = {}

    def clean(self) -> bool:
        for index, piece in enumerate(self.pieces):
            if not self._segment(index, piece):
                return False
        return self.state == "end"

    def _segment(self, index: int, piece: str) -> bool:
        d = self.d
        if piece[-1] == d.element:
            return False  # "Segment contains trailing element terminators"
        values = piece.split(d.element)
        sid = values.pop(0)
        if piece[len(sid) :].strip(d.element + d.component) == "":
            return False  # an empty segment
        transitions = _NEXT[self.state]
        state = transitions.get(sid) or (transitions.get("") if sid not in _ENVELOPE else None)
        if state is None:
            return False
        self.state = state
        node = self._find(index, sid, values)
        return (
            node is not None
            and self._brackets(node)
            and self._reader(sid, values)
            and self._elements_ok(node, piece, values)
            and (sid != "HL" or self._hierarchy(values))
        )

    def _elements_ok(self, node: _Seg, piece: str, values: list[str]) -> bool:
        """``_segment_ok``, remembered for the segments in ``_REMEMBERED`` (see there)."""
        d = self.d
        if node.sid not in _REMEMBERED:
            return _segment_ok(node, values, d.component, d.repetition)
        key = (node, piece, self.separators)
        known = _CHECKED.get(key)
        if known is None:
            known = _segment_ok(node, values, d.component, d.repetition)
            if len(_CHECKED) >= _CHECKED_LIMIT:
                _CHECKED.clear()
            _CHECKED[key] = known
        return known

    def _find(self, index: int, sid: str, values: list[str]) -> _Seg | None:
        """validate._Walk._find: ISA and GS restart the walk, the rest is walked from the last node."""
        if sid in ("ISA", "GS"):
            self.map = self._group_map(index + (2 if sid == "ISA" else 1))
            if self.map is None:
                return None
            loop = "/ISA_LOOP" if sid == "ISA" else "/ISA_LOOP/GS_LOOP"
            node = self.map.isa if sid == "ISA" else self.map.gs
            self._restart(loop, node.path)
            self.node = node
            return node
        if self.map is None or self.node is None:
            return None
        trace = _trace(self.map, self.node, sid, values, self.d.component)
        if trace is None or not self._count(trace):
            return None
        self.node = trace.target
        return trace.target

    def _group_map(self, st_index: int) -> _Map | None:
        """The map validate._plan picks for the group whose first ST is at ``st_index``."""
        if st_index >= len(self.pieces):
            return None
        st = self.pieces[st_index].split(self.d.element)
        if st[0] != "ST" or len(st) < 4 or st[3].strip() != IMPLEMENTATION:
            return None
        return self.maps.get(st[1].strip())

    def _restart(self, loop: str, first: str) -> None:
        """walk_tree.forceWalkCounterToLoopStart."""
        counts = self.counts
        for path in [p for p in counts if p.startswith(loop + "/")]:
            del counts[path]
        self._increment(loop)
        self._increment(first)

    def _count(self, trace: _Trace) -> bool:
        """Replay a traced walk on this document's counts (pyx12's NodeCounter, keyed by path)."""
        counts = self.counts
        for path in trace.required:
            if counts.get(path, 0) < 1:
                return False
        for path, limit, resets in trace.ops:
            if resets:
                self._reset(path)
            count = counts[path] = counts.get(path, 0) + 1
            if count == 1:
                self.created.append(path)
            if count > limit:
                return False
        return True

    def _increment(self, path: str) -> int:
        count = self.counts[path] = self.counts.get(path, 0) + 1
        if count == 1:
            self.created.append(path)
        return count

    def _reset(self, loop: str) -> None:
        """NodeCounter.reset_to_node: drop the counts under ``loop``.

        ``created`` lists every count this document created, in order; a reset drops all counts
        under the loop, so every count under it now was created since its last reset (or since the
        document began): only those entries need looking at.
        """
        counts, prefix = self.counts, loop + "/"
        for path in self.created[self.resets.get(loop, 0) :]:
            if path.startswith(prefix):
                counts.pop(path, None)
        self.resets[loop] = len(self.created)

    def _brackets(self, node: _Seg) -> bool:
        """validate._EntityLoopBrackets: LS before and LE after each 2120 loop."""
        was_open = self.open_ls
        if node.sid in ("LS", "LE"):
            self.open_ls = node.sid == "LS"
            return was_open == (node.sid == "LE")
        self.open_ls = node.tr3_loop.startswith("2120")
        return was_open == self.open_ls

    def _reader(self, sid: str, values: list[str]) -> bool:
        """pyx12's X12Reader checks: control numbers, counts, trailers, HL numbering."""
        check = _READER_CHECKS.get(sid)
        ok = check(self, values) if check is not None else True
        if sid not in _ENVELOPE:
            self.seg_count += 1
        return ok

    def _isa(self, values: list[str]) -> bool:
        self.ids["ISA"] = values[12]
        self.groups = 0
        self.gs_ids = set()
        return True

    def _gs(self, values: list[str]) -> bool:
        control = self.ids["GS"] = _value(values, 6)
        fresh = control not in self.gs_ids
        self.gs_ids.add(control)
        self.groups += 1
        self.sets = 0
        self.st_ids = set()
        return fresh

    def _st(self, values: list[str]) -> bool:
        control = self.ids["ST"] = _value(values, 2)
        fresh = control not in self.st_ids
        self.st_ids.add(control)
        self.sets += 1
        self.seg_count = 1
        self.hl_count = 0
        self.hl_stack = []
        return fresh

    def _se(self, values: list[str]) -> bool:
        ok = _value(values, 2) == self.ids["ST"] and _count_is(_value(values, 1), self.seg_count + 1)
        return ok and self._finish_hierarchy()

    def _ge(self, values: list[str]) -> bool:
        return _value(values, 2) == self.ids["GS"] and _count_is(_value(values, 1), self.sets)

    def _iea(self, values: list[str]) -> bool:
        return _value(values, 2) == self.ids["ISA"] and _count_is(_value(values, 1), self.groups)

    def _hl(self, values: list[str]) -> bool:
        """X12Reader's HL count and parent stack."""
        self.hl_count += 1
        parent = _value(values, 2)
        if _value(values, 1) != str(self.hl_count) or parent is None:
            return False
        if parent != "":
            if not (parent.isascii() and parent.isdigit()) or int(parent) not in self.hl_stack:
                return False
            while self.hl_stack and self.hl_stack[-1] != int(parent):
                self.hl_stack.pop()
        self.hl_stack.append(self.hl_count)
        return True

    def _hierarchy(self, values: list[str]) -> bool:
        """validate._Hierarchy.check: an HL's parent is the level above it."""
        level = _value(values, 3) or ""
        parent = self.levels.get(_value(values, 2) or "")
        ok = True
        if parent is not None:
            parent.has_children = True
            wanted = PARENT_LEVEL.get(level)
            ok = wanted is None or parent.level == wanted
        self.levels[_value(values, 1) or ""] = _HlLevel(level, _value(values, 4) or "")
        return ok

    def _finish_hierarchy(self) -> bool:
        """validate._Hierarchy.finish: HL04 agrees with the HLs that follow (no error, no warning)."""
        levels, self.levels = self.levels, {}
        for hl in levels.values():
            if hl.child_code == "0" and hl.has_children:
                return False
            if hl.child_code == "1" and not hl.has_children and hl.level in _LEVELS_WITH_CHILDREN:
                return False
        return True


_READER_CHECKS: dict[str, Callable[[_Document, list[str]], bool]] = {
    "ISA": _Document._isa,
    "GS": _Document._gs,
    "ST": _Document._st,
    "SE": _Document._se,
    "GE": _Document._ge,
    "IEA": _Document._iea,
    "HL": _Document._hl,
}


def _value(values: list[str], number: int) -> str | None:
    return values[number - 1] if number <= len(values) else None


def _count_is(value: str | None, expected: int) -> bool:
    """pyx12 compares int(value); plain digits only here."""
    return value is not None and value.isascii() and value.isdigit() and int(value) == expected


# --- the API ---------------------------------------------------------------------------------------


def definitely_clean(text: str) -> bool:
    """True only when ``validate_x12(text)`` would return no finding (and raise nothing)."""
    return decoded_is_clean(decode(text))


def decoded_is_clean(text: str) -> bool:
    """``definitely_clean`` for text already through ``reader.decode`` (what validate_x12 has)."""
    maps = _maps()
    tokens = _tokenize(text) if maps is not None else None
    if maps is None or tokens is None:
        return False
    try:
        return _Document(maps, *tokens).clean()
    except (ValueError, IndexError, KeyError):  # pragma: no cover - a doubt, never a crash
        return False


def compile_maps() -> bool:
    """Compile the tables now (at start-up, like ``validate.load_map``); False: the fast path is off."""
    return _maps() is not None


__all__ = [
    "FUNCTIONAL_ID",
    "ICVN",
    "IMPLEMENTATION",
    "MAP_DIR",
    "PARENT_LEVEL",
    "WRAPPER_LOOPS",
    "compile_maps",
    "decoded_is_clean",
    "definitely_clean",
]
