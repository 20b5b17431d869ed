"""``EligibilityService``: one eligibility check from request to answer, and nothing else.

::

    verify(request)
      check_inquiry ─► exact cache entry ──────────────── may serve? ──► answer (cached, age)
                    └► coverage entry (same patient/payer/provider/dates, an STC 30 inquiry; read only
                         when the exact one cannot serve)
                         holds the rows the new codes need? ─► re-interpret its 271 ──► answer (reuse)
                    └► single-flight (Redis across replicas, or this process)
                         control number ─► build 270 ─► validate 270 (strict, or x12.validate_outgoing=always)
                         ─► transport.exchange (CORE 156 deadline)
                         ─► validate 271 ─► parse ─► summarize ─► check record + cache (TTL policy),
                            one pipeline when both are in Redis, the single-flight lock released last in it
      write-back (when asked) ─► WriteBackSink.enqueue ─► the record's ``writeback`` state

The seams (cache, transport, single-flight, control numbers, check records, write-back) are passed
in; ``app_state.build_runtime`` wires them from ``Settings``.  Decisions are pure functions below
(what a kept entry may answer, whether a coverage entry can answer new codes, what the validation
setting does, what a record holds); the class only sequences I/O around them.

Identity of a check: ``check_id`` names the payer answer.  A cached answer keeps the id of the check
that asked the payer (its record is already stored, and outlives the cache entry), so a cache hit
writes nothing; a re-interpreted (reused) answer is a new answer and gets a new id and record.

What is kept, all under ``RedisKeys`` (values JSON, AES-GCM sealed when ``cache.encryption_key`` is set):

* ``cache:{exact}``: the ``CoverageSummary`` for one exact question, for the TTL policy's time, kept as
  a ``KeptSummary``: its JSON bytes without the provenance as the entry's attachment (sent as they are
  on a hit: no model is built, see ``verify_json``), the provenance (patched: cached, age, sandbox)
  and the status (metrics) as its value;
* ``cov:{coverage}``: for answers to inquiries that included STC 30 (CORE 154: the payer answers the
  plan and the CORE service types), a ``CoverageEntry``: the raw 271 and what it covers, so other
  procedures for the same patient/payer/provider/dates can be answered without a payer call;
* ``check:{check_id}``: the ``CheckRecord`` (summary, validation findings, write-back state) for
  ``CHECK_RECORD_TTL_SECONDS``; kept in process when Redis is down, so the check still succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Final, Literal, Protocol, cast

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError

from eligibility_svc.cache import Cache, CacheEntry, CacheWrite, CheckDigests, JsonObject, check_digests, inquiry_codes
from eligibility_svc.cache_policy import (
    TtlPolicy,
    entry_age,
    last_service_day,
    may_serve,
    ttl_seconds,
    wants_cached,
)
from eligibility_svc.clearinghouse.breaker import BreakerBoard, BreakerPhase, BreakerView
from eligibility_svc.clearinghouse.limiter import PayerLimiter, RedisPayerLimiter
from eligibility_svc.clearinghouse.transport import Transport, TransportResult, deadline_after
from eligibility_svc.control_numbers import ControlNumbers
from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    EligibilityError,
    NotFound,
    X12Error,
    X12ValidationFailed,
)
from eligibility_svc.metrics import BreakerKind, CheckSource, Metrics, Severity
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, model_json
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import Settings
from eligibility_svc.singleflight import SingleFlight, held_lock
from eligibility_svc.x12.build270 import Envelope, build_270, new_trace_number
from eligibility_svc.x12.inquiry_rules import check_inquiry
from eligibility_svc.x12.interpret import interpret, summarize
from eligibility_svc.x12.loops271 import Transaction271
from eligibility_svc.x12.parse271 import parse_271, parse_elements
from eligibility_svc.x12.procedures import ProcedureTable, default_table
from eligibility_svc.x12.reader import RawInterchange
from eligibility_svc.x12.validate import Direction, Finding, Mode, ValidationResult, apply_policy, validate_x12

log = logging.getLogger(__name__)

CHECK_RECORD_TTL_SECONDS = 7 * 24 * 3600
GENERAL_SERVICE_TYPE = "30"  # health benefit plan coverage: CORE 154 obliges payers to answer it in full
_CHECK_ID = re.compile(r"^[0-9a-f]{32}$")

LookupResult = Literal["hit", "stale", "miss"]
_SEVERITIES: tuple[Severity, ...] = ("error", "warning")
RedisState = Literal["ok", "down", "not_configured"]


# --- what is kept ------------------------------------------------------------------------------------


class _Kept(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WriteBackState(StrEnum):
    """Where the athenaNet write-back of a check stands (the record's ``writeback`` field)."""

    NOT_REQUESTED = "not_requested"
    NOT_CONFIGURED = "not_configured"  # asked for, but no athenaNet write-back is configured
    SKIPPED = "skipped"  # asked for, but the answer holds no coverage to write (not found, rejected, error)
    QUEUED = "queued"  # durable in the write-back outbox
    FAILED = "failed"  # the outbox refused it; the check itself stands


class ValidationFinding(_Kept):
    """One implementation-guide finding on the X12 of a check (never a patient value: see ``x12.validate``)."""

    direction: Direction
    severity: Literal["error", "warning"]
    segment_id: str
    position: int | None = None
    loop_id: str | None = None
    element: str | None = None
    code: str
    message: str

    @classmethod
    def of(cls, finding: Finding, direction: Direction) -> ValidationFinding:
        return cls(direction=direction, **finding.to_dict())


class WriteBackProgress(_Kept):
    """What became of a queued write-back, as the sink that applies it reports (no patient data)."""

    status: str  # queued / retrying / applied / refused / dead
    attempts: int = 0
    action: str | None = None  # what was done in the target system (e.g. none / update / create / replace)
    changed: list[str] = []  # field names written
    reason: str | None = None
    error_code: str | None = None


class CheckRecord(_Kept):
    """A finished check, as ``GET /v1/eligibility/{check_id}`` finds it.

    Holds no patient data beyond the summary itself: not the request, not the raw X12."""

    check_id: str
    created_at: dt.datetime
    status: CheckStatus
    source: Literal["fresh", "reuse"]  # asked the payer, or re-read a kept 271
    summary: CoverageSummary
    validation: list[ValidationFinding] = []
    writeback: WriteBackState = WriteBackState.NOT_REQUESTED
    writeback_progress: WriteBackProgress | None = None  # filled on read when the write-back was queued


class CoverageEntry(_Kept):
    """A general (STC 30) payer answer kept for coverage-aware reuse: its 271 and what it covers."""

    x12_271: str
    check_id: str
    status: CheckStatus
    service_types: list[str]  # STCs with benefit rows for the member (rows naming a procedure excluded)
    place_of_service: str | None  # the place of service the inquiry named, if any
    trace_number: str | None = None
    payer_response_ms: float | None = None
    received_at: dt.datetime | None = None
    validation: list[ValidationFinding] = []


class Readiness(_Kept):
    """What ``/readyz`` reports.  ``degraded``: checks are answered, but ``reasons`` says what is off."""

    redis: RedisState
    degraded: bool
    reasons: list[str] = []
    breakers: dict[str, str] = {}  # "endpoint:<name>" / "payer:<id>" → closed / half_open / open
    open_endpoints: list[str] = []
    limiter_degraded: bool = False  # per-payer limits fell back to this process (Redis failed)
    sandbox: bool = False


# --- the write-back seam ----------------------------------------------------------------------------


class WriteBackSink(Protocol):
    """Where verified coverage goes to be written back to athenaNet (the athenaNet issue fills it)."""

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        """Queue the write-back of ``summary`` for ``request``; returns the ``WriteBackState`` value to
        record on the check (``"queued"`` once it is durable).  Raises ``EligibilityError`` (an
        ``AthenaError``) when it cannot be queued; the check still stands, recorded as ``failed``."""
        ...


class UnconfiguredWriteBack:
    """The default sink: nothing is written; the check records ``not_configured``.

    Keeps the last ``keep`` check ids asked for (tests, and a future sink's backfill)."""

    def __init__(self, keep: int = 1000) -> None:
        self.requested: deque[str] = deque(maxlen=keep)

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        self.requested.append(check_id)
        return WriteBackState.NOT_CONFIGURED.value


# --- pure decisions --------------------------------------------------------------------------------


def new_check_id() -> str:
    """A fresh check id: 32 lower-case hex digits from the OS's entropy (it names a stored answer,
    so it must not be guessable), safe as a Redis key part."""
    return secrets.token_hex(16)


def is_check_id(value: str) -> bool:
    return bool(_CHECK_ID.fullmatch(value))


def lookup_result(entry: CacheEntry | None, request: EligibilityRequest, now: float) -> LookupResult:
    """What a kept exact entry means for ``request`` at unix time ``now``: served, too old, or absent."""
    if entry is None:
        return "miss"
    age = entry_age(entry.stored_at, now)
    served = may_serve(age, max_age_seconds=request.max_age_seconds, force_refresh=request.force_refresh)
    return "hit" if served else "stale"


def shareable(stored_at: float, request: EligibilityRequest, started: float, now: float) -> bool:
    """Whether an answer stored at ``stored_at`` may answer a request that began at ``started`` and is
    waiting on another caller's payer call: one stored since it began is fresh even for ``force_refresh``."""
    if stored_at >= started:
        return True
    return lookup_result(CacheEntry({}, stored_at), request, now) == "hit"


def is_general_inquiry(request: EligibilityRequest) -> bool:
    """Whether the 270 for ``request`` asks STC 30 (explicitly, or by asking nothing else)."""
    return f"STC:{GENERAL_SERVICE_TYPE}" in inquiry_codes(request)


def answered_service_types(summary: CoverageSummary) -> list[str]:
    """The STCs the member's benefit rows speak for; rows naming a procedure speak only for it."""
    found = {stc for row in summary.benefits if row.procedure is None for stc in row.service_types}
    return sorted(found)


def needed_service_types(request: EligibilityRequest, table: ProcedureTable) -> set[str] | None:
    """The STCs whose rows answer ``request``: each asked STC, and each procedure's most specific
    mapped STC.  ``None`` when a procedure maps to none (only the payer can answer it)."""
    service = request.service
    needed = set(service.service_types)
    for procedure in service.procedures:
        mapped, _ = table.service_types_for(
            procedure.code, procedure.qualifier, place_of_service=service.place_of_service
        )
        if not mapped:
            return None
        needed.add(mapped[0])
    return needed or {GENERAL_SERVICE_TYPE}


def can_reuse(coverage: CoverageEntry, request: EligibilityRequest, table: ProcedureTable) -> bool:
    """Whether the kept general answer ``coverage`` answers ``request`` as well as a new inquiry would.

    * a member the payer did not find is not found for any service: reuse;
    * active coverage: reuse when the 271 has rows for every STC the request needs (payers send the
      CORE 154 service types for STC 30), and was asked for no other place of service;
    * anything else (inactive, rejected ...) goes to the payer.
    """
    if coverage.place_of_service not in (None, request.service.place_of_service):
        return False
    if coverage.status is CheckStatus.NOT_FOUND:
        return True
    if coverage.status is not CheckStatus.ACTIVE:
        return False
    needed = needed_service_types(request, table)
    return needed is not None and needed <= set(coverage.service_types)


def writeback_wanted(summary: CoverageSummary) -> bool:
    """Only an answer about the member's coverage has something to write to athenaNet."""
    return summary.status in (CheckStatus.ACTIVE, CheckStatus.INACTIVE)


def unreadable_finding(error: X12Error) -> Finding:
    """A finding standing for X12 the validator could not walk at all."""
    return Finding("error", error.segment_id or "ISA", error.position, None, None, error.code, error.message)


def check_x12(text: str, mode: Mode, direction: Direction) -> tuple[ValidationFinding, ...]:
    """The ``x12.validation`` setting applied to ``text``: ``off`` nothing; ``warn`` every finding;
    ``strict`` raises ``X12ValidationFailed`` on an error (see ``validate.apply_policy``)."""
    if mode == "off":
        return ()
    try:
        result = validate_x12(text)
    except X12Error as exc:
        result = ValidationResult((unreadable_finding(exc),))
    return tuple(ValidationFinding.of(finding, direction) for finding in apply_policy(result, mode, direction))


def outgoing_mode(mode: Mode, validate_outgoing: Literal["always", "strict_only"]) -> Mode:
    """The validation mode for a 270 we built: ``x12.validate_outgoing`` ``strict_only`` (the default)
    validates it only where a finding stops it (strict); in warn mode it is not validated."""
    if validate_outgoing == "strict_only" and mode == "warn":
        return "off"
    return mode


def bad_271(error: X12ValidationFailed) -> ClearinghouseBadResponse:
    """A strict-mode failure of a received 271, reported as the clearinghouse's fault, findings kept."""
    return ClearinghouseBadResponse(
        f"{error.message} (x12.validation is strict: it was not interpreted)",
        details={"direction": "incoming", "findings": error.details.get("findings", [])},
    )


def findings_warning(findings: Sequence[ValidationFinding]) -> list[str]:
    """The provenance warning pointing at findings recorded on the check."""
    if not findings:
        return []
    errors = sum(1 for finding in findings if finding.severity == "error")
    return [f"x12 validation: {errors} error(s), {len(findings) - errors} warning(s); see the check record"]


def stamp_fresh(
    summary: CoverageSummary,
    *,
    check_id: str,
    trace_number: str,
    result: TransportResult,
    received_at: dt.datetime,
    sandbox: bool,
    findings: Sequence[ValidationFinding],
) -> CoverageSummary:
    """``summary`` of a 271 just received, with its check id and provenance."""
    provenance = summary.provenance.model_copy(
        update={
            "trace_number": summary.provenance.trace_number or trace_number,
            "cached": False,
            "age_seconds": None,
            "payer_response_ms": round(result.elapsed * 1000, 1),
            "received_at": received_at,
            "sandbox": sandbox,
            "warnings": [*summary.provenance.warnings, *findings_warning(findings)],
        }
    )
    return summary.model_copy(update={"check_id": check_id, "provenance": provenance})


def stamp_cached(summary: CoverageSummary, age: float) -> CoverageSummary:
    """A kept ``summary`` served ``age`` seconds after it was stored."""
    provenance = summary.provenance.model_copy(update={"cached": True, "age_seconds": round(age, 3)})
    return summary.model_copy(update={"provenance": provenance})


def stamp_reused(
    summary: CoverageSummary, coverage: CoverageEntry, *, check_id: str, age: float, sandbox: bool
) -> CoverageSummary:
    """``summary`` re-read from the kept 271 of ``coverage``: cached, with the original exchange's facts."""
    provenance = summary.provenance.model_copy(
        update={
            "trace_number": summary.provenance.trace_number or coverage.trace_number,
            "cached": True,
            "age_seconds": round(age, 3),
            "payer_response_ms": coverage.payer_response_ms,
            "received_at": coverage.received_at,
            "sandbox": sandbox,
        }
    )
    return summary.model_copy(update={"check_id": check_id, "provenance": provenance})


# --- the exact entry ----------------------------------------------------------------------------------

KEPT_SUMMARY_FORMAT = 2  # the ``format`` of a ``KeptSummary`` value; older entries hold the bare summary


def _spliced(body: bytes, name: str, value: bytes) -> bytes:
    """The JSON object ``body`` with member ``name`` set to the JSON ``value`` (a name ``body`` lacks),
    made without parsing either: ``body`` is copied once, through a view."""
    separator = b"," if len(body) > 2 else b""
    return b"".join((memoryview(body)[:-1], separator, b'"%b":' % name.encode(), value, b"}"))


class KeptSummary:
    """A summary as ``cache:{exact}`` keeps it: its JSON bytes without provenance (the entry's
    attachment), and in the entry's value the provenance and status.

    ``to_json`` splices the (patched) provenance into the kept bytes: a cache hit answers without
    parsing or validating the summary.  Value and attachment go through the cache codec together
    (sealed with AES-GCM when a key is configured), like every other kept value."""

    __slots__ = ("_provenance_json", "body", "provenance", "status")

    def __init__(self, body: bytes, provenance: JsonObject, status: CheckStatus) -> None:
        self.body = body
        self.provenance = provenance
        self.status = status
        self._provenance_json: bytes | None = None  # ``provenance`` as JSON, once a write needs it

    @classmethod
    def of(cls, summary: CoverageSummary) -> KeptSummary:
        body = model_json(summary, exclude={"provenance"})
        return cls(body, summary.provenance.model_dump(mode="json"), summary.status)

    @classmethod
    def read(cls, value: JsonObject, body: bytes) -> KeptSummary | None:
        """The kept summary in an entry; ``None`` for another format or a damaged entry."""
        provenance, status = value.get("provenance"), value.get("status")
        if value.get("format") != KEPT_SUMMARY_FORMAT or not isinstance(provenance, dict):
            return None
        if not body.startswith(b"{") or not body.endswith(b"}"):
            return None
        try:
            return cls(body, provenance, CheckStatus(str(status)))
        except ValueError:
            return None

    def value(self) -> JsonObject:
        """The entry's value (``body`` is its attachment; ``read`` reads both back)."""
        return {"format": KEPT_SUMMARY_FORMAT, "status": self.status.value, "provenance": self.provenance}

    def value_json(self) -> bytes:
        """``value()`` as compact JSON (it holds JSON values only: ``provenance`` is a JSON dump)."""
        head = pydantic_core.to_json({"format": KEPT_SUMMARY_FORMAT, "status": self.status.value})
        return _spliced(head, "provenance", self._kept_provenance())

    def to_json(self, age: float, *, sandbox: bool = False) -> bytes:
        """The summary served ``age`` seconds after it was stored (``stamp_cached``), as JSON bytes;
        ``sandbox`` marks it simulated (it stays marked when it was)."""
        provenance = {**self.provenance, "cached": True, "age_seconds": round(age, 3)}
        if sandbox:
            provenance["sandbox"] = True
        return _spliced(self.body, "provenance", pydantic_core.to_json(provenance))

    def summary_json(self) -> bytes:
        """The whole summary as it was kept (its own provenance), as JSON bytes."""
        return _spliced(self.body, "provenance", self._kept_provenance())

    def _kept_provenance(self) -> bytes:
        """The kept provenance as JSON, made once for the entry and the check record that both hold it."""
        if self._provenance_json is None:
            self._provenance_json = pydantic_core.to_json(self.provenance)
        return self._provenance_json

    def to_model(self, age: float) -> CoverageSummary | None:
        """The summary as ``stamp_cached`` would serve it; ``None`` when it does not validate."""
        try:
            return CoverageSummary.model_validate_json(self.to_json(age))
        except ValidationError:
            return None


def kept_from_legacy(value: JsonObject) -> KeptSummary | None:
    """An entry written before ``KeptSummary`` (the bare summary), read as one; ``None`` if unreadable."""
    try:
        return KeptSummary.of(CoverageSummary.model_validate(value))
    except ValidationError:
        return None


def read_kept(entry: CacheEntry) -> KeptSummary | None:
    """The kept summary of an exact entry in either format."""
    if "format" in entry.value:
        return KeptSummary.read(entry.value, entry.attachment)
    return kept_from_legacy(entry.value)


def coverage_entry(
    summary: CoverageSummary, x12_271: str, request: EligibilityRequest, findings: Sequence[ValidationFinding]
) -> CoverageEntry:
    """What to keep of a general answer for reuse (``summary`` is stamped: it carries the check id)."""
    provenance = summary.provenance
    return CoverageEntry(
        x12_271=x12_271,
        check_id=summary.check_id or "",
        status=summary.status,
        service_types=answered_service_types(summary),
        place_of_service=request.service.place_of_service,
        trace_number=provenance.trace_number,
        payer_response_ms=provenance.payer_response_ms,
        received_at=provenance.received_at,
        validation=list(findings),
    )


def breaker_name(view: BreakerView) -> str:
    return f"{view.scope}:{view.key}"


def build_readiness(
    redis: RedisState, breakers: Sequence[BreakerView], *, limiter_degraded: bool, sandbox: bool
) -> Readiness:
    """Readiness from its facts: degraded when Redis is down, a breaker is not closed, or the
    per-payer limits fell back to this process.  Checks are answered in every case."""
    reasons = ["redis unavailable: answering without the cache or shared single-flight"] if redis == "down" else []
    for view in breakers:
        if view.phase.value != "closed":
            retry = f"probe in {view.retry_in_seconds:.0f} s"
            reasons.append(f"circuit breaker {breaker_name(view)} is {view.phase.value} ({retry})")
    if limiter_degraded:
        reasons.append("per-payer limits are enforced per process: Redis failed")
    return Readiness(
        redis=redis,
        degraded=bool(reasons),
        reasons=reasons,
        breakers={breaker_name(view): view.phase.value for view in breakers},
        open_endpoints=[view.key for view in breakers if view.scope == "endpoint" and view.phase.value != "closed"],
        limiter_degraded=limiter_degraded,
        sandbox=sandbox,
    )


# --- check records ---------------------------------------------------------------------------------


RECORD_FORMAT = "record/1"  # the ``format`` of a check record value; its JSON is the attachment (``CheckStore``)
_RECORD_VALUE: Final = pydantic_core.to_json({"format": RECORD_FORMAT})  # every record entry's value


class CheckStore:
    """Check records by id in ``store`` (Redis through ``RedisCache``: JSON, sealed by the cache codec
    when configured), and in ``fallback`` (this process) when the store did not keep one.

    A record is kept as its JSON bytes, straight from pydantic-core, in the entry's attachment (the
    value only names the format): a record holds the whole summary, and building a dict of it for
    ``json.dumps`` cost four times as much.  Records written as the bare value are still read."""

    def __init__(
        self,
        store: Cache,
        keys: RedisKeys,
        *,
        fallback: Cache | None = None,
        ttl_seconds: int = CHECK_RECORD_TTL_SECONDS,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._keys = keys
        self.ttl_seconds = ttl_seconds

    async def save(self, record: CheckRecord, summary_json: bytes | None = None) -> None:
        """Keep ``record``; never raises for an unavailable store.  ``summary_json``: as for ``write``."""
        write = self.write(record, summary_json)
        if not await self._store.set(write.key, write.value, write.ttl_seconds, attachment=write.attachment):
            await self.keep_here(record)

    def write(self, record: CheckRecord, summary_json: bytes | None = None) -> CacheWrite:
        """What ``save`` writes to the store, for a caller batching it with other writes to ``store``
        (see ``stored_in``); when the store did not keep it, the caller calls ``keep_here``.
        ``summary_json``: the record's summary already serialized (spliced in, not made again)."""
        if summary_json is None:
            body = model_json(record)
        else:
            body = _spliced(model_json(record, exclude={"summary"}), "summary", summary_json)
        return CacheWrite(self._keys.check(record.check_id), _RECORD_VALUE, self.ttl_seconds, body)

    def stored_in(self, cache: Cache) -> bool:
        """Whether records go to ``cache`` (so writes to both can go together)."""
        return self._store is cache

    async def keep_here(self, record: CheckRecord) -> None:
        """Keep ``record`` in the fallback (this process): the store did not keep it."""
        if self._fallback is not None:
            write = self.write(record)
            await self._fallback.set(write.key, write.value, write.ttl_seconds, attachment=write.attachment)

    async def load(self, check_id: str) -> CheckRecord | None:
        """The record of ``check_id``, or ``None`` when unknown, expired or unreadable."""
        key = self._keys.check(check_id)
        entry = await self._store.get(key)
        if entry is None and self._fallback is not None:
            entry = await self._fallback.get(key)
        if entry is None:
            return None
        try:
            if entry.value.get("format") == RECORD_FORMAT:
                return CheckRecord.model_validate_json(entry.attachment)
            return CheckRecord.model_validate(entry.value)  # written before records were attachments
        except ValidationError:
            log.warning("check record %s is not readable; treated as unknown", check_id)
            return None


# --- the service -----------------------------------------------------------------------------------


class _Answer:
    """An answer for one caller and where it came from (internal): a summary, or a kept one whose
    model is only built when a caller needs it (``verify``); ``verify_json`` sends its bytes."""

    __slots__ = ("_kept", "_summary", "age", "source", "status")

    def __init__(
        self,
        summary: CoverageSummary | None,
        source: CheckSource,
        *,
        kept: KeptSummary | None = None,
        age: float = 0.0,
    ) -> None:
        self._summary = summary
        self._kept = kept
        self.source = source
        self.age = age
        self.status = kept.status if kept is not None else summary.status if summary is not None else CheckStatus.ERROR

    @property
    def summary(self) -> CoverageSummary:
        if self._summary is None:
            assert self._kept is not None
            self._summary = self._kept.to_model(self.age)
            if self._summary is None:
                raise ClearinghouseBadResponse("a cached answer cannot be read")
        return self._summary

    def to_json(self, *, sandbox: bool) -> bytes:
        """The answer as the API sends it, marked simulated when ``sandbox``."""
        if self._summary is None and self._kept is not None:
            return self._kept.to_json(self.age, sandbox=sandbox)
        return model_json(mark_sandbox(self.summary, sandbox))


def mark_sandbox(summary: CoverageSummary, sandbox: bool) -> CoverageSummary:
    """``summary``, marked simulated when ``sandbox`` (unchanged when it is already, or not asked)."""
    if not sandbox or summary.provenance.sandbox:
        return summary
    provenance = summary.provenance.model_copy(update={"sandbox": True})
    return summary.model_copy(update={"provenance": provenance})


class EligibilityService:
    """Answers eligibility checks (see the module docstring).  One per process; safe for concurrent use."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport,
        cache: Cache,
        checks: CheckStore,
        flight: SingleFlight,
        control_numbers: ControlNumbers,
        metrics: Metrics,
        keys: RedisKeys | None = None,
        writeback: WriteBackSink | None = None,
        table: ProcedureTable | None = None,
        breakers: BreakerBoard | None = None,
        endpoint_name: str | None = None,
        limiter: PayerLimiter | None = None,
        redis_configured: bool = False,
        sandbox: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._x12 = settings.x12
        self._secret = settings.cache.key_secret.get_secret_value().encode()
        self._deadline_seconds = settings.clearinghouse.deadline_seconds
        self._policy = TtlPolicy.from_settings(settings.cache)
        self._transport = transport
        self._cache = cache
        self._checks = checks
        self._flight = flight
        self._controls = control_numbers
        self._metrics = metrics
        self._keys = keys or RedisKeys(settings.redis_key_prefix)
        self.writeback: WriteBackSink = writeback or UnconfiguredWriteBack()
        self._table = table or default_table()
        self._breakers = breakers
        self._endpoint_name = endpoint_name
        self._published: dict[tuple[str, str], str] = {}  # breaker gauges as last set
        self._limiter = limiter
        self._redis_configured = redis_configured
        self.sandbox = sandbox
        self._clock = clock
        self._today_at: tuple[int, dt.date] = (-1, dt.date.min)  # (unix second, that second's date)

    @property
    def validation_mode(self) -> Mode:
        return self._x12.validation

    # --- verify ------------------------------------------------------------------------------------

    async def verify(self, request: EligibilityRequest, *, writeback: bool = False) -> CoverageSummary:
        """Answer ``request``: from the cache, from a kept general 271, or from the payer.

        Raises ``InquiryInvalid`` (no 270 can be sent), ``X12ValidationFailed`` (strict mode: the 270
        we built fails the TR3; not sent) and ``ClearinghouseError`` subclasses (no usable 271).
        Payer rejections (AAA) are answers: a summary with ``status`` and ``errors``.
        """
        answer = await self._checked(request, writeback=writeback, model=True)
        return answer.summary

    async def verify_json(self, request: EligibilityRequest, *, writeback: bool = False) -> bytes:
        """``verify``, as the JSON bytes the API sends, marked simulated when the clearinghouse is the
        sandbox.  A cache hit is answered from the kept bytes, with no model built or validated."""
        answer = await self._checked(request, writeback=writeback, model=writeback)
        return answer.to_json(sandbox=self.sandbox)

    async def _checked(self, request: EligibilityRequest, *, writeback: bool, model: bool) -> _Answer:
        """One check, counted (and written back when asked); ``model``: a cached answer must validate."""
        with self._metrics.checks_in_flight.track_inprogress():
            check_inquiry(request, today=self._today())
            started = time.perf_counter()
            try:
                answer = await self._answer(request, model=model)
            except EligibilityError:  # no usable 271, or (strict) a 270 we would not send
                self._metrics.count_check(CheckStatus.ERROR.value, "fresh")
                self._metrics.observe_check("fresh", time.perf_counter() - started)
                raise
            self._metrics.count_check(answer.status.value, answer.source)
            self._metrics.observe_check(answer.source, time.perf_counter() - started)
            if writeback:
                await self._write_back(answer.summary, request)
            return answer

    async def _answer(self, request: EligibilityRequest, *, model: bool) -> _Answer:
        digests = check_digests(request, self._secret)
        started = self._clock()
        if wants_cached(request):
            kept = await self._from_cache(request, digests, model=model)
            if kept is not None:
                return kept
        else:
            self._metrics.count_cache("bypass")
        return await self._flight.run(
            digests.exact,
            lambda: self._ask_payer(request, digests),
            lambda: self._load_shared(request, digests, started, model=model),
            stored_key=self._keys.cache_entry(digests.exact),  # all ``_load_shared`` reads
        )

    async def _from_cache(self, request: EligibilityRequest, digests: CheckDigests, *, model: bool) -> _Answer | None:
        """The exact entry if it may serve, else a reuse of the coverage entry, else ``None``."""
        # A plain GET first: a hit (the common case) costs one value and the cheapest command.  Fetching
        # the coverage entry along with it (MGET or a script) measured slower on the cached path.
        entry = await self._cache.get(self._keys.cache_entry(digests.exact))
        now = self._clock()
        result = lookup_result(entry, request, now)
        if result == "hit" and entry is not None:
            answer = self._cached(entry, now, model=model)
            if answer is not None:
                self._metrics.count_cache("hit")
                return answer
            result = "miss"  # unreadable: as if absent
        coverage = await self._cache.get(self._keys.coverage_entry(digests.coverage))
        reused = await self._reuse(request, coverage, now)
        self._metrics.count_cache("reuse" if reused is not None else result)
        return reused

    def _cached(self, entry: CacheEntry, now: float, *, model: bool) -> _Answer | None:
        """The kept answer of ``entry``; with ``model``, validated now (``None`` when it does not)."""
        kept = read_kept(entry)
        age = entry_age(entry.stored_at, now)
        summary = kept.to_model(age) if kept is not None and model else None
        if kept is None or (model and summary is None):
            log.warning("a cached summary is not readable (an older format?); asking the payer")
            return None
        return _Answer(summary, "cache", kept=kept, age=age)

    async def _load_shared(
        self, request: EligibilityRequest, digests: CheckDigests, started: float, *, model: bool
    ) -> _Answer | None:
        """The single-flight ``load``: an answer another caller stored that this request accepts."""
        entry = await self._cache.get(self._keys.cache_entry(digests.exact))
        now = self._clock()
        if entry is None or not shareable(entry.stored_at, request, started, now):
            return None
        return self._cached(entry, now, model=model)

    # --- coverage-aware reuse -------------------------------------------------------------------

    async def _reuse(self, request: EligibilityRequest, entry: CacheEntry | None, now: float) -> _Answer | None:
        """Answer from ``entry``, the kept general 271 of the same patient/payer/provider/dates, when it can."""
        if entry is None:
            return None
        age = entry_age(entry.stored_at, now)
        if not may_serve(age, max_age_seconds=request.max_age_seconds, force_refresh=request.force_refresh):
            return None
        try:
            coverage = CoverageEntry.model_validate(entry.value)
        except ValidationError:
            return None
        if not can_reuse(coverage, request, self._table):
            return None
        summary = self._reinterpret(coverage, request, age)
        if summary is None:
            return None
        await self._checks.save(self._record(summary, "reuse", coverage.validation))
        return _Answer(summary, "reuse")

    def _reinterpret(self, coverage: CoverageEntry, request: EligibilityRequest, age: float) -> CoverageSummary | None:
        try:
            summary = self._interpret(coverage.x12_271, request)
        except ClearinghouseBadResponse:
            log.warning("a kept 271 cannot be re-read for reuse; asking the payer")
            return None
        return stamp_reused(summary, coverage, check_id=new_check_id(), age=age, sandbox=self.sandbox)

    # --- the payer ----------------------------------------------------------------------------------

    async def _ask_payer(self, request: EligibilityRequest, digests: CheckDigests) -> _Answer:
        """The single-flight ``compute``: one exchange with the payer, kept for the others."""
        trace_number = new_trace_number()
        x12_270 = await self._build_270(request, trace_number)
        outgoing = self._validate(x12_270, "outgoing", outgoing_mode(self.validation_mode, self._x12.validate_outgoing))
        result = await self._exchange(x12_270, request.payer.id)
        try:
            incoming = self._validate(result.x12_271, "incoming")
        except X12ValidationFailed as exc:
            raise bad_271(exc) from exc
        findings = (*outgoing, *incoming)
        summary = stamp_fresh(
            self._interpret(result.x12_271, request, result.interchange),
            check_id=new_check_id(),
            trace_number=trace_number,
            result=result,
            received_at=self._now(),
            sandbox=self.sandbox,
            findings=findings,
        )
        for error in summary.errors:
            self._metrics.count_aaa(error.code, error.location)
        await self._keep(request, digests, summary, result.x12_271, findings)
        return _Answer(summary, "fresh")

    async def _build_270(self, request: EligibilityRequest, trace_number: str) -> str:
        control = await self._controls.next()
        envelope = Envelope.from_settings(self._x12, control=control, created=self._now())
        return build_270(request, envelope, trace_number)

    async def _exchange(self, x12_270: str, payer_id: str) -> TransportResult:
        try:
            return await self._transport.exchange(
                x12_270, payer_id=payer_id, deadline=deadline_after(self._deadline_seconds)
            )
        finally:
            self._publish_exchange_breakers(payer_id)

    def _interpret(
        self, x12_271: str, request: EligibilityRequest, interchange: RawInterchange | None = None
    ) -> CoverageSummary:
        """The summary of the 271's first transaction for ``request``; unreadable X12 from the
        clearinghouse is its fault (``ClearinghouseBadResponse``)."""
        transaction = _first_transaction(x12_271, interchange)
        return summarize(transaction, request, table=self._table)

    async def _keep(
        self,
        request: EligibilityRequest,
        digests: CheckDigests,
        summary: CoverageSummary,
        x12_271: str,
        findings: Sequence[ValidationFinding],
    ) -> None:
        """Record the check first (so anyone served from the cache can fetch it), then cache it.

        When the records live in the answer cache (Redis), all of it is one pipeline: Redis applies
        its SETs in order, so the record is still stored before the entries that name it.  The
        single-flight lock we hold (``held_lock``) is released last in that pipeline, after the
        entries its waiters will read; when it cannot be, the flight releases it after us."""
        record = self._record(summary, "fresh", findings)
        ttl = ttl_seconds(summary, last_service_day(request), self._now(), self._policy)
        kept_summary = KeptSummary.of(summary)  # the one serialization of the summary, for every write
        writes: list[CacheWrite] = []
        if ttl > 0:
            exact_key = self._keys.cache_entry(digests.exact)
            writes.append(CacheWrite(exact_key, kept_summary.value_json(), ttl, kept_summary.body))
            if is_general_inquiry(request):
                kept = coverage_entry(summary, x12_271, request, findings)
                writes.append(CacheWrite(self._keys.coverage_entry(digests.coverage), model_json(kept), ttl))
        summary_json = kept_summary.summary_json()
        if not self._checks.stored_in(self._cache):
            await self._checks.save(record, summary_json)
            if writes:
                await self._cache.set_many(writes, release=held_lock())
            return
        record_write = self._checks.write(record, summary_json)
        stored = await self._cache.set_many([record_write, *writes], release=held_lock())
        if not stored[0]:
            await self._checks.keep_here(record)

    def _record(
        self, summary: CoverageSummary, source: Literal["fresh", "reuse"], findings: Sequence[ValidationFinding]
    ) -> CheckRecord:
        return CheckRecord(
            check_id=summary.check_id or new_check_id(),
            created_at=self._now(),
            status=summary.status,
            source=source,
            summary=summary,
            validation=list(findings),
        )

    # --- write-back -----------------------------------------------------------------------------

    async def _write_back(self, summary: CoverageSummary, request: EligibilityRequest) -> None:
        """Hand the answer to the write-back sink and note the outcome on the check record."""
        check_id = summary.check_id or ""
        state = WriteBackState.SKIPPED
        if writeback_wanted(summary):
            try:
                state = WriteBackState(await self.writeback.enqueue(check_id, request, summary))
            except EligibilityError as exc:
                log.warning("write-back of check %s could not be queued: %s", check_id, exc.code)
                state = WriteBackState.FAILED
        record = await self._checks.load(check_id) or self._record(summary, "fresh", ())
        await self._checks.save(record.model_copy(update={"writeback": state}))

    # --- other entry points ---------------------------------------------------------------------

    async def get_check(self, check_id: str) -> CheckRecord:
        """The record of a check answered in the last ``CHECK_RECORD_TTL_SECONDS``; ``NotFound`` otherwise."""
        record = await self._checks.load(check_id) if is_check_id(check_id) else None
        if record is None:
            raise NotFound(
                "no eligibility check with this id: unknown, or older than 7 days",
                details={"check_id": check_id if is_check_id(check_id) else None},
            )
        return record

    async def interpret_271(self, x12_271: str, request: EligibilityRequest | None) -> list[CoverageSummary]:
        """Summaries of a 271 the caller already has: for ``request``'s member, or every member.

        The validation setting applies (strict: ``X12ValidationFailed``; warn: counted, and noted in
        each summary's provenance warnings); unreadable X12 raises ``X12Error`` (the caller's bytes).
        """
        findings = self._validate(x12_271, "incoming")
        transactions = parse_271(x12_271)
        if request is not None:
            summaries = [summarize(tx, request, table=self._table) for tx in transactions]
        else:
            summaries = [summary for tx in transactions for summary in interpret(tx, table=self._table)]
        return [_with_warnings(summary, findings_warning(findings)) for summary in summaries]

    async def readiness(self) -> Readiness:
        """Redis (pinged now), breakers and the limiter, as ``/readyz`` reports them."""
        redis: RedisState = "not_configured"
        if self._redis_configured:
            redis = "ok" if await self._cache.ping() else "down"
        views = self._publish_breakers()
        degraded = isinstance(self._limiter, RedisPayerLimiter) and self._limiter.degraded
        return build_readiness(redis, views, limiter_degraded=degraded, sandbox=self.sandbox)

    async def aclose(self) -> None:
        """Cancel payer calls still in flight (after the shutdown grace period)."""
        closer = getattr(self._flight, "aclose", None)
        if closer is not None:
            await closer()

    # --- small helpers ------------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def _today(self) -> dt.date:
        """Today where the practices are (the cache time zone): the CORE 154 window is relative to it.
        Worked out again only when the clock has moved to another second."""
        second = int(self._clock())
        if second != self._today_at[0]:
            self._today_at = (second, dt.datetime.fromtimestamp(second, self._policy.timezone).date())
        return self._today_at[1]

    def _validate(self, text: str, direction: Direction, mode: Mode | None = None) -> tuple[ValidationFinding, ...]:
        """``check_x12`` (in ``mode``, by default the setting's) with the findings counted, also when
        strict mode refuses the X12."""
        try:
            findings = check_x12(text, self.validation_mode if mode is None else mode, direction)
        except X12ValidationFailed as exc:
            self._count_findings(exc.details.get("findings", []))
            raise
        self._count_findings([finding.model_dump() for finding in findings])
        return findings

    def _count_findings(self, findings: Sequence[Mapping[str, object]]) -> None:
        for severity in _SEVERITIES:
            count = sum(1 for finding in findings if finding.get("severity") == severity)
            if count:
                self._metrics.count_findings(severity, count)

    def _publish_breakers(self) -> list[BreakerView]:
        """Every breaker's state onto its gauge; the views, for readiness."""
        views = self._breakers.snapshot() if self._breakers is not None else []
        for view in views:
            self._publish_breaker(view.scope, view.key, view.phase)
        return views

    def _publish_exchange_breakers(self, payer_id: str) -> None:
        """After an exchange: the two breakers it can have moved (cheap; no snapshot of every payer)."""
        if self._breakers is None:
            return
        self._publish_breaker("payer", payer_id, self._breakers.payer(payer_id).phase)
        if self._endpoint_name is not None:
            self._publish_breaker("endpoint", self._endpoint_name, self._breakers.endpoint(self._endpoint_name).phase)

    def _publish_breaker(self, scope: str, key: str, phase: BreakerPhase) -> None:
        if scope not in ("endpoint", "payer") or self._published.get((scope, key)) == phase.value:
            return
        self._published[(scope, key)] = phase.value
        self._metrics.set_breaker(cast(BreakerKind, scope), key, phase.value)


def _first_transaction(x12_271: str, interchange: RawInterchange | None = None) -> Transaction271:
    """The 271's first transaction, parsed from ``interchange`` (``x12_271`` as read) when given."""
    try:
        transactions = parse_elements(interchange) if interchange is not None else parse_271(x12_271)
    except X12Error as exc:
        raise ClearinghouseBadResponse(
            f"the 271 from the clearinghouse cannot be read: {exc.message}", details={"x12_error": exc.code}
        ) from exc
    if not transactions:
        raise ClearinghouseBadResponse("the clearinghouse's interchange holds no 271 transaction")
    return transactions[0]


def _with_warnings(summary: CoverageSummary, warnings: list[str]) -> CoverageSummary:
    if not warnings:
        return summary
    provenance = summary.provenance.model_copy(update={"warnings": [*summary.provenance.warnings, *warnings]})
    return summary.model_copy(update={"provenance": provenance})
