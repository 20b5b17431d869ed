"""Kill a worker process (SIGKILL) mid-batch and resume with another: nothing lost, nothing asked twice
that was already stored, every appointment's result recorded exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from eligibility_svc.batch.models import AppointmentRow, BatchProgress, BatchSpec
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.queue import BatchQueue, queue_redis
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.sandbox.ch_config import Latency, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.settings import Settings
from tests.support.ch_servers import SandboxFactory
from tests.support.service_peers import KEY_SECRET, request_for, settings_for

ROOT = Path(__file__).resolve().parent.parent
ITEMS = 120
CONCURRENCY = 8
PREFIX = "bres:"


def rows() -> list[AppointmentRow]:
    base = request_for("01")
    made = []
    for n in range(ITEMS):
        payer = base.payer.model_copy(update={"id": f"SBX1000{n % 5 + 1}"})
        request = base.model_copy(update={"member_id": f"KILL{n:05d}", "payer": payer})
        made.append(AppointmentRow(row=n + 1, appointment_id=f"K{n}", request=request))
    return made


def worker_env(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    ch = settings.clearinghouse
    env.update(
        {
            "ELIG_REDIS_URL": settings.redis_url or "",
            "ELIG_REDIS_KEY_PREFIX": PREFIX,
            "ELIG_CLEARINGHOUSE__TRANSPORT": ch.transport,
            "ELIG_CLEARINGHOUSE__URL": ch.url or "",
            "ELIG_CLEARINGHOUSE__USERNAME": ch.username or "",
            "ELIG_CLEARINGHOUSE__PASSWORD": ch.password.get_secret_value() if ch.password else "",
            "ELIG_CLEARINGHOUSE__MAX_ATTEMPTS": "1",
            "ELIG_CACHE__KEY_SECRET": KEY_SECRET,
            "ELIG_BATCH__CONCURRENCY": str(CONCURRENCY),
            "ELIG_BATCH__CLAIM_IDLE_SECONDS": "1",
            "ELIG_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eligibility_svc",
        "worker",
        "--metrics-port",
        "0",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def wait_for(queue: BatchQueue, batch_id: str, finished: int) -> BatchProgress:
    async with asyncio.timeout(25):
        while True:
            progress = await queue.progress(batch_id)
            if progress is not None and progress.finished >= finished:
                return progress
            await asyncio.sleep(0.02)


def calls_per_member(captured: list[tuple[str, str]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _, payload in captured:
        for n in range(ITEMS):
            if f"KILL{n:05d}" in payload:
                counts[f"KILL{n:05d}"] += 1
    return counts


async def test_kill_9_mid_batch_and_resume(sandbox_factory: SandboxFactory, redis_url: str) -> None:
    slow = PayerBehavior(latency=Latency(fixed_ms=120, jitter_ms=40))
    box = await sandbox_factory(config=SandboxClearinghouseConfig(default=slow, max_captured=5000))
    settings = settings_for(box, redis_url=redis_url)
    redis = queue_redis(redis_url)
    queue = BatchQueue(redis, RedisKeys(PREFIX))
    items = plan_items(rows())
    batch_id = await queue.create(BatchSpec(source="jsonl"), items, len(items), [])
    env = worker_env(settings)
    first = await start_worker(env)
    try:
        before = await wait_for(queue, batch_id, 30)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        stored_before = {r.appointment_id async for r in queue.results(batch_id)}
        assert before.finished < ITEMS  # killed mid-batch
        second = await start_worker(env)
        try:
            done = await wait_for(queue, batch_id, ITEMS)
        finally:
            second.terminate()
            await second.wait()
        results = [r async for r in queue.results(batch_id)]
    finally:
        if first.returncode is None:
            first.kill()
        await redis.aclose()
    assert done.state == "done"
    assert Counter(r.appointment_id for r in results) == Counter(f"K{n}" for n in range(ITEMS))  # once each
    captured = [(c.payer_id or "", dict(c.fields).get("Payload", "")) for c in box.state.captured]
    calls = calls_per_member(captured)
    assert set(calls) == {f"KILL{n:05d}" for n in range(ITEMS)}  # every member asked
    for appointment_id in stored_before:  # stored before the kill: never sent to the payer again
        assert calls[f"KILL{int(appointment_id[1:]):05d}"] == 1
    repeated = [member for member, count in calls.items() if count > 1]
    assert len(repeated) <= CONCURRENCY  # only what was in flight at the kill could be asked again
