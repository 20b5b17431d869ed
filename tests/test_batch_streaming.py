"""Batches that stream: input read a chunk at a time, planned into Redis (dedupe across chunks), items and
results sealed at rest, planning invisible until committed, and leases kept on long payer calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eligibility_svc.batch.inputs import RowFeed, read_rows
from eligibility_svc.batch.models import AppointmentRow, BatchItem, BatchSpec, ItemResult
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.batch.sources import line_chunks, split
from eligibility_svc.cache import CacheCorrupt
from eligibility_svc.models import ProcedureCode
from eligibility_svc.redis_keys import BATCH_GROUP, RedisKeys
from eligibility_svc.sandbox.ch_config import Latency, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.settings import BatchSettings, Settings
from tests.support.batch_runs import run_batch
from tests.support.ch_servers import SandboxFactory
from tests.support.service_peers import ENCRYPTION_KEY, opened, request_for, settings_for
from tests.support.web_app import AiohttpClient, Api, key, start_api

# --- the input, fed in pieces -------------------------------------------------------------------------

HEADER = "appointment_id,service_date,payer_id,last_name,first_name,birth_date,member_id,provider_npi,procedures\n"
CSV_ROWS = [
    'A1,2026-11-25,SBX10001,Smith,Ann,1980-01-02,M1,1234567893,"99213;80053"\n',
    "\n",  # blank lines are skipped, as csv skips them
    'A2,2026-11-25,SBX10001,"O""Brien",Bo,1975-05-06,M2,1234567893,99214\n',
    'A3,2026-11-25,SBX10001,"Multi\n',  # a quoted cell across two lines
    'Line",Cy,1990-09-09,M3,1234567893,97110\n',
    "A4,2026-11-25,SBX10001,,Di,1991-01-01,M4,1234567893,99213\n",  # last_name missing: a row error
    "A5,2026-11-25,SBX10001,Extra,Ed,1992-02-02,M5,1234567893,99213,surplus\n",  # more cells than the header
    "A6,2026-11-25,SBX10001,Smith,Ann,1980-01-02,M1,1234567893,99215\n",  # A1's question again
]
JSONL_ROWS = [
    json.dumps({"appointment_id": "J1", "request": request_for("01").model_dump(mode="json")}) + "\n",
    "\n",
    "{not json\n",
    "[1, 2]\n",
    json.dumps({"appointment_id": "J2"}) + "\n",
    json.dumps({"appointment_id": "J3", "request": request_for("05").model_dump(mode="json")}) + "\n",
]


def fed(lines: list[str], kind: str, cuts: list[int]) -> list[Any]:
    feed = RowFeed(kind)
    parsed: list[Any] = []
    start = 0
    for cut in [*sorted(cuts), len(lines)]:
        parsed += feed.feed(lines[start:cut])
        start = max(start, cut)
    return parsed + feed.close()


@given(st.lists(st.integers(min_value=0, max_value=len(CSV_ROWS) + 1), max_size=6))
def test_csv_fed_in_any_pieces_reads_as_the_whole(cuts: list[int]) -> None:
    lines = [HEADER, *CSV_ROWS]
    whole = list(read_rows(lines, "csv"))
    assert fed(lines, "csv", cuts) == whole
    assert [entry.row for entry in whole] == [1, 2, 3, 4, 5, 6]  # blank lines are not records


@given(st.lists(st.integers(min_value=0, max_value=len(JSONL_ROWS)), max_size=6))
def test_jsonl_fed_in_any_pieces_reads_as_the_whole(cuts: list[int]) -> None:
    whole = list(read_rows(JSONL_ROWS, "jsonl"))
    assert fed(JSONL_ROWS, "jsonl", cuts) == whole
    assert [getattr(entry, "row", None) for entry in whole] == [1, 3, 4, 5, 6]


def test_the_whole_csv_reads_as_a_person_expects() -> None:
    rows, errors = split(read_rows([HEADER, *CSV_ROWS], "csv"))
    assert [r.appointment_id for r in rows] == ["A1", "A2", "A3", "A6"]
    assert [r.request.patient.last_name for r in rows] == ["Smith", 'O"Brien', "Multi\nLine", "Smith"]
    assert {e.appointment_id: e.message for e in errors} == {
        "A4": "row 4 (field last_name): last_name is missing",
        "A5": "row 5: the row has more cells than the header",
    }


# --- planning into Redis --------------------------------------------------------------------------------


def appointments(count: int, distinct: int) -> list[AppointmentRow]:
    """``count`` appointments of ``distinct`` patients (each patient's visits spread over the input)."""
    base = request_for("01")
    made = []
    for n in range(count):
        patient = n % distinct
        code = ProcedureCode(code=("99213", "97110", "80053")[n % 3])
        service = base.service.model_copy(update={"procedures": [code]})
        request = base.model_copy(update={"member_id": f"STREAM{patient:04d}", "service": service})
        made.append(AppointmentRow(row=n + 1, appointment_id=f"S{n}", patient_id=str(patient), request=request))
    return made


async def stored_items(queue: BatchQueue, batch_id: str) -> list[BatchItem]:
    raw: dict[bytes, bytes] = await queue.redis.hgetall(queue.keys.batch_items(batch_id))
    return sorted(
        (queue.open_item(batch_id, name.decode(), blob) for name, blob in raw.items()), key=lambda i: i.item_id
    )


async def test_planning_in_chunks_dedupes_across_them_like_planning_at_once(redis_url: str) -> None:
    rows = appointments(40, 9)
    redis = queue_redis(redis_url)
    try:
        queue = BatchQueue(redis, RedisKeys("bstr1:"))
        async with queue.planner(BatchSpec(source="jsonl")) as planner:
            for start in range(0, len(rows), 7):  # a patient's visits land in different chunks
                await planner.add(rows[start : start + 7])
            assert await queue.progress(planner.batch_id) is None  # not a batch until committed
            batch_id = await planner.commit()
        assert await stored_items(queue, batch_id) == plan_items(rows)
        progress = await queue.progress(batch_id)
        assert progress is not None
        assert (progress.items, progress.rows, progress.state) == (9, 40, "running")
        assert await redis.exists(queue.keys.batch_planning(batch_id)) == 0  # the question map is gone
        entries = await queue.take("c", 100, claim_idle_seconds=60, block_ms=10)
        assert sorted(e.item_id for e in entries if e.batch_id == batch_id) == [f"i{n:06d}" for n in range(1, 10)]
    finally:
        await redis.aclose()


async def test_a_refused_input_leaves_nothing_behind(redis_url: str) -> None:
    redis = queue_redis(redis_url)
    try:
        queue = BatchQueue(redis, RedisKeys("bstr2:"))
        planner = queue.planner(BatchSpec(source="csv"))
        try:
            async with planner:
                await planner.add(appointments(3, 2))
                raise ValueError("the upload broke off")
        except ValueError:
            pass
        assert await redis.keys("bstr2:batch:" + planner.batch_id + "*") == []
    finally:
        await redis.aclose()


def raw_values(dump: dict[bytes, bytes] | list[Any]) -> bytes:
    if isinstance(dump, dict):
        return b"".join(dump.values())
    return b"".join(value for _, fields in dump for value in fields.values())


async def test_items_and_results_are_sealed_at_rest(sandbox_factory: SandboxFactory, redis_url: str) -> None:
    box = await sandbox_factory()
    settings = settings_for(box, redis_url=redis_url, encryption_key=ENCRYPTION_KEY).model_copy(
        update={"redis_key_prefix": "bstr3:"}
    )
    rows = appointments(4, 2)
    redis = queue_redis(redis_url)
    try:
        queue = BatchQueue.from_settings(redis, settings)
        async with queue.planner(BatchSpec(source="jsonl")) as planner:
            await planner.add(rows[:3])
            await planner.add(rows[3:])
            batch_id = await planner.commit()
        async with opened(settings) as runtime:
            worker = BatchWorker(queue, runtime.service, BatchSettings(concurrency=4))
            results = await run_batch(queue, worker, batch_id)
        assert sorted(r.appointment_id for r in results) == ["S0", "S1", "S2", "S3"]
        assert {r.action.value for r in results} == {"not_found_fix_demographics"}  # members the payer lacks
        stored = raw_values(await redis.hgetall(queue.keys.batch_items(batch_id)))
        stored += raw_values(await redis.xrange(queue.keys.batch_results(batch_id)))
        patient = rows[0].request.patient
        # (long enough that random ciphertext cannot contain one by chance)
        for secret in ("STREAM0000", patient.last_name, str(patient.birth_date), '"appointment_id"', "i000001"):
            assert secret.encode() not in stored
        plain = BatchQueue(redis, RedisKeys("bstr3:"))  # without the key nothing can be read back
        entry = (await plain.redis.hkeys(plain.keys.batch_items(batch_id)))[0].decode()
        blob = await redis.hget(plain.keys.batch_items(batch_id), entry)
        with pytest.raises(CacheCorrupt):
            plain.open_item(batch_id, entry, blob)
    finally:
        await redis.aclose()


# --- leases ------------------------------------------------------------------------------------------------


async def test_a_long_payer_call_keeps_its_lease(sandbox_factory: SandboxFactory, redis_url: str) -> None:
    slow = PayerBehavior(latency=Latency(fixed_ms=1500, jitter_ms=0))
    box = await sandbox_factory(config=SandboxClearinghouseConfig(default=slow, max_captured=50))
    settings = settings_for(box, redis_url=redis_url).model_copy(update={"redis_key_prefix": "bstr4:"})
    batch = BatchSettings(concurrency=2, claim_idle_seconds=0.4)
    redis = queue_redis(redis_url)
    try:
        queue = BatchQueue.from_settings(redis, settings)
        batch_id = await queue.create(BatchSpec(source="jsonl"), plan_items(appointments(1, 1)), 1, [])
        async with opened(settings) as runtime:
            worker = BatchWorker(queue, runtime.service, batch)
            stolen = []

            async def look_for_abandoned() -> None:  # another worker, past the idle timeout
                claimed: Any = await redis.xautoclaim(
                    queue.keys.batch_work, BATCH_GROUP, "other", 400, start_id="0-0", count=10
                )
                stolen.extend(claimed[1])

            await run_batch(queue, worker, batch_id, poll=0.1, while_waiting=look_for_abandoned)
        assert stolen == []
        assert len(box.state.captured) == 1  # the payer was asked once
    finally:
        await redis.aclose()


# --- the API: streamed upload, the report -------------------------------------------------------------------


def upload_csv(count: int) -> str:
    base = request_for("01")
    lines = ["appointment_id,service_date,payer_id,last_name,first_name,birth_date,member_id,provider_npi"]
    for n in range(count):
        patient = n % (count // 2)
        lines.append(
            f"U{n},{base.service.date.isoformat()},{base.payer.id},PAT,ANN,1980-01-02,M{patient:05d},"
            f"{base.provider.npi}"
        )
    return "\n".join(lines) + "\n"


async def batch_api(
    aiohttp_client: AiohttpClient, sandbox_factory: SandboxFactory, redis_url: str, prefix: str
) -> tuple[Api, Settings]:
    """The API with Redis under ``prefix`` and a ``batch:run`` key, over the sandbox clearinghouse."""
    box = await sandbox_factory()
    runner = key("batch:run")
    settings = settings_for(box, redis_url=redis_url).model_copy(
        update={"redis_key_prefix": prefix, "api_keys": [runner.settings]}
    )
    return await start_api(aiohttp_client, settings, token=runner.token), settings


async def test_a_large_upload_is_planned_in_chunks_and_reported(
    aiohttp_client: AiohttpClient, sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    api, settings = await batch_api(aiohttp_client, sandbox_factory, redis_url, "bstr5:")
    count = 1002  # over two chunks; appointment n and n + 501 are the same patient
    created = await api.client.post(
        "/v1/batches", data=upload_csv(count), headers=api.auth(**{"Content-Type": "text/csv"})
    )
    assert created.status == 202, await created.text()
    progress: dict[str, Any] = await created.json()
    assert (progress["items"], progress["rows"], progress["row_errors"]) == (501, count, 0)
    location = created.headers["Location"]
    redis = queue_redis(redis_url)  # blocking reads: the worker's own client
    try:
        await run_to_the_end(api, location, BatchQueue.from_settings(redis, settings), progress["batch_id"], count)
    finally:
        await redis.aclose()
    missing = await api.client.get("/v1/batches/b00000000000000000000/report", headers=api.auth())
    assert missing.status == 404


async def run_to_the_end(api: Api, location: str, queue: BatchQueue, batch_id: str, count: int) -> None:
    items = await stored_items(queue, batch_id)
    assert all(len(item.appointments) == 2 for item in items)
    assert [ref.appointment_id for ref in items[0].appointments] == ["U0", "U501"]

    worker = BatchWorker(queue, api.runtime.service, BatchSettings(concurrency=64))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            while (await (await api.client.get(location, headers=api.auth())).json())["state"] != "done":  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
    report = await api.client.get(f"{location}/report", headers=api.auth())
    assert report.status == 200
    assert report.headers["Content-Type"].startswith("text/html")
    page = await report.text()
    assert f"<p id='total'>{count} appointments</p>" in page
    assert f"<td class='count' data-action='not_found_fix_demographics'>{count}</td>" in page
    anonymous = await api.client.get(f"{location}/report")
    assert anonymous.status == 401


async def test_an_empty_upload_is_refused_and_leaves_no_batch(
    aiohttp_client: AiohttpClient, sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    api, _ = await batch_api(aiohttp_client, sandbox_factory, redis_url, "bstr6:")
    header_only = await api.client.post(
        "/v1/batches", data="appointment_id,service_date\n", headers=api.auth(**{"Content-Type": "text/csv"})
    )
    assert header_only.status == 422
    assert (await header_only.json())["error"]["code"] == "request.invalid"
    blank = await api.client.post("/v1/batches", data="\n\n", headers=api.auth(**{"Content-Type": "text/csv"}))
    assert blank.status == 400
    redis = queue_redis(redis_url)
    try:
        assert await redis.keys("bstr6:batch:b*") == []
    finally:
        await redis.aclose()


def test_line_chunks_number_rows_across_chunks() -> None:
    lines = [json.dumps({"appointment_id": f"X{n}"}) + "\n" for n in range(1203)]
    chunks = list(line_chunks(lines, "jsonl"))
    assert [len(c) for c in chunks] == [500, 500, 203]
    rows = [entry.row for chunk in chunks for entry in chunk]
    assert rows == list(range(1, 1204))
    assert all(isinstance(entry, ItemResult) is False for chunk in chunks for entry in chunk)
