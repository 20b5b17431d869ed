"""The answer cache: PHI-free keys, JSON values sealed with AES-GCM, Redis that fails and comes back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pydantic_core
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from eligibility_svc.cache import (
    CacheCorrupt,
    CacheUnavailable,
    CacheWrite,
    MemoryCache,
    RedisCache,
    RedisGate,
    ValueCodec,
    check_digests,
    inquiry_codes,
    make_redis,
    normalize_last_name,
    normalize_member_id,
    normalize_name,
    parse_encryption_key,
)
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import CacheSettings
from tests.support.redis_server import RedisServer

SECRET = b"test-key-secret"
KEYS = RedisKeys("elig:")

# A test patient whose every identifier is distinctive enough to search for.
LAST, FIRST, DOB, MEMBER = "Quorvindale", "Zyxwerta", dt.date(1961, 3, 14), "ZQX98765432"
PHI_SPELLINGS = [LAST, FIRST, MEMBER, "1961-03-14", "19610314", "03/14/1961", "QUORVINDALE", "ZYXWERTA"]


def request(**changes: Any) -> EligibilityRequest:
    data: dict[str, Any] = {
        "payer": {"id": "87726", "name": "UnitedHealthcare"},
        "provider": {"npi": "1234567893", "organization_name": "Main Street Clinic"},
        "patient": {"last_name": LAST, "first_name": FIRST, "birth_date": DOB.isoformat()},
        "member_id": MEMBER,
        "service": {"date": "2025-06-02", "service_types": ["30"]},
    }
    for path, value in changes.items():
        target = data
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return EligibilityRequest.model_validate(data)


def summary_json() -> dict[str, Any]:
    return {"status": "active", "subscriber": {"last_name": LAST, "first_name": FIRST, "member_id": MEMBER}}


def aes_key() -> bytes:
    return os.urandom(32)


class Errors:
    """An error hook that remembers what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException]] = []

    def __call__(self, operation: str, error: BaseException) -> None:
        self.seen.append((operation, error))

    @property
    def operations(self) -> list[str]:
        return [operation for operation, _ in self.seen]


def contains_phi(text: str) -> list[str]:
    lowered = text.lower()
    return [spelling for spelling in PHI_SPELLINGS if spelling.lower() in lowered]


# --- normalization and keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("O'Donnell-Griswold", "ODONNELLGRISWOLD"),  # the CORE 258 example
        ("Smith, Jr.", "SMITH"),
        ("smith jr", "SMITH"),
        ("Pomp II", "POMP"),
        ("Pomp, III, MD", "POMP"),
        ("JRSMITH", "JRSMITH"),  # a suffix needs a separator before it
        ("Muñoz", "MUNOZ"),
        ("  van der Berg ", "VANDERBERG"),
        ("Jr", "JR"),  # a name that is only a suffix stays a name
    ],
)
def test_last_name_normalization_follows_core_258(raw: str, normalized: str) -> None:
    assert normalize_last_name(raw) == normalized


def test_first_name_and_member_id_normalization() -> None:
    assert normalize_name("Mary-Ann ") == "MARYANN"
    assert normalize_name(None) == ""
    assert normalize_member_id(" zqx 987-65 ") == "ZQX987-65"


def test_spelling_variants_share_a_key() -> None:
    base = check_digests(request(), SECRET)
    variants = [
        request(patient__last_name="QUORVINDALE, JR."),
        request(patient__first_name="zyxwerta"),
        request(member_id=" zqx98765432 "),
        request(payer__id="87726 "),
    ]
    for variant in variants:
        assert check_digests(variant, SECRET) == base


def test_inquiry_codes_are_sorted_and_default_to_stc_30() -> None:
    one = request(service__service_types=["98", "30", "98"])
    other = request(service__service_types=["30", "98"])
    assert check_digests(one, SECRET) == check_digests(other, SECRET)
    assert inquiry_codes(request(service__service_types=[])) == ["STC:30"]
    assert check_digests(request(service__service_types=[]), SECRET) == check_digests(request(), SECRET)
    procedures = request(
        service__service_types=[],
        service__procedures=[{"code": "99213", "modifiers": ["59", "25"]}, {"code": "97110"}],
        service__place_of_service="11",
    )
    assert inquiry_codes(procedures) == ["HC:97110:", "HC:99213:25,59", "POS:11"]


