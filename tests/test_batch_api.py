"""The batch routes over a real socket: create, progress, results as JSONL and CSV, auth (401/403);
embedded (in process, in memory) and with Redis (enqueued, a real worker loop consumes)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import BatchSettings
from tests.support.ch_servers import SandboxFactory
from tests.support.service_peers import settings_for
from tests.support.web_app import AiohttpClient, Api, embedded_settings, fixture_request, key, start_api

JSONL = {"Content-Type": "application/x-ndjson"}


def body(prefixes: list[str]) -> str:
    lines = [json.dumps({"appointment_id": f"A{p}", "request": fixture_request(p)}) for p in prefixes]
    lines.append(json.dumps({"appointment_id": "A01-dup", "request": fixture_request("01")}))
    lines.append('{"appointment_id": "BAD"}')
    return "\n".join(lines) + "\n"


async def finished(api: Api, location: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            response = await api.client.get(location, headers=api.auth())
            assert response.status == 200
            progress: dict[str, Any] = await response.json()
            if progress["state"] == "done":
                return progress
            await asyncio.sleep(0.05)


async def check_results(api: Api, location: str) -> None:
    progress = await finished(api, location)
    assert (progress["items"], progress["rows"], progress["row_errors"]) == (3, 5, 1)
    assert progress["done"] + progress["failed"] == 3
    response = await api.client.get(f"{location}/results", headers=api.auth())
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    rows = {row["appointment_id"]: row for row in map(json.loads, (await response.text()).splitlines())}
    assert {k: v["action"] for k, v in rows.items()} == {
        "A01": "ok",
        "A01-dup": "ok",
        "A05": "inactive",
        "A16": "needs_auth",
        "BAD": "error",
    }
    assert rows["A01"]["item_id"] == rows["A01-dup"]["item_id"]
    as_csv = await api.client.get(f"{location}/results", headers=api.auth(Accept="text/csv"))
    table = list(csv.DictReader(io.StringIO(await as_csv.text())))
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert sorted(r["appointment_id"] for r in table) == sorted(rows)
    by_query = await api.client.get(f"{location}/results?format=csv", headers=api.auth())
    assert (await by_query.text()).startswith("appointment_id,")


async def test_embedded_batch_through_the_api(aiohttp_client: AiohttpClient) -> None:
    api = await start_api(aiohttp_client, embedded_settings())
    created = await api.client.post("/v1/batches", data=body(["01", "05", "16"]), headers=api.auth(**JSONL))
    assert created.status == 202
    location = created.headers["Location"]
    assert location == f"/v1/batches/{(await created.json())['batch_id']}"
    await check_results(api, location)
    missing = await api.client.get("/v1/batches/b00000000000000000000", headers=api.auth())
    assert missing.status == 404


async def test_batch_routes_need_the_batch_scope(aiohttp_client: AiohttpClient) -> None:
    runner, checker = key("batch:run", name="runner"), key("eligibility:check", name="checker")
    settings = embedded_settings(api_keys=[runner.settings, checker.settings])
    api = await start_api(aiohttp_client, settings, token=runner.token)
    anonymous = await api.client.post("/v1/batches", data=body(["01"]), headers=JSONL)
    assert anonymous.status == 401
    forbidden = await api.client.post("/v1/batches", data=body(["01"]), headers=api.auth(checker.token, **JSONL))
    assert forbidden.status == 403
    assert (await forbidden.json())["error"]["code"] == "auth.forbidden"
    for path in ("/v1/batches/b00000000000000000000", "/v1/batches/b00000000000000000000/results"):
        assert (await api.client.get(path, headers=api.auth(checker.token))).status == 403
    assert (await api.client.post("/v1/batches", data=body(["01"]), headers=api.auth(**JSONL))).status == 202


async def test_with_redis_the_api_enqueues_and_a_worker_runs_it(
    aiohttp_client: AiohttpClient, sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    box = await sandbox_factory()
    settings = settings_for(box, redis_url=redis_url).model_copy(update={"redis_key_prefix": "bapi:"})
    runner = key("batch:run")
    settings = settings.model_copy(update={"api_keys": [runner.settings]})
    api = await start_api(aiohttp_client, settings, token=runner.token)
    created = await api.client.post("/v1/batches", data=body(["01", "05", "16"]), headers=api.auth(**JSONL))
    assert created.status == 202
    location = created.headers["Location"]
    progress = await (await api.client.get(location, headers=api.auth())).json()
    assert progress["done"] == 0  # only enqueued: nothing runs without a worker
    redis = queue_redis(redis_url)
    worker = BatchWorker(BatchQueue(redis, RedisKeys("bapi:")), api.runtime.service, BatchSettings())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await check_results(api, location)
    finally:
        stop.set()
        await task
        await redis.aclose()
