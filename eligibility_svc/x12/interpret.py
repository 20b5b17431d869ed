"""Benefit interpretation: a parsed 271 (``Transaction271``) becomes ``CoverageSummary`` answers.

The contract is ``docs/interpretation.md``; the sections below follow it in order (members, status,
plan, members as the payer knows them, accumulators, cost shares and limitations, per requested
service, errors, provenance).  Where that page leaves a choice open, the choice made here is
written next to the code as "Reading:".

Pure and deterministic: no I/O, no clock, no randomness.  Fast: every EB row is looked at once to
build a ``_Row`` (network, level, service types, places of service, procedure), rows are indexed by
service type once per member, and the regular expressions for authorization only ever see MSG
texts.  Output models are assembled with ``_new`` (no validation) from values built here with the
exact types the models declare; ``tests/test_interpret.py`` re-validates whole summaries to keep
that honest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel

from eligibility_svc.models import (
    AaaError,
    Accumulator,
    Amounts,
    BenefitRow,
    CheckStatus,
    CostShare,
    CoverageSummary,
    EligibilityRequest,
    Evidence,
    Limitation,
    MemberInfo,
    Network,
    NetworkAmounts,
    NetworkCosts,
    Patient,
    PayerInfo,
    PlanInfo,
    ProcedureCode,
    Provenance,
    RelatedEntity,
    ServiceAnswer,
    Subscriber,
    Tristate,
)
from eligibility_svc.models import Correction as CorrectionModel
from eligibility_svc.x12 import codes
from eligibility_svc.x12.loops271 import (
    Aaa,
    Dtp,
    Eb,
    Hsd,
    Loop2000A,
    Loop2000B,
    Loop2000C,
    Loop2000D,
    Loop2100Member,
    Loop2110,
    Loop2120,
    Ref,
    Transaction271,
)
from eligibility_svc.x12.procedures import ProcedureTable, default_table

__all__ = ["NOT_FOUND_REASONS", "auth_message_verdict", "interpret", "normalize_name", "summarize"]

# --- rule constants (docs/interpretation.md) --------------------------------------------------------

NOT_FOUND_REASONS: Final = frozenset({"58", "64", "65", "67", "68", "71", "72", "73", "74", "75", "76", "77", "78"})
_RETRYABLE_REASONS: Final = frozenset({"42", "79", "80"})
_RETRYABLE_FOLLOW_UPS: Final = frozenset({"P", "R", ""})
_CORRECTION_REASONS: Final = NOT_FOUND_REASONS | frozenset(
    {"15", "33", "43", "44", "45", "46", "47", "48", "49", "50", "51", "56", "57", "60", "61", "62", "63"}
    | {"69", "70", "97", "AA", "AE", "AF", "AG", "T4"}
)
_NO_STATUS: Final = "the payer returned no coverage status (EB01 1-8)"
_PLAN: Final = "30"
_ACTIVE: Final = codes.ACTIVE_CODES
_INACTIVE: Final = codes.INACTIVE_CODES
_COST_SHARES: Final = codes.COST_SHARE_CODES
_NEGATIVE: Final = _INACTIVE | frozenset({"I", "E"})
_COVERAGE_SIGNALS: Final = _ACTIVE | _NEGATIVE | _COST_SHARES
_NETWORK_ENUM: Final = {"Y": Network.IN, "N": Network.OUT, "W": Network.BOTH}
_REMAINING_PERIODS: Final = frozenset({"29", "33"})
_MET_PERIOD: Final = "24"
_LOCATIONS: Final = {
    "2000A": "payer",
    "2100A": "payer",
    "2100B": "provider",
    "2100C": "subscriber",
    "2100D": "dependent",
    "2110C": "benefit",
    "2110D": "benefit",
}
_SAME_CODE_SET: Final = {"CJ": "HC"}  # EB13 HC and CJ name the same CPT codes

# --- fast model assembly -------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__  # pydantic's own way past its __setattr__ (model_construct does the same)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What ``_new`` needs to know about a model class, worked out once."""

    count: int  # number of fields
    every: set[str]  # every field name: the fields_set of a complete instance (see _new)
    fixed: dict[str, Any]  # immutable defaults
    mutable: tuple[tuple[str, Any], ...]  # list and model defaults, copied per instance


_SHAPES: dict[type[BaseModel], _Shape] = {}


def _shape(cls: type[BaseModel]) -> _Shape:
    known = _SHAPES.get(cls)
    if known is None:
        fixed: dict[str, Any] = {}
        mutable: list[tuple[str, Any]] = []
        for name, info in cls.model_fields.items():
            if info.is_required():
                continue
            if isinstance(info.default, list | BaseModel):
                mutable.append((name, info.default))
            else:
                fixed[name] = info.default
        known = _SHAPES[cls] = _Shape(len(cls.model_fields), set(cls.model_fields), fixed, tuple(mutable))
    return known


def _raw(cls: type[_M], state: dict[str, Any]) -> _M:
    """``cls`` from a dict holding *every* field (hot paths build it as a literal)."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", state)
    _set(obj, "__pydantic_fields_set__", (_SHAPES.get(cls) or _shape(cls)).every)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def _new(cls: type[_M], **values: Any) -> _M:
    """``cls`` without validation, for values built here with exact types (``model_construct``'s job
    at a fraction of its cost).  Missing fields take their defaults; mutable defaults are copied."""
    shape = _SHAPES.get(cls) or _shape(cls)
    # Complete instances share one fields_set: pydantic only ever adds field names to it, and
    # every name is already there.  Incomplete ones get their own.
    given = shape.every
    if len(values) != shape.count:
        given = set(values)
        for name, default in shape.fixed.items():
            values.setdefault(name, default)
        for name, default in shape.mutable:
            if name not in values:
                values[name] = [] if isinstance(default, list) else default.model_copy(deep=True)
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)  # the ** call made ``values`` a fresh dict: it can be the state
    _set(obj, "__pydantic_fields_set__", given)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


# --- members ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Member:
    """One answerable person: a 2000C without dependents, or one 2000D, with the loops above it."""

    source: Loop2000A
    receiver: Loop2000B
    subscriber: Loop2000C
    dependent: Loop2000D | None

    @property
    def loop(self) -> Loop2100Member:
        """The member's own 2100 loop (2100D for a dependent), which holds its benefits."""
        return self.dependent.dependent if self.dependent else self.subscriber.subscriber

    @property
    def name_loops(self) -> tuple[Loop2100Member, ...]:
        """The member's 2100 loops, its own first: (2100D, 2100C) for a dependent, else (2100C,).

        Their AAAs are the member's (status rule 2); their REFs and DTPs are searched in this order."""
        if self.dependent:
            return (self.dependent.dependent, self.subscriber.subscriber)
        return (self.subscriber.subscriber,)