@pytest.mark.parametrize(
    "change",
    [
        {"member_id": "ZQX98765433"},
        {"patient__birth_date": "1961-03-15"},
        {"patient__last_name": "Quorvindal"},
        {"patient__first_name": "Zyxwert"},
        {"payer__id": "60054"},
        {"provider__npi": "1245319599"},
        {"service__date": "2025-06-03"},
        {"service__end_date": "2025-06-05"},
        {"subscriber": {"last_name": LAST, "first_name": "Parent"}},
    ],
)
def test_any_identity_or_date_change_changes_both_digests(change: dict[str, Any]) -> None:
    base, changed = check_digests(request(), SECRET), check_digests(request(**change), SECRET)
    assert changed.exact != base.exact
    assert changed.coverage != base.coverage


def test_codes_change_the_exact_digest_but_not_the_coverage_one() -> None:
    general, specific = check_digests(request(), SECRET), check_digests(request(service__service_types=["98"]), SECRET)
    assert specific.exact != general.exact
    assert specific.coverage == general.coverage
    assert general.exact != general.coverage


def test_digests_depend_on_the_secret() -> None:
    assert check_digests(request(), SECRET) != check_digests(request(), b"another secret")


def test_keys_hold_no_patient_data() -> None:
    digests = check_digests(request(), SECRET)
    keys = [
        KEYS.cache_entry(digests.exact),
        KEYS.coverage_entry(digests.coverage),
        KEYS.single_flight_lock(digests.exact),
    ]
    for key in keys:
        assert key.startswith("elig:")
        assert contains_phi(key) == [], key


def test_payer_ids_from_requests_always_make_a_key() -> None:
    assert KEYS.payer_rate("87726") == "elig:limit:rate:87726"
    untidy = KEYS.payer_concurrency("BCBS TX/*")
    assert untidy.startswith("elig:limit:conc:~")
    assert "*" not in untidy
    assert untidy != KEYS.payer_concurrency("BCBS TX/?")
    assert KEYS.breaker("payer.87726") == "elig:breaker:payer.87726"


def test_a_key_part_cannot_smuggle_text() -> None:
    with pytest.raises(ValueError, match="Redis key"):
        KEYS.cache_entry("QUORVINDALE ZYXWERTA")
    with pytest.raises(ValueError, match="prefix"):
        RedisKeys("elig*")


# --- values ---------------------------------------------------------------------------------------------


def test_plain_codec_round_trip_is_json() -> None:
    codec = ValueCodec()
    blob = codec.encode("elig:cache:a", {"status": "active", "n": 1}, 1700000000.5)
    assert blob.startswith(b"J{")
    entry = codec.decode("elig:cache:a", blob)
    assert (entry.value, entry.stored_at) == ({"status": "active", "n": 1}, 1700000000.5)


def test_a_value_given_as_json_bytes_reads_back_as_that_object() -> None:
    value = {"status": "active", "text": 'línea "2"\nend', "n": [1, 2.5, None]}
    for codec in (ValueCodec(), ValueCodec([aes_key()])):
        blob = codec.encode("elig:cache:a", pydantic_core.to_json(value), 1700000000.25, b"attached\n")
        entry = codec.decode("elig:cache:a", blob)
        assert (entry.value, entry.stored_at, entry.attachment) == (value, 1700000000.25, b"attached\n")
    with pytest.raises(ValueError, match="one JSON object"):
        ValueCodec().encode("k", b"[1, 2]", 1.0)
    with pytest.raises(ValueError, match="one JSON object"):
        ValueCodec().encode("k", b'{\n  "a": 1\n}', 1.0)  # indented: its newlines would end the document
    with pytest.raises(ValueError, match="finite"):
        ValueCodec().encode("k", b'{"a":1}', float("nan"))


