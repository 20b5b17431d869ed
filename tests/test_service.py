"""``EligibilityService`` end to end: a real redis-server, the sandbox clearinghouse over HTTP.

Payer calls are counted at the sandbox (its request counts), cache entries and TTLs read from
Redis itself, metrics from the runtime's own registry.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from eligibility_svc.cache import CacheEntry, check_digests
from eligibility_svc.errors import (
    AthenaError,
    ClearinghouseBadResponse,
    ClearinghouseUnavailable,
    InquiryInvalid,
    NotFound,
    X12ValidationFailed,
)
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, Patient, Subscriber
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.service import (
    CoverageEntry,
    UnconfiguredWriteBack,
    WriteBackState,
    build_readiness,
    can_reuse,
    check_x12,
    is_general_inquiry,
    lookup_result,
    shareable,
)
from eligibility_svc.x12.procedures import default_table
from tests.support.ch_servers import SandboxFactory, make_270, scenario
from tests.support.service_peers import (
    ENCRYPTION_KEY,
    PRACTICE_ZONE,
    Clock,
    fixtures_with,
    isa13_sent,
    opened,
    payer_calls,
    request_for,
    sample,
    settings_for,
    today,
)

PPO = "SBX10001"  # scenario 01: active PPO whose 271 carries the CORE 154 service types
CHECKS = "eligibility_checks_total"
LOOKUPS = "eligibility_cache_lookups_total"


async def cache_keys(redis: Redis, kind: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"elig:{kind}:*")]


# --- the cache ------------------------------------------------------------------------------------


async def test_second_identical_check_is_answered_from_the_cache(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    request = request_for("01")
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        first = await runtime.service.verify(request)
        second = await runtime.service.verify(request)

        assert payer_calls(sandbox, PPO) == 1
        assert first.status is CheckStatus.ACTIVE
        assert not first.provenance.cached
        assert first.provenance.payer_response_ms is not None
        assert second.provenance.cached
        assert second.provenance.age_seconds is not None
        assert second.provenance.age_seconds >= 0
        assert second.check_id == first.check_id  # the id names the payer answer
        assert second.model_dump(exclude={"provenance"}) == first.model_dump(exclude={"provenance"})
        assert sample(runtime, LOOKUPS, result="miss") == 1
        assert sample(runtime, LOOKUPS, result="hit") == 1
        assert sample(runtime, CHECKS, status="active", source="cache") == 1
        assert sample(runtime, CHECKS, status="active", source="fresh") == 1
    assert len(await cache_keys(redis_client, "cache")) == 1


async def test_force_refresh_asks_the_payer_and_replaces_the_entry(sandbox: RunningSandbox, redis_url: str) -> None:
    request = request_for("01")
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        first = await runtime.service.verify(request)
        refreshed = await runtime.service.verify(request.model_copy(update={"force_refresh": True}))
        after = await runtime.service.verify(request)

        assert payer_calls(sandbox, PPO) == 2
        assert not refreshed.provenance.cached
        assert refreshed.check_id != first.check_id
        assert after.provenance.cached
        assert after.check_id == refreshed.check_id  # the refreshed answer replaced the old one
        assert sample(runtime, LOOKUPS, result="bypass") == 1


async def test_max_age_serves_only_younger_answers(sandbox: RunningSandbox, redis_url: str) -> None:
    clock = Clock()
    request = request_for("01")
    young_enough = request.model_copy(update={"max_age_seconds": 600})
    async with opened(settings_for(sandbox, redis_url=redis_url), clock=clock) as runtime:
        await runtime.service.verify(request)
        clock.offset = 300  # the kept answer now looks five minutes old
        served = await runtime.service.verify(young_enough)
        assert served.provenance.cached
        assert served.provenance.age_seconds is not None
        assert 299 < served.provenance.age_seconds < 330
        assert payer_calls(sandbox, PPO) == 1

        fresh = await runtime.service.verify(request.model_copy(update={"max_age_seconds": 120}))
        assert not fresh.provenance.cached
        assert payer_calls(sandbox, PPO) == 2
        assert sample(runtime, LOOKUPS, result="stale") == 1

        await runtime.service.verify(request.model_copy(update={"max_age_seconds": 0}))
        assert payer_calls(sandbox, PPO) == 3  # max_age 0 never serves a kept answer, as in HTTP


async def test_memory_cache_on_the_embedded_wiring(sandbox: RunningSandbox) -> None:
    request = request_for("01")
    async with opened(settings_for(sandbox)) as runtime:
        await runtime.service.verify(request)
        second = await runtime.service.verify(request)
        assert second.provenance.cached
        assert payer_calls(sandbox, PPO) == 1


# --- coverage-aware reuse -------------------------------------------------------------------------


async def test_a_procedure_is_answered_from_an_earlier_stc_30_answer(sandbox: RunningSandbox, redis_url: str) -> None:
    general = request_for("01", service_types=["30"])
    office_visit = request_for("01", service_types=[], procedures=["99213"])
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        first = await runtime.service.verify(general)
        reused = await runtime.service.verify(office_visit)
        assert payer_calls(sandbox, PPO) == 1

        direct = await runtime.service.verify(office_visit.model_copy(update={"force_refresh": True}))
        assert payer_calls(sandbox, PPO) == 2

        assert reused.provenance.cached
        assert reused.check_id not in (None, first.check_id)
        assert reused.provenance.received_at == first.provenance.received_at
        [answer] = reused.services
        assert (answer.code, answer.service_types[0]) == ("99213", "98")
        assert answer.in_network.copay is not None
        # The same per-procedure answer the payer gives when asked about the procedure itself.
        assert [s.model_dump() for s in reused.services] == [s.model_dump() for s in direct.services]
        assert reused.status is direct.status
        assert sample(runtime, LOOKUPS, result="reuse") == 1
        assert sample(runtime, CHECKS, status="active", source="reuse") == 1
        record = await runtime.service.get_check(reused.check_id or "")
        assert record.source == "reuse"
        assert record.summary.services == reused.services


async def test_an_unreadable_exact_entry_falls_back_to_reuse(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    general = request_for("01", service_types=["30"])
    office_visit = request_for("01", service_types=[], procedures=["99213"])
    settings = settings_for(sandbox, redis_url=redis_url)
    async with opened(settings) as runtime:
        await runtime.service.verify(general)
        await runtime.service.verify(office_visit.model_copy(update={"force_refresh": True}))
        assert payer_calls(sandbox, PPO) == 2
        # The exact entry is there but cannot be read (a rotated key, say): one read found it, so the
        # coverage entry was not carried along and is read next; the answer comes from it.
        digest = check_digests(office_visit, settings.cache.key_secret.get_secret_value().encode()).exact
        exact_key = RedisKeys(settings.redis_key_prefix).cache_entry(digest)
        assert await redis_client.exists(exact_key) == 1
        await redis_client.set(exact_key, b"not ours", keepttl=True)
        reused = await runtime.service.verify(office_visit)
        assert payer_calls(sandbox, PPO) == 2
        assert reused.provenance.cached
        assert sample(runtime, LOOKUPS, result="reuse") == 1


async def test_a_procedure_without_rows_in_the_kept_answer_goes_to_the_payer(
    sandbox: RunningSandbox, redis_url: str
) -> None:
    mri = request_for("01", service_types=[], procedures=["70551"])  # maps to STC 62: not in scenario 01's 271
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        await runtime.service.verify(request_for("01", service_types=["30"]))
        answer = await runtime.service.verify(mri)
        assert payer_calls(sandbox, PPO) == 2
        assert not answer.provenance.cached
        assert sample(runtime, LOOKUPS, result="reuse") == 0


async def test_reuse_is_not_across_patients(sandbox: RunningSandbox, redis_url: str) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        await runtime.service.verify(request_for("01", service_types=["30"]))
        other = request_for("02", service_types=[], procedures=["99213"])
        answer = await runtime.service.verify(other)
        assert not answer.provenance.cached
        assert payer_calls(sandbox) == 2


async def test_a_member_not_found_is_not_found_for_a_procedure_either(sandbox: RunningSandbox, redis_url: str) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        first = await runtime.service.verify(request_for("10"))  # STC 30: AAA 75 subscriber not found
        reused = await runtime.service.verify(request_for("10", service_types=[], procedures=["99213"]))
    assert first.status is reused.status is CheckStatus.NOT_FOUND
    assert reused.provenance.cached
    assert [e.code for e in reused.errors] == ["75"]
    assert payer_calls(sandbox) == 1


async def test_reuse_keeps_to_the_place_of_service_asked(sandbox: RunningSandbox, redis_url: str) -> None:
    office = request_for("01", service_types=["30"], procedures=[])
    office = office.model_copy(update={"service": office.service.model_copy(update={"place_of_service": "11"})})
    visit = request_for("01", service_types=[], procedures=["99213"])
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        await runtime.service.verify(office)
        at_home = visit.model_copy(update={"service": visit.service.model_copy(update={"place_of_service": "12"})})
        assert not (await runtime.service.verify(at_home)).provenance.cached  # asked for another place
        at_office = visit.model_copy(update={"service": visit.service.model_copy(update={"place_of_service": "11"})})
        assert (await runtime.service.verify(at_office)).provenance.cached
    assert payer_calls(sandbox, PPO) == 2


# --- what is cached, for how long -----------------------------------------------------------------


async def test_a_retryable_aaa_42_is_answered_but_never_cached(
    sandbox_factory: SandboxFactory, redis_url: str, redis_client: Redis
) -> None:
    behavior = PayerBehavior(faults=[Fault(kind=FaultKind.AAA_42, follow_up="R")])
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, payers={PPO: behavior}))
    request = request_for("01")
    async with opened(settings_for(box, redis_url=redis_url)) as runtime:
        first = await runtime.service.verify(request)
        second = await runtime.service.verify(request)

        assert [(e.code, e.retryable) for e in first.errors] == [("42", True)]
        assert not second.provenance.cached
        assert payer_calls(box, PPO) == 2
        assert sample(runtime, "eligibility_aaa_errors_total", code="42", location="payer") == 2
    assert await cache_keys(redis_client, "cache") == []
    assert await cache_keys(redis_client, "cov") == []
    assert len(await cache_keys(redis_client, "check")) == 2  # still retrievable


async def test_not_found_is_cached_with_the_short_ttl(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    request = request_for("10")  # AAA 75: subscriber not found
    async with opened(settings_for(sandbox, redis_url=redis_url, negative_ttl_seconds=120)) as runtime:
        summary = await runtime.service.verify(request)
        again = await runtime.service.verify(request)
    assert summary.status is CheckStatus.NOT_FOUND
    assert again.provenance.cached
    [key] = await cache_keys(redis_client, "cache")
    assert 110_000 < await redis_client.pttl(key) <= 120_000


async def test_active_coverage_is_kept_until_the_end_of_the_service_day(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url, negative_ttl_seconds=60)) as runtime:
        await runtime.service.verify(request_for("01"))
    [key] = await cache_keys(redis_client, "cache")
    midnight = dt.datetime.combine(today() + dt.timedelta(days=1), dt.time(0), tzinfo=PRACTICE_ZONE)
    left = (midnight - dt.datetime.now(dt.UTC)).total_seconds()
    assert abs(await redis_client.pttl(key) / 1000 - min(left, 24 * 3600)) < 30


async def test_cache_keys_hold_no_patient_data(sandbox: RunningSandbox, redis_url: str, redis_client: Redis) -> None:
    requests = [
        request_for("01", service_types=["30"]),
        request_for("01", service_types=[], procedures=["99213"]),
        request_for("14"),  # a dependent: subscriber and patient
        request_for("10"),
    ]
    async with opened(settings_for(sandbox, redis_url=redis_url, encryption_key=ENCRYPTION_KEY)) as runtime:
        for request in requests:
            await runtime.service.verify(request)
    keys = [key async for key in redis_client.scan_iter(match="*")]
    assert {key.split(b":")[1] for key in keys} >= {b"cache", b"cov", b"check", b"ctl"}
    values = [await redis_client.get(key) for key in keys if not key.startswith(b"elig:limit")]
    for request in requests:
        for secret in _phi(request):
            for key in keys:
                assert secret not in key.upper(), key
            if len(secret) < 6:  # random ciphertext holds a given 3-5 letters by chance too often to test
                continue
            for value in values:  # encrypted values: nothing readable either
                assert value is None or secret not in value.upper()


def _phi(request: EligibilityRequest) -> list[bytes]:
    people: list[Patient | Subscriber] = [request.patient, *([request.subscriber] if request.subscriber else [])]
    found = [request.member_id or ""]
    for person in people:
        found += [person.last_name, person.first_name or ""]
        if person.birth_date:
            found += [person.birth_date.isoformat(), person.birth_date.strftime("%Y%m%d")]
    return [text.upper().encode() for text in found if text]


# --- x12 validation ------------------------------------------------------------------------------

BAD_EB06 = ("EB*C*IND*30***23*1500*****Y~", "EB*C*IND*30***99*1500*****Y~")  # 99 is no time period code


async def test_strict_validation_reports_a_bad_271_as_the_clearinghouse_s_fault(
    sandbox_factory: SandboxFactory, tmp_path: Path, redis_url: str, redis_client: Redis
) -> None:
    fixtures = fixtures_with(tmp_path, "01", *BAD_EB06)
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, fixtures_dir=fixtures))
    async with opened(settings_for(box, redis_url=redis_url, validation="strict")) as runtime:
        with pytest.raises(ClearinghouseBadResponse) as caught:
            await runtime.service.verify(request_for("01"))
        assert sample(runtime, "eligibility_x12_validation_findings_total", severity="error") == 1
        assert sample(runtime, CHECKS, status="error", source="fresh") == 1
    findings = caught.value.details["findings"]
    assert [(f["segment_id"], f["element"], f["loop_id"]) for f in findings] == [("EB", "EB06", "2110C")]
    assert caught.value.details["direction"] == "incoming"
    assert await cache_keys(redis_client, "cache") == []


async def test_a_271_cut_off_or_broken_on_the_way_is_a_bad_response(sandbox_factory: SandboxFactory) -> None:
    faults = [Fault(kind=FaultKind.MALFORMED_271, first=1), Fault(kind=FaultKind.TRUNCATED_271, first=2)]
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, payers={PPO: PayerBehavior(faults=faults)}))
    async with opened(settings_for(box, validation="strict")) as runtime:
        for _ in range(2):
            with pytest.raises(ClearinghouseBadResponse):
                await runtime.service.verify(request_for("01"))
        assert (await runtime.service.verify(request_for("01"))).status is CheckStatus.ACTIVE


async def test_warn_validation_records_findings_on_the_check(
    sandbox_factory: SandboxFactory, tmp_path: Path, redis_url: str
) -> None:
    fixtures = fixtures_with(tmp_path, "01", *BAD_EB06)
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, fixtures_dir=fixtures))
    async with opened(settings_for(box, redis_url=redis_url, validation="warn")) as runtime:
        summary = await runtime.service.verify(request_for("01"))
        record = await runtime.service.get_check(summary.check_id or "")
        assert sample(runtime, "eligibility_x12_validation_findings_total", severity="error") == 1
    assert summary.status is CheckStatus.ACTIVE
    assert [(f.direction, f.element, f.code) for f in record.validation] == [("incoming", "EB06", "7")]
    assert any("x12 validation: 1 error(s)" in w for w in summary.provenance.warnings)


async def test_validation_off_records_nothing(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    box = await sandbox_factory(
        SandboxClearinghouseConfig(seed=7, fixtures_dir=fixtures_with(tmp_path, "01", *BAD_EB06))
    )
    async with opened(settings_for(box, validation="off")) as runtime:
        summary = await runtime.service.verify(request_for("01"))
        record = await runtime.service.get_check(summary.check_id or "")
    assert record.validation == []
    assert summary.provenance.warnings == []


async def test_interpret_271_applies_the_validation_setting(sandbox: RunningSandbox) -> None:
    fixture = scenario("01")
    broken = fixture.x12_271.replace(*BAD_EB06)
    async with opened(settings_for(sandbox, validation="warn")) as runtime:
        [summary] = await runtime.service.interpret_271(fixture.x12_271, fixture.request)
        assert summary.status is CheckStatus.ACTIVE
        assert [a.code for a in summary.services] == ["30", "98", "UC"]
        assert summary.provenance.warnings == []
        [warned] = await runtime.service.interpret_271(broken, None)
        assert any("x12 validation" in w for w in warned.provenance.warnings)
    async with opened(settings_for(sandbox, validation="strict")) as runtime:
        with pytest.raises(X12ValidationFailed):
            await runtime.service.interpret_271(broken, fixture.request)
    assert payer_calls(sandbox) == 0


# --- check records and write-back -----------------------------------------------------------------


async def test_check_records_are_retrievable_and_expire_after_a_week(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url, encryption_key=ENCRYPTION_KEY)) as runtime:
        summary = await runtime.service.verify(request_for("01"))
        record = await runtime.service.get_check(summary.check_id or "")
        assert record.check_id == summary.check_id
        assert record.status is CheckStatus.ACTIVE
        assert record.source == "fresh"
        assert record.writeback is WriteBackState.NOT_REQUESTED
        assert record.summary == summary
        for unknown in ("0" * 32, "not-a-check-id", "../../etc"):
            with pytest.raises(NotFound):
                await runtime.service.get_check(unknown)
    ttl = await redis_client.ttl(f"elig:check:{summary.check_id}")
    assert 7 * 24 * 3600 - 60 < ttl <= 7 * 24 * 3600


async def test_records_keep_their_json_as_the_attachment_and_older_records_still_read(
    sandbox: RunningSandbox, redis_url: str
) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url, encryption_key=ENCRYPTION_KEY)) as runtime:
        summary = await runtime.service.verify(request_for("01"))
        kept = await runtime.cache.get(f"elig:check:{summary.check_id}")
        assert kept is not None
        assert kept.value == {"format": "record/1"}
        assert CoverageSummary.model_validate(json.loads(kept.attachment)["summary"]) == summary

        # A record written by a release that kept the record itself as the entry's value.
        older = (await runtime.service.get_check(summary.check_id or "")).model_dump(mode="json")
        older["check_id"] = "0123456789abcdef0123456789abcdef"
        await runtime.cache.set(f"elig:check:{older['check_id']}", older, 60)
        record = await runtime.service.get_check(older["check_id"])
        assert record.check_id == older["check_id"]
        assert record.summary == summary
        assert record.source == "fresh"


class RecordingSink:
    """A write-back sink that queues, or refuses when ``fail`` is set."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[tuple[str, str]] = []

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        if self.fail:
            raise AthenaError("athenaNet outbox refused the write-back")
        self.seen.append((check_id, summary.status.value))
        return "queued"


