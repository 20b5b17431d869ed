"""Retries inside the deadline, only where a retry can help; breakers and per-payer limits around each try.

When to try again (pure, ``decide_after_error`` / ``decide_after_answer``):

=======================================  =============================================================
what happened                            what we do
=======================================  =============================================================
connection failed, HTTP 5xx              retry after exponential backoff with full jitter
attempt timed out, time left             retry after backoff
HTTP 429                                 retry after ``Retry-After`` (or backoff); give up at once if
                                         it asks for more than the deadline or ``max_retry_after`` allows
271 with AAA 42/80 and follow-up P or R  retry after backoff; when tries run out, return that 271
271 with any other AAA (follow-up C, N,  return it: the payer has answered, the caller acts on it
S, Y, W, X ...)
envelope rejected, 401/403, bad 271,     raise at once: the same request would fail the same way
999, TLS verification failed
breaker open                             raise ``ClearinghouseCircuitOpen`` without calling
=======================================  =============================================================

Each attempt gets ``min(attempt_timeout, time left)``; no attempt starts with less than
``min_attempt_seconds`` left, and no backoff sleeps past the deadline.  Every error raised carries
``details["attempts"]``, ``details["outcomes"]`` and ``details["elapsed_seconds"]``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from eligibility_svc.backoff import full_jitter
from eligibility_svc.clearinghouse.breaker import BreakerBoard, BreakerPhase
from eligibility_svc.clearinghouse.limiter import PayerLimiter
from eligibility_svc.clearinghouse.transport import Attempt, Transport, TransportResult
from eligibility_svc.errors import (
    ClearinghouseCircuitOpen,
    ClearinghouseError,
    ClearinghouseRateLimited,
    ClearinghouseTimeout,
    ClearinghouseUnavailable,
    X12Error,
)
from eligibility_svc.x12.reader import RawInterchange, element_at, read_elements

RETRYABLE_AAA_REASONS = frozenset({"42", "80"})  # unable to respond now / no response from the payer
RETRYABLE_FOLLOW_UPS = frozenset({"P", "R"})  # please resubmit original / resubmission allowed
PAYER_DOWN_REASONS = frozenset({"42", "80"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    attempt_timeout: float = 8.0  # seconds, each attempt, inside the deadline
    backoff_base: float = 0.25  # first backoff ceiling; doubles per attempt
    backoff_max: float = 4.0
    max_retry_after: float = 10.0  # a longer Retry-After means: give up now, tell the caller
    min_attempt_seconds: float = 0.05  # do not start an attempt with less time than this


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AaaHit:
    """One AAA segment of a 271, as far as retrying is concerned."""

    loop: str  # best guess from the HL level: "2000A/2100A", "2100B", "2100C", "2110C", "2100D" ...
    valid: str  # AAA01
    reason: str  # AAA03
    follow_up: str  # AAA04


# --- pure decisions ----------------------------------------------------------------------------------


def scan_aaa(x12_271: str, interchange: RawInterchange | None = None) -> list[AaaHit]:
    """Every AAA in the 271, found with the segment reader only (no full parse); [] if unreadable.
    ``interchange``: the 271 as already read, if it was."""
    if "AAA" not in x12_271:  # a segment's id is its text as sent: no such text, no AAA segment
        return []
    if interchange is None:
        try:
            interchange = read_elements(x12_271)
        except X12Error:
            return []
    hits: list[AaaHit] = []
    for transaction in interchange.transactions:
        loop = ""
        for row in interchange.rows[transaction.start : transaction.end]:
            loop = _next_loop(loop, row[0], element_at(row, 3))
            if row[0] == "AAA":
                hits.append(AaaHit(loop, element_at(row, 1), element_at(row, 3), element_at(row, 4)))
    return hits


_LEVELS = {"20": "A", "21": "B", "22": "C", "23": "D"}


def _next_loop(loop: str, segment_id: str, hl03: str) -> str:
    if segment_id == "HL":
        return f"2000{_LEVELS.get(hl03, '?')}"
    level = loop[-1:] if loop else ""
    if segment_id == "NM1" and loop.startswith("2000"):
        return f"2100{level}"
    if segment_id == "EB" and level in ("C", "D"):
        return f"2110{level}"
    return loop


def aaa_retry_can_help(hits: Sequence[AaaHit]) -> bool:
    """True when the payer said "not now, send it again" (42/80 with P/R) and nothing else."""
    return bool(hits) and all(h.reason in RETRYABLE_AAA_REASONS and h.follow_up in RETRYABLE_FOLLOW_UPS for h in hits)


def payer_down(hits: Sequence[AaaHit]) -> bool:
    """The payer (not the data) failed: counts against the payer's breaker."""
    return any(h.reason in PAYER_DOWN_REASONS for h in hits)