def _members(transaction: Transaction271) -> list[_Member]:
    """Every member in file order (docs: "Members")."""
    found: list[_Member] = []
    for source in transaction.sources:
        for receiver in source.receivers:
            for subscriber in receiver.subscribers:
                if not subscriber.dependents:
                    found.append(_Member(source, receiver, subscriber, None))
                found.extend(_Member(source, receiver, subscriber, dep) for dep in subscriber.dependents)
    return found


def normalize_name(name: str) -> str:
    """CORE 258 comparison form: upper case, letters and digits only (``O'Donnell-Griswold`` →
    ``ODONNELLGRISWOLD``)."""
    upper = name.upper()
    return upper if upper.isalnum() else "".join(filter(str.isalnum, upper))


def _names_match(loop: Loop2100Member, last: str, first: str | None, born: date | None) -> bool:
    """Last names equal (normalized); first names and birth dates too when both sides know them."""
    nm1 = loop.name
    if nm1 is None or normalize_name(nm1.last_or_org) != normalize_name(last):
        return False
    if first and nm1.first and normalize_name(nm1.first) != normalize_name(first):
        return False
    returned_born = loop.demographics.birth_date if loop.demographics else None
    return not (born and returned_born and born != returned_born)


_MatchPass = Literal["member_id", "name", "anyone"]


def _matches(member: _Member, request: EligibilityRequest, how: _MatchPass) -> bool:
    """Whether ``member`` is the person ``request`` asks about, by one matching pass."""
    patient = request.patient
    own_name = _names_match(member.loop, patient.last_name, patient.first_name, patient.birth_date)
    if how == "anyone":
        return own_name
    if request.is_dependent:
        return member.dependent is not None and own_name
    if member.dependent is not None:
        return False
    if how == "member_id":
        nm1 = member.loop.name
        wanted = (request.member_id or "").strip().upper()
        return bool(wanted) and nm1 is not None and nm1.id.strip().upper() == wanted
    return own_name


def _pick_member(members: Sequence[_Member], request: EligibilityRequest | None) -> tuple[_Member, list[str]]:
    """The member the request asked about, else the first one with a warning (docs: "Members").

    Passes, first hit wins: a dependent request matches a 2000D by name (+ DOB); a subscriber
    request matches a 2000C by member ID, then by name (+ DOB).  Reading: a last pass takes any
    member whose own name (+ DOB) matches the patient, because payers answer a dependent with
    their own member ID at 2000C, and a subscriber's corrected ID defeats the first pass.
    """
    if request is None:
        extra = [f"the 271 answers for {len(members)} members; summarized the first"] if len(members) > 1 else []
        return members[0], extra
    passes: tuple[_MatchPass, ...] = ("name", "anyone")
    if not request.is_dependent and request.member_id:
        passes = ("member_id", "name", "anyone")
    for how in passes:
        for member in members:
            if _matches(member, request, how):
                return member, []
    return members[0], ["no member in the 271 matches the request; summarized the first member instead"]


# --- rows -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One EB row with what the rules ask of it worked out once."""

    index: int
    loop: Loop2110
    info: str  # EB01
    stcs: list[str]  # EB03
    plan_level: bool  # EB03 empty or containing 30
    networks: tuple[int, ...]  # the networks the row speaks for: 0 in, 1 out
    specific: bool  # EB12 Y or N
    individual: bool  # EB02 IND, EMP or empty
    places: tuple[str, ...]  # III*ZZ places of service
    procedure: tuple[str, str] | None  # (code set, code) of EB13
    cost_slot: int  # per-service cost field (0 copay, 2 coinsurance, 4/6 C/G remaining) or -1
    cost_value: Decimal | None  # the value that field would take from this row
    rank: int  # within-tier preference: specific network (4), individual level (2); lower wins

    @property
    def messages(self) -> list[str]:
        return [m.text for m in self.loop.messages]


_NETWORK_NAMES: Final = ("in", "out")
_IN: Final = (0,)  # network offsets: 0 in network, 1 out of network
_OUT: Final = (1,)
_BOTH: Final = (0, 1)


def _procedure_key(qualifier: str, code: str) -> tuple[str, str]:
    return (_SAME_CODE_SET.get(qualifier, qualifier), code.strip().upper())


_COPAY, _COINSURANCE, _DEDUCTIBLE_LEFT, _OUT_OF_POCKET_LEFT = 0, 2, 4, 6  # + 0 in, + 1 out of network
_COST_FIELDS: Final = 8


def _cost_slot(eb: Eb) -> tuple[int, Decimal | None]:
    """Which per-service cost field an EB row can fill, and with what (docs: "Per requested service")."""
    info = eb.info
    if info == "B":
        return _COPAY, eb.amount
    if info == "A":
        return _COINSURANCE, eb.percent
    if info in ("C", "G") and eb.time_period == "29":
        return (_DEDUCTIBLE_LEFT if info == "C" else _OUT_OF_POCKET_LEFT), eb.amount
    return -1, None


def _make_row(index: int, loop: Loop2110) -> _Row:
    eb = loop.eb
    stcs = eb.service_types
    network = eb.in_plan_network
    proc = eb.procedure
    specific = network in ("Y", "N")
    individual = eb.coverage_level in codes.INDIVIDUAL_LEVELS
    slot, value = _cost_slot(eb)
    return _Row(
        index=index,
        loop=loop,
        info=eb.info,
        stcs=stcs,
        plan_level=not stcs or _PLAN in stcs,
        networks=_IN if network == "Y" else _OUT if network == "N" else _BOTH,
        specific=specific,
        individual=individual,
        places=tuple(a.info.code for a in loop.additional_info if a.info.qualifier == "ZZ")
        if loop.additional_info
        else (),
        procedure=_procedure_key(proc.qualifier, proc.code) if proc else None,
        cost_slot=slot if value is not None else -1,
        cost_value=value,
        rank=(0 if specific else 4) + (0 if individual else 2),
    )


def _rows(member: _Member) -> list[_Row]:
    return [_make_row(i, loop) for i, loop in enumerate(member.loop.benefits)]


# --- status -------------------------------------------------------------------------------------------


