"""Render X12: segments to text, a ``Transaction271`` back to its segments, whole interchanges.

Pure.  The inverse of ``reader`` + ``parse271`` for canonical data: a 271 that has no trailing
empty elements, carries only what ``loops271`` models, writes its loops in TR3 order, numbers
without a leading zero before the decimal point (``.2``, as X12 writes them) and a correct SE01,
renders back byte for byte.  The sandbox clearinghouse answers with 271s rendered here.

Every value is checked before it is written: a delimiter inside a value would silently change
the meaning of what we send, so it raises ``X12SyntaxError`` instead.

    render_segments(segments, delimiters)        generic: element lists → text
    transaction_segments(tx, delimiters)         Transaction271 → element lists (ST..SE)
    render_transaction(tx, delimiters)           Transaction271 → text (ST..SE)
    render_isa(envelope, delimiters)             the 106-character ISA
    interchange_segments(bodies, envelope, d)    ISA, GS, the transactions, GE, IEA
    render_interchange(txs, envelope, d)         271 transactions → a whole interchange
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from eligibility_svc.errors import X12SyntaxError
from eligibility_svc.x12.loops271 import (
    Aaa,
    Address,
    CompositeProcedure,
    Dmg,
    Dtp,
    Eb,
    Hsd,
    Ins,
    Loop2000A,
    Loop2000B,
    Loop2000C,
    Loop2000D,
    Loop2100Member,
    Loop2110,
    Loop2120,
    Mpi,
    Nm1,
    Per,
    Prv,
    Ref,
    Transaction271,
)
from eligibility_svc.x12.reader import Delimiters, Interchange

__all__ = [
    "EnvelopeValues",
    "envelope_of",
    "interchange_segments",
    "isa_elements",
    "render_interchange",
    "render_isa",
    "render_segments",
    "render_transaction",
    "transaction_segments",
]

_Segments = list[list[str]]
# ISA01..ISA15 widths; ISA16 is the component separator itself.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)
_ISA_NAMES = (
    "ISA01 authorization qualifier",
    "ISA02 authorization information",
    "ISA03 security qualifier",
    "ISA04 security information",
    "ISA05 sender qualifier",
    "ISA06 sender ID",
    "ISA07 receiver qualifier",
    "ISA08 receiver ID",
    "ISA09 date (YYMMDD)",
    "ISA10 time (HHMM)",
    "ISA11 repetition separator",
    "ISA12 version",
    "ISA13 control number",
    "ISA14 acknowledgment requested",
    "ISA15 usage indicator",
)
_MAX_CONTROL = 999_999_999


@dataclass(frozen=True, slots=True)
class EnvelopeValues:
    """What ISA/GS/GE/IEA carry around the transactions.

    ``date`` is CCYYMMDD (GS04; ISA09 is its last six digits) and ``time`` HHMM or HHMMSS
    (GS05; ISA10 is its first four).  ``application_sender``/``application_receiver`` (GS02/GS03)
    default to the interchange IDs.
    """

    sender_id: str
    receiver_id: str
    control_number: int  # ISA13 and IEA02
    group_control_number: int  # GS06 and GE02
    date: str
    time: str
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    application_sender: str = ""
    application_receiver: str = ""
    usage: str = "P"  # ISA15: P production, T test
    acknowledgment_requested: str = "0"  # ISA14
    functional_id: str = "HB"  # GS01: HB for 271, HS for 270
    implementation: str = "005010X279A1"  # GS08
    interchange_version: str = "00501"  # ISA12
    authorization_qualifier: str = "00"
    authorization: str = ""
    security_qualifier: str = "00"
    security: str = ""


def envelope_of(interchange: Interchange) -> EnvelopeValues:
    """The envelope values of a read interchange (its first group), to answer or re-render it.

    Raises ``X12SyntaxError`` when a control number is not numeric or there is no GS.
    """
    isa = interchange.isa
    group = interchange.transactions[0].group
    if group is None:
        raise X12SyntaxError("the interchange has no GS", segment_id="GS", expected="a GS before the first ST")
    return EnvelopeValues(
        sender_id=isa.el(6).rstrip(),
        receiver_id=isa.el(8).rstrip(),
        control_number=_control(isa.el(13), "ISA13"),
        group_control_number=_control(group.el(6), "GS06"),
        date=group.el(4),
        time=group.el(5),
        sender_qualifier=isa.el(5),
        receiver_qualifier=isa.el(7),
        application_sender=group.el(2),
        application_receiver=group.el(3),
        usage=isa.el(15),
        acknowledgment_requested=isa.el(14),
        functional_id=group.el(1),
        implementation=group.el(8),
        interchange_version=isa.el(12),
        authorization_qualifier=isa.el(1),
        authorization=isa.el(2).rstrip(),
        security_qualifier=isa.el(3),
        security=isa.el(4).rstrip(),
    )


def _control(value: str, name: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise X12SyntaxError(f"{name} is {value!r}", segment_id=name[:-2], expected=f"a numeric {name}")
    return int(text)


# --- generic rendering ----------------------------------------------------------------------------


def render_segments(segments: Iterable[Sequence[str]], delimiters: Delimiters, *, line_end: str = "") -> str:
    """Segments (``[id, el1, el2 ...]``) as X12 text; ``line_end`` goes between segments.

    Trailing empty elements are dropped (an ISA is written as given).  Raises
    ``X12SyntaxError`` when a value holds the element separator or the segment terminator.
    """
    element, terminator = delimiters.element, delimiters.segment
    forbidden = {element, terminator}
    out = []
    for index, segment in enumerate(segments, 1):
        values = list(segment)
        if values and values[0] != "ISA":
            while len(values) > 1 and not values[-1]:
                values.pop()
        for value in values:
            if element in value or terminator in value:
                bad = sorted(forbidden.intersection(value))
                raise X12SyntaxError(
                    f"the value {value!r} contains the delimiter(s) {''.join(bad)!r}",
                    position=index,
                    segment_id=values[0],
                    expected="values without element separators or segment terminators",
                )
        out.append(element.join(values))
    return (terminator + line_end).join(out) + terminator if out else ""


# --- the 271 --------------------------------------------------------------------------------------


def render_transaction(tx: Transaction271, delimiters: Delimiters, *, line_end: str = "") -> str:
    """One 271 transaction set, ST to SE (SE01 counted, SE02 = ST02)."""
    return render_segments(transaction_segments(tx, delimiters), delimiters, line_end=line_end)


def transaction_segments(tx: Transaction271, delimiters: Delimiters) -> _Segments:
    """The segments of ``tx`` in TR3 order, composites and repeats joined with ``delimiters``."""
    writer = _Writer(delimiters)
    out = writer.out
    out.append(["ST", "271", tx.control_number, tx.implementation])
    header = tx.header
    out.append(
        ["BHT", header.structure, header.purpose, header.reference, _d8(header.date, header.date_raw), header.time]
    )
    for source in tx.sources:
        writer.source(source)
    out.append(["SE", str(len(out) + 1), tx.control_number])
    _check_simple_values(out, delimiters)
    return out


# Elements that legitimately hold component or repetition separators (index 0 is the segment ID).
_STRUCTURED = {"EB": frozenset({3, 13, 14}), "HI": frozenset(range(1, 13))}


def _check_simple_values(segments: _Segments, delimiters: Delimiters) -> None:
    """No simple value may hold a component or repetition separator (readers would split it)."""
    inner = {delimiters.component} | ({delimiters.repetition} if delimiters.repetition else set())
    for index, segment in enumerate(segments, 1):
        structured = _STRUCTURED.get(segment[0], frozenset())
        for position, value in enumerate(segment):
            if position not in structured and not inner.isdisjoint(value):
                raise X12SyntaxError(
                    f"{segment[0]}{position:02d} {value!r} contains a component or repetition separator",
                    position=index,
                    segment_id=segment[0],
                    expected=f"a value without {''.join(sorted(inner))}",
                )


class _Writer:
    """Collects a 271's segments; one method per loop, in TR3 order."""

    __slots__ = ("delimiters", "out")

    def __init__(self, delimiters: Delimiters) -> None:
        self.delimiters = delimiters
        self.out: _Segments = []

    def source(self, loop: Loop2000A) -> None:
        self._hl(loop)
        self._errors(loop.errors)
        name = loop.source
        self._name(name.name)
        self.out.extend(_per(contact) for contact in name.contacts)
        self._errors(name.errors)
        for receiver in loop.receivers:
            self.receiver(receiver)

    def receiver(self, loop: Loop2000B) -> None:
        self._hl(loop)
        name = loop.receiver
        self._name(name.name)
        self.out.extend(_ref(ref) for ref in name.refs)
        self._address(name.address)
        self._errors(name.errors)
        self._provider(name.provider)
        for subscriber in loop.subscribers:
            self.member_level(subscriber)

    def member_level(self, loop: Loop2000C | Loop2000D) -> None:
        self._hl(loop)
        self.out.extend(["TRN", t.type, t.reference, t.originator, t.supplemental] for t in loop.traces)
        self.member(loop.subscriber if isinstance(loop, Loop2000C) else loop.dependent)
        if isinstance(loop, Loop2000C):
            for dependent in loop.dependents:
                self.member_level(dependent)

    def member(self, loop: Loop2100Member) -> None:
        out = self.out
        self._name(loop.name)
        out.extend(_ref(ref) for ref in loop.refs)
        self._address(loop.address)
        self._errors(loop.errors)
        self._provider(loop.provider)
        if loop.demographics is not None:
            out.append(_dmg(loop.demographics))
        if loop.relationship is not None:
            out.append(_ins(loop.relationship))
        if loop.diagnoses:
            out.append(["HI", *(self._composite([d.qualifier, d.code]) for d in loop.diagnoses)])
        out.extend(_dtp(dtp) for dtp in loop.dates)
        if loop.military is not None:
            out.append(_mpi(loop.military))
        for benefit in loop.benefits:
            self.benefit(benefit)

    def benefit(self, loop: Loop2110) -> None:
        out = self.out
        out.append(self._eb(loop.eb))
        out.extend(_hsd(hsd) for hsd in loop.delivery)
        out.extend(_ref(ref) for ref in loop.refs)
        out.extend(_dtp(dtp) for dtp in loop.dates)
        self._errors(loop.errors)
        out.extend(["MSG", m.text] for m in loop.messages)
        out.extend(["III", a.info.qualifier, a.info.code, a.info.category, a.info.text] for a in loop.additional_info)
        if loop.related_entities:
            out.append(["LS", "2120"])
            for entity in loop.related_entities:
                self.entity(entity)
            out.append(["LE", "2120"])

    def entity(self, loop: Loop2120) -> None:
        self._name(loop.name)
        self._address(loop.address)
        self.out.extend(_per(contact) for contact in loop.contacts)
        self._provider(loop.provider)

    def _eb(self, eb: Eb) -> list[str]:
        return [
            "EB",
            eb.info,
            eb.coverage_level,
            self._repeats(eb.service_types),
            eb.insurance_type,
            eb.plan_description,
            eb.time_period,
            _number(eb.amount),
            _number(eb.percent),
            eb.quantity_qualifier,
            _number(eb.quantity),
            eb.auth_required,
            eb.in_plan_network,
            self._procedure(eb.procedure),
            self._composite(eb.diagnosis_pointers),
        ]

    def _procedure(self, procedure: CompositeProcedure | None) -> str:
        if procedure is None:
            return ""
        modifiers = procedure.modifiers + [""] * (4 - len(procedure.modifiers))
        return self._composite(
            [procedure.qualifier, procedure.code, *modifiers[:4], procedure.description, procedure.range_end]
        )

    def _composite(self, parts: Sequence[str]) -> str:
        """Components joined, trailing empty ones dropped; a delimiter inside a part raises."""
        values = list(parts)
        while values and not values[-1]:
            values.pop()
        self._check(values, "component")
        return self.delimiters.component.join(values)

    def _repeats(self, values: Sequence[str]) -> str:
        rep = self.delimiters.repetition
        if len(values) > 1 and rep is None:
            raise X12SyntaxError(
                f"{len(values)} repeated values but no repetition separator",
                segment_id="EB",
                expected="Delimiters with a repetition separator (ISA11)",
            )
        self._check(values, "repeated value")
        return (rep or "").join(values)

    def _check(self, values: Sequence[str], what: str) -> None:
        forbidden = self.delimiters.all()
        for value in values:
            if not forbidden.isdisjoint(value):
                raise X12SyntaxError(
                    f"the {what} {value!r} contains a delimiter",
                    expected=f"a {what} without {''.join(sorted(forbidden))}",
                )

    def _hl(self, loop: Loop2000A | Loop2000B | Loop2000C | Loop2000D) -> None:
        hl = loop.hl
        self.out.append(["HL", hl.id, hl.parent_id, hl.level, hl.has_children])

    def _name(self, name: Nm1 | None) -> None:
        if name is not None:
            self.out.append(
                [
                    "NM1",
                    name.entity_id,
                    name.entity_type,
                    name.last_or_org,
                    name.first,
                    name.middle,
                    name.prefix,
                    name.suffix,
                    name.id_qualifier,
                    name.id,
                    name.relationship,
                ]
            )

    def _address(self, address: Address | None) -> None:
        if address is None:
            return
        if address.line1 or address.line2:
            self.out.append(["N3", address.line1, address.line2])
        n4 = [
            "N4",
            address.city,
            address.state,
            address.postal_code,
            address.country,
            address.location_qualifier,
            address.location_id,
            address.country_subdivision,
        ]
        if any(n4[1:]):
            self.out.append(n4)

    def _errors(self, errors: list[Aaa]) -> None:
        self.out.extend(["AAA", a.valid, "", a.reason, a.follow_up] for a in errors)

    def _provider(self, provider: Prv | None) -> None:
        if provider is not None:
            self.out.append(["PRV", provider.code, provider.reference_qualifier, provider.reference])