def test_sealed_value_hides_the_plaintext_and_is_bound_to_its_key() -> None:
    codec = ValueCodec([aes_key()])
    blob = codec.encode("elig:cache:a", summary_json(), 1.0)
    assert contains_phi(blob.decode("latin-1")) == []
    assert codec.decode("elig:cache:a", blob).value == summary_json()
    with pytest.raises(CacheCorrupt):
        codec.decode("elig:cache:b", blob)  # moved onto another patient's key
    with pytest.raises(CacheCorrupt):
        codec.decode("elig:cache:a", blob[:-1] + bytes([blob[-1] ^ 1]))  # tampered


def test_rotation_reads_old_entries_and_writes_with_the_new_key() -> None:
    old, new = aes_key(), aes_key()
    written_before = ValueCodec([old]).encode("k", {"a": 1}, 1.0)
    rotated = ValueCodec([new, old])
    assert rotated.decode("k", written_before).value == {"a": 1}
    with pytest.raises(CacheCorrupt):
        ValueCodec([old]).decode("k", rotated.encode("k", {"a": 2}, 1.0))


def test_plain_and_sealed_entries_do_not_mix() -> None:
    with pytest.raises(CacheCorrupt):
        ValueCodec([aes_key()]).decode("k", ValueCodec().encode("k", {"a": 1}, 1.0))
    with pytest.raises(CacheCorrupt):
        ValueCodec().decode("k", ValueCodec([aes_key()]).encode("k", {"a": 1}, 1.0))
    with pytest.raises(CacheCorrupt):
        ValueCodec().decode("k", b"\x80\x04pickle")


def test_encryption_key_from_settings() -> None:
    raw = aes_key()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert parse_encryption_key(base64.b64encode(raw).decode()) == raw
    assert parse_encryption_key(urlsafe) == raw
    with pytest.raises(ConfigurationError, match="32 bytes"):
        parse_encryption_key(base64.b64encode(raw[:16]).decode())
    with pytest.raises(ConfigurationError, match="base64"):
        parse_encryption_key("not base64 at all!")
    assert ValueCodec.from_settings(CacheSettings(encryption_key=base64.b64encode(raw).decode())).encrypts
    assert not ValueCodec.from_settings(CacheSettings()).encrypts


# --- Redis ------------------------------------------------------------------------------------------------