def _first_plan_level(rows: Iterable[_Row]) -> _Row | None:
    """The first row whose EB03 is empty or holds 30, else the first row (docs: "Status" 3)."""
    first: _Row | None = None
    for row in rows:
        if row.plan_level:
            return row
        first = first or row
    return first


def _aaa_status(errors: Sequence[Aaa], member_level: bool) -> tuple[CheckStatus, str]:
    """Status from AAA alone: rejected, or not_found for a member-level AAA with a NOT_FOUND reason.

    Reading: with several member-level AAAs, any NOT_FOUND reason makes it not_found."""
    for aaa in errors:
        if member_level and aaa.reason in NOT_FOUND_REASONS:
            return CheckStatus.NOT_FOUND, codes.reject_reason_description(aaa.reason)
    return CheckStatus.REJECTED, codes.reject_reason_description(errors[0].reason)


def _member_status(member: _Member, rows: list[_Row]) -> tuple[CheckStatus, str, _Row | None]:
    """Status rules 2-6 for one member: (status, status_detail, status row)."""
    if not rows:
        own = sorted((aaa for loop in member.name_loops for aaa in loop.errors), key=_position)
        if own:
            return (*_aaa_status(own, member_level=True), None)
        # Reading: an answer with no EB rows and an AAA at 2000A/2100A/2100B is a rejection of the
        # inquiry (rule 1's intent), not an "error"; the rule is written for a 271 without members.
        upper = _upper_errors(member.source, member.receiver)
        if upper:
            return (*_aaa_status(upper, member_level=False), None)
    for wanted in (_ACTIVE, _INACTIVE):
        row = _first_plan_level(r for r in rows if r.info in wanted)
        if row is not None:
            status = CheckStatus.ACTIVE if wanted is _ACTIVE else CheckStatus.INACTIVE
            return status, codes.eligibility_description(row.info), row
    if any(r.info == "V" for r in rows):
        return CheckStatus.REJECTED, codes.eligibility_description("V"), None
    return CheckStatus.ERROR, _NO_STATUS, None


def _upper_errors(source: Loop2000A, receiver: Loop2000B | None) -> list[Aaa]:
    """AAAs of 2000A, 2100A and (when given) 2100B, in file order."""
    found = [*source.errors, *source.source.errors]
    if receiver is not None:
        found.extend(receiver.receiver.errors)
    return sorted(found, key=_position)


def _position(aaa: Aaa) -> int:
    return aaa.position


# --- plan ----------------------------------------------------------------------------------------------


def _find_ref(places: Sequence[Sequence[Ref]], qualifier: str) -> Ref | None:
    for refs in places:
        for ref in refs:
            if ref.qualifier == qualifier:
                return ref
    return None


def _plan(member: _Member, status_row: _Row | None) -> PlanInfo:
    """Plan identity from the member's 2100 loop(s) and the status row (docs: "Plan").

    Reading: a qualifier's order beats a place's (REF*6P anywhere before REF*1L anywhere), and a
    dependent's 2100D is searched before its subscriber's 2100C, then the status row.
    """
    places: list[Sequence[Ref]] = [loop.refs for loop in member.name_loops]
    if status_row is not None:
        places.append(status_row.loop.refs)
    group = _find_ref(places, "6P") or _find_ref(places, "1L")
    plan_number = _find_ref(places, "18")
    network = _find_ref(places, "N6")
    eb = status_row.loop.eb if status_row else None
    insurance_type = eb.insurance_type or None if eb else None
    return _new(
        PlanInfo,
        name=eb.plan_description or None if eb else None,
        insurance_type=insurance_type,
        insurance_type_description=codes.insurance_type_description(insurance_type) if insurance_type else None,
        group_number=group.value or None if group else None,
        group_name=group.description or None if group else None,
        plan_number=plan_number.value or None if plan_number else None,
        plan_network_id=network.value or None if network else None,
        **_plan_dates(member, status_row),
    )


_DATE_FIELDS: Final[dict[str, tuple[str | None, str | None]]] = {
    # DTP01: (field the start date fills, field the end date fills)
    "346": ("coverage_begin", None),
    "347": (None, "coverage_end"),
    "291": ("coverage_begin", "coverage_end"),
    "356": ("eligibility_begin", None),
    "357": (None, "eligibility_end"),
    "307": ("eligibility_begin", "eligibility_end"),
}


def _plan_dates(member: _Member, status_row: _Row | None) -> dict[str, date | None]:
    """Coverage and eligibility dates: member-level DTPs first, the status row's fill the gaps.

    A D8 range qualifier (291, 307) gives only its begin; a single-date end qualifier (347, 357)
    takes the range's end when the payer sent an RD8 anyway.
    """
    found: dict[str, date | None] = dict.fromkeys(
        ("coverage_begin", "coverage_end", "eligibility_begin", "eligibility_end")
    )
    dtps: list[Dtp] = [d for loop in member.name_loops for d in loop.dates]
    if status_row is not None:
        dtps.extend(status_row.loop.dates)
    for dtp in dtps:
        begin_field, end_field = _DATE_FIELDS.get(dtp.qualifier, (None, None))
        if begin_field and found[begin_field] is None:
            found[begin_field] = dtp.start
        if end_field and found[end_field] is None and (dtp.format == "RD8" or begin_field is None):
            found[end_field] = dtp.end or dtp.start
    return found


# --- members as the payer knows them -------------------------------------------------------------------


def _member_info(loop: Loop2100Member, corrections: list[CorrectionModel]) -> MemberInfo:
    nm1, dmg, ins, address = loop.name, loop.demographics, loop.relationship, loop.address
    return _new(
        MemberInfo,
        last_name=nm1.last_or_org or None if nm1 else None,
        first_name=nm1.first or None if nm1 else None,
        middle_name=nm1.middle or None if nm1 else None,
        suffix=nm1.suffix or None if nm1 else None,
        member_id=nm1.id or None if nm1 else None,
        birth_date=dmg.birth_date if dmg else None,
        sex=dmg.sex or None if dmg else None,
        relationship=ins.relationship or None if ins else None,
        address_line1=address.line1 or None if address else None,
        city=address.city or None if address else None,
        state=address.state or None if address else None,
        postal_code=address.postal_code or None if address else None,
        corrections=corrections,
    )


def _correction(
    field: str, sent: str | None, returned: str | None, same: Callable[[str], str]
) -> Iterator[CorrectionModel]:
    if sent and returned and same(sent) != same(returned):
        yield _new(CorrectionModel, field=field, sent=sent, returned=returned)


def _upper(value: str) -> str:
    return value.strip().upper()


