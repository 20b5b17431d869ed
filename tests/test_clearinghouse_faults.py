"""Every sandbox fault through the real transports and the resilience wrapper, over real sockets.

Each test states what the caller receives (a 271 or which error, with what message), how many
attempts were made, and that the time taken stays inside the deadline.
"""

from __future__ import annotations

import time

import pytest

from eligibility_svc.clearinghouse.resilience import RetryPolicy, scan_aaa
from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    ClearinghouseRateLimited,
    ClearinghouseTimeout,
    ClearinghouseUnavailable,
)
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, Latency, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from tests.support.ch_servers import ENVELOPES, SandboxFactory, make_270, resilient, scenario
from tests.support.redis_server import free_port

PAYER = "SBX10001"
SLACK = 0.25  # scheduling and teardown allowance on a busy CI machine
FAST = RetryPolicy(max_attempts=4, attempt_timeout=1.0, backoff_base=0.02, backoff_max=0.1)


def _x12() -> str:
    return make_270(scenario("01").request)


async def _box(factory: SandboxFactory, *faults: Fault, latency: Latency | None = None) -> RunningSandbox:
    behavior = PayerBehavior(faults=list(faults), latency=latency or Latency())
    return await factory(SandboxClearinghouseConfig(payers={PAYER: behavior}, seed=1))


def _aaa(x12: str) -> list[tuple[str, str]]:
    return [(hit.reason, hit.follow_up) for hit in scan_aaa(x12)]


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_a_payer_that_never_answers_times_out_inside_the_deadline(
    sandbox_factory: SandboxFactory, envelope: str
) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.TIMEOUT))
    policy = RetryPolicy(max_attempts=4, attempt_timeout=0.3, backoff_base=0.02, backoff_max=0.05)
    stack = resilient(envelope, box, policy=policy)
    started = time.monotonic()
    with pytest.raises(ClearinghouseTimeout, match=r"did not answer within 0\.\d s") as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 1.0)
    elapsed = time.monotonic() - started
    await stack.transport.close()
    assert elapsed <= 1.0 + SLACK
    details = caught.value.details
    assert details["attempts"] >= 3, "timeouts are retried while time is left"
    assert set(details["outcomes"]) == {"clearinghouse.timeout"}
    assert box.state.counts[PAYER] == details["attempts"], "every attempt reached the payer"


async def test_the_deadline_cuts_an_attempt_short(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.TIMEOUT))
    stack = resilient("core_mime", box, policy=RetryPolicy(attempt_timeout=8.0))
    started = time.monotonic()
    with pytest.raises(ClearinghouseTimeout) as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 0.4)
    assert time.monotonic() - started <= 0.4 + SLACK
    assert caught.value.details["attempts"] == 1
    await stack.transport.close()


async def test_one_hung_attempt_is_retried_and_the_next_answers(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.TIMEOUT, first=1))
    stack = resilient("core_mime", box, policy=RetryPolicy(attempt_timeout=0.3, backoff_base=0.02))
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert [a.outcome for a in result.attempts] == ["clearinghouse.timeout", "ok"]
    assert result.attempts[0].payload_id != result.attempts[1].payload_id
    assert result.notes == ("retried: clearinghouse.timeout",)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_5xx_is_retried_with_backoff_until_it_clears(sandbox_factory: SandboxFactory, envelope: str) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.HTTP_5XX, first=2, status=503))
    stack = resilient(envelope, box, policy=FAST)
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert [a.outcome for a in result.attempts] == ["clearinghouse.unavailable"] * 2 + ["ok"]
    assert [a.http_status for a in result.attempts] == [503, 503, 200]
    assert len(stack.sleeps) == 2
    assert 0 <= stack.sleeps[0] <= 0.02, "full jitter under base·2^(n-1)"
    assert 0 <= stack.sleeps[1] <= 0.04


async def test_5xx_that_persists_gives_up_after_max_attempts_with_the_status(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.HTTP_5XX, status=502))
    stack = resilient("core_soap", box, policy=FAST)
    with pytest.raises(
        ClearinghouseUnavailable, match=r"HTTP 502: ServerError: the clearinghouse could not reach"
    ) as e:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert e.value.details["attempts"] == 4
    assert e.value.details["gave_up_because"] == "all 4 attempts used"


async def test_slow_5xx_stops_at_the_deadline_not_at_max_attempts(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.HTTP_5XX), latency=Latency(fixed_ms=200))
    stack = resilient("core_mime", box, policy=RetryPolicy(max_attempts=10, attempt_timeout=1.0, backoff_base=0.01))
    started = time.monotonic()
    with pytest.raises((ClearinghouseUnavailable, ClearinghouseTimeout)) as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 0.5)
    assert time.monotonic() - started <= 0.5 + SLACK
    outcomes = caught.value.details["outcomes"]
    assert outcomes[:2] == ["clearinghouse.unavailable"] * 2, "the last try may be cut short by the deadline"
    assert len(outcomes) <= 3
    await stack.transport.close()


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_429_retry_after_is_honoured(sandbox_factory: SandboxFactory, envelope: str) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.RATE_LIMIT, first=1, retry_after_seconds=0.3))
    stack = resilient(envelope, box, policy=FAST)
    started = time.monotonic()
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 2.0)
    await stack.transport.close()
    assert [a.outcome for a in result.attempts] == ["clearinghouse.rate_limited", "ok"]
    assert stack.sleeps == [0.3], "the wait is the server's Retry-After, not our backoff"
    assert time.monotonic() - started >= 0.3