async def test_write_back_is_handed_to_the_sink_and_noted_on_the_record(
    sandbox: RunningSandbox, redis_url: str
) -> None:
    sink = RecordingSink()
    async with opened(settings_for(sandbox, redis_url=redis_url), writeback=sink) as runtime:
        summary = await runtime.service.verify(request_for("01"), writeback=True)
        assert sink.seen == [(summary.check_id, "active")]
        assert (await runtime.service.get_check(summary.check_id or "")).writeback is WriteBackState.QUEUED

        not_found = await runtime.service.verify(request_for("10"), writeback=True)
        assert (await runtime.service.get_check(not_found.check_id or "")).writeback is WriteBackState.SKIPPED
        assert len(sink.seen) == 1

        sink.fail = True
        failed = await runtime.service.verify(request_for("02"), writeback=True)
        assert failed.status is CheckStatus.ACTIVE  # the check stands
        assert (await runtime.service.get_check(failed.check_id or "")).writeback is WriteBackState.FAILED


async def test_write_back_without_a_sink_is_recorded_as_not_configured(sandbox: RunningSandbox) -> None:
    async with opened(settings_for(sandbox), writeback=UnconfiguredWriteBack()) as runtime:
        summary = await runtime.service.verify(request_for("01"), writeback=True)
        record = await runtime.service.get_check(summary.check_id or "")
        assert record.writeback is WriteBackState.NOT_CONFIGURED
        assert list(runtime.service.writeback.requested) == [summary.check_id]  # type: ignore[attr-defined]