@dataclass(frozen=True, slots=True)
class _Sent:
    """What we sent about one person; ``None`` where we sent nothing."""

    last_name: str | None = None
    first_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    member_id: str | None = None


def _corrections(loop: Loop2100Member, sent: _Sent) -> list[CorrectionModel]:
    """Differences between what we sent and what the payer returned (docs: "Members as the payer
    knows them"): names compared normalized, member ID upper-cased, sex only when we sent one."""
    nm1, dmg = loop.name, loop.demographics
    born = dmg.birth_date if dmg else None
    sent_born = sent.birth_date.isoformat() if sent.birth_date else None
    return [
        *_correction("last_name", sent.last_name, nm1.last_or_org if nm1 else None, normalize_name),
        *_correction("first_name", sent.first_name, nm1.first if nm1 else None, normalize_name),
        *_correction("birth_date", sent_born, born.isoformat() if born else None, str),
        *_correction("sex", sent.sex, dmg.sex if dmg else None, _upper),
        *_correction("member_id", sent.member_id, nm1.id if nm1 else None, _upper),
    ]


def _sent(person: Patient | Subscriber | None, member_id: str | None) -> _Sent:
    if person is None:
        return _Sent(member_id=member_id)
    return _Sent(person.last_name, person.first_name, person.birth_date, person.sex, member_id)


def _people(member: _Member, request: EligibilityRequest | None) -> tuple[MemberInfo, MemberInfo | None]:
    """``subscriber`` (2100C) and, for a dependent, ``patient`` (2100D), with corrections.

    Reading: for a dependent the request's ``member_id`` (the subscriber's card) is compared with
    2100C; the request's ``subscriber`` with 2100C and its ``patient`` with 2100D.
    """
    sub_loop = member.subscriber.subscriber
    sub_fixes: list[CorrectionModel] = []
    dep_fixes: list[CorrectionModel] = []
    if request is not None and member.dependent is None:
        sub_fixes = _corrections(sub_loop, _sent(request.patient, request.member_id))
    elif request is not None:
        sub_fixes = _corrections(sub_loop, _sent(request.subscriber, request.member_id))
        dep_fixes = _corrections(member.loop, _sent(request.patient, None))
    subscriber = _member_info(sub_loop, sub_fixes)
    patient = _member_info(member.loop, dep_fixes) if member.dependent else None
    return subscriber, patient


# --- accumulators --------------------------------------------------------------------------------------

_Slot = tuple[str, str, str]  # (level, network, field)


def _accumulator_field(period: str) -> str:
    if period in _REMAINING_PERIODS:
        return "remaining"
    return "met" if period == _MET_PERIOD else "total"


def _accumulator(rows: Iterable[_Row], code: str) -> Accumulator:
    """Deductible (C) or out-of-pocket (G) from plan-level rows (docs: "Accumulators").

    Reading: a row without an EB07 amount has nothing to give and does not take a slot.
    """
    slots: dict[_Slot, tuple[bool, Decimal, str | None]] = {}
    for row in rows:
        eb = row.loop.eb
        if row.info != code or not row.plan_level or eb.amount is None:
            continue
        level = _level(eb.coverage_level)
        if level is None:
            continue
        field = _accumulator_field(eb.time_period)
        period = eb.time_period or None if field == "total" else None
        for offset in row.networks:
            slot = (level, _NETWORK_NAMES[offset], field)
            held = slots.get(slot)
            if held is None or (row.specific and not held[0]):
                slots[slot] = (row.specific, eb.amount, period)
    return _raw(
        Accumulator, {"individual": _network_amounts(slots, "individual"), "family": _network_amounts(slots, "family")}
    )


def _level(coverage_level: str) -> str | None:
    if coverage_level in codes.INDIVIDUAL_LEVELS:
        return "individual"
    return "family" if coverage_level in codes.FAMILY_LEVELS else None


def _network_amounts(slots: dict[_Slot, tuple[bool, Decimal, str | None]], level: str) -> NetworkAmounts:
    return _raw(
        NetworkAmounts, {"in_network": _amounts(slots, level, "in"), "out_of_network": _amounts(slots, level, "out")}
    )


def _amounts(slots: dict[_Slot, tuple[bool, Decimal, str | None]], level: str, network: str) -> Amounts:
    total = slots.get((level, network, "total"))
    remaining = slots.get((level, network, "remaining"))
    met = slots.get((level, network, "met"))
    return _raw(
        Amounts,
        {
            "total": total[1] if total else None,
            "remaining": remaining[1] if remaining else None,
            "met": met[1] if met else None,
            "time_period": total[2] if total else None,
        },
    )


# --- cost shares, limitations, entities, messages, benefit rows ---------------------------------------------


def _network_of(row: _Row) -> Network:
    return _NETWORK_ENUM.get(row.loop.eb.in_plan_network, Network.UNSPECIFIED)


def _cost_share(row: _Row, kind: Literal["copay", "coinsurance"]) -> CostShare:
    eb = row.loop.eb
    return _raw(
        CostShare,
        {
            "kind": kind,
            "amount": eb.amount,
            "percent": eb.percent,
            "network": _network_of(row),
            "coverage_level": eb.coverage_level or None,
            "service_types": list(row.stcs),
            "procedure": eb.procedure.code if eb.procedure else None,
            "time_period": eb.time_period or None,
            "place_of_service": list(row.places),
            "messages": row.messages,
            "benefit_index": row.index,
        },
    )


def _cost_shares(rows: Iterable[_Row]) -> tuple[list[CostShare], list[CostShare]]:
    """Every EB01 B row as a copay and every A row as a coinsurance, in file order."""
    copays: list[CostShare] = []
    coinsurance: list[CostShare] = []
    for row in rows:
        if row.info == "B":
            copays.append(_cost_share(row, "copay"))
        elif row.info == "A":
            coinsurance.append(_cost_share(row, "coinsurance"))
    return copays, coinsurance


def _is_limitation(row: _Row) -> bool:
    """F rows; other rows with EB09/EB10 or HSD, but cost-share rows only when they carry HSD."""
    if row.info == "F" or row.loop.delivery:
        return True
    eb = row.loop.eb
    return row.info not in _COST_SHARES and bool(eb.quantity_qualifier or eb.quantity is not None)


def _number(value: Decimal) -> str:
    """``Decimal("20.00")`` → ``"20"``; ``Decimal("1.50")`` → ``"1.5"`` (never exponent form)."""
    return format(value.normalize(), "f")