def _dmg(dmg: Dmg) -> list[str]:
    return ["DMG", dmg.format, _d8(dmg.birth_date, dmg.birth_date_raw), dmg.sex]


def _ins(ins: Ins) -> list[str]:
    """INS01-04, then INS05-INS16 (not used in a 271) empty, then INS17."""
    head = ["INS", ins.subscriber, ins.relationship, ins.maintenance_type, ins.maintenance_reason]
    return [*head, *[""] * 12, ins.birth_sequence]


def _mpi(m: Mpi) -> list[str]:
    return ["MPI", m.status, m.employment_status, m.affiliation, m.description, m.rank, m.date_format, m.date_range]


def _hsd(h: Hsd) -> list[str]:
    return [
        "HSD",
        h.quantity_qualifier,
        _number(h.quantity),
        h.unit,
        _number(h.sample_selection_modulus),
        h.time_period,
        _number(h.period_count),
        h.delivery_frequency,
        h.delivery_pattern_time,
    ]


def _ref(ref: Ref) -> list[str]:
    return ["REF", ref.qualifier, ref.value, ref.description]


def _per(contact: Per) -> list[str]:
    return ["PER", contact.function, contact.name, *(part for pair in contact.numbers[:3] for part in pair)]


def _dtp(dtp: Dtp) -> list[str]:
    value = dtp.value
    if not value and dtp.start is not None:
        value = _d8(dtp.start, "")
        if dtp.format == "RD8":
            value = f"{value}-{_d8(dtp.end or dtp.start, '')}"
    return ["DTP", dtp.qualifier, dtp.format, value]


