"""API models: what callers send (``EligibilityRequest``) and what we answer (``CoverageSummary``).

Pure pydantic, no I/O.  Field shapes are validated here (lengths, patterns, enums); the rules that
need the whole request or today's date (TR3 search options, CORE 154 date window, NPI check digit,
X12 character set) live in ``x12.inquiry_rules`` so they can be reported together, field by field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# --- request ----------------------------------------------------------------------------------------

Sex = Literal["M", "F", "U"]
NameText = Annotated[str, Field(min_length=1, max_length=60)]
Code = Annotated[str, Field(min_length=1, max_length=2, pattern=r"^[A-Z0-9]{1,2}$")]


def model_json(model: BaseModel, **options: Any) -> bytes:
    """``model`` as JSON bytes straight from pydantic-core (no dict in between, no str round trip)."""
    return model.__pydantic_serializer__.to_json(model, **options)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class PersonName(_Strict):
    last_name: NameText
    first_name: Annotated[str, Field(max_length=35)] | None = None
    middle_name: Annotated[str, Field(max_length=25)] | None = None
    suffix: Annotated[str, Field(max_length=10)] | None = None


class Patient(PersonName):
    """The person being seen.  When ``subscriber`` is set on the request, the patient is a dependent."""

    birth_date: dt.date | None = None
    sex: Sex | None = None
    # Relationship of the patient to the subscriber (X12 INS02 codes); only used for dependents.
    relationship: Literal["01", "19", "20", "21", "39", "40", "53", "G8"] | None = Field(
        default=None,
        description="5010 INS02 for a dependent: 01 spouse, 19 child, 20 employee, 21 unknown, "
        "39 organ donor, 40 cadaver donor, 53 life partner, G8 other relationship",
    )


class Subscriber(PersonName):
    """The policy holder, when the patient is a dependent on someone else's plan."""

    birth_date: dt.date | None = None
    sex: Sex | None = None


class Payer(_Strict):
    id: Annotated[str, Field(min_length=2, max_length=80)] = Field(description="payer identifier (NM109 of 2100A)")
    name: Annotated[str, Field(min_length=1, max_length=60)]


class Provider(_Strict):
    """The information receiver (2100B): the billing or rendering provider asking."""

    npi: Annotated[str, Field(pattern=r"^\d{10}$")]
    organization_name: Annotated[str, Field(max_length=60)] | None = None
    last_name: Annotated[str, Field(max_length=60)] | None = None
    first_name: Annotated[str, Field(max_length=35)] | None = None
    taxonomy: Annotated[str, Field(pattern=r"^[0-9A-Z]{9}X$")] | None = None

    @model_validator(mode="after")
    def _one_name(self) -> Provider:
        if not self.organization_name and not self.last_name:
            raise ValueError("a provider needs organization_name, or last_name (and first_name) for a person")
        if self.organization_name and self.last_name:
            raise ValueError("give either organization_name or last_name/first_name, not both")
        return self


class ProcedureCode(_Strict):
    """A procedure asked about (EQ02 composite).  ``qualifier`` HC is CPT/HCPCS, AD is ADA (dental)."""

    code: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9]+$")]
    qualifier: Literal["HC", "AD", "CJ", "N4", "ZZ"] = "HC"
    modifiers: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]], Field(max_length=4)] = Field(
        default_factory=list  # a factory: a ``[]`` default is deep-copied on every validation
    )


class ServiceRequest(_Strict):
    """What and when: a service date (or range), and service type codes and/or procedure codes."""

    date: dt.date
    end_date: dt.date | None = Field(default=None, description="end of a date range (RD8); omit for one day")
    service_types: Annotated[list[Code], Field(max_length=99)] = Field(default_factory=list)
    procedures: Annotated[list[ProcedureCode], Field(max_length=99)] = Field(default_factory=list)
    place_of_service: Annotated[str, Field(pattern=r"^\d{2}$")] | None = Field(
        default=None, description="CMS place of service code (11 office, 22 outpatient hospital ...)"
    )


class EligibilityRequest(_Strict):
    """One eligibility question: is ``patient`` covered by ``payer`` for ``service``?"""

    payer: Payer
    provider: Provider
    patient: Patient
    subscriber: Subscriber | None = None
    member_id: Annotated[str, Field(min_length=2, max_length=80)] | None = Field(
        default=None, description="the member ID on the card (the subscriber's, for a dependent)"
    )
    group_number: Annotated[str, Field(max_length=50)] | None = None
    service: ServiceRequest
    # Per-request cache controls (used by the service; ignored by the X12 builder).
    max_age_seconds: Annotated[int, Field(ge=0)] | None = None
    force_refresh: bool = False

    @property
    def is_dependent(self) -> bool:
        return self.subscriber is not None