def _quantity_phrase(quantity: Decimal | None, qualifier: str) -> str:
    if quantity is None:
        return codes.quantity_qualifier_description(qualifier) if qualifier else ""
    singular, plural = codes.QUANTITY_NOUNS.get(qualifier, ("", ""))
    noun = singular if quantity == 1 else plural
    if not noun and qualifier:
        noun = codes.quantity_qualifier_description(qualifier)
    return f"{_number(quantity)} {noun}".strip()


def _period_phrase(period: str, count: Decimal | None = None) -> str:
    if not period:
        return ""
    singular, plural = codes.TIME_PERIOD_PHRASES.get(period, (f"per {codes.time_period_description(period)}", ""))
    if count is not None and count != 1 and plural:
        return f"per {_number(count)} {plural}"
    return singular


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def render_delivery(hsd: Hsd) -> str:
    """HSD as text: ``"12 visits per calendar year"``, ``"1 visit per 2 years"``."""
    every = ""
    if hsd.sample_selection_modulus is not None and hsd.unit:
        every = f"every {_number(hsd.sample_selection_modulus)} {codes.describe(codes.HSD_UNITS, hsd.unit)}"
    frequency = codes.describe(codes.DELIVERY_FREQUENCIES, hsd.delivery_frequency) if hsd.delivery_frequency else ""
    return _join(
        _quantity_phrase(hsd.quantity, hsd.quantity_qualifier),
        every,
        _period_phrase(hsd.time_period, hsd.period_count),
        frequency,
    )


def _describe_limitation(row: _Row) -> str:
    """``"20 visits per calendar year"`` from EB09/EB10 (or EB07) and EB06, then each HSD; the MSG
    texts when no code says anything; the EB01 description as a last resort."""
    eb = row.loop.eb
    parts: list[str] = []
    what = _quantity_phrase(eb.quantity, eb.quantity_qualifier)
    if not what and eb.amount is not None and row.info not in _COST_SHARES:  # a cost share's EB07 is no limit
        what = f"${_number(eb.amount)}"
    if what:
        parts.append(_join(what, _period_phrase(eb.time_period)))
    parts.extend(text for text in map(render_delivery, row.loop.delivery) if text)
    return "; ".join(parts) or "; ".join(row.messages) or codes.eligibility_description(row.info)


def _limitation(row: _Row) -> Limitation:
    eb = row.loop.eb
    first = row.loop.delivery[0] if row.loop.delivery else None
    quantity = eb.quantity if eb.quantity is not None else (first.quantity if first else None)
    qualifier = eb.quantity_qualifier or (first.quantity_qualifier if first else "")
    period = eb.time_period or (first.time_period if first else "")
    return _new(
        Limitation,
        service_types=list(row.stcs),
        procedure=eb.procedure.code if eb.procedure else None,
        description=_describe_limitation(row),
        quantity=quantity,
        quantity_qualifier=qualifier or None,
        time_period=period or None,
        network=_network_of(row),
        messages=row.messages,
        benefit_index=row.index,
    )


def _limitations(rows: Iterable[_Row]) -> dict[int, Limitation]:
    """Limitations by benefit index, in file order (docs: "limitations")."""
    return {row.index: _limitation(row) for row in rows if _is_limitation(row)}


def _entity_name(entity: Loop2120) -> str | None:
    nm1 = entity.name
    if nm1.entity_type == "1" and nm1.first:
        return _join(nm1.last_or_org, nm1.first) or None
    return nm1.last_or_org or None


def _phone(entity: Loop2120) -> str | None:
    for contact in entity.contacts:
        for qualifier, number in contact.numbers:
            if qualifier == "TE":
                return number
    return None


def _related_entities(rows: Iterable[_Row]) -> list[RelatedEntity]:
    """Every 2120 loop, with the service types and index of the EB that owns it."""
    return [
        _new(
            RelatedEntity,
            role=entity.name.entity_id,
            role_description=codes.entity_description(entity.name.entity_id),
            name=_entity_name(entity),
            identifier=entity.name.id or None,
            identifier_qualifier=entity.name.id_qualifier or None,
            phone=_phone(entity),
            service_types=list(row.stcs),
            benefit_index=row.index,
        )
        for row in rows
        for entity in row.loop.related_entities
    ]


def _messages(rows: Iterable[_Row]) -> list[str]:
    """MSG texts of the given rows, de-duplicated, in file order."""
    seen: dict[str, None] = {}
    for row in rows:
        for msg in row.loop.messages:
            seen.setdefault(msg.text, None)
    return list(seen)


def _procedure_text(row: _Row) -> str | None:
    proc = row.loop.eb.procedure
    if proc is None:
        return None
    return ":".join([proc.qualifier, proc.code, *proc.modifiers])


def _additional_info(row: _Row) -> list[str]:
    shown: list[str] = []
    for entry in row.loop.additional_info:
        iii = entry.info
        if iii.qualifier:
            shown.append(f"{iii.qualifier}:{iii.code}")
        else:
            shown.append(f"{iii.category}:{iii.text}" if iii.category else iii.text)
    return shown


def _reference(ref: Ref) -> dict[str, str]:
    shown = {"qualifier": ref.qualifier, "value": ref.value}
    if ref.description:
        shown["description"] = ref.description
    return shown


def _benefit_row(row: _Row, loop_id: str) -> BenefitRow:
    loop = row.loop
    eb = loop.eb
    info = eb.info
    # Most rows carry no dates, HSD, III, REF or AAA: skip building empty comprehensions.
    return _raw(
        BenefitRow,
        {
            "index": row.index,
            "code": info,
            "name": codes.ELIGIBILITY_CODES.get(info) or codes.eligibility_description(info),
            "coverage_level": eb.coverage_level or None,
            "service_types": list(row.stcs),
            "insurance_type": eb.insurance_type or None,
            "plan_description": eb.plan_description or None,
            "time_period": eb.time_period or None,
            "amount": eb.amount,
            "percent": eb.percent,
            "quantity_qualifier": eb.quantity_qualifier or None,
            "quantity": eb.quantity,
            "auth_required": eb.auth_required or None,
            "in_plan_network": eb.in_plan_network or None,
            "procedure": _procedure_text(row) if eb.procedure else None,
            "dates": [{"qualifier": d.qualifier, "format": d.format, "value": d.value} for d in loop.dates]
            if loop.dates
            else [],
            "messages": row.messages if loop.messages else [],
            "delivery": [render_delivery(h) for h in loop.delivery] if loop.delivery else [],
            "additional_info": _additional_info(row) if loop.additional_info else [],
            "references": [_reference(r) for r in loop.refs] if loop.refs else [],
            "errors": [a.reason for a in loop.errors] if loop.errors else [],
            "loop": loop_id,
            "segment_position": eb.position,
        },
    )