def _d8(day: date | None, raw: str) -> str:
    """CCYYMMDD of ``day``; ``raw`` (as sent) when the date did not parse."""
    if day is None:
        return raw
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _number(value: Decimal | None) -> str:
    """X12 numeric text: no exponent, no leading zero before the decimal point (``.2``)."""
    if value is None:
        return ""
    text = format(value, "f")
    if text.startswith("0."):
        return text[1:]
    if text.startswith("-0."):
        return "-" + text[2:]
    return text


# --- envelopes --------------------------------------------------------------------------------------


def isa_elements(envelope: EnvelopeValues, delimiters: Delimiters) -> list[str]:
    """The ISA as ``["ISA", ISA01 ... ISA16]``, every field padded to its fixed width.

    Raises ``X12SyntaxError`` naming the field when a value is too long, a date, time or
    control number is not numeric, or a value contains a delimiter.
    """
    _check_envelope_delimiters(delimiters)
    values = [
        envelope.authorization_qualifier,
        envelope.authorization,
        envelope.security_qualifier,
        envelope.security,
        envelope.sender_qualifier,
        envelope.sender_id,
        envelope.receiver_qualifier,
        envelope.receiver_id,
        _digits(envelope.date, 8, "ISA09 date (from CCYYMMDD)")[2:],
        _digits(envelope.time[:4], 4, "ISA10 time (from HHMM)"),
        delimiters.repetition or "U",
        envelope.interchange_version,
        _control_text(envelope.control_number, "ISA13 control number"),
        envelope.acknowledgment_requested,
        envelope.usage,
    ]
    forbidden = delimiters.all()
    fields = ["ISA"]
    for index, (value, width, name) in enumerate(zip(values, _ISA_WIDTHS, _ISA_NAMES, strict=True), 1):
        if len(value) > width or (index != 11 and not forbidden.isdisjoint(value)):
            raise X12SyntaxError(
                f"{name} {value!r} does not fit",
                position=1,
                segment_id="ISA",
                expected=f"at most {width} characters without delimiters",
            )
        fields.append(value.ljust(width))
    fields.append(delimiters.component)
    return fields


