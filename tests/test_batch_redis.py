"""Batches end to end: real Redis, the real sandbox clearinghouse over HTTP, a real worker loop."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from eligibility_svc.batch.inputs import read_jsonl
from eligibility_svc.batch.models import BatchSpec
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.batch.runner import BatchWorker
from eligibility_svc.batch.sources import split
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.settings import BatchSettings
from tests.support.batch_runs import run_batch
from tests.support.ch_servers import SCENARIOS, SandboxFactory
from tests.support.service_peers import opened, payer_calls, request_for, settings_for

PREFIXES = sorted(p.name[:2] for p in SCENARIOS.iterdir() if (p / "scenario.json").is_file())
# What each fixture implies for the front desk (procedures: the scenario's own request).
EXPECTED = {
    "05": "inactive",
    "06": "inactive",
    "07": "inactive",
    "08": "not_found_fix_demographics",
    "09": "not_found_fix_demographics",
    "10": "not_found_fix_demographics",
    "11": "payer_unavailable_retry_scheduled",
    "12": "payer_unavailable_retry_scheduled",
}
FAST = BatchSettings(
    concurrency=64, claim_idle_seconds=30, max_attempts=3, retry_base_seconds=0.2, retry_max_seconds=0.5
)


def jsonl_for_all_scenarios() -> list[str]:
    lines = [
        json.dumps(
            {"appointment_id": f"A{p}", "patient_id": f"10{p}", "request": request_for(p).model_dump(mode="json")}
        )
        for p in PREFIXES
    ]
    # a second appointment of scenario 01's patient the same day: one payer call, two rows
    lines.append(
        json.dumps(
            {"appointment_id": "A01b", "patient_id": "1001", "request": request_for("01").model_dump(mode="json")}
        )
    )
    lines.append('{"appointment_id": "BAD", "request": {"payer": {}}}')
    return lines


async def test_every_scenario_dedupe_bad_row_and_payer_down(
    sandbox_factory: SandboxFactory, redis_url: str, tmp_path: Path
) -> None:
    redis_client = queue_redis(redis_url)
    # SBX10001 answers 5xx to its first 2 requests: its items come back later and succeed.
    down = PayerBehavior(faults=[Fault(kind=FaultKind.HTTP_5XX, first=2)])
    box = await sandbox_factory(config=SandboxClearinghouseConfig(payers={"SBX10001": down}))
    settings = settings_for(box, redis_url=redis_url).model_copy(update={"redis_key_prefix": "bt1:"})
    rows, errors = split(read_jsonl(jsonl_for_all_scenarios()))
    items = plan_items(rows)
    assert len(items) == len(PREFIXES)
    async with opened(settings) as runtime:
        queue = BatchQueue(redis_client, RedisKeys("bt1:"))
        batch_id = await queue.create(BatchSpec(source="jsonl"), items, len(rows) + len(errors), errors)
        worker = BatchWorker(queue, runtime.service, FAST, metrics=runtime.metrics)
        results = await run_batch(queue, worker, batch_id)
    await redis_client.aclose()
    by_id = {r.appointment_id: r for r in results}
    assert len(results) == len(PREFIXES) + 2
    assert by_id["BAD"].action == "error"
    assert "row 38" in (by_id["BAD"].message or "")
    for prefix, action in EXPECTED.items():
        assert by_id[f"A{prefix}"].action == action, prefix
    assert by_id["A11"].final_failure
    assert by_id["A11"].attempts == FAST.max_attempts
    assert by_id["A16"].action == "needs_auth"
    assert by_id["A32"].action == "needs_auth"
    assert by_id["A01"].action == "ok"
    assert by_id["A01b"].action == "ok"
    assert by_id["A01"].attempts == 3
    assert payer_calls(box, "SBX10001") == 3  # 2 failures, then one answer for both appointments
    # other payers were not held up: every other active answer was stored before SBX10001's
    order = [r.appointment_id for r in results]
    assert order.index("A02") < order.index("A01")
    progress = await queue.progress(batch_id)
    assert progress is not None
    assert progress.done + progress.failed == len(items)
    assert Counter(r.action.value for r in results)["ok"] >= 10
