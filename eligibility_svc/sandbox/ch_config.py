"""How the sandbox clearinghouse behaves: credentials, scenarios, and per-payer latency and faults.

A pydantic model so tests and benchmarks set it in code (and ``PUT /admin/config`` sets it as JSON)::

    SandboxClearinghouseConfig(
        fixtures_dir=Path("x12_fixtures"),
        payers={
            "SBX10001": PayerBehavior(
                latency=Latency(fixed_ms=40, jitter_ms=20),
                faults=[Fault(kind=FaultKind.AAA_42, first=2), Fault(kind=FaultKind.HTTP_5XX, probability=0.01)],
            )
        },
    )

A request's payer is the 270's 2100A NM109.  ``member_ranges`` hands out many member IDs for one
scenario's person, the way payers' test systems do: ``MemberRange(prefix="BN1-", scenario="01-...")``
makes every member ID starting with ``BN1-`` at that scenario's payer answer as the scenario's member
(name and birth date are still checked), so a benchmark can ask about thousands of distinct members and
get full coverage answers.  Faults are tried in order; the first that applies wins.
``first`` limits a fault to the payer's first N requests (an AAA 42 burst, a 503 at startup);
``probability`` makes it random (benchmarks; seeded by ``seed``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from eligibility_svc.settings import DEFAULT_FIXTURES, Settings


class FaultKind(StrEnum):
    TIMEOUT = "timeout"  # hold the request past any deadline (then answer normally, to nobody)
    HTTP_5XX = "http_5xx"  # an HTTP 5xx with a CORE error envelope
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After
    AAA_42 = "aaa_42"  # a 271 saying the payer cannot answer now (AAA 42 or 80 at 2100A)
    REJECT_999 = "reject_999"  # a 999 rejecting the 270 instead of a 271
    TRUNCATED_271 = "truncated_271"  # the 271 cut off mid-segment
    MALFORMED_271 = "malformed_271"  # a 271 whose ISA is broken
    WRONG_PAYLOAD_TYPE = "wrong_payload_type"  # a 271 labelled with another PayloadType


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    first: Annotated[int, Field(ge=1)] | None = None  # only the payer's first N requests; None: all
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    status: Annotated[int, Field(ge=500, le=599)] = 503  # http_5xx
    retry_after_seconds: Annotated[float, Field(ge=0)] = 1.0  # rate_limit
    hang_seconds: Annotated[float, Field(gt=0)] = 300.0  # timeout
    aaa_reason: str = "42"  # aaa_42: 42 unable to respond now, 80 no response received
    follow_up: str = "R"  # aaa_42: R/P invite a retry; C, N, S, W, X, Y do not
    payload_type: str = "X12_277_Response_005010X212"  # wrong_payload_type


class Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fixed_ms: Annotated[float, Field(ge=0)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0)] = 0.0  # plus uniform 0..jitter_ms


class PayerBehavior(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: Latency = Field(default_factory=Latency)
    faults: list[Fault] = Field(default_factory=list)


class MemberRange(BaseModel):
    """Member IDs starting with ``prefix`` (compared like CORE 258 names) are ``scenario``'s member."""

    model_config = ConfigDict(extra="forbid")

    prefix: Annotated[str, Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")]
    scenario: Annotated[str, Field(min_length=1)]  # a scenario's name (its folder under scenarios/)


class SandboxClearinghouseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = "sandbox"
    password: SecretStr = SecretStr("sandbox-not-secret")
    receiver_id: str = "CLEARINGHOUSE"  # CORE ReceiverID we answer to
    sender_ids: list[str] | None = None  # accepted SenderIDs; None: any non-empty one
    fixtures_dir: Path = DEFAULT_FIXTURES  # holds scenarios/<name>/{scenario.json, 271.x12}
    default: PayerBehavior = Field(default_factory=PayerBehavior)
    payers: dict[str, PayerBehavior] = Field(default_factory=dict)
    member_ranges: list[MemberRange] = Field(default_factory=list)
    admin: bool = True  # serve /admin/* (tests and benchmarks change faults at runtime)
    seed: int | None = None
    max_captured: Annotated[int, Field(ge=0)] = 1000  # requests kept for /admin/requests

    def behavior(self, payer_id: str) -> PayerBehavior:
        return self.payers.get(payer_id, self.default)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxClearinghouseConfig:
        """The sandbox the settings describe (credentials and latency the embedded default uses)."""
        sandbox = settings.clearinghouse.sandbox
        return cls(
            username=sandbox.username,
            password=sandbox.password,
            receiver_id=sandbox.receiver_id,
            fixtures_dir=settings.sandbox.fixtures_dir,
            default=PayerBehavior(latency=Latency(fixed_ms=sandbox.latency_ms, jitter_ms=sandbox.jitter_ms)),
        )