# --- errors -------------------------------------------------------------------------------------


async def test_payer_side_failures_are_typed_errors(sandbox_factory: SandboxFactory) -> None:
    behavior = PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX, first=1)])
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, payers={PPO: behavior}))
    async with opened(settings_for(box)) as runtime:
        with pytest.raises(ClearinghouseUnavailable):
            await runtime.service.verify(request_for("01"))
        assert sample(runtime, CHECKS, status="error", source="fresh") == 1
        outcomes = runtime.metrics.registry.get_sample_value(
            "eligibility_clearinghouse_request_duration_seconds_count", {"payer": PPO, "outcome": "unavailable"}
        )
        assert outcomes == 1
        assert (await runtime.service.verify(request_for("01"))).status is CheckStatus.ACTIVE  # nothing kept


async def test_an_inquiry_that_cannot_be_sent_is_refused_before_any_payer_call(sandbox: RunningSandbox) -> None:
    request = request_for("01")
    too_old = request.model_copy(
        update={"service": request.service.model_copy(update={"date": today() - dt.timedelta(days=400)})}
    )
    async with opened(settings_for(sandbox)) as runtime:
        with pytest.raises(InquiryInvalid) as caught:
            await runtime.service.verify(too_old)
    assert caught.value.problems[0][0] == "service.date"
    assert payer_calls(sandbox) == 0