async def test_429_asking_for_longer_than_we_may_wait_is_returned_at_once(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.RATE_LIMIT, retry_after_seconds=30))
    stack = resilient("core_mime", box, policy=FAST)
    started = time.monotonic()
    with pytest.raises(ClearinghouseRateLimited, match=r"throttling us .*wait 30 s") as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 20.0)
    await stack.transport.close()
    assert time.monotonic() - started < 1.0
    assert caught.value.details["attempts"] == 1
    assert caught.value.details["retry_after_seconds"] == 30


async def test_429_whose_wait_outlasts_the_deadline_is_not_waited_for(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.RATE_LIMIT, retry_after_seconds=2))
    stack = resilient("core_mime", box, policy=FAST)
    started = time.monotonic()
    with pytest.raises(ClearinghouseRateLimited) as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 1.0)
    assert time.monotonic() - started < 0.5
    assert caught.value.details["attempts"] == 1
    await stack.transport.close()


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_aaa_42_burst_is_retried_until_the_payer_answers(sandbox_factory: SandboxFactory, envelope: str) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.AAA_42, first=2, follow_up="R"))
    stack = resilient(envelope, box, policy=FAST)
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert [a.outcome for a in result.attempts] == ["aaa:42/R", "aaa:42/R", "ok"]
    assert _aaa(result.x12_271) == [], "the payer's real answer"


async def test_aaa_42_that_never_clears_returns_the_last_271(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.AAA_42, aaa_reason="80", follow_up="P"))
    stack = resilient("core_mime", box, policy=FAST)
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert result.attempt_count == 4
    assert _aaa(result.x12_271) == [("80", "P")]
    assert "try again later" in result.notes[-1]


@pytest.mark.parametrize("follow_up", ["C", "N", "S", "W", "X", "Y"])
async def test_aaa_whose_follow_up_forbids_a_retry_is_returned_after_one_attempt(
    sandbox_factory: SandboxFactory, follow_up: str
) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.AAA_42, follow_up=follow_up))
    stack = resilient("core_mime", box, policy=FAST)
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert result.attempt_count == 1
    assert _aaa(result.x12_271) == [("42", follow_up)]


@pytest.mark.parametrize(("prefix", "attempts"), [("08", 1), ("10", 1), ("11", 4), ("12", 4)])
async def test_fixture_aaa_answers_retry_only_when_they_invite_it(
    sandbox_factory: SandboxFactory, prefix: str, attempts: int
) -> None:
    """72/C and 75/C come back at once; 42/R (2000A) and 80/P (2100A) are asked again."""
    box = await sandbox_factory()
    fixture = scenario(prefix)
    stack = resilient("core_mime", box, policy=FAST)
    result = await stack.transport.exchange(
        make_270(fixture.request), payer_id=fixture.request.payer.id, deadline=time.monotonic() + 2.0
    )
    await stack.transport.close()
    assert result.attempt_count == attempts
    assert _aaa(result.x12_271) == _aaa(fixture.x12_271)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_999_rejection_is_a_bad_response_naming_segment_and_element(
    sandbox_factory: SandboxFactory, envelope: str
) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.REJECT_999))
    stack = resilient(envelope, box, policy=FAST)
    with pytest.raises(ClearinghouseBadResponse) as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    message = caught.value.message
    assert "999 instead of a 271" in message
    assert "IK5 R rejected (one or more segments in error (5))" in message
    assert "segment NM1 at position 9 in loop 2100C: segment has data element errors (8)" in message
    assert "element 9 (data element 67): invalid character in data element (6)" in message
    assert caught.value.details["attempts"] == 1, "the same 270 would be rejected again"


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        (FaultKind.TRUNCATED_271, "cut off before its SE trailer"),
        (FaultKind.MALFORMED_271, "not readable X12: .*ISA"),
        (FaultKind.WRONG_PAYLOAD_TYPE, "expected PayloadType X12_271_Response_005010X279A1.*X12_277_Response"),
    ],
)
@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_damaged_answers_are_bad_responses_not_retried(
    sandbox_factory: SandboxFactory, envelope: str, kind: FaultKind, match: str
) -> None:
    box = await _box(sandbox_factory, Fault(kind=kind))
    stack = resilient(envelope, box, policy=FAST)
    with pytest.raises(ClearinghouseBadResponse, match=match) as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert caught.value.details["attempts"] == 1


async def test_nobody_listening_is_unavailable_after_every_attempt() -> None:
    port = free_port()
    stack = resilient("core_mime", None, url=f"http://127.0.0.1:{port}/core/mime", policy=FAST)
    started = time.monotonic()
    with pytest.raises(ClearinghouseUnavailable, match=f"could not reach the clearinghouse at 127.0.0.1:{port}") as e:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=started + 2.0)
    await stack.transport.close()
    assert e.value.details["attempts"] == 4
    assert e.value.details["reason"] == "connection"
    assert time.monotonic() - started < 1.0


async def test_faults_apply_per_payer_only(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, Fault(kind=FaultKind.HTTP_5XX))
    other = scenario("02")
    stack = resilient("core_mime", box, policy=FAST)
    result = await stack.transport.exchange(
        make_270(other.request), payer_id=other.request.payer.id, deadline=time.monotonic() + 2.0
    )
    await stack.transport.close()
    assert result.attempt_count == 1


async def test_latency_is_fixed_plus_jitter(sandbox_factory: SandboxFactory) -> None:
    box = await _box(sandbox_factory, latency=Latency(fixed_ms=150, jitter_ms=50))
    stack = resilient("core_mime", box, policy=FAST)
    result = await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 2.0)
    await stack.transport.close()
    assert 0.15 <= result.elapsed < 0.2 + SLACK
