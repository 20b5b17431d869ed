"""The 005010X279A1 271 as the TR3 draws it, one class per loop, loop IDs used verbatim.

::

    Transaction271 (ST, BHT ... SE)
    └── Loop2000A  information source level      HL*n**20, AAA*
        └── Loop2100A  information source name   NM1 (PR), PER*, AAA*
        └── Loop2000B  information receiver level HL*n*p*21
            └── Loop2100B  receiver name         NM1 (1P, FA, ...), REF*, N3, N4, AAA*, PRV
            └── Loop2000C  subscriber level      HL*n*p*22, TRN*
                └── Loop2100C  subscriber name   NM1 (IL), REF*, N3, N4, AAA*, PRV, DMG, INS, HI, DTP*, MPI
                    └── Loop2110C  eligibility or benefit information   EB, HSD*, REF*, DTP*, AAA*, MSG*
                        ├── Loop2115C  additional information            III
                        └── LS ── Loop2120C  benefit related entity     NM1, N3, N4, PER*, PRV ── LE
                └── Loop2000D  dependent level   HL*n*p*23, TRN*
                    └── Loop2100D  dependent name  (same segments as 2100C, NM1 03)
                        └── Loop2110D / Loop2115D / Loop2120D (as for C)

The classes are plain slotted dataclasses, not pydantic models: a 271 is parsed on the hot path,
and its values are already checked by the parser.  Element values are kept as the payer sent
them (codes as strings, amounts as ``Decimal``); dates are parsed where the format is known.
``position`` fields are 1-based segment positions in the interchange, for error messages and
evidence.  Each class writes its ``__init__`` (``init=False``; see ``core_build``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

# --- segments -------------------------------------------------------------------------------------


@dataclass(slots=True, init=False)
class Aaa:
    """AAA request validation: the payer could not (fully) process part of the inquiry."""

    loop: str  # "2000A", "2100A", "2100B", "2100C", "2100D", "2110C", "2110D"
    valid: str  # AAA01: Y (request valid, data rejected) / N (request invalid)
    reason: str  # AAA03 reject reason code, e.g. "72"
    follow_up: str  # AAA04 follow-up action code, e.g. "C"
    position: int

    def __init__(self, loop: str, valid: str, reason: str, follow_up: str, position: int) -> None:
        self.loop = loop
        self.valid = valid
        self.reason = reason
        self.follow_up = follow_up
        self.position = position


@dataclass(slots=True, init=False)
class Nm1:
    entity_id: str  # NM101: PR payer, 1P provider, IL insured, 03 dependent, P3 PCP ...
    entity_type: str  # NM102: 1 person, 2 non-person
    last_or_org: str  # NM103
    first: str = ""  # NM104
    middle: str = ""  # NM105
    prefix: str = ""  # NM106
    suffix: str = ""  # NM107
    id_qualifier: str = ""  # NM108: PI, XV, XX, MI, II, FI ...
    id: str = ""  # NM109
    relationship: str = ""  # NM110 entity relationship (2120)
    position: int = 0

    def __init__(
        self,
        entity_id: str,
        entity_type: str,
        last_or_org: str,
        first: str = "",
        middle: str = "",
        prefix: str = "",
        suffix: str = "",
        id_qualifier: str = "",
        id: str = "",
        relationship: str = "",
        position: int = 0,
    ) -> None:
        self.entity_id = entity_id
        self.entity_type = entity_type
        self.last_or_org = last_or_org
        self.first = first
        self.middle = middle
        self.prefix = prefix
        self.suffix = suffix
        self.id_qualifier = id_qualifier
        self.id = id
        self.relationship = relationship
        self.position = position


@dataclass(slots=True, init=False)
class Ref:
    qualifier: str  # REF01: 18 plan, 6P group, 1L group/policy, SY SSN, 0F subscriber number, ...
    value: str  # REF02
    description: str = ""  # REF03, e.g. the group name for 6P
    position: int = 0

    def __init__(self, qualifier: str, value: str, description: str = "", position: int = 0) -> None:
        self.qualifier = qualifier
        self.value = value
        self.description = description
        self.position = position


@dataclass(slots=True, init=False)
class Dtp:
    qualifier: str  # DTP01: 291 plan, 307 eligibility, 346 plan begin, 347 plan end, 356, 357, ...
    format: str  # DTP02: D8 or RD8
    value: str  # DTP03 as sent
    start: date | None = None  # parsed; the single date for D8
    end: date | None = None  # parsed end of an RD8 range; equals start for D8
    position: int = 0

    def __init__(
        self,
        qualifier: str,
        format: str,
        value: str,
        start: date | None = None,
        end: date | None = None,
        position: int = 0,
    ) -> None:
        self.qualifier = qualifier
        self.format = format
        self.value = value
        self.start = start
        self.end = end
        self.position = position


@dataclass(slots=True, init=False)
class Address:
    line1: str = ""  # N301
    line2: str = ""  # N302
    city: str = ""  # N401
    state: str = ""  # N402
    postal_code: str = ""  # N403
    country: str = ""  # N404
    location_qualifier: str = ""  # N405 (e.g. "CY" county, "SJ" service jurisdiction)
    location_id: str = ""  # N406
    country_subdivision: str = ""  # N407 (added: the 5010 N4 carries it)

    def __init__(
        self,
        line1: str = "",
        line2: str = "",
        city: str = "",
        state: str = "",
        postal_code: str = "",
        country: str = "",
        location_qualifier: str = "",
        location_id: str = "",
        country_subdivision: str = "",
    ) -> None:
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.state = state
        self.postal_code = postal_code
        self.country = country
        self.location_qualifier = location_qualifier
        self.location_id = location_id
        self.country_subdivision = country_subdivision


@dataclass(slots=True, init=False)
class Per:
    """Contact: PER02 name and up to three (qualifier, number) pairs (TE, FX, EM, UR, EX, WP)."""

    function: str  # PER01: IC information contact
    name: str = ""
    numbers: list[tuple[str, str]] = field(default_factory=list)

    def __init__(self, function: str, name: str = "", numbers: list[tuple[str, str]] | None = None) -> None:
        self.function = function
        self.name = name
        self.numbers = [] if numbers is None else numbers


@dataclass(slots=True, init=False)
class Prv:
    code: str  # PRV01: PE performing, RF referring, PC primary care ...
    reference_qualifier: str = ""  # PRV02: PXC taxonomy ...
    reference: str = ""  # PRV03

    def __init__(self, code: str, reference_qualifier: str = "", reference: str = "") -> None:
        self.code = code
        self.reference_qualifier = reference_qualifier
        self.reference = reference


@dataclass(slots=True, init=False)
class Dmg:
    format: str  # DMG01: D8
    birth_date_raw: str  # DMG02 as sent
    birth_date: date | None  # parsed DMG02 (None when the payer sent nonsense)
    sex: str = ""  # DMG03: M, F, U

    def __init__(self, format: str, birth_date_raw: str, birth_date: date | None, sex: str = "") -> None:
        self.format = format
        self.birth_date_raw = birth_date_raw
        self.birth_date = birth_date
        self.sex = sex


@dataclass(slots=True, init=False)
class Ins:
    """INS in 2100C/D: present when the payer changed the identifying information we sent."""

    subscriber: str  # INS01: Y subscriber / N dependent
    relationship: str  # INS02: 18 self, 01 spouse, 19 child, 34 other adult ...
    maintenance_type: str = ""  # INS03: 001 change
    maintenance_reason: str = ""  # INS04: 25 change in identifying data elements
    birth_sequence: str = ""  # INS17

    def __init__(
        self,
        subscriber: str,
        relationship: str,
        maintenance_type: str = "",
        maintenance_reason: str = "",
        birth_sequence: str = "",
    ) -> None:
        self.subscriber = subscriber
        self.relationship = relationship
        self.maintenance_type = maintenance_type
        self.maintenance_reason = maintenance_reason
        self.birth_sequence = birth_sequence


@dataclass(slots=True, init=False)
class Diagnosis:
    """One HI composite in 2100C/D (added): the diagnosis the payer answered for."""

    qualifier: str  # ABK / BK principal, ABF / BF other diagnosis
    code: str

    def __init__(self, qualifier: str, code: str) -> None:
        self.qualifier = qualifier
        self.code = code


@dataclass(slots=True, init=False)
class Mpi:
    """MPI in 2100C/D (added): military personnel information, e.g. for TRICARE."""

    status: str  # MPI01 information status code
    employment_status: str = ""  # MPI02
    affiliation: str = ""  # MPI03 government service affiliation code
    description: str = ""  # MPI04
    rank: str = ""  # MPI05 military service rank code
    date_format: str = ""  # MPI06: D8 or RD8
    date_range: str = ""  # MPI07 as sent
    position: int = 0

    def __init__(
        self,
        status: str,
        employment_status: str = "",
        affiliation: str = "",
        description: str = "",
        rank: str = "",
        date_format: str = "",
        date_range: str = "",
        position: int = 0,
    ) -> None:
        self.status = status
        self.employment_status = employment_status
        self.affiliation = affiliation
        self.description = description
        self.rank = rank
        self.date_format = date_format
        self.date_range = date_range
        self.position = position


@dataclass(slots=True, init=False)
class Hsd:
    """Health care services delivery: how often and how much (visit limits and the like)."""

    quantity_qualifier: str = ""  # HSD01: VS visits, DY days, FL units, ...
    quantity: Decimal | None = None  # HSD02
    unit: str = ""  # HSD03: DA days, MO months, VS visit, WK week, YR years ...
    sample_selection_modulus: Decimal | None = None  # HSD04
    time_period: str = ""  # HSD05: 6 hour, 7 day, 21 years, 22 service year, 23 calendar year, 27 visit, 34 month ...
    period_count: Decimal | None = None  # HSD06
    delivery_frequency: str = ""  # HSD07
    delivery_pattern_time: str = ""  # HSD08
    position: int = 0

    def __init__(
        self,
        quantity_qualifier: str = "",
        quantity: Decimal | None = None,
        unit: str = "",
        sample_selection_modulus: Decimal | None = None,
        time_period: str = "",
        period_count: Decimal | None = None,
        delivery_frequency: str = "",
        delivery_pattern_time: str = "",
        position: int = 0,
    ) -> None:
        self.quantity_qualifier = quantity_qualifier
        self.quantity = quantity
        self.unit = unit
        self.sample_selection_modulus = sample_selection_modulus
        self.time_period = time_period
        self.period_count = period_count
        self.delivery_frequency = delivery_frequency
        self.delivery_pattern_time = delivery_pattern_time
        self.position = position


@dataclass(slots=True, init=False)
class Msg:
    text: str  # MSG01, free text
    position: int = 0

    def __init__(self, text: str, position: int = 0) -> None:
        self.text = text
        self.position = position


@dataclass(slots=True, init=False)
class CompositeProcedure:
    """EB13 (and EQ02): the procedure a benefit row applies to, e.g. ``HC:99213:25``."""

    qualifier: str  # AD ADA, CJ CPT-4, HC HCPCS/CPT, ID ICD-9-CM, IV HIEC, N4 NDC, ZZ mutually defined
    code: str
    modifiers: list[str] = field(default_factory=list)
    description: str = ""  # component 7 (rare)
    range_end: str = ""  # component 8: last code of a procedure range (added: C003-08)

    def __init__(
        self,
        qualifier: str,
        code: str,
        modifiers: list[str] | None = None,
        description: str = "",
        range_end: str = "",
    ) -> None:
        self.qualifier = qualifier
        self.code = code
        self.modifiers = [] if modifiers is None else modifiers
        self.description = description
        self.range_end = range_end


@dataclass(slots=True, init=False)
class Eb:
    """EB: one eligibility or benefit information row."""

    info: str  # EB01: 1 active, 6 inactive, A coinsurance, B copay, C deductible, G out-of-pocket ...
    coverage_level: str = ""  # EB02: IND, FAM, EMP, ESP, ECH, SPC, SPO, CHD, DEP
    service_types: list[str] = field(default_factory=list)  # EB03 (repeating)
    insurance_type: str = ""  # EB04: 12 MA, 13 MB, C1 commercial, HM HMO, MC Medicaid, PR PPO, HN HMO Medicare Risk ...
    plan_description: str = ""  # EB05
    time_period: str = ""  # EB06: 23 calendar year, 29 remaining, 24 year to date, 27 visit ...
    amount: Decimal | None = None  # EB07 monetary amount
    percent: Decimal | None = None  # EB08 as a fraction (.2 is 20%)
    quantity_qualifier: str = ""  # EB09: VS visits, DY days, 99 quantity used, P6 number of services ...
    quantity: Decimal | None = None  # EB10
    auth_required: str = ""  # EB11: Y, N, U; "" when absent (not known)
    in_plan_network: str = ""  # EB12: Y in network, N out of network, W both, U unknown; "" absent
    procedure: CompositeProcedure | None = None  # EB13
    diagnosis_pointers: list[str] = field(default_factory=list)  # EB14
    position: int = 0

    def __init__(
        self,
        info: str,
        coverage_level: str = "",
        service_types: list[str] | None = None,
        insurance_type: str = "",
        plan_description: str = "",
        time_period: str = "",
        amount: Decimal | None = None,
        percent: Decimal | None = None,
        quantity_qualifier: str = "",
        quantity: Decimal | None = None,
        auth_required: str = "",
        in_plan_network: str = "",
        procedure: CompositeProcedure | None = None,
        diagnosis_pointers: list[str] | None = None,
        position: int = 0,
    ) -> None:
        self.info = info
        self.coverage_level = coverage_level
        self.service_types = [] if service_types is None else service_types
        self.insurance_type = insurance_type
        self.plan_description = plan_description
        self.time_period = time_period
        self.amount = amount
        self.percent = percent
        self.quantity_qualifier = quantity_qualifier
        self.quantity = quantity
        self.auth_required = auth_required
        self.in_plan_network = in_plan_network
        self.procedure = procedure
        self.diagnosis_pointers = [] if diagnosis_pointers is None else diagnosis_pointers
        self.position = position


@dataclass(slots=True, init=False)
class Iii:
    """III in 2115C/D: additional information such as place of service or nature of injury."""

    qualifier: str  # III01: ZZ mutually defined (place of service), BF/BK/... (diagnosis), GR nature of injury
    code: str  # III02
    category: str = ""  # III03: 44 nature of injury
    text: str = ""  # III04 free-form message text
    position: int = 0

    def __init__(self, qualifier: str, code: str, category: str = "", text: str = "", position: int = 0) -> None:
        self.qualifier = qualifier
        self.code = code
        self.category = category
        self.text = text
        self.position = position


# --- loops ----------------------------------------------------------------------------------------


@dataclass(slots=True, init=False)
class Hl:
    id: str  # HL01
    parent_id: str  # HL02 ("" for 2000A)
    level: str  # HL03: 20 source, 21 receiver, 22 subscriber, 23 dependent
    has_children: str  # HL04: 1 / 0
    position: int = 0

    def __init__(self, id: str, parent_id: str, level: str, has_children: str, position: int = 0) -> None:
        self.id = id
        self.parent_id = parent_id
        self.level = level
        self.has_children = has_children
        self.position = position


@dataclass(slots=True, init=False)
class Trn:
    type: str  # TRN01: 1 current transaction trace (ours, from a clearinghouse), 2 referenced (our echo)
    reference: str  # TRN02: trace number
    originator: str  # TRN03: originating company identifier
    supplemental: str = ""  # TRN04
    position: int = 0

    def __init__(self, type: str, reference: str, originator: str, supplemental: str = "", position: int = 0) -> None:
        self.type = type
        self.reference = reference
        self.originator = originator
        self.supplemental = supplemental
        self.position = position


@dataclass(slots=True, init=False)
class Loop2120:
    """Benefit related entity between LS and LE: a PCP, another payer (COB), a carve-out vendor."""

    name: Nm1
    address: Address | None = None
    contacts: list[Per] = field(default_factory=list)
    provider: Prv | None = None

    def __init__(
        self,
        name: Nm1,
        address: Address | None = None,
        contacts: list[Per] | None = None,
        provider: Prv | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.contacts = [] if contacts is None else contacts
        self.provider = provider


class Loop2120C(Loop2120):
    __slots__ = ()


class Loop2120D(Loop2120):
    __slots__ = ()


@dataclass(slots=True, init=False)
class Loop2115:
    """Additional information for the benefit (III)."""

    info: Iii

    def __init__(self, info: Iii) -> None:
        self.info = info


class Loop2115C(Loop2115):
    __slots__ = ()


class Loop2115D(Loop2115):
    __slots__ = ()


@dataclass(slots=True, init=False)
class Loop2110:
    """One EB with everything that belongs to it."""

    eb: Eb
    delivery: list[Hsd] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    dates: list[Dtp] = field(default_factory=list)
    errors: list[Aaa] = field(default_factory=list)
    messages: list[Msg] = field(default_factory=list)
    additional_info: list[Loop2115] = field(default_factory=list)
    related_entities: list[Loop2120] = field(default_factory=list)

    def __init__(
        self,
        eb: Eb,
        delivery: list[Hsd] | None = None,
        refs: list[Ref] | None = None,
        dates: list[Dtp] | None = None,
        errors: list[Aaa] | None = None,
        messages: list[Msg] | None = None,
        additional_info: list[Loop2115] | None = None,
        related_entities: list[Loop2120] | None = None,
    ) -> None:
        self.eb = eb
        self.delivery = [] if delivery is None else delivery
        self.refs = [] if refs is None else refs
        self.dates = [] if dates is None else dates
        self.errors = [] if errors is None else errors
        self.messages = [] if messages is None else messages
        self.additional_info = [] if additional_info is None else additional_info
        self.related_entities = [] if related_entities is None else related_entities


class Loop2110C(Loop2110):
    __slots__ = ()


class Loop2110D(Loop2110):
    __slots__ = ()


@dataclass(slots=True, init=False)
class Loop2100Member:
    """2100C subscriber name or 2100D dependent name, with the benefits (2110) under it."""

    name: Nm1 | None = None
    refs: list[Ref] = field(default_factory=list)
    address: Address | None = None
    errors: list[Aaa] = field(default_factory=list)
    provider: Prv | None = None
    demographics: Dmg | None = None
    relationship: Ins | None = None
    dates: list[Dtp] = field(default_factory=list)
    benefits: list[Loop2110] = field(default_factory=list)
    diagnoses: list[Diagnosis] = field(default_factory=list)  # HI (added)
    military: Mpi | None = None  # MPI (added)

    def __init__(
        self,
        name: Nm1 | None = None,
        refs: list[Ref] | None = None,
        address: Address | None = None,
        errors: list[Aaa] | None = None,
        provider: Prv | None = None,
        demographics: Dmg | None = None,
        relationship: Ins | None = None,
        dates: list[Dtp] | None = None,
        benefits: list[Loop2110] | None = None,
        diagnoses: list[Diagnosis] | None = None,
        military: Mpi | None = None,
    ) -> None:
        self.name = name
        self.refs = [] if refs is None else refs
        self.address = address
        self.errors = [] if errors is None else errors
        self.provider = provider
        self.demographics = demographics
        self.relationship = relationship
        self.dates = [] if dates is None else dates
        self.benefits = [] if benefits is None else benefits
        self.diagnoses = [] if diagnoses is None else diagnoses
        self.military = military


class Loop2100C(Loop2100Member):
    __slots__ = ()


class Loop2100D(Loop2100Member):
    __slots__ = ()


@dataclass(slots=True, init=False)
class Loop2000D:
    hl: Hl
    traces: list[Trn] = field(default_factory=list)
    dependent: Loop2100D = field(default_factory=Loop2100D)

    def __init__(self, hl: Hl, traces: list[Trn] | None = None, dependent: Loop2100D | None = None) -> None:
        self.hl = hl
        self.traces = [] if traces is None else traces
        self.dependent = Loop2100D() if dependent is None else dependent


@dataclass(slots=True, init=False)
class Loop2000C:
    hl: Hl
    traces: list[Trn] = field(default_factory=list)
    subscriber: Loop2100C = field(default_factory=Loop2100C)
    dependents: list[Loop2000D] = field(default_factory=list)

    def __init__(
        self,
        hl: Hl,
        traces: list[Trn] | None = None,
        subscriber: Loop2100C | None = None,
        dependents: list[Loop2000D] | None = None,
    ) -> None:
        self.hl = hl
        self.traces = [] if traces is None else traces
        self.subscriber = Loop2100C() if subscriber is None else subscriber
        self.dependents = [] if dependents is None else dependents


@dataclass(slots=True, init=False)
class Loop2100B:
    name: Nm1 | None = None
    refs: list[Ref] = field(default_factory=list)
    address: Address | None = None
    errors: list[Aaa] = field(default_factory=list)
    provider: Prv | None = None

    def __init__(
        self,
        name: Nm1 | None = None,
        refs: list[Ref] | None = None,
        address: Address | None = None,
        errors: list[Aaa] | None = None,
        provider: Prv | None = None,
    ) -> None:
        self.name = name
        self.refs = [] if refs is None else refs
        self.address = address
        self.errors = [] if errors is None else errors
        self.provider = provider


@dataclass(slots=True, init=False)
class Loop2000B:
    hl: Hl
    receiver: Loop2100B = field(default_factory=Loop2100B)
    subscribers: list[Loop2000C] = field(default_factory=list)

    def __init__(self, hl: Hl, receiver: Loop2100B | None = None, subscribers: list[Loop2000C] | None = None) -> None:
        self.hl = hl
        self.receiver = Loop2100B() if receiver is None else receiver
        self.subscribers = [] if subscribers is None else subscribers


@dataclass(slots=True, init=False)
class Loop2100A:
    name: Nm1 | None = None
    contacts: list[Per] = field(default_factory=list)
    errors: list[Aaa] = field(default_factory=list)

    def __init__(
        self,
        name: Nm1 | None = None,
        contacts: list[Per] | None = None,
        errors: list[Aaa] | None = None,
    ) -> None:
        self.name = name
        self.contacts = [] if contacts is None else contacts
        self.errors = [] if errors is None else errors


@dataclass(slots=True, init=False)
class Loop2000A:
    hl: Hl
    errors: list[Aaa] = field(default_factory=list)  # AAA directly in 2000A (before the NM1)
    source: Loop2100A = field(default_factory=Loop2100A)
    receivers: list[Loop2000B] = field(default_factory=list)

    def __init__(
        self,
        hl: Hl,
        errors: list[Aaa] | None = None,
        source: Loop2100A | None = None,
        receivers: list[Loop2000B] | None = None,
    ) -> None:
        self.hl = hl
        self.errors = [] if errors is None else errors
        self.source = Loop2100A() if source is None else source
        self.receivers = [] if receivers is None else receivers


_Date = date  # Bht's field named ``date`` hides the type inside the class


@dataclass(slots=True, init=False)
class Bht:
    structure: str  # BHT01: 0022
    purpose: str  # BHT02: 11 response, 06 confirmation
    reference: str  # BHT03: the 270's BHT03 echoed (submitter transaction identifier)
    date: date | None
    time: str = ""
    date_raw: str = ""  # BHT04 as sent (added: kept when it is not a valid date)

    def __init__(
        self,
        structure: str,
        purpose: str,
        reference: str,
        date: _Date | None,
        time: str = "",
        date_raw: str = "",
    ) -> None:
        self.structure = structure
        self.purpose = purpose
        self.reference = reference
        self.date = date
        self.time = time
        self.date_raw = date_raw


@dataclass(slots=True, init=False)
class Transaction271:
    """One parsed 271 transaction set, plus what was odd about it (never silently dropped)."""

    control_number: str  # ST02
    implementation: str  # ST03 / GS08, e.g. 005010X279A1
    header: Bht
    sources: list[Loop2000A] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segment_count: int = 0  # segments from ST to SE inclusive, as counted (SE01 is checked against it)

    def __init__(
        self,
        control_number: str,
        implementation: str,
        header: Bht,
        sources: list[Loop2000A] | None = None,
        warnings: list[str] | None = None,
        segment_count: int = 0,
    ) -> None:
        self.control_number = control_number
        self.implementation = implementation
        self.header = header
        self.sources = [] if sources is None else sources
        self.warnings = [] if warnings is None else warnings
        self.segment_count = segment_count