# --- control numbers and readiness ------------------------------------------------------------------


async def test_two_services_sharing_redis_never_reuse_a_control_number(sandbox: RunningSandbox, redis_url: str) -> None:
    settings = settings_for(sandbox, redis_url=redis_url)
    async with opened(settings) as one, opened(settings) as two:
        for index in range(6):
            service = (one if index % 2 else two).service
            await service.verify(request_for("01").model_copy(update={"force_refresh": True}))
    sent = isa13_sent(sandbox)
    assert len(sent) == 6
    assert len(set(sent)) == 6


async def test_readiness_reports_redis_and_breakers(sandbox: RunningSandbox, redis_url: str) -> None:
    async with opened(settings_for(sandbox, redis_url=redis_url)) as runtime:
        await runtime.service.verify(request_for("01"))
        ready = await runtime.service.readiness()
    assert ready.redis == "ok"
    assert not ready.degraded
    assert ready.breakers == {
        f"endpoint:{runtime.clearinghouse.transport.endpoint_name}": "closed",
        f"payer:{PPO}": "closed",
    }
    assert ready.open_endpoints == []
    assert not ready.sandbox  # a CORE endpoint, even if it is the sandbox app


async def test_readiness_shows_an_open_breaker(sandbox_factory: SandboxFactory) -> None:
    behavior = PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX)])
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, payers={PPO: behavior}))
    settings = settings_for(box)
    settings.clearinghouse.breaker_failure_threshold = 2
    async with opened(settings) as runtime:
        for _ in range(2):
            with pytest.raises(ClearinghouseUnavailable):
                await runtime.service.verify(request_for("01"))
        ready = await runtime.service.readiness()
        gauge = sample(runtime, "eligibility_circuit_breaker_state", kind="endpoint", name=ready.open_endpoints[0])
    assert ready.redis == "not_configured"
    assert ready.degraded
    assert len(ready.open_endpoints) == 1
    assert any("circuit breaker endpoint:" in reason for reason in ready.reasons)
    assert gauge == 2