# --- errors ------------------------------------------------------------------------------------------------


def _resolutions(aaa: Aaa) -> list[str]:
    found = [codes.REJECT_RESOLUTIONS.get(aaa.reason), codes.FOLLOW_UP_RESOLUTIONS.get(aaa.follow_up)]
    sentences = [s for s in found if s]
    return sentences or ["Call the payer to find out why the inquiry was rejected."]


def _aaa_error(aaa: Aaa) -> AaaError:
    """One AAA with its descriptions and what the front desk can do (docs: "Errors")."""
    follow_up = aaa.follow_up
    return _new(
        AaaError,
        code=aaa.reason,
        description=codes.reject_reason_description(aaa.reason),
        follow_up_action=follow_up,
        follow_up_description=codes.follow_up_description(follow_up) if follow_up else "no follow-up action given",
        loop=aaa.loop,
        location=_LOCATIONS.get(aaa.loop, "unknown"),
        valid_request=aaa.valid == "Y",
        retryable=aaa.reason in _RETRYABLE_REASONS and follow_up in _RETRYABLE_FOLLOW_UPS,
        needs_correction=follow_up == "C" or aaa.reason in _CORRECTION_REASONS,
        possible_resolutions=_resolutions(aaa),
    )


def _member_errors(member: _Member, rows: Iterable[_Row]) -> list[AaaError]:
    """AAAs of 2000A, 2100A, 2100B, the member's 2100C (and 2100D) and its 2110 rows, file order."""
    found = [*member.source.errors, *member.source.source.errors, *member.receiver.receiver.errors]
    found.extend(aaa for loop in member.name_loops for aaa in loop.errors)
    found.extend(aaa for row in rows for aaa in row.loop.errors)
    return [_aaa_error(aaa) for aaa in sorted(found, key=_position)]


# --- authorization messages ------------------------------------------------------------------------------

_AUTH_WORDS: Final = ("AUTH", "CERT", "REFERRAL")
# The nouns: prior authorization, pre-authorization, (pre)certification, referral and short forms.
_AUTH_NOUN: Final = (
    r"(?:PRIOR\s+|PRE-?\s?)?(?:AUTH(?:ORI[SZ]ATIONS?|ORI[SZ]ED|S)?|CERT(?:IFICATIONS?|S)?|PRECERT(?:IFICATIONS?)?"
    r"|REFERRALS?)"
)
_AUTH_TOPIC: Final = re.compile(rf"\b{_AUTH_NOUN}\b")
_AUTH_NOT_REQUIRED: Final = re.compile(
    r"\bNOT\s+(?:BE\s+)?(?:REQUIRED|REQ'?D?|NEEDED|NECESSARY)\b"
    rf"|\bNO\s+{_AUTH_NOUN}\b"
    r"|\bDOES\s+NOT\s+REQUIRE\b|\bDO\s+NOT\s+REQUIRE\b"
    r"|\b(?:REQUIRED|REQ'?D?|NEEDED)\s*[:=-]?\s*(?:NO|N)\b"
)
_AUTH_REQUIRED: Final = re.compile(
    r"\b(?:REQUIRED|REQUIRES?|REQ'?D?|NEEDED|MUST|MANDATORY|NECESSARY)\b|[:=]\s*(?:YES|Y)\b"
)


def auth_message_verdict(text: str) -> Literal["Y", "N"] | None:
    """What an MSG text says about prior authorization / precertification / referral.

    ``"Y"`` when it says one is required, ``"N"`` when it says one is not (a negation anywhere
    wins: "NO PRIOR AUTH REQUIRED", "AUTHORIZATION NOT REQUIRED", "REFERRAL REQUIRED: NO"),
    ``None`` when it is not about authorization or takes no side.
    """
    upper = text.upper()
    if not any(word in upper for word in _AUTH_WORDS):  # cheap check before any regex
        return None
    if not _AUTH_TOPIC.search(upper):
        return None
    if _AUTH_NOT_REQUIRED.search(upper):
        return "N"
    return "Y" if _AUTH_REQUIRED.search(upper) else None


# --- per requested service ----------------------------------------------------------------------------

_Tier = tuple[int, list[_Row]]  # (tier number 1-4, rows)


@dataclass(slots=True)
class _Index:
    """A member's rows indexed once for the per-service tiers."""

    by_stc: dict[str, list[_Row]]
    by_procedure: dict[tuple[str, str], list[_Row]]
    plan: list[_Row]  # EB03 contains 30
    untyped: list[_Row]  # EB03 empty
    any_procedure: bool  # some row names an EB13 procedure


def _index(rows: Iterable[_Row]) -> _Index:
    index = _Index({}, {}, [], [], False)
    for row in rows:
        for stc in row.stcs:
            index.by_stc.setdefault(stc, []).append(row)
        if not row.stcs:
            index.untyped.append(row)
        elif _PLAN in row.stcs:
            index.plan.append(row)
        if row.procedure is not None:
            index.any_procedure = True
            index.by_procedure.setdefault(row.procedure, []).append(row)
    return index


def _tiers(index: _Index, procedure: tuple[str, str] | None, stcs: Sequence[str]) -> list[_Tier]:
    """The non-empty candidate tiers, most specific first (docs: "Per requested service").

    Reading: a row whose EB13 names a different procedure (or, for a service-type request, any
    procedure) speaks only for that procedure and is left out of tiers 2-4.
    """
    tiers: list[_Tier] = []
    if procedure is not None and procedure in index.by_procedure:
        tiers.append((1, index.by_procedure[procedure]))
    groups = [(2, index.by_stc.get(stc, [])) for stc in stcs] + [(3, index.plan), (4, index.untyped)]
    for number, rows in groups:
        kept = [r for r in rows if r.procedure is None] if index.any_procedure else rows
        if kept:
            tiers.append((number, kept))
    return tiers


_Choice = tuple[int, _Row]  # (position in the tier list, row)


