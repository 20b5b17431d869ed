"""Retry decisions and circuit breakers: pure rules first, then breakers around the real transport."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from eligibility_svc.clearinghouse.breaker import (
    BreakerBoard,
    BreakerConfig,
    BreakerPhase,
    BreakerState,
    CircuitBreaker,
    admit,
    on_failure,
    on_success,
)
from eligibility_svc.clearinghouse.resilience import (
    AaaHit,
    RetryPolicy,
    aaa_retry_can_help,
    backoff,
    decide_after_answer,
    decide_after_error,
    metric_outcome,
    scan_aaa,
)
from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    ClearinghouseCircuitOpen,
    ClearinghouseError,
    ClearinghouseRateLimited,
    ClearinghouseRejected,
    ClearinghouseTimeout,
    ClearinghouseUnavailable,
)
from eligibility_svc.metrics import Metrics
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, PayerBehavior, SandboxClearinghouseConfig
from tests.support.ch_servers import SandboxFactory, make_270, resilient, scenario

POLICY = RetryPolicy(max_attempts=4, attempt_timeout=8, backoff_base=0.25, backoff_max=4, max_retry_after=10)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- retry decisions (pure) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (ClearinghouseUnavailable("connection refused", details={"reason": "connection"}), True),
        (ClearinghouseUnavailable("HTTP 503", details={"http_status": 503}), True),
        (ClearinghouseTimeout("slow"), True),
        (ClearinghouseRateLimited("429"), True),
        (ClearinghouseRejected("UnAuthorized"), False),
        (ClearinghouseBadResponse("999"), False),
        (ClearinghouseUnavailable("bad certificate", details={"permanent": True}), False),
        (ClearinghouseCircuitOpen("open"), False),
    ],
    ids=lambda v: v.code if isinstance(v, ClearinghouseError) else str(v),
)
def test_only_errors_a_retry_can_fix_are_retried(error: ClearinghouseError, retry: bool) -> None:
    decision = decide_after_error(error, attempt=1, remaining=15, policy=POLICY, rand=0.5)
    assert decision.retry is retry


def test_no_retry_after_the_last_attempt() -> None:
    decision = decide_after_error(ClearinghouseTimeout("slow"), attempt=4, remaining=15, policy=POLICY, rand=0.5)
    assert not decision.retry
    assert decision.reason == "all 4 attempts used"


def test_no_retry_when_the_wait_would_eat_the_deadline() -> None:
    decision = decide_after_error(ClearinghouseTimeout("slow"), attempt=3, remaining=0.5, policy=POLICY, rand=0.99)
    assert not decision.retry  # backoff up to 1.0 s with 0.5 s left


@pytest.mark.parametrize(("asked", "remaining", "retry"), [(2.0, 15, True), (11.0, 15, False), (5.0, 4.0, False)])
def test_retry_after_is_the_wait_within_limits(asked: float, remaining: float, retry: bool) -> None:
    error = ClearinghouseRateLimited("429", details={"retry_after_seconds": asked})
    decision = decide_after_error(error, attempt=1, remaining=remaining, policy=POLICY, rand=0.1)
    assert decision.retry is retry
    if retry:
        assert decision.delay == asked


@given(attempt=st.integers(1, 30), rand=st.floats(0, 1, exclude_max=True))
def test_backoff_is_full_jitter_under_a_capped_exponential(attempt: int, rand: float) -> None:
    delay = backoff(attempt, POLICY, rand)
    assert 0 <= delay < min(POLICY.backoff_max, POLICY.backoff_base * 2 ** (attempt - 1)) + 1e-9


def _hit(reason: str, follow_up: str, loop: str = "2100C") -> AaaHit:
    return AaaHit(loop, "Y", reason, follow_up)


@pytest.mark.parametrize(
    ("hits", "retry"),
    [
        ([], False),
        ([_hit("42", "R", "2100A")], True),
        ([_hit("42", "P", "2000A")], True),
        ([_hit("80", "R", "2100A")], True),
        ([_hit("42", "C")], False),
        ([_hit("42", "N")], False),
        ([_hit("80", "S")], False),
        ([_hit("42", "W")], False),
        ([_hit("42", "X")], False),
        ([_hit("42", "Y")], False),
        ([_hit("72", "C")], False),
        ([_hit("75", "R")], False),  # not found: resubmitting the same data finds nobody
        ([_hit("42", "R", "2100A"), _hit("75", "C")], False),
    ],
)
def test_a_271_is_asked_again_only_for_42_or_80_with_p_or_r(hits: list[AaaHit], retry: bool) -> None:
    assert aaa_retry_can_help(hits) is retry
    assert decide_after_answer(hits, attempt=1, remaining=15, policy=POLICY, rand=0.5).retry is retry


def test_scan_aaa_finds_codes_and_loops_in_the_fixtures() -> None:
    assert [(h.loop, h.reason, h.follow_up) for h in scan_aaa(scenario("11").x12_271)] == [("2000A", "42", "R")]
    assert [(h.loop, h.reason, h.follow_up) for h in scan_aaa(scenario("12").x12_271)] == [("2100A", "80", "P")]
    assert [(h.loop, h.reason) for h in scan_aaa(scenario("10").x12_271)] == [("2100C", "75")]
    assert scan_aaa(scenario("01").x12_271) == []
    assert scan_aaa("not x12") == []


def test_metric_outcomes_are_a_small_closed_set() -> None:
    assert metric_outcome("ok") == "ok"
    assert metric_outcome("aaa:42/R") == "payer_unavailable"
    assert metric_outcome("clearinghouse.timeout") == "timeout"


# --- breaker state machine (pure) -------------------------------------------------------------------------

CONFIG = BreakerConfig(failure_threshold=3, reset_seconds=30)


def test_breaker_opens_after_consecutive_failures_only() -> None:
    state = BreakerState()
    state = on_failure(on_failure(state, CONFIG, 0), CONFIG, 1)
    state = on_success(state)  # a success in between starts the count over
    for t in range(2):
        state = on_failure(state, CONFIG, t)
    assert state.phase is BreakerPhase.CLOSED
    state = on_failure(state, CONFIG, 5)
    assert (state.phase, state.opened_at, state.times_opened) == (BreakerPhase.OPEN, 5, 1)


def test_open_breaker_half_opens_after_the_cool_down_for_one_probe() -> None:
    state = BreakerState(phase=BreakerPhase.OPEN, opened_at=0, times_opened=1)
    allowed, state = admit(state, CONFIG, 29.9)
    assert not allowed
    allowed, state = admit(state, CONFIG, 30)
    assert allowed
    assert state.phase is BreakerPhase.HALF_OPEN
    allowed, _ = admit(state, CONFIG, 31)
    assert not allowed, "one probe at a time"
    allowed, _ = admit(state, CONFIG, 60)
    assert allowed, "a probe that never reported back expires"


def test_half_open_probe_decides() -> None:
    half = BreakerState(phase=BreakerPhase.HALF_OPEN, opened_at=0, probe_started_at=30, times_opened=1)
    assert on_success(half).phase is BreakerPhase.CLOSED
    reopened = on_failure(half, CONFIG, 31)
    assert (reopened.phase, reopened.opened_at, reopened.times_opened) == (BreakerPhase.OPEN, 31, 2)


def test_circuit_breaker_reads_the_injected_clock() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CONFIG, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    assert breaker.phase is BreakerPhase.OPEN
    assert breaker.retry_in() == 30
    clock.advance(30)
    assert breaker.phase is BreakerPhase.HALF_OPEN
    assert breaker.allow()
    breaker.record_success()
    assert breaker.phase is BreakerPhase.CLOSED


# --- breakers around the real transport ----------------------------------------------------------------

PAYER = "SBX10001"
ONE_TRY = RetryPolicy(max_attempts=1, attempt_timeout=1.0)


async def test_endpoint_breaker_opens_then_half_opens_and_closes(sandbox_factory: SandboxFactory) -> None:
    clock = FakeClock()
    box = await sandbox_factory(
        SandboxClearinghouseConfig(payers={PAYER: PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX)])})
    )
    board = BreakerBoard(endpoint=BreakerConfig(3, 30), payer=BreakerConfig(100, 30), clock=clock)
    stack = resilient("core_mime", box, policy=ONE_TRY, breakers=board)
    x12 = make_270(scenario("01").request)

    async def check() -> object:
        return await stack.transport.exchange(x12, payer_id=PAYER, deadline=time.monotonic() + 2)

    for _ in range(3):
        with pytest.raises(ClearinghouseUnavailable):
            await check()
    with pytest.raises(ClearinghouseCircuitOpen, match=r"breaker is open.*tried again in 30\.0 s") as caught:
        await check()
    assert caught.value.details["scope"] == "endpoint"
    assert caught.value.details["attempts"] == 0
    assert box.state.counts[PAYER] == 3, "an open breaker does not call"
    [view] = [v for v in board.snapshot() if v.scope == "endpoint"]
    assert (view.phase, view.times_opened) == (BreakerPhase.OPEN, 1)
    assert board.open_endpoints() == [view.key]

    clock.advance(30)  # half-open: one probe goes out; the payer has recovered
    box.state.config = box.state.config.model_copy(update={"payers": {}})
    assert await check()
    assert board.endpoint(view.key).phase is BreakerPhase.CLOSED
    assert box.state.counts[PAYER] == 4
    await stack.transport.close()


async def test_failed_probe_opens_the_breaker_again(sandbox_factory: SandboxFactory) -> None:
    clock = FakeClock()
    box = await sandbox_factory(
        SandboxClearinghouseConfig(payers={PAYER: PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX)])})
    )
    board = BreakerBoard(endpoint=BreakerConfig(2, 10), payer=BreakerConfig(100, 10), clock=clock)
    stack = resilient("core_soap", box, policy=ONE_TRY, breakers=board)
    x12 = make_270(scenario("01").request)
    for _ in range(2):
        with pytest.raises(ClearinghouseUnavailable):
            await stack.transport.exchange(x12, payer_id=PAYER, deadline=time.monotonic() + 2)
    clock.advance(10)
    with pytest.raises(ClearinghouseUnavailable) as probe:
        await stack.transport.exchange(x12, payer_id=PAYER, deadline=time.monotonic() + 2)
    assert not isinstance(probe.value, ClearinghouseCircuitOpen), "the probe was sent"
    with pytest.raises(ClearinghouseCircuitOpen):
        await stack.transport.exchange(x12, payer_id=PAYER, deadline=time.monotonic() + 2)
    [view] = [v for v in board.snapshot() if v.scope == "endpoint"]
    assert view.times_opened == 2
    await stack.transport.close()


async def test_payer_breaker_stops_one_failing_payer_and_spares_the_others(sandbox_factory: SandboxFactory) -> None:
    clock = FakeClock()
    box = await sandbox_factory(
        SandboxClearinghouseConfig(payers={PAYER: PayerBehavior(faults=[Fault(kind=FaultKind.AAA_42)])})
    )
    board = BreakerBoard(endpoint=BreakerConfig(2, 30), payer=BreakerConfig(2, 60), clock=clock)
    stack = resilient("core_mime", box, policy=ONE_TRY, breakers=board)
    for _ in range(2):  # the payer answers "unable to respond now": a 271, returned, and counted
        result = await stack.transport.exchange(
            make_270(scenario("01").request), payer_id=PAYER, deadline=time.monotonic() + 2
        )
        assert [(h.reason, h.follow_up) for h in scan_aaa(result.x12_271)] == [("42", "R")]
    with pytest.raises(ClearinghouseCircuitOpen, match=f"payer {PAYER}") as caught:
        await stack.transport.exchange(make_270(scenario("01").request), payer_id=PAYER, deadline=time.monotonic() + 2)
    assert caught.value.details["scope"] == "payer"
    other = scenario("02")
    assert await stack.transport.exchange(
        make_270(other.request), payer_id=other.request.payer.id, deadline=time.monotonic() + 2
    )
    phases = {(v.scope, v.key): v.phase for v in board.snapshot()}
    assert phases[("payer", PAYER)] is BreakerPhase.OPEN
    assert phases[("payer", other.request.payer.id)] is BreakerPhase.CLOSED
    assert board.open_endpoints() == []
    await stack.transport.close()


async def test_attempts_and_retries_reach_the_metrics(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory(
        SandboxClearinghouseConfig(payers={PAYER: PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX, first=1)])})
    )
    registry = CollectorRegistry()
    stack = resilient("core_mime", box, policy=RetryPolicy(backoff_base=0.01), observer=Metrics(registry))
    await stack.transport.exchange(make_270(scenario("01").request), payer_id=PAYER, deadline=time.monotonic() + 2)
    await stack.transport.close()
    retries = registry.get_sample_value(
        "eligibility_clearinghouse_retries_total", {"payer": PAYER, "reason": "unavailable"}
    )
    assert retries == 1
    for outcome in ("unavailable", "ok"):
        labels = {"payer": PAYER, "outcome": outcome}
        assert registry.get_sample_value("eligibility_clearinghouse_request_duration_seconds_count", labels) == 1


async def test_an_open_payer_breaker_does_not_spend_the_endpoints_half_open_probe() -> None:
    clock = FakeClock()
    board = BreakerBoard(endpoint=BreakerConfig(1, 10), payer=BreakerConfig(1, 60), clock=clock)
    stack = resilient("core_mime", None, url="http://127.0.0.1:9/never-called", breakers=board, clock=clock)
    endpoint = board.endpoint(stack.transport.endpoint_name)
    endpoint.record_failure()
    board.payer(PAYER).record_failure()
    clock.advance(10)  # the endpoint may probe now; the payer stays open for 50 s more
    with pytest.raises(ClearinghouseCircuitOpen, match=f"payer {PAYER}"):
        await stack.transport.exchange("ISA", payer_id=PAYER, deadline=time.monotonic() + 1)
    assert endpoint.phase is BreakerPhase.HALF_OPEN
    assert endpoint.state.probe_started_at is None, "the probe is still there for a call that can go out"
    await stack.transport.close()
