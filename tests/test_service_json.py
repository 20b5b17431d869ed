"""The JSON path of ``EligibilityService``: ``verify_json`` and the kept summary it sends on a hit.

The cached answer's bytes must parse to what ``verify`` (the model path) answers: cached, with the
age of the entry, the same check id, marked sandbox when the clearinghouse is the sandbox.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from redis.asyncio import Redis

from eligibility_svc.cache import CacheEntry, MemoryCache, ValueCodec, parse_encryption_key
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, model_json
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.service import (
    KEPT_SUMMARY_FORMAT,
    CheckRecord,
    CheckStore,
    KeptSummary,
    WriteBackState,
    read_kept,
)
from eligibility_svc.x12.interpret import summarize
from eligibility_svc.x12.parse271 import parse_271
from tests.support.service_peers import (
    ENCRYPTION_KEY,
    Clock,
    opened,
    payer_calls,
    request_for,
    sample,
    settings_for,
)

PPO = "SBX10001"
CHECKS = "eligibility_checks_total"
LOOKUPS = "eligibility_cache_lookups_total"


def _parsed(body: bytes) -> CoverageSummary:
    return CoverageSummary.model_validate_json(body)


async def test_a_json_hit_equals_the_model_answer(sandbox: RunningSandbox, redis_url: str) -> None:
    clock = Clock()
    request = request_for("01")
    async with opened(settings_for(sandbox, redis_url=redis_url), clock=clock) as runtime:
        first = _parsed(await runtime.service.verify_json(request))
        clock.offset = 42.5
        hit_bytes = await runtime.service.verify_json(request)
        model = await runtime.service.verify(request)

        assert payer_calls(sandbox, PPO) == 1
        assert not first.provenance.cached
        hit = _parsed(hit_bytes)
        assert hit.provenance.cached
        assert hit.provenance.age_seconds is not None
        assert 42 <= hit.provenance.age_seconds < 60
        assert hit.check_id == first.check_id
        assert hit.model_dump(exclude={"provenance"}) == first.model_dump(exclude={"provenance"})
        # the model path answers the same, up to the (later) age
        assert hit.model_dump(exclude={"provenance": {"age_seconds"}}) == model.model_dump(
            exclude={"provenance": {"age_seconds"}}
        )
        assert json.loads(hit_bytes) == json.loads(hit.model_dump_json())  # nothing extra in the bytes
        assert sample(runtime, LOOKUPS, result="hit") == 2
        assert sample(runtime, CHECKS, status="active", source="cache") == 2


async def test_json_hits_are_marked_sandbox_and_kept_sealed(
    sandbox: RunningSandbox, redis_url: str, redis_client: Redis
) -> None:
    request = request_for("01")
    settings = settings_for(sandbox, redis_url=redis_url, encryption_key=ENCRYPTION_KEY)
    async with opened(settings) as runtime:
        runtime.service.sandbox = True  # as when the clearinghouse is the in-process sandbox
        await runtime.service.verify(request)
        hit = _parsed(await runtime.service.verify_json(request))
    assert hit.provenance.cached
    assert hit.provenance.sandbox
    [key] = [key async for key in redis_client.scan_iter(match="elig:cache:*")]
    blob = await redis_client.get(key)
    assert blob is not None
    assert blob[:1] == b"E"
    assert b"provenance" not in blob
    assert b"benefits" not in blob


async def test_json_path_answers_fresh_and_not_found(sandbox: RunningSandbox) -> None:
    async with opened(settings_for(sandbox)) as runtime:
        fresh = _parsed(await runtime.service.verify_json(request_for("10")))
        again = _parsed(await runtime.service.verify_json(request_for("10")))
    assert fresh.status is CheckStatus.NOT_FOUND
    assert not fresh.provenance.cached
    assert again.status is CheckStatus.NOT_FOUND
    assert again.provenance.cached


class QueueingSink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def enqueue(self, check_id: str, request: EligibilityRequest, summary: CoverageSummary) -> str:
        self.seen.append((check_id, summary.status.value))
        return WriteBackState.QUEUED.value


async def test_json_path_with_writeback_hands_the_cached_answer_to_the_sink(sandbox: RunningSandbox) -> None:
    request = request_for("01")
    sink = QueueingSink()
    async with opened(settings_for(sandbox), writeback=sink) as runtime:
        await runtime.service.verify(request)
        hit = _parsed(await runtime.service.verify_json(request, writeback=True))
        record = await runtime.service.get_check(hit.check_id or "")
    assert hit.provenance.cached
    assert sink.seen == [(hit.check_id, "active")]
    assert record.writeback is WriteBackState.QUEUED


async def test_an_entry_in_the_old_format_is_still_served() -> None:
    codec = ValueCodec([parse_encryption_key(ENCRYPTION_KEY)])
    cache = MemoryCache(codec=codec)
    summary = CoverageSummary(status=CheckStatus.ACTIVE, check_id="a" * 32)
    await cache.set("k", summary.model_dump(mode="json"), 60)
    entry = await cache.get("k")
    assert entry is not None
    kept = read_kept(entry)
    assert kept is not None
    assert _parsed(kept.to_json(1.0)) == summary.model_copy(
        update={"provenance": summary.provenance.model_copy(update={"cached": True, "age_seconds": 1.0})}
    )


def test_kept_summary_round_trip_through_the_codec() -> None:
    codec = ValueCodec([parse_encryption_key(ENCRYPTION_KEY)])
    summary = CoverageSummary(status=CheckStatus.INACTIVE, messages=['línea\n2 "quoted"'])
    kept = KeptSummary.of(summary)
    blob = codec.encode("key", kept.value(), 10.0, kept.body)
    entry = codec.decode("key", blob)
    assert entry.value["format"] == KEPT_SUMMARY_FORMAT
    again = read_kept(entry)
    assert again is not None
    served = _parsed(again.to_json(2.0, sandbox=True))
    assert served.messages == summary.messages
    assert (served.provenance.cached, served.provenance.age_seconds, served.provenance.sandbox) == (True, 2.0, True)
    assert again.to_model(2.0) == served.model_copy(
        update={"provenance": served.provenance.model_copy(update={"sandbox": False})}
    )


def _stamped_fixture_summaries() -> list[tuple[str, CoverageSummary]]:
    """The summary of every fixture scenario, stamped as a fresh check stamps it."""
    scenarios = Path(__file__).resolve().parent.parent / "x12_fixtures" / "scenarios"
    found = []
    for folder in sorted(p for p in scenarios.iterdir() if (p / "scenario.json").is_file()):
        request = EligibilityRequest.model_validate(json.loads((folder / "scenario.json").read_text())["request"])
        for transaction in parse_271((folder / "271.x12").read_text()):
            summary = summarize(transaction, request)
            provenance = summary.provenance.model_copy(
                update={"payer_response_ms": 212.5, "received_at": dt.datetime(2026, 11, 25, 8, 30, tzinfo=dt.UTC)}
            )
            found.append((folder.name, summary.model_copy(update={"check_id": "c" * 32, "provenance": provenance})))
    return found


def test_a_record_spliced_from_the_kept_summary_is_the_record_pydantic_writes() -> None:
    """A fresh check serializes its summary once; the check record splices those bytes in.  For
    every fixture scenario the record kept reads back equal, as the same JSON document pydantic
    writes for the record itself."""
    store = CheckStore(MemoryCache(), RedisKeys())
    summaries = _stamped_fixture_summaries()
    assert len(summaries) >= 25
    for name, summary in summaries:
        created = dt.datetime(2026, 11, 25, 8, 31, tzinfo=dt.UTC)
        record = CheckRecord(
            check_id="c" * 32, created_at=created, status=summary.status, source="fresh", summary=summary
        )
        kept = store.write(record, KeptSummary.of(summary).summary_json()).attachment
        assert json.loads(kept) == json.loads(model_json(record)), name
        assert CheckRecord.model_validate_json(kept) == record, name


def test_damaged_kept_summaries_are_not_read() -> None:
    value = {"format": KEPT_SUMMARY_FORMAT, "status": "active", "provenance": {}}
    assert read_kept(CacheEntry(value, 1.0, b"{}")) is not None
    assert read_kept(CacheEntry(value, 1.0, b"")) is None
    assert read_kept(CacheEntry({**value, "status": "nope"}, 1.0, b"{}")) is None
    assert read_kept(CacheEntry({**value, "format": 99}, 1.0, b"{}")) is None
    assert read_kept(CacheEntry({"status": "no such"}, 1.0)) is None  # old format, not a summary


def test_a_plain_document_without_attachment_reads_as_before() -> None:
    codec = ValueCodec()
    entry = codec.decode("key", codec.encode("key", {"a": "x\ny"}, 5.0))
    assert (entry.value, entry.stored_at, entry.attachment) == ({"a": "x\ny"}, 5.0, b"")


def test_our_270_is_validated_in_warn_mode_only_when_asked() -> None:
    from eligibility_svc.service import outgoing_mode
    from eligibility_svc.settings import X12Settings

    assert X12Settings().validate_outgoing == "strict_only"
    assert outgoing_mode("warn", "strict_only") == "off"
    assert outgoing_mode("strict", "strict_only") == "strict"  # a 270 failing the TR3 is still not sent
    assert outgoing_mode("off", "strict_only") == "off"
    assert outgoing_mode("warn", "always") == "warn"
