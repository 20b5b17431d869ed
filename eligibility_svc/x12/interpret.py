"""Benefit interpretation: a parsed 271 (``Transaction271``) becomes ``CoverageSummary`` answers.

The contract is ``docs/interpretation.md``; the sections below follow it in order (members, status,
plan, members as the payer knows them, accumulators, cost shares and limitations, per requested
service, errors, provenance).  Where that page leaves a choice open, the choice made here is
written next to the code as "Reading:".

Pure and deterministic: no I/O, no clock, no randomness.  Fast: every EB row is looked at once to
build a ``_Row`` (network, level, service types, places of service, procedure, what each rule wants
of it), rows are indexed by service type only when a service is asked about, each tier's
cost/signal/authorization/notable rows are picked out once per member, and the regular expressions
for authorization only ever see MSG texts.  Output models are assembled by ``_builder`` functions
(no validation) from values built here with the exact types the models declare;
``tests/test_interpret_assembly.py`` proves every summary of every fixture and corpus file equal to,
and serialized exactly like, its validated twin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
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
#
# Output models are built without validation from values made here with the exact types the models
# declare.  ``_builder`` is the one place that knows how: it sets the four slots of a pydantic model
# the way pydantic-core does for a validated instance (``__dict__`` the field values, every field
# name as the fields set, no extra, no private), through the slots' own descriptors, which is the
# cheapest way past ``BaseModel.__setattr__``.  Complete instances of a class share one fields set:
# pydantic only ever adds field names to it, and every name is already there.
# ``tests/test_interpret_assembly.py`` proves the result equal to, and serialized exactly like, a
# validated instance across every fixture and corpus file.

_M = TypeVar("_M", bound=BaseModel)
_BASE_SLOTS: Final = vars(BaseModel)
_set_dict: Final = _BASE_SLOTS["__dict__"].__set__
_set_fields_set: Final = _BASE_SLOTS["__pydantic_fields_set__"].__set__
_set_extra: Final = _BASE_SLOTS["__pydantic_extra__"].__set__
_set_private: Final = _BASE_SLOTS["__pydantic_private__"].__set__
_object_new: Final = object.__new__


def _builder(cls: type[_M]) -> Callable[[dict[str, Any]], _M]:
    """A function making a ``cls`` from a dict holding *every* field (hot paths write it as a literal)."""
    config = cls.model_config
    if (
        cls.__pydantic_post_init__
        or cls.__private_attributes__
        or cls.__pydantic_root_model__
        or config.get("extra") == "allow"
    ):
        raise TypeError(f"{cls.__name__} needs pydantic's own construction")
    every = set(cls.model_fields)

    def build(state: dict[str, Any]) -> _M:
        model = _object_new(cls)
        _set_dict(model, state)
        _set_fields_set(model, every)
        _set_extra(model, None)
        _set_private(model, None)
        return model

    return build


_aaa_error_model: Final = _builder(AaaError)
_accumulator_model: Final = _builder(Accumulator)
_amounts_model: Final = _builder(Amounts)
_benefit_row_model: Final = _builder(BenefitRow)
_correction_model: Final = _builder(CorrectionModel)
_cost_share_model: Final = _builder(CostShare)
_summary_model: Final = _builder(CoverageSummary)
_evidence_model: Final = _builder(Evidence)
_limitation_model: Final = _builder(Limitation)
_member_info_model: Final = _builder(MemberInfo)
_network_amounts_model: Final = _builder(NetworkAmounts)
_network_costs_model: Final = _builder(NetworkCosts)
_payer_model: Final = _builder(PayerInfo)
_plan_model: Final = _builder(PlanInfo)
_provenance_model: Final = _builder(Provenance)
_related_entity_model: Final = _builder(RelatedEntity)
_service_answer_model: Final = _builder(ServiceAnswer)


# --- members ----------------------------------------------------------------------------------------------


@dataclass(slots=True, init=False)
class _Member:
    """One answerable person: a 2000C without dependents, or one 2000D, with the loops above it."""

    source: Loop2000A
    receiver: Loop2000B
    subscriber: Loop2000C
    dependent: Loop2000D | None

    def __init__(
        self,
        source: Loop2000A,
        receiver: Loop2000B,
        subscriber: Loop2000C,
        dependent: Loop2000D | None,
    ) -> None:
        self.source = source
        self.receiver = receiver
        self.subscriber = subscriber
        self.dependent = dependent

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


@dataclass(slots=True, init=False)
class _Row:
    """One EB row with what the rules ask of it worked out once."""

    index: int
    loop: Loop2110
    eb: Eb
    info: str  # EB01
    stcs: list[str]  # EB03
    plan_level: bool  # EB03 empty or containing 30
    networks: tuple[int, ...]  # the networks the row speaks for: 0 in, 1 out
    specific: bool  # EB12 Y or N
    places: tuple[str, ...]  # III*ZZ places of service
    procedure: tuple[str, str] | None  # (code set, code) of EB13
    cost_slot: int  # per-service cost field (0 copay, 2 coinsurance, 4/6 C/G remaining) or -1
    cost_value: Decimal | None  # the value that field would take from this row
    rank: int  # within-tier preference: specific network (4), individual level (2); lower wins
    limitation: bool  # reported as a limitation (docs: "limitations")
    notable: bool  # has MSG texts or is a limitation
    talks: bool  # has an EB11 or MSG texts

    def __init__(
        self,
        index: int,
        loop: Loop2110,
        eb: Eb,
        info: str,
        stcs: list[str],
        plan_level: bool,
        networks: tuple[int, ...],
        specific: bool,
        places: tuple[str, ...],
        procedure: tuple[str, str] | None,
        cost_slot: int,
        cost_value: Decimal | None,
        rank: int,
        limitation: bool,
        notable: bool,
        talks: bool,
    ) -> None:
        self.index = index
        self.loop = loop
        self.eb = eb
        self.info = info
        self.stcs = stcs
        self.plan_level = plan_level
        self.networks = networks
        self.specific = specific
        self.places = places
        self.procedure = procedure
        self.cost_slot = cost_slot
        self.cost_value = cost_value
        self.rank = rank
        self.limitation = limitation
        self.notable = notable
        self.talks = talks

    @property
    def messages(self) -> list[str]:
        return [m.text for m in self.loop.messages]


_IN: Final = (0,)  # network offsets: 0 in network, 1 out of network
_OUT: Final = (1,)
_BOTH: Final = (0, 1)
_NETWORKS: Final = {"Y": _IN, "N": _OUT}
_INDIVIDUAL_LEVELS: Final = codes.INDIVIDUAL_LEVELS
_ACCUMULATOR_CODES: Final = frozenset({"C", "G"})  # EB01 deductible, out of pocket
_FAMILY_LEVELS: Final = codes.FAMILY_LEVELS


def _procedure_key(qualifier: str, code: str) -> tuple[str, str]:
    return (_SAME_CODE_SET.get(qualifier, qualifier), code.strip().upper())


_COPAY, _COINSURANCE, _DEDUCTIBLE_LEFT, _OUT_OF_POCKET_LEFT = 0, 2, 4, 6  # + 0 in, + 1 out of network
_COST_FIELDS: Final = 8


def _rows(member: _Member) -> list[_Row]:
    """Every EB row of the member, each looked at once (docs: "Per requested service" for the cost slot)."""
    rows: list[_Row] = []
    for index, loop in enumerate(member.loop.benefits):
        eb = loop.eb
        info, stcs, network, proc = eb.info, eb.service_types, eb.in_plan_network, eb.procedure
        networks = _NETWORKS.get(network, _BOTH)
        specific = network in _NETWORKS  # by membership, not identity with _BOTH (a compiled build boxes it anew)
        # Which per-service cost field the row can fill, and with what.
        if info == "B":
            slot, value = _COPAY, eb.amount
        elif info == "A":
            slot, value = _COINSURANCE, eb.percent
        elif info in _ACCUMULATOR_CODES and eb.time_period == "29":
            slot, value = (_DEDUCTIBLE_LEFT if info == "C" else _OUT_OF_POCKET_LEFT), eb.amount
        else:
            slot, value = -1, None
        extra = loop.additional_info
        # F rows; other rows with EB09/EB10 or HSD, but cost-share rows only when they carry HSD.
        limitation = (
            info == "F"
            or bool(loop.delivery)
            or (info not in _COST_SHARES and bool(eb.quantity_qualifier or eb.quantity is not None))
        )
        messages = bool(loop.messages)
        rows.append(
            _Row(
                index,
                loop,
                eb,
                info,
                stcs,
                not stcs or _PLAN in stcs,
                networks,
                specific,
                tuple(a.info.code for a in extra if a.info.qualifier == "ZZ") if extra else (),
                _procedure_key(proc.qualifier, proc.code) if proc else None,
                slot if value is not None else -1,
                value,
                (0 if specific else 4) + (0 if eb.coverage_level in _INDIVIDUAL_LEVELS else 2),
                limitation,
                messages or limitation,
                messages or bool(eb.auth_required),
            )
        )
    return rows


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


_NO_DATES: Final[tuple[str | None, str | None]] = (None, None)
_DATE_FIELDS: Final[dict[str, tuple[str | None, str | None]]] = {
    # DTP01: (field the start date fills, field the end date fills)
    "346": ("coverage_begin", None),
    "347": (None, "coverage_end"),
    "291": ("coverage_begin", "coverage_end"),
    "356": ("eligibility_begin", None),
    "357": (None, "eligibility_end"),
    "307": ("eligibility_begin", "eligibility_end"),
}


def _plan(member: _Member, status_row: _Row | None) -> PlanInfo:
    """Plan identity from the member's 2100 loop(s) and the status row (docs: "Plan").

    Reading: a qualifier's order beats a place's (REF*6P anywhere before REF*1L anywhere), and a
    dependent's 2100D is searched before its subscriber's 2100C, then the status row.

    Dates: member-level DTPs first, the status row's fill the gaps.  A D8 range qualifier (291,
    307) gives only its begin; a single-date end qualifier (347, 357) takes the range's end when
    the payer sent an RD8 anyway.
    """
    loops = member.name_loops
    places: list[Sequence[Ref]] = [loop.refs for loop in loops]
    dtps: list[Dtp] = [d for loop in loops for d in loop.dates]
    eb = None
    if status_row is not None:
        places.append(status_row.loop.refs)
        dtps.extend(status_row.loop.dates)
        eb = status_row.eb
    group = _find_ref(places, "6P") or _find_ref(places, "1L")
    plan_number = _find_ref(places, "18")
    network = _find_ref(places, "N6")
    insurance_type = eb.insurance_type or None if eb else None
    state: dict[str, Any] = {
        "name": eb.plan_description or None if eb else None,
        "insurance_type": insurance_type,
        "insurance_type_description": codes.insurance_type_description(insurance_type) if insurance_type else None,
        "group_number": group.value or None if group else None,
        "group_name": group.description or None if group else None,
        "plan_number": plan_number.value or None if plan_number else None,
        "plan_network_id": network.value or None if network else None,
        "coverage_begin": None,
        "coverage_end": None,
        "eligibility_begin": None,
        "eligibility_end": None,
    }
    for dtp in dtps:
        begin_field, end_field = _DATE_FIELDS.get(dtp.qualifier, _NO_DATES)
        if begin_field and state[begin_field] is None:
            state[begin_field] = dtp.start
        if end_field and state[end_field] is None and (dtp.format == "RD8" or begin_field is None):
            state[end_field] = dtp.end or dtp.start
    return _plan_model(state)


# --- members as the payer knows them -------------------------------------------------------------------


def _member_info(loop: Loop2100Member, corrections: list[CorrectionModel]) -> MemberInfo:
    nm1, dmg, ins, address = loop.name, loop.demographics, loop.relationship, loop.address
    return _member_info_model(
        {
            "last_name": nm1.last_or_org or None if nm1 else None,
            "first_name": nm1.first or None if nm1 else None,
            "middle_name": nm1.middle or None if nm1 else None,
            "suffix": nm1.suffix or None if nm1 else None,
            "member_id": nm1.id or None if nm1 else None,
            "birth_date": dmg.birth_date if dmg else None,
            "sex": dmg.sex or None if dmg else None,
            "relationship": ins.relationship or None if ins else None,
            "address_line1": address.line1 or None if address else None,
            "city": address.city or None if address else None,
            "state": address.state or None if address else None,
            "postal_code": address.postal_code or None if address else None,
            "corrections": corrections,
        }
    )


def _upper(value: str) -> str:
    return value.strip().upper()


def _corrections(
    loop: Loop2100Member, person: Patient | Subscriber | None, member_id: str | None
) -> list[CorrectionModel]:
    """Differences between what we sent about ``person`` (``None``: nothing but maybe the member ID)
    and what the payer returned (docs: "Members as the payer knows them"): names compared
    normalized, member ID upper-cased, sex only when we sent one."""
    nm1, dmg = loop.name, loop.demographics
    found: list[CorrectionModel] = []
    if person is not None:
        checks: list[tuple[str, str | None, str | None, Callable[[str], str]]] = [
            ("last_name", person.last_name, nm1.last_or_org if nm1 else None, normalize_name),
            ("first_name", person.first_name, nm1.first if nm1 else None, normalize_name),
        ]
        born = dmg.birth_date if dmg else None
        if person.birth_date and born:
            checks.append(("birth_date", person.birth_date.isoformat(), born.isoformat(), str))
        checks.append(("sex", person.sex, dmg.sex if dmg else None, _upper))
    else:
        checks = []
    checks.append(("member_id", member_id, nm1.id if nm1 else None, _upper))
    for field, sent, returned, same in checks:
        if sent and returned and same(sent) != same(returned):
            found.append(_correction_model({"field": field, "sent": sent, "returned": returned}))
    return found


def _people(member: _Member, request: EligibilityRequest | None) -> tuple[MemberInfo, MemberInfo | None]:
    """``subscriber`` (2100C) and, for a dependent, ``patient`` (2100D), with corrections.

    Reading: for a dependent the request's ``member_id`` (the subscriber's card) is compared with
    2100C; the request's ``subscriber`` with 2100C and its ``patient`` with 2100D.
    """
    sub_loop = member.subscriber.subscriber
    sub_fixes: list[CorrectionModel] = []
    dep_fixes: list[CorrectionModel] = []
    if request is not None and member.dependent is None:
        sub_fixes = _corrections(sub_loop, request.patient, request.member_id)
    elif request is not None:
        sub_fixes = _corrections(sub_loop, request.subscriber, request.member_id)
        dep_fixes = _corrections(member.loop, request.patient, None)
    subscriber = _member_info(sub_loop, sub_fixes)
    patient = _member_info(member.loop, dep_fixes) if member.dependent else None
    return subscriber, patient


# --- accumulators --------------------------------------------------------------------------------------

# (EB01 C or G, level 0 individual / 1 family, network 0 in / 1 out) -> [total, remaining, met] slots,
# each (specific network, amount, time period) or None.
_Slots = dict[tuple[str, int, int], list[tuple[bool, Decimal, str | None] | None]]
_TOTAL, _REMAINING, _MET = 0, 1, 2
_ACCUMULATOR_FIELDS: Final = {"29": _REMAINING, "33": _REMAINING, "24": _MET}


def _accumulator_slots(rows: Iterable[_Row]) -> _Slots:
    """Deductible (C) and out-of-pocket (G) values from plan-level rows (docs: "Accumulators"), in one pass.

    Reading: a row without an EB07 amount has nothing to give and does not take a slot.
    """
    slots: _Slots = {}
    for row in rows:
        info = row.info
        if info not in _ACCUMULATOR_CODES or not row.plan_level:
            continue
        eb = row.eb
        amount = eb.amount
        if amount is None:
            continue
        coverage = eb.coverage_level
        level = 0 if coverage in _INDIVIDUAL_LEVELS else 1 if coverage in _FAMILY_LEVELS else -1
        if level < 0:
            continue
        period = eb.time_period
        field = _ACCUMULATOR_FIELDS.get(period, _TOTAL)
        value = (row.specific, amount, period or None if field == _TOTAL else None)
        for offset in row.networks:
            found = slots.get((info, level, offset))
            if found is None:
                found = slots[(info, level, offset)] = [None, None, None]
            held = found[field]
            if held is None or (value[0] and not held[0]):
                found[field] = value
    return slots


def _accumulator(slots: _Slots, code: str) -> Accumulator:
    return _accumulator_model(
        {
            "individual": _network_amounts_model(
                {"in_network": _amounts(slots.get((code, 0, 0))), "out_of_network": _amounts(slots.get((code, 0, 1)))}
            ),
            "family": _network_amounts_model(
                {"in_network": _amounts(slots.get((code, 1, 0))), "out_of_network": _amounts(slots.get((code, 1, 1)))}
            ),
        }
    )


def _amounts(found: list[tuple[bool, Decimal, str | None] | None] | None) -> Amounts:
    if found is None:
        return _amounts_model({"total": None, "remaining": None, "met": None, "time_period": None})
    total, remaining, met = found
    return _amounts_model(
        {
            "total": total[1] if total else None,
            "remaining": remaining[1] if remaining else None,
            "met": met[1] if met else None,
            "time_period": total[2] if total else None,
        }
    )


# --- cost shares, limitations, entities, messages, benefit rows ---------------------------------------------


def _network_of(row: _Row) -> Network:
    return _NETWORK_ENUM.get(row.loop.eb.in_plan_network, Network.UNSPECIFIED)


def _cost_share(row: _Row, kind: Literal["copay", "coinsurance"]) -> CostShare:
    eb = row.loop.eb
    return _cost_share_model(
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
    return _limitation_model(
        {
            "service_types": list(row.stcs),
            "procedure": eb.procedure.code if eb.procedure else None,
            "description": _describe_limitation(row),
            "quantity": quantity,
            "quantity_qualifier": qualifier or None,
            "time_period": period or None,
            "network": _network_of(row),
            "messages": row.messages,
            "benefit_index": row.index,
        }
    )


def _limitations(rows: Iterable[_Row]) -> dict[int, Limitation]:
    """Limitations by benefit index, in file order (docs: "limitations")."""
    return {row.index: _limitation(row) for row in rows if row.limitation}


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
        _related_entity_model(
            {
                "role": entity.name.entity_id,
                "role_description": codes.entity_description(entity.name.entity_id),
                "name": _entity_name(entity),
                "identifier": entity.name.id or None,
                "identifier_qualifier": entity.name.id_qualifier or None,
                "phone": _phone(entity),
                "service_types": list(row.stcs),
                "benefit_index": row.index,
            }
        )
        for row in rows
        for entity in row.loop.related_entities
    ]


def _messages(rows: Iterable[_Row]) -> list[str]:
    """MSG texts of the given rows, de-duplicated, in file order."""
    seen: dict[str, None] = {}
    for row in rows:
        messages = row.loop.messages
        if messages:
            for msg in messages:
                seen[msg.text] = None
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


# Every BenefitRow field, in declared order, at its "absent" value: a row starts as a copy (cheaper
# than a 23-key dict display) and sets what it has.
_BENEFIT_ROW: Final[dict[str, Any]] = dict.fromkeys(BenefitRow.model_fields)
_ELIGIBILITY_NAMES: Final = codes.ELIGIBILITY_CODES


def _benefit_row(row: _Row, loop_id: str) -> BenefitRow:
    loop = row.loop
    eb = row.eb
    info = row.info
    state = _BENEFIT_ROW.copy()
    state["index"] = row.index
    state["code"] = info
    state["name"] = _ELIGIBILITY_NAMES.get(info) or codes.eligibility_description(info)
    if eb.coverage_level:
        state["coverage_level"] = eb.coverage_level
    state["service_types"] = list(row.stcs)
    if eb.insurance_type:
        state["insurance_type"] = eb.insurance_type
    if eb.plan_description:
        state["plan_description"] = eb.plan_description
    if eb.time_period:
        state["time_period"] = eb.time_period
    if eb.amount is not None:
        state["amount"] = eb.amount
    if eb.percent is not None:
        state["percent"] = eb.percent
    if eb.quantity_qualifier:
        state["quantity_qualifier"] = eb.quantity_qualifier
    if eb.quantity is not None:
        state["quantity"] = eb.quantity
    if eb.auth_required:
        state["auth_required"] = eb.auth_required
    if eb.in_plan_network:
        state["in_plan_network"] = eb.in_plan_network
    if eb.procedure:
        state["procedure"] = _procedure_text(row)
    # Most rows carry no dates, HSD, III, REF or AAA: skip building empty comprehensions.
    state["dates"] = (
        [{"qualifier": d.qualifier, "format": d.format, "value": d.value} for d in loop.dates] if loop.dates else []
    )
    state["messages"] = row.messages if loop.messages else []
    state["delivery"] = [render_delivery(h) for h in loop.delivery] if loop.delivery else []
    state["additional_info"] = _additional_info(row) if loop.additional_info else []
    state["references"] = [_reference(r) for r in loop.refs] if loop.refs else []
    state["errors"] = [a.reason for a in loop.errors] if loop.errors else []
    state["loop"] = loop_id
    state["segment_position"] = eb.position
    return _benefit_row_model(state)


# --- errors ------------------------------------------------------------------------------------------------


def _resolutions(aaa: Aaa) -> list[str]:
    found = [codes.REJECT_RESOLUTIONS.get(aaa.reason), codes.FOLLOW_UP_RESOLUTIONS.get(aaa.follow_up)]
    sentences = [s for s in found if s]
    return sentences or ["Call the payer to find out why the inquiry was rejected."]


def _aaa_error(aaa: Aaa) -> AaaError:
    """One AAA with its descriptions and what the front desk can do (docs: "Errors")."""
    follow_up = aaa.follow_up
    return _aaa_error_model(
        {
            "code": aaa.reason,
            "description": codes.reject_reason_description(aaa.reason),
            "follow_up_action": follow_up,
            "follow_up_description": codes.follow_up_description(follow_up)
            if follow_up
            else "no follow-up action given",
            "loop": aaa.loop,
            "location": _LOCATIONS.get(aaa.loop, "unknown"),
            "valid_request": aaa.valid == "Y",
            "retryable": aaa.reason in _RETRYABLE_REASONS and follow_up in _RETRYABLE_FOLLOW_UPS,
            "needs_correction": follow_up == "C" or aaa.reason in _CORRECTION_REASONS,
            "possible_resolutions": _resolutions(aaa),
        }
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


class _TierRows:
    """The rows of one candidate tier, and the few of them each per-service rule looks at."""

    __slots__ = ("costed", "notable", "rows", "signals", "talking")

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.costed: list[_Row] = []  # rows that can fill a per-service cost field
        self.signals: list[_Row] = []  # rows whose EB01 says something about coverage
        self.talking: list[_Row] = []  # rows with an EB11 or MSG texts (authorization)
        self.notable: list[_Row] = []  # rows with MSG texts or reported as limitations
        for row in rows:
            if row.cost_slot >= 0:
                self.costed.append(row)
            if row.info in _COVERAGE_SIGNALS:
                self.signals.append(row)
            if row.talks:
                self.talking.append(row)
            if row.notable:
                self.notable.append(row)


_Tier = tuple[int, _TierRows]  # (tier number 1-4, rows)


@dataclass(slots=True, init=False)
class _Index:
    """A member's rows indexed once for the per-service tiers; each tier's ``_TierRows`` is worked
    out when a service first asks for it.

    Reading: a row whose EB13 names a procedure speaks only for that procedure, so only rows without
    one are indexed for tiers 2-4."""

    by_stc: dict[str, list[_Row]]  # EB03 contains the STC
    by_procedure: dict[tuple[str, str], list[_Row]]
    plan: list[_Row]  # EB03 contains 30
    untyped: list[_Row]  # EB03 empty
    worked_out: dict[tuple[int, object], _TierRows]  # (tier number, STC or procedure) -> its rows

    def __init__(
        self,
        by_stc: dict[str, list[_Row]],
        by_procedure: dict[tuple[str, str], list[_Row]],
        plan: list[_Row],
        untyped: list[_Row],
        worked_out: dict[tuple[int, object], _TierRows],
    ) -> None:
        self.by_stc = by_stc
        self.by_procedure = by_procedure
        self.plan = plan
        self.untyped = untyped
        self.worked_out = worked_out


def _index(rows: Iterable[_Row]) -> _Index:
    by_stc: dict[str, list[_Row]] = {}
    by_procedure: dict[tuple[str, str], list[_Row]] = {}
    plan: list[_Row] = []
    untyped: list[_Row] = []
    for row in rows:
        if row.procedure is not None:
            by_procedure.setdefault(row.procedure, []).append(row)
            continue
        stcs = row.stcs
        for stc in stcs:
            by_stc.setdefault(stc, []).append(row)
        if not stcs:
            untyped.append(row)
        elif _PLAN in stcs:
            plan.append(row)
    return _Index(by_stc, by_procedure, plan, untyped, {})


def _tier(index: _Index, number: int, key: object, rows: list[_Row]) -> _Tier:
    worked_out = index.worked_out.get((number, key))
    if worked_out is None:
        worked_out = index.worked_out[(number, key)] = _TierRows(rows)
    return (number, worked_out)


def _tiers(index: _Index, procedure: tuple[str, str] | None, stcs: Sequence[str]) -> list[_Tier]:
    """The non-empty candidate tiers, most specific first (docs: "Per requested service").

    Reading: a row whose EB13 names a different procedure (or, for a service-type request, any
    procedure) speaks only for that procedure and is left out of tiers 2-4.
    """
    tiers: list[_Tier] = []
    if procedure is not None:
        named = index.by_procedure.get(procedure)
        if named:
            tiers.append(_tier(index, 1, procedure, named))
    by_stc = index.by_stc
    for stc in stcs:
        typed = by_stc.get(stc)
        if typed:
            tiers.append(_tier(index, 2, stc, typed))
    if index.plan:
        tiers.append(_tier(index, 3, None, index.plan))
    if index.untyped:
        tiers.append(_tier(index, 4, None, index.untyped))
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
    for position, (_, tier) in enumerate(tiers):
        best: dict[int, tuple[int, _Row]] = {}
        for row in tier.costed:
            slot = row.cost_slot
            rank = row.rank
            if place and slot < _DEDUCTIBLE_LEFT:  # the place of service matters for copay, coinsurance
                places = row.places
                if places:
                    if place not in places:
                        continue
                else:
                    rank += 1
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
    copay, coinsurance, deductible, out_of_pocket = (
        chosen[offset],
        chosen[offset + 2],
        chosen[offset + 4],
        chosen[offset + 6],
    )
    return _network_costs_model(
        {
            "copay": copay[1].cost_value if copay else None,
            "coinsurance": coinsurance[1].cost_value if coinsurance else None,
            "deductible_remaining": deductible[1].cost_value if deductible else None,
            "out_of_pocket_remaining": out_of_pocket[1].cost_value if out_of_pocket else None,
        }
    )


def _eb01_evidence(rows: Iterable[_Row]) -> list[Evidence]:
    return [
        _evidence_model(
            {"source": "EB01", "value": r.info, "benefit_index": r.index, "segment_position": r.eb.position}
        )
        for r in rows
    ]


# (answer, evidence, the rows that gave it, the position of the tier it came from)
_Verdict = tuple[Tristate, list[Evidence], list[_Row], int | None]


def _covered(tiers: Sequence[_Tier], status: CheckStatus, status_row: _Row | None) -> _Verdict:
    """docs: "covered".  Reading: the deciding tier is the first with a row of EB01 1-8, I, E *or a
    cost share* (A, B, C, G) - otherwise the rule's "any cost-share row" could never matter; and
    a rejected or errored check is ``unknown``, not ``no``: the payer has not said "not covered"."""
    if status is CheckStatus.INACTIVE or status is CheckStatus.NOT_FOUND:
        # The status row decides; the tier holding it is the one used (for its messages).
        shown = [status_row] if status_row else []
        held = next((p for p, (_, tier) in enumerate(tiers) if any(r is status_row for r in tier.rows)), None)
        return (Tristate.NO, _eb01_evidence(shown), shown, held)
    if status is not CheckStatus.ACTIVE:
        return (Tristate.UNKNOWN, [], [], None)
    for position, (number, tier) in enumerate(tiers):
        signals = tier.signals
        if not signals:
            continue
        negative = [r for r in signals if r.info in _NEGATIVE]
        if negative:
            return (Tristate.NO, _eb01_evidence(negative), negative, position)
        value = Tristate.YES if number <= 2 else Tristate.UNKNOWN
        return (value, _eb01_evidence(signals), signals, position)
    return (Tristate.UNKNOWN, [], [], None)


def _auth(tiers: Sequence[_Tier]) -> _Verdict:
    """docs: "auth_required": EB11 and MSG texts of the first tier that has any row.  Y anywhere
    there (or a required-MSG) is yes, else N is no, else unknown: an absent EB11 never means no.

    That tier counts as used (its messages and limitations are reported) even when it says nothing
    about authorization: "unknown" is its answer."""
    if not tiers:
        return (Tristate.UNKNOWN, [], [], None)
    said: set[str] = set()
    evidence: list[Evidence] = []
    speaking: list[_Row] = []
    for row in tiers[0][1].talking:
        # What one row says: EB11 as sent, and each MSG that takes a side.
        spoke = False
        flag = row.eb.auth_required
        if flag:
            said.add(flag)
            evidence.append(
                _evidence_model(
                    {"source": "EB11", "value": flag, "benefit_index": row.index, "segment_position": row.eb.position}
                )
            )
            spoke = True
        for msg in row.loop.messages:
            verdict = auth_message_verdict(msg.text)  # the only regex work: MSG texts of this one tier
            if verdict is not None:
                said.add(verdict)
                evidence.append(
                    _evidence_model(
                        {
                            "source": "MSG",
                            "value": msg.text,
                            "benefit_index": row.index,
                            "segment_position": msg.position,
                        }
                    )
                )
                spoke = True
        if spoke:
            speaking.append(row)
    value = Tristate.YES if "Y" in said else Tristate.NO if "N" in said else Tristate.UNKNOWN
    return (value, evidence, speaking, 0)


@dataclass(slots=True, init=False)
class _MemberFacts:
    """What every service answer of one member needs."""

    index: _Index
    status: CheckStatus
    status_row: _Row | None
    limitations: dict[int, Limitation]
    place: str | None

    def __init__(
        self,
        index: _Index,
        status: CheckStatus,
        status_row: _Row | None,
        limitations: dict[int, Limitation],
        place: str | None,
    ) -> None:
        self.index = index
        self.status = status
        self.status_row = status_row
        self.limitations = limitations
        self.place = place


_Head = tuple[str, Literal["procedure", "service_type"], str | None]  # code, code_type, qualifier


def _answer(
    facts: _MemberFacts, tiers: list[_Tier], head: _Head, service_types: list[str], source: str
) -> ServiceAnswer:
    """One ``ServiceAnswer`` from its tiers: every field, then what was used."""
    chosen = _pick_costs(tiers, facts.place)
    covered = _covered(tiers, facts.status, facts.status_row)
    auth = _auth(tiers)
    limitations, messages, indexes = _what_was_used(facts, tiers, chosen, covered, auth)
    return _service_answer_model(
        {
            "code": head[0],
            "code_type": head[1],
            "qualifier": head[2],
            "service_types": service_types,
            "mapping_source": source,
            "covered": covered[0],
            "auth_required": auth[0],
            "auth_evidence": auth[1],
            "coverage_evidence": covered[1],
            "in_network": _network_costs(chosen, 0),
            "out_of_network": _network_costs(chosen, 1),
            "limitations": limitations,
            "messages": messages,
            "benefit_indexes": indexes,
        }
    )


def _what_was_used(
    facts: _MemberFacts, tiers: list[_Tier], chosen: list[_Choice | None], covered: _Verdict, auth: _Verdict
) -> tuple[list[Limitation], list[str], list[int]]:
    """Limitations and messages of the tiers any field used, and the indexes of the rows used:
    those that gave a value or evidence, and those reported as limitations."""
    used = [choice for choice in chosen if choice is not None]
    positions = {choice[0] for choice in used}
    indexes = {choice[1].index for choice in used}
    for verdict in (covered, auth):
        if verdict[3] is not None:
            positions.add(verdict[3])
        indexes.update([row.index for row in verdict[2]])
    # Only rows with MSG texts or reported as limitations give anything here.
    if len(positions) == 1:
        # One tier: its rows are in file order already (a row twice only when its EB03 repeats an STC).
        notable = tiers[positions.pop()][1].notable
        tier_rows = list({row.index: row for row in notable}.values()) if notable else []
    else:
        by_index = {row.index: row for p in positions for row in tiers[p][1].notable}
        tier_rows = [by_index[i] for i in sorted(by_index)]
    known = facts.limitations
    limitations = [known[row.index] for row in tier_rows if row.index in known] if known else []
    indexes.update([limitation.benefit_index for limitation in limitations])
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
    return _answer(facts, tiers, (procedure.code, "procedure", procedure.qualifier), service_types, source)


def _service_type_answer(facts: _MemberFacts, stc: str) -> ServiceAnswer:
    """Tiers 2-4 with ``[stc]`` for a requested service type."""
    tiers = _tiers(facts.index, None, (stc,))
    return _answer(facts, tiers, (stc, "service_type", None), [stc], "request")


def _services(
    rows: list[_Row],
    status: tuple[CheckStatus, str, _Row | None],
    limitations: dict[int, Limitation],
    request: EligibilityRequest | None,
    table: ProcedureTable,
) -> list[ServiceAnswer]:
    """One answer per requested procedure, then one per requested service type."""
    if request is None:
        return []
    service = request.service
    if not service.procedures and not service.service_types:
        return []
    facts = _MemberFacts(_index(rows), status[0], status[2], limitations, service.place_of_service)
    answers = [_procedure_answer(facts, p, table) for p in service.procedures]
    answers.extend(_service_type_answer(facts, stc) for stc in service.service_types)
    return answers


# --- provenance and assembly ------------------------------------------------------------------------------


def _trace(member: _Member) -> str | None:
    """TRN02 of our echoed trace (TRN01 2), the dependent's level first."""
    if member.dependent:
        for trn in member.dependent.traces:
            if trn.type == "2":
                return trn.reference
    for trn in member.subscriber.traces:
        if trn.type == "2":
            return trn.reference
    return None


