"""Read 005010X279A1 270 inquiries: ours (the sandbox clearinghouse answers them) and other people's.

Pure: X12 text in, one ``Inquiry270`` per person asked about out.  The segment reader
(``x12.reader``) finds delimiters and envelopes; this module walks the HL tree::

    ST*270  BHT
    2000A  HL*..*20     2100A NM1 (payer)                          -> Inquiry270.source
      2000B  HL*..*21   2100B NM1, PRV (provider)                  -> Inquiry270.receiver
        2000C  HL*..*22 TRN, 2100C NM1 REF DMG INS DTP,            -> Inquiry270.subscriber
                        2110C EQ (AMT III REF DTP)*
          2000D HL*..*23 TRN, 2100D ..., 2110D EQ ...             -> Inquiry270.dependent

A subscriber without dependents is one inquiry; a subscriber with dependents gives one inquiry per
dependent.  Each ``Inquiry270`` keeps the loops as sent (``Name270``, ``Member270``, ``Eq270``) and the
``EligibilityRequest`` they describe.  When the 270 holds something the request model cannot carry
(a provider identified by something other than an NPI, a subscriber without a name ...) ``request``
is ``None`` and ``problems`` says why; what the model drops (EQ03, a second place of service) is
listed there too.  Only 5010 inquiries are read: 4010 raises ``X12UnsupportedVersion``.

Everything raised is an ``X12Error`` naming the segment position, the segment and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from pydantic import ValidationError

from eligibility_svc.errors import (
    ConfigurationError,
    X12StructureError,
    X12SyntaxError,
    X12UnsupportedVersion,
    X12WrongTransaction,
)
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.build270 import Envelope
from eligibility_svc.x12.reader import (
    Delimiters,
    Interchange,
    Segment,
    Transaction,
    read_interchange,
    split_components,
    split_repeats,
)

SUPPORTED_IMPLEMENTATION = "005010X279"  # with or without the A1 addenda
_PARENT_LEVEL = {"20": "", "21": "20", "22": "21", "23": "22"}
_LOOP_2110_SEGMENTS = frozenset({"AMT", "III", "REF", "DTP"})  # what may follow EQ inside 2110C/2110D
_MEMBER_ID_QUALIFIERS = frozenset({"MI", "II"})
_NAME_LOOP = {"2000C": "2100C subscriber name", "2000D": "2100D dependent name"}


# --- what a 270 says -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header270:
    """Envelope values exactly as sent (identifiers without their ISA padding)."""

    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08
    interchange_date: str  # ISA09, YYMMDD
    interchange_time: str  # ISA10, HHMM
    version: str  # ISA12
    interchange_control: str  # ISA13
    usage: str  # ISA15
    functional_id: str  # GS01 (HS for a 270)
    group_sender_id: str  # GS02
    group_receiver_id: str  # GS03
    group_date: str  # GS04, CCYYMMDD
    group_time: str  # GS05
    group_control: str  # GS06
    implementation: str  # ST03, else GS08
    transaction_control: str  # ST02
    reference: str  # BHT03
    transaction_date: str  # BHT04, CCYYMMDD
    transaction_time: str  # BHT05


@dataclass(frozen=True, slots=True)
class Name270:
    """An NM1 as sent."""

    entity_id: str  # NM101: PR, 1P, IL, 03 ...
    entity_type: str  # NM102: 1 person, 2 organization
    last_or_org: str  # NM103
    first: str  # NM104
    middle: str  # NM105
    suffix: str  # NM107
    id_qualifier: str  # NM108: PI, XX, MI, SV ...
    id: str  # NM109
    position: int


@dataclass(frozen=True, slots=True)
class Trace270:
    """A TRN: ``type`` 1 is a current trace (ours, or a clearinghouse's)."""

    type: str
    number: str
    originator: str
    supplemental: str
    position: int


@dataclass(frozen=True, slots=True)
class Period:
    """A DTP date (D8: ``end`` is None) or range (RD8)."""

    start: date
    end: date | None = None


@dataclass(frozen=True, slots=True)
class Procedure270:
    """EQ02: ``HC:99213:25`` is qualifier HC, code 99213, modifiers (25,)."""

    qualifier: str
    code: str
    modifiers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Eq270:
    """One 2110C/2110D loop: the EQ and the III/DTP that qualify it."""

    service_types: tuple[str, ...]  # EQ01 (repeating)
    procedure: Procedure270 | None  # EQ02
    coverage_level: str  # EQ03
    places_of_service: tuple[str, ...]  # III*ZZ codes
    dates: Period | None  # DTP*291 of this loop
    position: int


@dataclass(frozen=True, slots=True)
class Member270:
    """A 2000C subscriber or 2000D dependent with its 2100 name loop and its 2110 inquiries."""

    loop: Literal["2000C", "2000D"]
    name: Name270
    traces: tuple[Trace270, ...]
    references: tuple[tuple[str, str], ...]  # REF01, REF02
    birth_date: date | None  # DMG02
    sex: str  # DMG03
    relationship: str  # INS02
    dates: Period | None  # DTP*291 of the 2100 loop
    inquiries: tuple[Eq270, ...]
    position: int  # of the HL


@dataclass(frozen=True, slots=True)
class Inquiry270:
    """One person asked about: the loops as sent and the ``EligibilityRequest`` they describe.

    ``trace_number``/``trace_originator`` are the first ``TRN*1`` of the patient's level (2000D for a
    dependent, else 2000C; the subscriber's when the dependent has none).  ``envelope`` is the
    ``build270.Envelope`` these values make (``None`` when they do not fit one, e.g. a non-numeric
    ISA13): with ``request`` and the trace it rebuilds our own 270s byte for byte.
    """

    header: Header270
    delimiters: Delimiters
    source: Name270
    receiver: Name270
    receiver_taxonomy: str | None
    subscriber: Member270
    dependent: Member270 | None
    trace_number: str | None
    trace_originator: str | None
    request: EligibilityRequest | None
    problems: tuple[str, ...]  # why request is None, or what it does not carry
    warnings: tuple[str, ...]  # what is odd about the X12 (counts, envelopes)
    envelope: Envelope | None


# --- entry point ---------------------------------------------------------------------------------


def parse_270(data: bytes | str) -> list[Inquiry270]:
    """Every inquiry in every 270 transaction set of the interchange ``data``.

    Raises ``X12SyntaxError`` (unreadable), ``X12WrongTransaction`` (no 270 in it),
    ``X12UnsupportedVersion`` (4010 or another guide) and ``X12StructureError`` (HL tree broken,
    required loop missing).
    """
    interchange = read_interchange(data)
    transactions = [t for t in interchange.transactions if t.set_id == "270"]
    if not transactions:
        first = interchange.transactions[0]
        raise X12WrongTransaction(
            f"the interchange holds a {first.set_id}, not a 270",
            position=first.segments[0].position,
            segment_id="ST",
            expected="ST*270",
        )
    inquiries: list[Inquiry270] = []
    for transaction in transactions:
        _check_version(transaction)
        inquiries.extend(_transaction(transaction, interchange))
    return inquiries


def _check_version(transaction: Transaction) -> None:
    group = transaction.group
    implementation = transaction.implementation
    if implementation.startswith(SUPPORTED_IMPLEMENTATION):
        return
    st = transaction.segments[0]
    at = st if st.el(3) or group is None else group
    kind = " (4010)" if implementation.startswith("00401") else ""
    raise X12UnsupportedVersion(
        f"this 270 is version {implementation or 'unknown'}{kind}; only 005010X279A1 inquiries are read",
        position=at.position,
        segment_id=at.id,
        expected="005010X279A1",
    )


# --- one transaction -----------------------------------------------------------------------------


@dataclass(slots=True, init=False)
class _Level:
    """An HL, the segments up to the next HL, and the levels whose HL02 names it."""

    hl: Segment
    body: list[Segment] = field(default_factory=list)
    children: list[_Level] = field(default_factory=list)

    def __init__(self, hl: Segment, body: list[Segment] | None = None, children: list[_Level] | None = None) -> None:
        self.hl = hl
        self.body = [] if body is None else body
        self.children = [] if children is None else children

    @property
    def code(self) -> str:
        return self.hl.el(3)


@dataclass(frozen=True, slots=True)
class _Context:
    """What every inquiry of one transaction shares."""

    header: Header270
    delimiters: Delimiters
    warnings: tuple[str, ...]
    envelope: Envelope | None


def _transaction(transaction: Transaction, interchange: Interchange) -> list[Inquiry270]:
    st = transaction.segments[0]
    bht = transaction.segments[1] if len(transaction.segments) > 1 else st
    if bht.id != "BHT":
        raise X12StructureError(
            "the 270 has no BHT after ST", position=bht.position, segment_id=bht.id, expected="BHT*0022*13"
        )
    header = _header(interchange, transaction, bht)
    warnings = [*interchange.warnings, *transaction.warnings, *_envelope_warnings(transaction, header)]
    roots = _hierarchy(_body(transaction), warnings)
    context = _Context(header, transaction.delimiters, tuple(warnings), _envelope(header))
    inquiries = [inquiry for root in roots for inquiry in _source(root, context)]
    if not inquiries:
        raise X12StructureError(
            "the 270 asks about nobody", position=st.position, segment_id="ST", expected="a subscriber level HL*..*22"
        )
    return inquiries


def _body(transaction: Transaction) -> list[Segment]:
    """The segments between BHT and SE."""
    body = transaction.segments[2:]
    return body[:-1] if body and body[-1].id == "SE" else body


def _header(interchange: Interchange, transaction: Transaction, bht: Segment) -> Header270:
    isa, group = interchange.isa, transaction.group

    def gs(index: int) -> str:
        return group.el(index) if group is not None else ""

    return Header270(
        sender_qualifier=isa.el(5).strip(),
        sender_id=isa.el(6).strip(),
        receiver_qualifier=isa.el(7).strip(),
        receiver_id=isa.el(8).strip(),
        interchange_date=isa.el(9).strip(),
        interchange_time=isa.el(10).strip(),
        version=isa.el(12).strip(),
        interchange_control=isa.el(13).strip(),
        usage=isa.el(15).strip(),
        functional_id=gs(1),
        group_sender_id=gs(2),
        group_receiver_id=gs(3),
        group_date=gs(4),
        group_time=gs(5),
        group_control=gs(6),
        implementation=transaction.implementation,
        transaction_control=transaction.control_number,
        reference=bht.el(3),
        transaction_date=bht.el(4),
        transaction_time=bht.el(5),
    )


def _envelope_warnings(transaction: Transaction, header: Header270) -> list[str]:
    """Counts and control numbers that do not match: worth telling, not worth refusing."""
    warnings: list[str] = []
    if header.functional_id != "HS":
        warnings.append(f"GS01 is {header.functional_id!r}; a 270 belongs in an HS group")
    se = transaction.segments[-1]
    if se.id == "SE" and se.el(1) != str(len(transaction.segments)):
        warnings.append(f"SE01 says {se.el(1)} segments; the transaction has {len(transaction.segments)}")
    if se.id == "SE" and se.el(2) != transaction.control_number:
        warnings.append(f"SE02 {se.el(2)!r} does not match ST02 {transaction.control_number!r}")
    return warnings


def _envelope(header: Header270) -> Envelope | None:
    """The ``build270.Envelope`` these values make, or ``None`` when they do not fit one."""
    if header.usage not in ("P", "T"):
        return None
    usage: Literal["P", "T"] = "P" if header.usage == "P" else "T"
    try:
        created = datetime.strptime(header.group_date + header.group_time[:4], "%Y%m%d%H%M")
        return Envelope(
            sender_id=header.sender_id,
            sender_qualifier=header.sender_qualifier,
            receiver_id=header.receiver_id,
            receiver_qualifier=header.receiver_qualifier,
            usage=usage,
            interchange_control=int(header.interchange_control),
            group_control=int(header.group_control),
            transaction_control=int(header.transaction_control),
            created=created,
        )
    except (ValueError, ConfigurationError):
        return None


# --- the HL tree ---------------------------------------------------------------------------------


def _hierarchy(body: list[Segment], warnings: list[str]) -> list[_Level]:
    """Group ``body`` by HL and link each level to its parent; returns the 2000A levels."""
    levels: list[_Level] = []
    by_id: dict[str, _Level] = {}
    for segment in body:
        if segment.id == "HL":
            level = _Level(segment)
            _link(level, by_id, levels, warnings)
            levels.append(level)
        elif levels:
            levels[-1].body.append(segment)
        else:
            raise X12StructureError(
                "this segment comes before the first HL",
                position=segment.position,
                segment_id=segment.id,
                expected="HL*1**20*1",
            )
    return [level for level in levels if level.code == "20"]


def _link(level: _Level, by_id: dict[str, _Level], levels: list[_Level], warnings: list[str]) -> None:
    hl = level.hl
    code, hl_id, parent_id = hl.el(3), hl.el(1), hl.el(2)
    if code not in _PARENT_LEVEL:
        raise X12StructureError(
            f"HL03 {code!r} is not a 270 level", position=hl.position, segment_id="HL", expected="20, 21, 22 or 23"
        )
    if hl_id in by_id or not hl_id:
        raise X12StructureError(
            f"HL01 {hl_id!r} is empty or used twice", position=hl.position, segment_id="HL", expected="a new HL01"
        )
    by_id[hl_id] = level
    wanted = _PARENT_LEVEL[code]
    if not wanted:
        return
    if parent_id:
        parent = by_id.get(parent_id)
    else:  # tolerated: the nearest level above of the right kind
        parent = next((earlier for earlier in reversed(levels) if earlier.code == wanted), None)
        warnings.append(f"segment {hl.position}: HL {hl_id} names no parent; taken to be the last level {wanted}")
    if parent is None or parent.code != wanted:
        raise X12StructureError(
            f"HL {hl_id} (level {code}) names parent {parent_id!r}, which is not a level {wanted}",
            position=hl.position,
            segment_id="HL",
            expected=f"HL02 naming an earlier HL with HL03 {wanted}",
        )
    parent.children.append(level)


def _source(root: _Level, context: _Context) -> list[Inquiry270]:
    source = _name_of(root, "2100A information source name")
    inquiries: list[Inquiry270] = []
    for receiver_level in root.children:
        receiver = _name_of(receiver_level, "2100B information receiver name")
        taxonomy = _taxonomy(receiver_level.body)
        for subscriber_level in receiver_level.children:
            subscriber = _member(subscriber_level, "2000C", context.delimiters)
            dependents: list[Member270 | None] = [
                _member(level, "2000D", context.delimiters) for level in subscriber_level.children
            ]
            for dependent in dependents or [None]:
                parties = (source, receiver, taxonomy, subscriber, dependent)
                inquiries.append(_inquiry(parties, context))
    return inquiries


def _name_of(level: _Level, loop: str) -> Name270:
    nm1 = next((segment for segment in level.body if segment.id == "NM1"), None)
    if nm1 is None:
        raise X12StructureError(
            f"HL {level.hl.el(1)} has no {loop}", position=level.hl.position, segment_id="HL", expected="an NM1"
        )
    return Name270(
        entity_id=nm1.el(1),
        entity_type=nm1.el(2),
        last_or_org=nm1.el(3),
        first=nm1.el(4),
        middle=nm1.el(5),
        suffix=nm1.el(7),
        id_qualifier=nm1.el(8),
        id=nm1.el(9),
        position=nm1.position,
    )


def _taxonomy(body: list[Segment]) -> str | None:
    prv = next((segment for segment in body if segment.id == "PRV"), None)
    # PXC is the 5010 qualifier for a taxonomy code; ZZ is what 4010 used and some senders still do.
    return prv.el(3) if prv is not None and prv.el(2) in ("PXC", "ZZ") and prv.el(3) else None


# --- 2000C / 2000D -------------------------------------------------------------------------------


def _member(level: _Level, loop: Literal["2000C", "2000D"], delimiters: Delimiters) -> Member270:
    """The 2100 segments before the first EQ; each EQ with what follows it is a 2110 loop."""
    own: list[Segment] = []
    loops: list[list[Segment]] = []
    for segment in level.body:
        if segment.id == "EQ":
            loops.append([segment])
        elif loops and segment.id in _LOOP_2110_SEGMENTS:
            loops[-1].append(segment)
        else:
            own.append(segment)
    dmg = next((segment for segment in own if segment.id == "DMG"), None)
    ins = next((segment for segment in own if segment.id == "INS"), None)
    return Member270(
        loop=loop,
        name=_name_of(level, _NAME_LOOP[loop]),
        traces=tuple(_trace(segment) for segment in own if segment.id == "TRN"),
        references=tuple((segment.el(1), segment.el(2)) for segment in own if segment.id == "REF"),
        birth_date=_birth_date(dmg),
        sex=dmg.el(3) if dmg is not None else "",
        relationship=ins.el(2) if ins is not None else "",
        dates=_service_dates(own),
        inquiries=tuple(_eq(segments, delimiters) for segments in loops),
        position=level.hl.position,
    )


def _trace(trn: Segment) -> Trace270:
    return Trace270(trn.el(1), trn.el(2), trn.el(3), trn.el(4), trn.position)


def _eq(segments: list[Segment], delimiters: Delimiters) -> Eq270:
    eq = segments[0]
    return Eq270(
        service_types=tuple(split_repeats(eq.el(1), delimiters)),
        procedure=_procedure(eq, delimiters),
        coverage_level=eq.el(3),
        places_of_service=tuple(s.el(2) for s in segments if s.id == "III" and s.el(1) == "ZZ" and s.el(2)),
        dates=_service_dates(segments[1:]),
        position=eq.position,
    )


def _procedure(eq: Segment, delimiters: Delimiters) -> Procedure270 | None:
    components = split_components(eq.el(2), delimiters)
    if not components:
        return None
    if len(components) < 2 or not components[1]:
        raise X12SyntaxError(
            f"EQ02 {eq.el(2)!r} has no procedure code", position=eq.position, segment_id="EQ", expected="HC:99213"
        )
    modifiers = tuple(modifier for modifier in components[2:6] if modifier)
    return Procedure270(components[0], components[1], modifiers)


def _birth_date(dmg: Segment | None) -> date | None:
    if dmg is None or not dmg.el(2):
        return None
    if dmg.el(1) != "D8":
        raise X12SyntaxError(
            f"DMG01 is {dmg.el(1)!r}", position=dmg.position, segment_id="DMG", expected="DMG01 D8 (CCYYMMDD)"
        )
    return _d8(dmg.el(2), dmg)


def _service_dates(segments: list[Segment]) -> Period | None:
    """The first DTP*291 (eligibility/benefit date) among ``segments``."""
    dtp = next((segment for segment in segments if segment.id == "DTP" and segment.el(1) == "291"), None)
    if dtp is None:
        return None
    kind, value = dtp.el(2), dtp.el(3)
    if kind == "D8":
        return Period(_d8(value, dtp))
    if kind == "RD8" and value.count("-") == 1:
        start, end = value.split("-")
        return Period(_d8(start, dtp), _d8(end, dtp))
    raise X12SyntaxError(
        f"DTP*291 has {kind}*{value}", position=dtp.position, segment_id="DTP", expected="D8*CCYYMMDD or RD8"
    )


def _d8(value: str, segment: Segment) -> date:
    day = _ccyymmdd(value)
    if day is None:
        raise X12SyntaxError(
            f"{value!r} is not a date", position=segment.position, segment_id=segment.id, expected="CCYYMMDD"
        )
    return day


def _ccyymmdd(value: str) -> date | None:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


# --- the request they describe -------------------------------------------------------------------

_Parties = tuple[Name270, Name270, str | None, Member270, Member270 | None]


def _inquiry(parties: _Parties, context: _Context) -> Inquiry270:
    source, receiver, taxonomy, subscriber, dependent = parties
    patient = dependent or subscriber
    trace = next((t for t in (*patient.traces, *subscriber.traces) if t.type == "1"), None)
    request, problems = _request(parties, context.header)
    return Inquiry270(
        header=context.header,
        delimiters=context.delimiters,
        source=source,
        receiver=receiver,
        receiver_taxonomy=taxonomy,
        subscriber=subscriber,
        dependent=dependent,
        trace_number=trace.number if trace else None,
        trace_originator=trace.originator if trace else None,
        request=request,
        problems=tuple(problems),
        warnings=context.warnings,
        envelope=context.envelope,
    )


def _request(parties: _Parties, header: Header270) -> tuple[EligibilityRequest | None, list[str]]:
    """The ``EligibilityRequest`` the loops describe, and what stood in the way or was left out."""
    source, receiver, taxonomy, subscriber, dependent = parties
    problems: list[str] = []
    if receiver.id_qualifier != "XX":
        problems.append(
            f"2100B identifies the provider by {receiver.id_qualifier or 'nothing'} {receiver.id!r}, not an NPI (XX)"
        )
    service = _service(dependent or subscriber, subscriber, header, problems)
    if service is None or receiver.id_qualifier != "XX":
        return None, problems
    fields: dict[str, Any] = {
        "payer": {"id": source.id, "name": source.last_or_org},
        "provider": _provider(receiver, taxonomy),
        "patient": _person(dependent or subscriber, relationship=dependent is not None),
        "subscriber": _person(subscriber, relationship=False) if dependent is not None else None,
        "member_id": subscriber.name.id if subscriber.name.id_qualifier in _MEMBER_ID_QUALIFIERS else None,
        "group_number": _group_number(subscriber, dependent),
        "service": service,
    }
    try:
        return EligibilityRequest.model_validate(fields), problems
    except ValidationError as exc:
        problems.extend(_validation_problems(exc))
        return None, problems


def _provider(receiver: Name270, taxonomy: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"npi": receiver.id, "taxonomy": taxonomy}
    if receiver.entity_type == "1":
        fields.update(last_name=receiver.last_or_org, first_name=receiver.first or None)
    else:
        fields["organization_name"] = receiver.last_or_org
    return fields


def _person(member: Member270, *, relationship: bool) -> dict[str, Any]:
    name = member.name
    fields: dict[str, Any] = {
        "last_name": name.last_or_org,
        "first_name": name.first or None,
        "middle_name": name.middle or None,
        "suffix": name.suffix or None,
        "birth_date": member.birth_date,
        "sex": member.sex or None,
    }
    if relationship:
        fields["relationship"] = member.relationship or None
    return fields


def _group_number(subscriber: Member270, dependent: Member270 | None) -> str | None:
    for member in (subscriber, dependent):
        if member is not None:
            group = next((value for qualifier, value in member.references if qualifier == "6P"), None)
            if group:
                return group
    return None


def _service(
    patient: Member270, subscriber: Member270, header: Header270, problems: list[str]
) -> dict[str, Any] | None:
    """Dates and codes; a 270 without DTP*291 asks about the day it was sent (BHT04)."""
    loops = patient.inquiries
    period = patient.dates or subscriber.dates or next((eq.dates for eq in loops if eq.dates), None)
    if period is None:
        period = _bht_date(header, problems)
    if period is None:
        return None
    places = list(dict.fromkeys(place for eq in loops for place in eq.places_of_service))
    if len(places) > 1:
        problems.append(f"several places of service ({', '.join(places)}); the request keeps {places[0]}")
    levels = sorted({eq.coverage_level for eq in loops if eq.coverage_level})
    if levels:
        problems.append(f"EQ03 coverage level {', '.join(levels)} is not carried by the request")
    return {
        "date": period.start,
        "end_date": period.end,
        "service_types": [code for eq in loops for code in eq.service_types],
        "procedures": [_procedure_fields(eq.procedure) for eq in loops if eq.procedure is not None],
        "place_of_service": places[0] if places else None,
    }


def _procedure_fields(procedure: Procedure270) -> dict[str, Any]:
    return {"qualifier": procedure.qualifier, "code": procedure.code, "modifiers": list(procedure.modifiers)}


def _bht_date(header: Header270, problems: list[str]) -> Period | None:
    day = _ccyymmdd(header.transaction_date)
    if day is not None:
        return Period(day)
    value = header.transaction_date
    problems.append(f"no DTP*291 service date and BHT04 {value!r} is not a date")
    return None


def _validation_problems(exc: ValidationError) -> list[str]:
    """Pydantic's findings as ``field.path: message`` (values are not echoed: they may be PHI)."""
    return [f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()]