async def test_redis_round_trip_with_ttl(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    key = KEYS.cache_entry(check_digests(request(), SECRET).exact)
    before = time.time()
    assert await cache.set(key, summary_json(), 60)
    entry = await cache.get(key)
    assert entry is not None
    assert entry.value == summary_json()
    assert before <= entry.stored_at <= time.time()
    assert 59_000 < await redis_client.pttl(key) <= 60_000
    assert await cache.get(KEYS.cache_entry("0" * 64)) is None


async def test_redis_entries_expire(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    assert await cache.set("elig:cache:short", {"a": 1}, 0.15)
    assert await cache.get("elig:cache:short") is not None
    await asyncio.sleep(0.3)
    assert await cache.get("elig:cache:short") is None


async def test_zero_ttl_keeps_nothing(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    assert not await cache.set("elig:cache:never", {"a": 1}, 0)
    assert await redis_client.exists("elig:cache:never") == 0


async def test_delete(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    await cache.set("elig:cache:gone", {"a": 1}, 60)
    await cache.delete("elig:cache:gone")
    assert await cache.get("elig:cache:gone") is None


async def test_encrypted_in_redis_holds_no_patient_data(redis_client: Redis) -> None:
    cache = RedisCache(redis_client, codec=ValueCodec([aes_key()]))
    key = KEYS.cache_entry(check_digests(request(), SECRET).exact)
    await cache.set(key, summary_json(), 60)
    raw = await redis_client.get(key)
    assert isinstance(raw, bytes)
    assert contains_phi(raw.decode("latin-1")) == []
    assert b"active" not in raw
    entry = await cache.get(key)
    assert entry is not None
    assert entry.value == summary_json()
    stored_keys = [k.decode() async for k in redis_client.scan_iter(match=KEYS.pattern)]
    assert stored_keys == [key]
    assert contains_phi(" ".join(stored_keys)) == []


async def test_unencrypted_value_is_plain_json_in_redis(redis_client: Redis) -> None:
    cache = RedisCache(redis_client)
    await cache.set("elig:cache:plain", summary_json(), 60)
    raw = await redis_client.get("elig:cache:plain")
    assert isinstance(raw, bytes)
    assert raw.startswith(b'J{"at":')
    assert LAST.encode() in raw  # only encryption hides it: this is why the setting exists


async def test_wrong_key_is_a_counted_miss(redis_client: Redis) -> None:
    errors = Errors()
    writer = RedisCache(redis_client, codec=ValueCodec([aes_key()]))
    reader = RedisCache(redis_client, codec=ValueCodec([aes_key()]), gate=RedisGate(on_error=errors))
    await writer.set("elig:cache:x", summary_json(), 60)
    assert await reader.get("elig:cache:x") is None
    assert errors.operations == ["decode"]
    assert isinstance(errors.seen[0][1], CacheCorrupt)
    assert await redis_client.exists("elig:cache:x") == 1  # left for replicas that can read it


async def test_entry_copied_to_another_key_is_a_counted_miss(redis_client: Redis) -> None:
    errors = Errors()
    cache = RedisCache(redis_client, codec=ValueCodec([aes_key()]), gate=RedisGate(on_error=errors))
    await cache.set("elig:cache:patient-a", summary_json(), 60)
    blob = await redis_client.get("elig:cache:patient-a")
    assert blob is not None
    await redis_client.set("elig:cache:patient-b", blob)
    assert await cache.get("elig:cache:patient-b") is None
    assert errors.operations == ["decode"]


async def test_redis_killed_mid_run_degrades_and_recovers(disposable_redis: RedisServer) -> None:
    errors = Errors()
    changes: list[bool] = []
    gate = RedisGate(on_error=errors, on_available=changes.append)
    client = make_redis(disposable_redis.url)
    cache = RedisCache(client, gate=gate)
    try:
        assert await cache.set("elig:cache:k", {"a": 1}, 60)
        assert await cache.get("elig:cache:k") is not None

        disposable_redis.kill()
        started = time.perf_counter()
        assert await cache.get("elig:cache:k") is None
        assert not await cache.set("elig:cache:k", {"a": 2}, 60)
        assert not await cache.ping()
        assert time.perf_counter() - started < 1.5  # three calls, each bounded
        assert errors.operations == ["get", "set", "ping"]
        assert all(isinstance(error, CacheUnavailable) for _, error in errors.seen)
        assert not gate.available

        disposable_redis.start()  # same port, empty, same client object
        assert await cache.set("elig:cache:k", {"a": 3}, 60)
        entry = await cache.get("elig:cache:k")
        assert entry is not None
        assert entry.value == {"a": 3}
        assert gate.available
        assert await cache.ping()
        assert changes == [False, True]  # told of each change once, not of every call
    finally:
        await client.aclose()


async def test_stuck_redis_is_bounded_by_the_timeout(disposable_redis: RedisServer) -> None:
    errors = Errors()
    client = make_redis(disposable_redis.url)
    cache = RedisCache(client, gate=RedisGate(timeout=0.5, on_error=errors))
    try:
        await cache.set("elig:cache:k", {"a": 1}, 60)
        disposable_redis.pause()
        started = time.perf_counter()
        assert await cache.get("elig:cache:k") is None
        assert time.perf_counter() - started < 0.9
        assert errors.operations == ["get"]
        disposable_redis.resume()
        assert await cache.get("elig:cache:k") is not None
    finally:
        disposable_redis.resume()
        await client.aclose()


async def test_set_many_is_one_pipeline(redis_client: Redis) -> None:
    cache = RedisCache(redis_client, codec=ValueCodec([aes_key()]))
    writes = [
        CacheWrite("elig:cache:m1", {"a": 1}, 60, b"attached"),
        CacheWrite("elig:cache:m0", {"a": 0}, 0),  # kept nowhere, as with set
        CacheWrite("elig:cache:m2", {"b": 2}, 30),
    ]
    assert await cache.set_many(writes) == [True, False, True]
    assert 29_000 < await redis_client.pttl("elig:cache:m2") <= 30_000
    assert await redis_client.exists("elig:cache:m0") == 0
    first = await cache.get("elig:cache:m1")
    assert first is not None
    assert (first.value, first.attachment) == ({"a": 1}, b"attached")
    second = await cache.get("elig:cache:m2")
    assert second is not None
    assert second.value == {"b": 2}
    assert await cache.set_many([]) == []


async def test_set_many_without_redis_is_a_counted_no_op(disposable_redis: RedisServer) -> None:
    errors = Errors()
    client = make_redis(disposable_redis.url)
    cache = RedisCache(client, gate=RedisGate(on_error=errors))
    try:
        writes = [CacheWrite("elig:cache:a", {"a": 1}, 60), CacheWrite("elig:cache:b", {"b": 1}, 60)]
        assert await cache.set_many(writes) == [True, True]
        disposable_redis.kill()
        assert await cache.set_many(writes) == [False, False]
        assert errors.operations == ["set_many"]
        disposable_redis.start()
        assert await cache.set_many(writes) == [True, True]
    finally:
        await client.aclose()


async def test_a_stuck_pipeline_is_bounded_and_leaves_no_answer_behind(disposable_redis: RedisServer) -> None:
    errors = Errors()
    client = make_redis(disposable_redis.url, max_connections=1)  # the one connection is reused after
    cache = RedisCache(client, gate=RedisGate(timeout=0.5, on_error=errors))
    try:
        await cache.set("elig:cache:k", {"a": 1}, 60)
        disposable_redis.pause()
        started = time.perf_counter()
        writes = [CacheWrite("elig:cache:k", {"a": 2}, 60), CacheWrite("elig:cache:j", {"j": 1}, 60)]
        assert await cache.set_many(writes) == [False, False]
        assert time.perf_counter() - started < 0.9
        disposable_redis.resume()
        # The abandoned pipeline's replies must not be read as the answers to later calls.
        entry = await cache.get("elig:cache:j")
        assert entry is None or entry.value == {"j": 1}
        kept = await cache.get("elig:cache:k")
        assert kept is not None
        assert kept.value in ({"a": 1}, {"a": 2})
        assert errors.operations == ["set_many"]
    finally:
        disposable_redis.resume()
        await client.aclose()


async def test_memory_cache_set_many() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    assert await cache.set_many([CacheWrite("a", {"a": 1}, 10), CacheWrite("b", {"b": 1}, 0)]) == [True, False]
    entry = await cache.get("a")
    assert entry is not None
    assert entry.value == {"a": 1}
    assert await cache.get("b") is None
    clock.now += 11
    assert await cache.get("a") is None


# --- in memory ------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_cache_honours_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    assert await cache.set("k", {"a": 1}, 10)
    clock.now += 9.9
    entry = await cache.get("k")
    assert entry is not None
    assert entry.stored_at == clock.now - 9.9
    clock.now += 0.1
    assert await cache.get("k") is None
    assert len(cache) == 0
    assert not await cache.set("k", {"a": 1}, 0)


async def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", {"v": "a"}, 60)
    await cache.set("b", {"v": "b"}, 60)
    await cache.get("a")  # a is now more recent than b
    await cache.set("c", {"v": "c"}, 60)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None
    assert await cache.get("c") is not None
    assert len(cache) == 2


async def test_memory_cache_holds_json_copies() -> None:
    cache = MemoryCache()
    value = {"list": [1, 2]}
    await cache.set("k", value, 60)
    value["list"].append(3)
    entry = await cache.get("k")
    assert entry is not None
    assert entry.value == {"list": [1, 2]}
    entry.value["list"].append(4)
    again = await cache.get("k")
    assert again is not None
    assert again.value == {"list": [1, 2]}
    with pytest.raises(TypeError):
        await cache.set("k", {"not json": object()}, 60)
    await cache.delete("k")
    assert await cache.get("k") is None
    assert await cache.ping()


async def _connected_clients(client: Redis) -> int:
    listed = await client.execute_command("CLIENT", "LIST")
    return sum(1 for line in listed.decode().splitlines() if "cmd=blpop" in line)


async def test_a_busy_pool_makes_callers_wait_not_fail(redis_url: str) -> None:
    """Two connections, twelve callers each holding one for 0.1 s: all succeed, never more than two at once."""
    client = make_redis(redis_url, socket_timeout=5, connect_timeout=3, max_connections=2)
    observer = make_redis(redis_url)
    try:
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append(await _connected_clients(observer))
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        answers = await asyncio.gather(*(client.blpop([f"test:empty:{n}"], timeout=0.1) for n in range(12)))
        watcher.cancel()
        assert answers == [None] * 12
        assert max(seen) == 2  # the pool was full, and nobody got a third connection
    finally:
        await client.aclose()
        await observer.aclose()


@contextlib.asynccontextmanager
async def _pool_of_one_held(
    redis_url: str, *, wait: float, hold: float
) -> AsyncIterator[tuple[Redis, asyncio.Task[Any]]]:
    """A client with one pooled connection, held by a ``BLPOP`` of ``hold`` seconds; callers wait ``wait``."""
    client = make_redis(redis_url, socket_timeout=5, connect_timeout=wait, max_connections=1)
    try:
        holder = asyncio.create_task(client.blpop(["test:empty"], timeout=hold))
        await asyncio.sleep(0.05)
        yield client, holder
        assert await holder is None
    finally:
        await client.aclose()


async def test_a_pool_busy_past_its_timeout_fails_with_a_connection_error(redis_url: str) -> None:
    async with _pool_of_one_held(redis_url, wait=0.2, hold=1) as (client, holder):
        started = time.perf_counter()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await client.get("test:k")
        assert 0.15 < time.perf_counter() - started < 0.6
        await holder
        assert await client.get("test:k") is None  # the released connection serves again


async def test_a_cancelled_waiter_does_not_swallow_a_release(redis_url: str) -> None:
    async with _pool_of_one_held(redis_url, wait=3, hold=0.2) as (client, _):
        impatient = asyncio.create_task(client.get("test:a"))
        patient = asyncio.create_task(client.get("test:b"))
        await asyncio.sleep(0.05)
        impatient.cancel()
        assert await asyncio.wait_for(patient, 2) is None  # woken by the holder's release


async def test_each_pipelined_reply_gets_its_own_deadline_from_when_it_was_asked() -> None:
    """The gate's deadlines for auto-pipelined replies (one timer for all): each unanswered reply fails at
    its own time limit, counted from its own call, and no answered one is failed."""
    loop = asyncio.get_running_loop()
    errors = Errors()
    gate = RedisGate(timeout=0.2, on_error=errors)
    started = loop.time()
    failed_at: dict[str, float] = {}

    async def call(name: str, reply: asyncio.Future[Any]) -> Any:
        try:
            return await gate.call(name, reply)
        except CacheUnavailable:
            failed_at[name] = loop.time() - started
            return None

    first, second, third, fourth = (loop.create_future() for _ in range(4))
    calls = [asyncio.create_task(call("first", first)), asyncio.create_task(call("second", second))]
    loop.call_later(0.05, first.set_result, 1)  # answered in time
    await asyncio.sleep(0.1)
    calls += [asyncio.create_task(call("third", third)), asyncio.create_task(call("fourth", fourth))]
    loop.call_later(0.15, fourth.set_result, 4)  # at 0.25 s: after the second's limit, before its own
    assert await asyncio.gather(*calls) == [1, None, None, 4]
    assert set(failed_at) == {"second", "third"}
    assert 0.19 <= failed_at["second"] < 0.28, "0.2 s from its call"
    assert 0.29 <= failed_at["third"] < 0.38, "0.2 s from its own call, 0.1 s later"
    assert errors.operations == ["second", "third"]