def _provenance(transaction: Transaction271, trace: str | None, warnings: list[str]) -> Provenance:
    return _provenance_model(
        {
            "trace_number": trace,
            "control_number": transaction.control_number or None,
            "implementation": transaction.implementation or None,
            "cached": False,
            "age_seconds": None,
            "payer_response_ms": None,
            "received_at": None,
            "sandbox": False,
            "warnings": [*transaction.warnings, *warnings],
        }
    )


def _payer(source: Loop2000A | None) -> PayerInfo:
    nm1 = source.source.name if source else None
    if nm1 is None:
        return _payer_model({"id": None, "name": None})
    return _payer_model({"id": nm1.id or None, "name": nm1.last_or_org or None})


def _summarize_member(
    transaction: Transaction271,
    member: _Member,
    request: EligibilityRequest | None,
    table: ProcedureTable,
    warnings: list[str],
) -> CoverageSummary:
    rows = _rows(member)
    status = _member_status(member, rows)
    subscriber, patient = _people(member, request)
    copays, coinsurance = _cost_shares(rows)
    limitations = _limitations(rows)
    accumulators = _accumulator_slots(rows)
    loop_id = "2110D" if member.dependent else "2110C"
    return _summary_model(
        {
            "check_id": None,
            "status": status[0],
            "status_detail": status[1],
            "payer": _payer(member.source),
            "plan": _plan(member, status[2]),
            "subscriber": subscriber,
            "patient": patient,
            "deductible": _accumulator(accumulators, "C"),
            "out_of_pocket": _accumulator(accumulators, "G"),
            "copays": copays,
            "coinsurance": coinsurance,
            "services": _services(rows, status, limitations, request, table),
            "limitations": list(limitations.values()),
            "related_entities": _related_entities(rows),
            "messages": _messages(r for r in rows if r.plan_level),
            "errors": _member_errors(member, rows),
            "provenance": _provenance(transaction, _trace(member), warnings),
            "benefits": [_benefit_row(row, loop_id) for row in rows],
        }
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
    nothing: _Slots = {}
    return _summary_model(
        {
            "check_id": None,
            "status": status,
            "status_detail": detail,
            "payer": _payer(first_source),
            "plan": _plan_model(dict.fromkeys(PlanInfo.model_fields)),
            "subscriber": _member_info_model({**dict.fromkeys(MemberInfo.model_fields), "corrections": []}),
            "patient": None,
            "deductible": _accumulator(nothing, "C"),
            "out_of_pocket": _accumulator(nothing, "G"),
            "copays": [],
            "coinsurance": [],
            "services": [],
            "limitations": [],
            "related_entities": [],
            "messages": [],
            "errors": [_aaa_error(aaa) for aaa in found],
            "provenance": _provenance(transaction, None, []),
            "benefits": [],
        }
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