# --- answer -----------------------------------------------------------------------------------------


class CheckStatus(StrEnum):
    ACTIVE = "active"  # EB01 1-5 for the plan
    INACTIVE = "inactive"  # EB01 6, 7, 8 (see status_detail)
    NOT_FOUND = "not_found"  # payer could not find the member (AAA 75, 72, 73 ...)
    REJECTED = "rejected"  # payer rejected the inquiry itself (AAA at source/receiver level, 15, 42 ...)
    ERROR = "error"  # we could not get or read an answer


class Tristate(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class Network(StrEnum):
    IN = "in_network"  # EB12 Y
    OUT = "out_of_network"  # EB12 N
    BOTH = "both"  # EB12 W
    UNSPECIFIED = "unspecified"  # EB12 U or absent


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PayerInfo(_Out):
    id: str | None = None
    name: str | None = None


class PlanInfo(_Out):
    name: str | None = None  # EB05 plan coverage description of the active row
    insurance_type: str | None = None  # EB04 code
    insurance_type_description: str | None = None
    group_number: str | None = None  # REF*6P (or 1L)
    group_name: str | None = None  # REF03 of the group REF
    plan_number: str | None = None  # REF*18
    plan_network_id: str | None = None  # REF*N6
    coverage_begin: dt.date | None = None  # DTP 346 / 291 start
    coverage_end: dt.date | None = None  # DTP 347 / 291 end
    eligibility_begin: dt.date | None = None  # DTP 356 / 307 start
    eligibility_end: dt.date | None = None  # DTP 357 / 307 end


class Correction(_Out):
    """The payer answered with a different value than we sent (INS / NM1 / DMG changed)."""

    field: str  # "last_name", "first_name", "birth_date", "member_id", "sex" ...
    sent: str | None
    returned: str | None


class MemberInfo(_Out):
    """A subscriber or dependent as the payer knows them."""

    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    member_id: str | None = None
    birth_date: dt.date | None = None
    sex: str | None = None
    relationship: str | None = None  # INS02 code
    address_line1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    corrections: list[Correction] = []


class Amounts(_Out):
    """One accumulator for one coverage level and network.  All values are money."""

    total: Decimal | None = None  # EB06 23 calendar / 22 service year / 25 contract / 32 lifetime / 26 episode
    remaining: Decimal | None = None  # EB06 29 (and 33 lifetime remaining)
    met: Decimal | None = None  # EB06 24 year to date
    time_period: str | None = None  # EB06 of the total row


class NetworkAmounts(_Out):
    in_network: Amounts = Amounts()
    out_of_network: Amounts = Amounts()


class Accumulator(_Out):
    """Deductible or out-of-pocket: individual/family × in/out of network × total/remaining/met."""

    individual: NetworkAmounts = NetworkAmounts()
    family: NetworkAmounts = NetworkAmounts()


class CostShare(_Out):
    """A copay (EB01 B) or coinsurance (EB01 A) for some service types."""

    kind: Literal["copay", "coinsurance"]
    amount: Decimal | None = None  # copay in currency
    percent: Decimal | None = None  # coinsurance as a fraction: 0.2 is 20%
    network: Network
    coverage_level: str | None = None
    service_types: list[str] = []
    procedure: str | None = None  # EB13 code when the row names one
    time_period: str | None = None
    place_of_service: list[str] = []  # III*ZZ codes
    messages: list[str] = []
    benefit_index: int  # index into CoverageSummary.benefits


class Limitation(_Out):
    """How much of a service the plan covers: EB01 F rows, EB09/EB10 quantities and HSD."""

    service_types: list[str] = []
    procedure: str | None = None
    description: str  # human text built from the codes, e.g. "20 visits per calendar year"
    quantity: Decimal | None = None
    quantity_qualifier: str | None = None
    time_period: str | None = None
    network: Network = Network.UNSPECIFIED
    messages: list[str] = []
    benefit_index: int


class Evidence(_Out):
    """Why we answered what we answered: the EB11 value or MSG text, and where it was."""

    source: Literal["EB11", "MSG", "EB01", "HSD", "III"]
    value: str
    benefit_index: int | None = None
    segment_position: int | None = None


class NetworkCosts(_Out):
    copay: Decimal | None = None
    coinsurance: Decimal | None = None  # fraction
    deductible_remaining: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None


class ServiceAnswer(_Out):
    """The answer for one requested procedure or service type: the product's reason to exist."""

    code: str  # "99213" or an STC such as "30"
    code_type: Literal["procedure", "service_type"]
    qualifier: str | None = None  # HC / AD for procedures
    service_types: list[str] = []  # the STCs this procedure mapped to, most specific first
    mapping_source: Literal["payer", "table", "override", "request"] = "request"
    covered: Tristate = Tristate.UNKNOWN
    auth_required: Tristate = Tristate.UNKNOWN
    auth_evidence: list[Evidence] = []
    coverage_evidence: list[Evidence] = []
    in_network: NetworkCosts = NetworkCosts()
    out_of_network: NetworkCosts = NetworkCosts()
    limitations: list[Limitation] = []
    messages: list[str] = []
    benefit_indexes: list[int] = []  # rows of CoverageSummary.benefits that applied


class AaaError(_Out):
    """A payer-side rejection (AAA), passed through losslessly with what to do about it (CORE 259)."""

    code: str  # AAA03
    description: str
    follow_up_action: str  # AAA04
    follow_up_description: str
    loop: str  # where it was: 2000A, 2100A, 2100B, 2100C, 2100D, 2110C, 2110D
    location: str  # "payer", "provider", "subscriber", "dependent", "benefit"
    valid_request: bool  # AAA01 Y
    retryable: bool  # a later retry of the same inquiry can help (42/80 with P/R follow-up ...)
    needs_correction: bool  # the caller must fix the data (72/73/75 ... or follow-up C)
    possible_resolutions: list[str] = []


class RelatedEntity(_Out):
    """A 2120 benefit related entity: PCP, other payer (COB), carve-out vendor."""

    role: str  # NM101 code: P3 PCP, PRP primary payer, 1P provider, PR payer, VN vendor ...
    role_description: str
    name: str | None = None
    identifier: str | None = None
    identifier_qualifier: str | None = None
    phone: str | None = None
    service_types: list[str] = []
    benefit_index: int


class BenefitRow(_Out):
    """One EB row, flattened like the commercial APIs' ``benefitsInformation`` (for callers who want it)."""

    index: int
    code: str  # EB01
    name: str  # EB01 description
    coverage_level: str | None = None
    service_types: list[str] = []
    insurance_type: str | None = None
    plan_description: str | None = None
    time_period: str | None = None
    amount: Decimal | None = None
    percent: Decimal | None = None
    quantity_qualifier: str | None = None
    quantity: Decimal | None = None
    auth_required: str | None = None  # EB11 as sent
    in_plan_network: str | None = None  # EB12 as sent
    procedure: str | None = None  # EB13 "HC:99213"
    dates: list[dict[str, str]] = []
    messages: list[str] = []
    delivery: list[str] = []  # HSD rendered as text
    additional_info: list[str] = []  # III as "ZZ:11"
    references: list[dict[str, str]] = []
    errors: list[str] = []  # AAA03 codes at 2110
    loop: str  # 2110C or 2110D
    segment_position: int


class Provenance(_Out):
    trace_number: str | None = None  # our TRN*1 echoed as TRN*2
    control_number: str | None = None  # ST02 of the 271
    implementation: str | None = None
    cached: bool = False
    age_seconds: float | None = None
    payer_response_ms: float | None = None
    received_at: dt.datetime | None = None
    sandbox: bool = False
    warnings: list[str] = []  # things odd about the 271 that did not stop us


class CoverageSummary(_Out):
    """Our answer for one eligibility check."""

    check_id: str | None = None
    status: CheckStatus
    status_detail: str | None = None  # e.g. "inactive - pending investigation"
    payer: PayerInfo = PayerInfo()
    plan: PlanInfo = PlanInfo()
    subscriber: MemberInfo = MemberInfo()
    patient: MemberInfo | None = None  # set when the patient is a dependent
    deductible: Accumulator = Accumulator()
    out_of_pocket: Accumulator = Accumulator()
    copays: list[CostShare] = []
    coinsurance: list[CostShare] = []
    services: list[ServiceAnswer] = []
    limitations: list[Limitation] = []
    related_entities: list[RelatedEntity] = []
    messages: list[str] = []
    errors: list[AaaError] = []
    provenance: Provenance = Provenance()
    benefits: list[BenefitRow] = []