def render_isa(envelope: EnvelopeValues, delimiters: Delimiters) -> str:
    """The ISA segment with its terminator: always exactly 106 characters."""
    return delimiters.element.join(isa_elements(envelope, delimiters)) + delimiters.segment


def interchange_segments(
    transactions: Sequence[Sequence[Sequence[str]]], envelope: EnvelopeValues, delimiters: Delimiters
) -> _Segments:
    """ISA, GS, every transaction's segments (ST..SE, as given), GE and IEA."""
    _control_text(envelope.group_control_number, "GS06 group control number")  # range check only
    group = str(envelope.group_control_number)
    out: _Segments = [
        isa_elements(envelope, delimiters),
        [
            "GS",
            envelope.functional_id,
            envelope.application_sender or envelope.sender_id,
            envelope.application_receiver or envelope.receiver_id,
            _digits(envelope.date, 8, "GS04 date (CCYYMMDD)"),
            envelope.time,
            group,
            "X",
            envelope.implementation,
        ],
    ]
    for transaction in transactions:
        out.extend(list(segment) for segment in transaction)
    out.append(["GE", str(len(transactions)), group])
    out.append(["IEA", "1", _control_text(envelope.control_number, "IEA02 control number")])
    return out


def render_interchange(
    transactions: Sequence[Transaction271], envelope: EnvelopeValues, delimiters: Delimiters, *, line_end: str = ""
) -> str:
    """271 transactions in one interchange (one functional group), ready to send."""
    bodies = [transaction_segments(tx, delimiters) for tx in transactions]
    return render_segments(interchange_segments(bodies, envelope, delimiters), delimiters, line_end=line_end)