def _pick_costs(tiers: Sequence[_Tier], place: str | None) -> list[_Choice | None]:
    """Copay, coinsurance, deductible and out-of-pocket remaining, in and out of network, in one
    pass: each field takes the first tier holding a row for it, and within that tier the row with
    a specific network (Y/N), then an individual level, then (copay and coinsurance) naming the
    requested place of service, then the first in file order.  Rows naming another place are
    skipped.  Result: ``_COST_FIELDS`` entries, indexed by slot + network offset."""
    chosen: list[_Choice | None] = [None] * _COST_FIELDS
    missing = _COST_FIELDS
    for position, (_, rows) in enumerate(tiers):
        best: dict[int, tuple[int, _Row]] = {}
        for row in rows:
            slot = row.cost_slot
            if slot < 0:
                continue
            rank = row.rank
            if place and slot < _DEDUCTIBLE_LEFT:  # the place of service matters for copay, coinsurance
                if row.places and place not in row.places:
                    continue
                rank += 0 if row.places else 1
            for offset in row.networks:
                field = slot + offset
                if chosen[field] is None:
                    held = best.get(field)
                    if held is None or rank < held[0]:
                        best[field] = (rank, row)
        for field, (_, row) in best.items():
            chosen[field] = (position, row)
            missing -= 1
        if not missing:
            break
    return chosen


def _network_costs(chosen: list[_Choice | None], offset: int) -> NetworkCosts:
    copay, coinsurance, deductible, out_of_pocket = (c[1].cost_value if c else None for c in chosen[offset::2])
    return _raw(
        NetworkCosts,
        {
            "copay": copay,
            "coinsurance": coinsurance,
            "deductible_remaining": deductible,
            "out_of_pocket_remaining": out_of_pocket,
        },
    )


def _eb01_evidence(rows: Iterable[_Row]) -> list[Evidence]:
    return [
        _raw(
            Evidence,
            {"source": "EB01", "value": r.info, "benefit_index": r.index, "segment_position": r.loop.eb.position},
        )
        for r in rows
    ]


@dataclass(slots=True)
class _Verdict:
    value: Tristate
    evidence: list[Evidence]
    rows: list[_Row]
    position: int | None  # the tier it came from


def _covered(tiers: Sequence[_Tier], status: CheckStatus, status_row: _Row | None) -> _Verdict:
    """docs: "covered".  Reading: the deciding tier is the first with a row of EB01 1-8, I, E *or a
    cost share* (A, B, C, G) - otherwise the rule's "any cost-share row" could never matter; and
    a rejected or errored check is ``unknown``, not ``no``: the payer has not said "not covered"."""
    if status in (CheckStatus.INACTIVE, CheckStatus.NOT_FOUND):
        # The status row decides; the tier holding it is the one used (for its messages).
        shown = [status_row] if status_row else []
        held = next((p for p, (_, rows) in enumerate(tiers) if any(r is status_row for r in rows)), None)
        return _Verdict(Tristate.NO, _eb01_evidence(shown), shown, held)
    if status is not CheckStatus.ACTIVE:
        return _Verdict(Tristate.UNKNOWN, [], [], None)
    for position, (number, rows) in enumerate(tiers):
        signals = [r for r in rows if r.info in _COVERAGE_SIGNALS]
        if not signals:
            continue
        negative = [r for r in signals if r.info in _NEGATIVE]
        if negative:
            return _Verdict(Tristate.NO, _eb01_evidence(negative), negative, position)
        value = Tristate.YES if number <= 2 else Tristate.UNKNOWN
        return _Verdict(value, _eb01_evidence(signals), signals, position)
    return _Verdict(Tristate.UNKNOWN, [], [], None)


def _row_auth(row: _Row) -> tuple[set[str], list[Evidence]]:
    """What one row says about authorization: EB11 as sent, and each MSG that takes a side."""
    said: set[str] = set()
    evidence: list[Evidence] = []
    flag = row.loop.eb.auth_required
    if flag:
        said.add(flag)
        evidence.append(
            _raw(
                Evidence,
                {"source": "EB11", "value": flag, "benefit_index": row.index, "segment_position": row.loop.eb.position},
            )
        )
    for msg in row.loop.messages:
        verdict = auth_message_verdict(msg.text)  # the only regex work: MSG texts of this one tier
        if verdict is not None:
            said.add(verdict)
            evidence.append(
                _raw(
                    Evidence,
                    {"source": "MSG", "value": msg.text, "benefit_index": row.index, "segment_position": msg.position},
                )
            )
    return said, evidence


def _auth(tiers: Sequence[_Tier]) -> _Verdict:
    """docs: "auth_required": EB11 and MSG texts of the first tier that has any row.  Y anywhere
    there (or a required-MSG) is yes, else N is no, else unknown: an absent EB11 never means no.

    That tier counts as used (its messages and limitations are reported) even when it says nothing
    about authorization: "unknown" is its answer."""
    if not tiers:
        return _Verdict(Tristate.UNKNOWN, [], [], None)
    said: set[str] = set()
    evidence: list[Evidence] = []
    speaking: list[_Row] = []
    for row in tiers[0][1]:
        row_said, row_evidence = _row_auth(row)
        if row_evidence:
            said |= row_said
            evidence.extend(row_evidence)
            speaking.append(row)
    value = Tristate.YES if "Y" in said else Tristate.NO if "N" in said else Tristate.UNKNOWN
    return _Verdict(value, evidence, speaking, 0)


@dataclass(slots=True)
class _MemberFacts:
    """What every service answer of one member needs."""

    index: _Index
    status: CheckStatus
    status_row: _Row | None
    limitations: dict[int, Limitation]
    place: str | None


def _answer(
    facts: _MemberFacts, tiers: list[_Tier], head: dict[str, Any], service_types: list[str], source: str
) -> ServiceAnswer:
    """One ``ServiceAnswer`` from its tiers: every field, then what was used."""
    chosen = _pick_costs(tiers, facts.place)
    covered = _covered(tiers, facts.status, facts.status_row)
    auth = _auth(tiers)
    limitations, messages, indexes = _what_was_used(facts, tiers, chosen, (covered, auth))
    return _new(
        ServiceAnswer,
        **head,
        service_types=service_types,
        mapping_source=source,
        covered=covered.value,
        auth_required=auth.value,
        auth_evidence=auth.evidence,
        coverage_evidence=covered.evidence,
        in_network=_network_costs(chosen, 0),
        out_of_network=_network_costs(chosen, 1),
        limitations=limitations,
        messages=messages,
        benefit_indexes=indexes,
    )