# --- the pure decisions, without sockets ------------------------------------------------------------


def _coverage(status: CheckStatus, service_types: list[str], place: str | None = None) -> CoverageEntry:
    return CoverageEntry(
        x12_271="", check_id="0" * 32, status=status, service_types=service_types, place_of_service=place
    )


@pytest.mark.parametrize(
    ("codes", "procedures", "reusable"),
    [
        ([], ["99213"], True),  # → 98, present
        (["UC"], [], True),
        (["30"], [], True),
        ([], ["70551"], False),  # → 62, absent
        (["62"], [], False),
        ([], ["ZZZZZ"], False),  # maps to nothing: only the payer can say
        (["98"], ["70551"], False),  # every code must be answerable
    ],
)
def test_can_reuse_needs_rows_for_every_code(codes: list[str], procedures: list[str], reusable: bool) -> None:
    coverage = _coverage(CheckStatus.ACTIVE, ["1", "30", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC"])
    request = request_for("01", service_types=codes, procedures=procedures)
    assert can_reuse(coverage, request, default_table()) is reusable


def test_can_reuse_by_status_and_place() -> None:
    request = request_for("01", service_types=["98"])
    table = default_table()
    assert can_reuse(_coverage(CheckStatus.NOT_FOUND, []), request, table)
    assert not can_reuse(_coverage(CheckStatus.INACTIVE, ["30", "98"]), request, table)
    assert not can_reuse(_coverage(CheckStatus.REJECTED, ["30", "98"]), request, table)
    assert not can_reuse(_coverage(CheckStatus.ACTIVE, ["30", "98"], place="11"), request, table)


def test_lookup_and_sharing_follow_the_request_s_controls() -> None:
    request = request_for("01")
    entry = CacheEntry({}, stored_at=1000.0)
    assert lookup_result(None, request, 1010.0) == "miss"
    assert lookup_result(entry, request, 1010.0) == "hit"
    assert lookup_result(entry, request.model_copy(update={"max_age_seconds": 5}), 1010.0) == "stale"
    assert lookup_result(entry, request.model_copy(update={"force_refresh": True}), 1010.0) == "stale"
    forced = request.model_copy(update={"force_refresh": True})
    assert shareable(1000.0, forced, started=999.0, now=1010.0)  # stored after the request began
    assert not shareable(1000.0, forced, started=1001.0, now=1010.0)
    assert shareable(1000.0, request, started=1001.0, now=1010.0)


def test_is_general_inquiry() -> None:
    assert is_general_inquiry(request_for("01", service_types=["30", "98"]))
    assert is_general_inquiry(request_for("01", service_types=[]))  # nothing asked: the 270 says EQ*30
    assert not is_general_inquiry(request_for("01", service_types=[], procedures=["99213"]))


def test_strict_mode_refuses_a_bad_270_before_it_is_sent() -> None:
    x12_270 = make_270(scenario("01").request).replace("EQ*30~", "EQ*ZZ~", 1)
    with pytest.raises(X12ValidationFailed) as caught:
        check_x12(x12_270, "strict", "outgoing")
    assert caught.value.details["direction"] == "outgoing"
    [finding] = check_x12(x12_270, "warn", "outgoing")
    assert (finding.direction, finding.segment_id, finding.element) == ("outgoing", "EQ", "EQ01")
    assert check_x12(x12_270, "off", "outgoing") == ()
    [unreadable] = check_x12("not x12 at all", "warn", "incoming")
    assert unreadable.severity == "error"


def test_readiness_is_degraded_by_redis_breakers_or_limiter() -> None:
    assert not build_readiness("ok", [], limiter_degraded=False, sandbox=False).degraded
    assert not build_readiness("not_configured", [], limiter_degraded=False, sandbox=True).degraded
    down = build_readiness("down", [], limiter_degraded=True, sandbox=False)
    assert down.degraded
    assert len(down.reasons) == 2