def _segment_of(name: str) -> str:
    """``"ISA13 control number"`` → ``"ISA"``."""
    return name.split(maxsplit=1)[0].rstrip("0123456789")


def _digits(value: str, width: int, name: str) -> str:
    if len(value) != width or not (value.isascii() and value.isdigit()):
        raise X12SyntaxError(f"{name} is {value!r}", segment_id=_segment_of(name), expected=f"{width} digits")
    return value


def _control_text(number: int, name: str) -> str:
    if not 0 <= number <= _MAX_CONTROL:
        raise X12SyntaxError(
            f"{name} {number} is out of range", segment_id=_segment_of(name), expected="0 to 999999999"
        )
    return f"{number:09d}"


def _check_envelope_delimiters(delimiters: Delimiters) -> None:
    chars = [delimiters.element, delimiters.component, delimiters.segment]
    if delimiters.repetition is not None:
        chars.append(delimiters.repetition)
    distinct = len(set(chars[:3])) == 3 and delimiters.repetition not in (delimiters.element, delimiters.segment)
    if any(len(c) != 1 or c.isalnum() or c == " " for c in chars) or not distinct:
        raise X12SyntaxError(
            f"unusable delimiters {delimiters!r}",
            segment_id="ISA",
            expected="single punctuation characters, element, component and segment all different",
        )