def backoff(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Full jitter: uniform in [0, min(max, base·2^(attempt-1))).  ``rand`` is in [0, 1)."""
    return full_jitter(attempt, policy.backoff_base, policy.backoff_max, rand)


def decide_after_error(
    error: ClearinghouseError, *, attempt: int, remaining: float, policy: RetryPolicy, rand: float
) -> Decision:
    """Whether to try again after ``error`` on attempt number ``attempt`` with ``remaining`` seconds left."""
    if not error.retryable or error.details.get("permanent"):
        return Decision(False, reason=f"{error.code} is not retryable")
    if attempt >= policy.max_attempts:
        return Decision(False, reason=f"all {policy.max_attempts} attempts used")
    delay = backoff(attempt, policy, rand)
    if isinstance(error, ClearinghouseRateLimited):
        asked = error.details.get("retry_after_seconds")
        if isinstance(asked, int | float):
            if asked > policy.max_retry_after:
                return Decision(False, reason=f"Retry-After {asked:g} s exceeds {policy.max_retry_after:g} s")
            delay = float(asked)
    return _if_time_allows(delay, remaining, policy)


def decide_after_answer(
    hits: Sequence[AaaHit], *, attempt: int, remaining: float, policy: RetryPolicy, rand: float
) -> Decision:
    """Whether a delivered 271 should be asked for again (AAA 42/80 with P/R only)."""
    if not aaa_retry_can_help(hits):
        return Decision(False, reason="the payer answered")
    if attempt >= policy.max_attempts:
        return Decision(False, reason=f"all {policy.max_attempts} attempts used")
    return _if_time_allows(backoff(attempt, policy, rand), remaining, policy)


def _if_time_allows(delay: float, remaining: float, policy: RetryPolicy) -> Decision:
    if remaining - delay < policy.min_attempt_seconds:
        return Decision(False, reason=f"{remaining:.2f} s left is not enough for a wait of {delay:.2f} s and a try")
    return Decision(True, delay=delay, reason="retry")


def attempt_deadline(deadline: float, now: float, policy: RetryPolicy) -> float:
    return min(deadline, now + policy.attempt_timeout)


# --- the wrapper (I/O) -------------------------------------------------------------------------------


class Observer(Protocol):
    """Where attempts and retries are reported; ``metrics.Metrics`` has exactly these two methods."""

    def observe_clearinghouse(self, payer: str, outcome: str, seconds: float) -> None: ...

    def count_retry(self, payer: str, reason: str) -> None: ...


class _Unobserved:
    def observe_clearinghouse(self, payer: str, outcome: str, seconds: float) -> None:
        return None

    def count_retry(self, payer: str, reason: str) -> None:
        return None


def metric_outcome(outcome: str) -> str:
    """A bounded label for an attempt outcome: ``ok``, ``payer_unavailable`` or the error code's last part."""
    if outcome.startswith("aaa:"):
        return "payer_unavailable"
    return outcome.rsplit(".", 1)[-1]


@dataclass(slots=True)
class _Run:
    """Book-keeping of one ``exchange``: when it began and what each attempt did."""

    started: float
    attempts: list[Attempt]

    def outcomes(self) -> list[str]:
        return [a.outcome for a in self.attempts]


class ResilientTransport:
    """Wraps a one-attempt transport with breakers, per-payer limits and retries inside the deadline."""

    def __init__(
        self,
        inner: Transport,
        *,
        endpoint_name: str,
        envelope: str,
        policy: RetryPolicy,
        breakers: BreakerBoard,
        limiter: PayerLimiter,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        observer: Observer | None = None,
    ) -> None:
        self.inner = inner
        self.endpoint_name = endpoint_name
        self.envelope = envelope
        self.policy = policy
        self.breakers = breakers
        self.limiter = limiter
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self.observer: Observer = observer or _Unobserved()

    async def exchange(self, x12_270: str, *, payer_id: str, deadline: float) -> TransportResult:
        """Try until a 271 worth returning, an error not worth retrying, or no time or tries left."""
        run = _Run(self._clock(), [])
        number = 0
        while True:
            number += 1
            self._check_breakers(payer_id, run)
            try:
                result, hits = await self._attempt(x12_270, payer_id, deadline, number, run)
            except ClearinghouseError as error:
                decision = decide_after_error(
                    error, attempt=number, remaining=deadline - self._clock(), policy=self.policy, rand=self._rand()
                )
                if not decision.retry:
                    self._annotate(error, run, decision.reason)
                    raise
                self.observer.count_retry(payer_id, metric_outcome(error.code))
                await self._sleep(decision.delay)
                continue
            decision = decide_after_answer(
                hits, attempt=number, remaining=deadline - self._clock(), policy=self.policy, rand=self._rand()
            )
            if not decision.retry:
                return self._result(result, run, hits)
            self.observer.count_retry(payer_id, "payer_unavailable")
            await self._sleep(decision.delay)

    async def _attempt(
        self, x12_270: str, payer_id: str, deadline: float, number: int, run: _Run
    ) -> tuple[TransportResult, list[AaaHit]]:
        """One try through the limiter, recorded in ``run`` and reported to the breakers."""
        begun = self._clock()
        until = attempt_deadline(deadline, begun, self.policy)
        try:
            async with self.limiter.slot(payer_id, deadline=until):
                result = await self.inner.exchange(x12_270, payer_id=payer_id, deadline=until)
        except ClearinghouseError as error:
            self._record_error(run, number, begun, error)
            self.observer.observe_clearinghouse(payer_id, metric_outcome(error.code), self._clock() - begun)
            self._report_failure(error, payer_id)
            raise
        hits = scan_aaa(result.x12_271, result.interchange)
        outcome = "ok" if not payer_down(hits) else "aaa:" + ",".join(f"{h.reason}/{h.follow_up}" for h in hits)
        status = result.attempts[-1].http_status if result.attempts else None
        took = self._clock() - begun
        run.attempts.append(Attempt(number, result.payload_id, begun - run.started, took, outcome, status))
        self.observer.observe_clearinghouse(payer_id, metric_outcome(outcome), took)
        self._report_answer(payer_id, payer_down(hits))
        return result, hits

    def _record_error(self, run: _Run, number: int, begun: float, error: ClearinghouseError) -> None:
        status = error.details.get("http_status")
        run.attempts.append(
            Attempt(
                number,
                str(error.details.get("payload_id", "")),
                begun - run.started,
                self._clock() - begun,
                error.code,
                status if isinstance(status, int) else None,
            )
        )

    def _check_breakers(self, payer_id: str, run: _Run) -> None:
        """Raise ``ClearinghouseCircuitOpen`` unless both breakers let this attempt through.

        An open breaker is looked for first, so a half-open one does not spend its single probe on
        an attempt the other breaker then stops.
        """
        scoped = [("endpoint", self.endpoint_name), ("payer", payer_id)]
        breakers = [(scope, key, self.breakers.get(scope, key)) for scope, key in scoped]
        open_first = sorted(breakers, key=lambda item: item[2].phase is not BreakerPhase.OPEN)
        for scope, key, breaker in open_first:
            if not breaker.allow():
                wait = breaker.retry_in()
                subject = f"the clearinghouse endpoint {key}" if scope == "endpoint" else f"payer {key}"
                error = ClearinghouseCircuitOpen(
                    f"not calling {subject}: its circuit breaker is open after repeated failures; "
                    f"it will be tried again in {wait:.1f} s",
                    details={"scope": scope, "key": key, "retry_in_seconds": round(wait, 3)},
                )
                raise self._annotate(error, run, "circuit open")

    def _report_failure(self, error: ClearinghouseError, payer_id: str) -> None:
        """Connection failures and 5xx count against the endpoint; timeouts and 5xx against the payer."""
        if error.details.get("local") or isinstance(error, ClearinghouseCircuitOpen):
            return
        if isinstance(error, ClearinghouseUnavailable):
            self.breakers.endpoint(self.endpoint_name).record_failure()
            if isinstance(error.details.get("http_status"), int):
                self.breakers.payer(payer_id).record_failure()
        elif isinstance(error, ClearinghouseTimeout):
            self.breakers.payer(payer_id).record_failure()

    def _report_answer(self, payer_id: str, down: bool) -> None:
        self.breakers.endpoint(self.endpoint_name).record_success()
        if down:
            self.breakers.payer(payer_id).record_failure()
        else:
            self.breakers.payer(payer_id).record_success()

    def _annotate(self, error: ClearinghouseError, run: _Run, reason: str) -> ClearinghouseError:
        error.details.update(
            attempts=len(run.attempts),
            outcomes=run.outcomes(),
            elapsed_seconds=round(self._clock() - run.started, 3),
            gave_up_because=reason,
        )
        return error

    def _result(self, result: TransportResult, run: _Run, hits: Sequence[AaaHit]) -> TransportResult:
        notes = tuple(f"retried: {o}" for o in run.outcomes()[:-1])
        if aaa_retry_can_help(hits):
            notes += ("the payer still could not answer when the tries ran out (AAA 42/80); try again later",)
        return TransportResult(
            x12_271=result.x12_271,
            payload_id=result.payload_id,
            attempts=tuple(run.attempts),
            elapsed=self._clock() - run.started,
            envelope=result.envelope,
            response_payload_id=result.response_payload_id,
            notes=notes,
            interchange=result.interchange,
        )

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()