def _what_was_used(
    facts: _MemberFacts, tiers: list[_Tier], chosen: list[_Choice | None], verdicts: Sequence[_Verdict]
) -> tuple[list[Limitation], list[str], list[int]]:
    """Limitations and messages of the tiers any field used, and the indexes of the rows used:
    those that gave a value or evidence, and those reported as limitations."""
    positions = {c[0] for c in chosen if c is not None}
    indexes = {c[1].index for c in chosen if c is not None}
    for verdict in verdicts:
        if verdict.position is not None:
            positions.add(verdict.position)
        indexes.update(row.index for row in verdict.rows)
    by_index = {row.index: row for p in positions for row in tiers[p][1]}
    tier_rows = [by_index[i] for i in sorted(by_index)]
    limitations = [facts.limitations[r.index] for r in tier_rows if r.index in facts.limitations]
    indexes.update(lim.benefit_index for lim in limitations)
    return limitations, _messages(tier_rows), sorted(indexes)


def _procedure_answer(facts: _MemberFacts, procedure: ProcedureCode, table: ProcedureTable) -> ServiceAnswer:
    """Tiers 1-4 for a requested procedure; ``mapping_source`` says who mapped it to STCs."""
    key = _procedure_key(procedure.qualifier, procedure.code)
    mapped, table_source = table.service_types_for(procedure.code, procedure.qualifier, place_of_service=facts.place)
    tiers = _tiers(facts.index, key, mapped)
    payer_rows = facts.index.by_procedure.get(key)
    if payer_rows:
        payer_stcs = list(dict.fromkeys(stc for row in payer_rows for stc in row.stcs))
        service_types, source = payer_stcs or mapped, "payer"
    else:
        service_types, source = mapped, table_source
    head = {"code": procedure.code, "code_type": "procedure", "qualifier": procedure.qualifier}
    return _answer(facts, tiers, head, service_types, source)


def _service_type_answer(facts: _MemberFacts, stc: str) -> ServiceAnswer:
    """Tiers 2-4 with ``[stc]`` for a requested service type."""
    tiers = _tiers(facts.index, None, [stc])
    head = {"code": stc, "code_type": "service_type", "qualifier": None}
    return _answer(facts, tiers, head, [stc], "request")


def _services(facts: _MemberFacts, request: EligibilityRequest | None, table: ProcedureTable) -> list[ServiceAnswer]:
    """One answer per requested procedure, then one per requested service type."""
    if request is None:
        return []
    service = request.service
    answers = [_procedure_answer(facts, p, table) for p in service.procedures]
    answers.extend(_service_type_answer(facts, stc) for stc in service.service_types)
    return answers


# --- provenance and assembly ------------------------------------------------------------------------------


def _trace(member: _Member) -> str | None:
    """TRN02 of our echoed trace (TRN01 2), the dependent's level first."""
    levels = [member.dependent.traces] if member.dependent else []
    levels.append(member.subscriber.traces)
    for traces in levels:
        for trn in traces:
            if trn.type == "2":
                return trn.reference
    return None


def _provenance(transaction: Transaction271, trace: str | None, warnings: list[str]) -> Provenance:
    return _new(
        Provenance,
        trace_number=trace,
        control_number=transaction.control_number or None,
        implementation=transaction.implementation or None,
        warnings=[*transaction.warnings, *warnings],
    )


def _payer(source: Loop2000A | None) -> PayerInfo:
    nm1 = source.source.name if source else None
    return _new(PayerInfo, id=nm1.id or None if nm1 else None, name=nm1.last_or_org or None if nm1 else None)


def _summarize_member(
    transaction: Transaction271,
    member: _Member,
    request: EligibilityRequest | None,
    table: ProcedureTable,
    warnings: list[str],
) -> CoverageSummary:
    rows = _rows(member)
    status, detail, status_row = _member_status(member, rows)
    subscriber, patient = _people(member, request)
    copays, coinsurance = _cost_shares(rows)
    limitations = _limitations(rows)
    place = request.service.place_of_service if request else None
    facts = _MemberFacts(_index(rows), status, status_row, limitations, place)
    loop_id = "2110D" if member.dependent else "2110C"
    return _new(
        CoverageSummary,
        status=status,
        status_detail=detail,
        payer=_payer(member.source),
        plan=_plan(member, status_row),
        subscriber=subscriber,
        patient=patient,
        deductible=_accumulator(rows, "C"),
        out_of_pocket=_accumulator(rows, "G"),
        copays=copays,
        coinsurance=coinsurance,
        services=_services(facts, request, table),
        limitations=list(limitations.values()),
        related_entities=_related_entities(rows),
        messages=_messages(r for r in rows if r.plan_level),
        errors=_member_errors(member, rows),
        provenance=_provenance(transaction, _trace(member), warnings),
        benefits=[_benefit_row(row, loop_id) for row in rows],
    )


def _summarize_without_member(transaction: Transaction271) -> CoverageSummary:
    """A 271 with no 2000C: rejected when a source or receiver AAA says why (status rule 1)."""
    found: list[Aaa] = []
    for source in transaction.sources:
        found.extend(_upper_errors(source, None))
        found.extend(aaa for receiver in source.receivers for aaa in receiver.receiver.errors)
    found.sort(key=_position)
    status, detail = _aaa_status(found, member_level=False) if found else (CheckStatus.ERROR, _NO_STATUS)
    first_source = transaction.sources[0] if transaction.sources else None
    return _new(
        CoverageSummary,
        status=status,
        status_detail=detail,
        payer=_payer(first_source),
        plan=_new(PlanInfo),
        subscriber=_new(MemberInfo),
        deductible=_accumulator((), "C"),
        out_of_pocket=_accumulator((), "G"),
        errors=[_aaa_error(aaa) for aaa in found],
        provenance=_provenance(transaction, None, []),
    )


def interpret(
    transaction: Transaction271, request: EligibilityRequest | None = None, *, table: ProcedureTable | None = None
) -> list[CoverageSummary]:
    """One ``CoverageSummary`` per member of ``transaction``, in file order (docs/interpretation.md).

    A 271 without members gives one summary (rejected when a 2000A/2100A/2100B AAA explains it).
    ``request`` adds corrections and the per-service answers; ``table`` maps procedures to service
    types (default: the built-in table).
    """
    members = _members(transaction)
    if not members:
        return [_summarize_without_member(transaction)]
    chosen = table or default_table()
    return [_summarize_member(transaction, member, request, chosen, []) for member in members]


def summarize(
    transaction: Transaction271, request: EligibilityRequest | None = None, *, table: ProcedureTable | None = None
) -> CoverageSummary:
    """The ``CoverageSummary`` of the member ``request`` asks about (docs: "Members").

    Falls back to the first member, with a provenance warning, when none matches.
    """
    members = _members(transaction)
    if not members:
        return _summarize_without_member(transaction)
    member, warnings = _pick_member(members, request)
    return _summarize_member(transaction, member, request, table or default_table(), warnings)
