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
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

# --- segments -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Aaa:
    """AAA request validation: the payer could not (fully) process part of the inquiry."""

    loop: str  # "2000A", "2100A", "2100B", "2100C", "2100D", "2110C", "2110D"
    valid: str  # AAA01: Y (request valid, data rejected) / N (request invalid)
    reason: str  # AAA03 reject reason code, e.g. "72"
    follow_up: str  # AAA04 follow-up action code, e.g. "C"
    position: int


@dataclass(slots=True)
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


@dataclass(slots=True)
class Ref:
    qualifier: str  # REF01: 18 plan, 6P group, 1L group/policy, SY SSN, 0F subscriber number, ...
    value: str  # REF02
    description: str = ""  # REF03, e.g. the group name for 6P
    position: int = 0


@dataclass(slots=True)
class Dtp:
    qualifier: str  # DTP01: 291 plan, 307 eligibility, 346 plan begin, 347 plan end, 356, 357, ...
    format: str  # DTP02: D8 or RD8
    value: str  # DTP03 as sent
    start: date | None = None  # parsed; the single date for D8
    end: date | None = None  # parsed end of an RD8 range; equals start for D8
    position: int = 0


@dataclass(slots=True)
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


@dataclass(slots=True)
class Per:
    """Contact: PER02 name and up to three (qualifier, number) pairs (TE, FX, EM, UR, EX, WP)."""

    function: str  # PER01: IC information contact
    name: str = ""
    numbers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Prv:
    code: str  # PRV01: PE performing, RF referring, PC primary care ...
    reference_qualifier: str = ""  # PRV02: PXC taxonomy ...
    reference: str = ""  # PRV03


@dataclass(slots=True)
class Dmg:
    format: str  # DMG01: D8
    birth_date_raw: str  # DMG02 as sent
    birth_date: date | None  # parsed DMG02 (None when the payer sent nonsense)
    sex: str = ""  # DMG03: M, F, U


@dataclass(slots=True)
class Ins:
    """INS in 2100C/D: present when the payer changed the identifying information we sent."""

    subscriber: str  # INS01: Y subscriber / N dependent
    relationship: str  # INS02: 18 self, 01 spouse, 19 child, 34 other adult ...
    maintenance_type: str = ""  # INS03: 001 change
    maintenance_reason: str = ""  # INS04: 25 change in identifying data elements
    birth_sequence: str = ""  # INS17


@dataclass(slots=True)
class Diagnosis:
    """One HI composite in 2100C/D (added): the diagnosis the payer answered for."""

    qualifier: str  # ABK / BK principal, ABF / BF other diagnosis
    code: str


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
class Msg:
    text: str  # MSG01, free text
    position: int = 0


@dataclass(slots=True)
class CompositeProcedure:
    """EB13 (and EQ02): the procedure a benefit row applies to, e.g. ``HC:99213:25``."""

    qualifier: str  # AD ADA, CJ CPT-4, HC HCPCS/CPT, ID ICD-9-CM, IV HIEC, N4 NDC, ZZ mutually defined
    code: str
    modifiers: list[str] = field(default_factory=list)
    description: str = ""  # component 7 (rare)
    range_end: str = ""  # component 8: last code of a procedure range (added: C003-08)


@dataclass(slots=True)
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


@dataclass(slots=True)
class Iii:
    """III in 2115C/D: additional information such as place of service or nature of injury."""

    qualifier: str  # III01: ZZ mutually defined (place of service), BF/BK/... (diagnosis), GR nature of injury
    code: str  # III02
    category: str = ""  # III03: 44 nature of injury
    text: str = ""  # III04 free-form message text
    position: int = 0


# --- loops ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hl:
    id: str  # HL01
    parent_id: str  # HL02 ("" for 2000A)
    level: str  # HL03: 20 source, 21 receiver, 22 subscriber, 23 dependent
    has_children: str  # HL04: 1 / 0
    position: int = 0


@dataclass(slots=True)
class Trn:
    type: str  # TRN01: 1 current transaction trace (ours, from a clearinghouse), 2 referenced (our echo)
    reference: str  # TRN02: trace number
    originator: str  # TRN03: originating company identifier
    supplemental: str = ""  # TRN04
    position: int = 0


@dataclass(slots=True)
class Loop2120:
    """Benefit related entity between LS and LE: a PCP, another payer (COB), a carve-out vendor."""

    name: Nm1
    address: Address | None = None
    contacts: list[Per] = field(default_factory=list)
    provider: Prv | None = None


class Loop2120C(Loop2120):
    __slots__ = ()


class Loop2120D(Loop2120):
    __slots__ = ()


@dataclass(slots=True)
class Loop2115:
    """Additional information for the benefit (III)."""

    info: Iii


class Loop2115C(Loop2115):
    __slots__ = ()


class Loop2115D(Loop2115):
    __slots__ = ()


@dataclass(slots=True)
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


class Loop2110C(Loop2110):
    __slots__ = ()


class Loop2110D(Loop2110):
    __slots__ = ()


@dataclass(slots=True)
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


class Loop2100C(Loop2100Member):
    __slots__ = ()


class Loop2100D(Loop2100Member):
    __slots__ = ()


@dataclass(slots=True)
class Loop2000D:
    hl: Hl
    traces: list[Trn] = field(default_factory=list)
    dependent: Loop2100D = field(default_factory=Loop2100D)


@dataclass(slots=True)
class Loop2000C:
    hl: Hl
    traces: list[Trn] = field(default_factory=list)
    subscriber: Loop2100C = field(default_factory=Loop2100C)
    dependents: list[Loop2000D] = field(default_factory=list)


@dataclass(slots=True)
class Loop2100B:
    name: Nm1 | None = None
    refs: list[Ref] = field(default_factory=list)
    address: Address | None = None
    errors: list[Aaa] = field(default_factory=list)
    provider: Prv | None = None


@dataclass(slots=True)
class Loop2000B:
    hl: Hl
    receiver: Loop2100B = field(default_factory=Loop2100B)
    subscribers: list[Loop2000C] = field(default_factory=list)


@dataclass(slots=True)
class Loop2100A:
    name: Nm1 | None = None
    contacts: list[Per] = field(default_factory=list)
    errors: list[Aaa] = field(default_factory=list)


@dataclass(slots=True)
class Loop2000A:
    hl: Hl
    errors: list[Aaa] = field(default_factory=list)  # AAA directly in 2000A (before the NM1)
    source: Loop2100A = field(default_factory=Loop2100A)
    receivers: list[Loop2000B] = field(default_factory=list)


@dataclass(slots=True)
class Bht:
    structure: str  # BHT01: 0022
    purpose: str  # BHT02: 11 response, 06 confirmation
    reference: str  # BHT03: the 270's BHT03 echoed (submitter transaction identifier)
    date: date | None
    time: str = ""
    date_raw: str = ""  # BHT04 as sent (added: kept when it is not a valid date)


@dataclass(slots=True)
class Transaction271:
    """One parsed 271 transaction set, plus what was odd about it (never silently dropped)."""

    control_number: str  # ST02
    implementation: str  # ST03 / GS08, e.g. 005010X279A1
    header: Bht
    sources: list[Loop2000A] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segment_count: int = 0  # segments from ST to SE inclusive, as counted (SE01 is checked against it)
