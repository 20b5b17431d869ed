"""Chaos: athenaNet down while write-backs keep arriving, the worker killed with SIGKILL mid-stream, restarted.

Every write-back must land exactly once: counted by the sandbox per patient, none lost, none doubled.
The worker runs as a real process (``tests.support.athena_worker``), configured only by environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis

from eligibility_svc.athena.outbox import AthenaOutbox, AthenaWriteBack, WriteBackStatus
from eligibility_svc.cache import ValueCodec
from eligibility_svc.models import Patient, Payer
from eligibility_svc.redis_keys import OUTBOX_GROUP, RedisKeys
from eligibility_svc.sandbox.athena import seed_patient
from tests.support.athena_servers import (
    WORKER_COMMAND,
    athena_sandbox,
    scenario_request,
    settings_for,
    summary_for,
    target_of,
    worker_env,
)

KEYS = RedisKeys()
UPDATED = [f"{n:02d}" for n in (1, 2, 3, 4, 6, 7, 11, 12, 13, 16, 17, 18, 19, 20, 21, 24)]  # PUT: add plan dates
CREATED = [str(4001 + i) for i in range(8)]  # POST: no policy on file


@contextlib.asynccontextmanager
async def worker(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *WORKER_COMMAND, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line.startswith(b"ready"), line + (await process.stderr.read() if process.stderr else b"")
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def until(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_every_write_back_lands_exactly_once_through_an_outage_and_a_kill(
    redis_url: str, redis_client: Redis
) -> None:
    async with athena_sandbox() as box:
        settings = settings_for(
            box,
            redis_url=redis_url,
            outbox_max_attempts=100,  # an outage is not a reason to give up
            outbox_concurrency=4,
            outbox_claim_idle_seconds=1.5,
            max_attempts=2,
            request_timeout_seconds=1.0,
        )
        for patient_id in CREATED:
            seed_patient(
                box.state,
                patient_id,
                {"firstname": "Cara", "lastname": f"Chaos{patient_id}", "dob": "01/02/1990", "sex": "F"},
                [],
            )
        box.state.config.faults.write_delay_seconds = 0.15  # slow writes: the kill finds some in flight
        outbox = AthenaOutbox(
            redis_client, keys=KEYS, codec=ValueCodec.from_settings(settings.cache), settings=settings.athena
        )
        await outbox.ensure_group()
        checks: dict[str, str] = {}  # check id → patient id

        async def arrive(batch: list[str]) -> None:
            for item in batch:
                if len(item) == 2:  # a scenario patient: verified plan dates are new to athenaNet
                    request, patient_id = scenario_request(item), str(1000 + int(item))
                else:
                    patient_id = item
                    request = scenario_request("01").model_copy(
                        update={
                            "patient": Patient(
                                last_name=f"Chaos{item}", first_name="Cara", sex="F", birth_date="1990-01-02"
                            ),  # type: ignore[arg-type]
                            "payer": Payer(id="SBX10001", name="Sandbox Mutual Health"),
                        }
                    )
                check_id = f"chaos-{patient_id}"
                checks[check_id] = patient_id
                await AthenaWriteBack(outbox, target_of(patient_id)).enqueue(check_id, request, summary_for(request))
                await asyncio.sleep(0.02)

        async def states() -> dict[str, WriteBackStatus]:
            found = {c: await outbox.state(c) for c in checks}
            return {c: s.status for c, s in found.items() if s is not None}

        async def retrying() -> bool:
            return WriteBackStatus.RETRYING in (await states()).values()

        async def some_written() -> bool:
            return sum(box.state.writes_for(p) for p in checks.values()) >= 6

        async def all_applied() -> bool:
            found = await states()
            return len(found) == len(checks) and set(found.values()) == {WriteBackStatus.APPLIED}

        env = worker_env(settings)
        await box.stop_listening()  # athenaNet is down
        async with worker(env) as first:
            await arrive([*UPDATED[:8], *CREATED[:4]])  # checks keep arriving during the outage
            await until(retrying, 15, "write-backs failing during the outage")
            assert sum(box.state.writes_for(p) for p in checks.values()) == 0
            await box.start_listening()  # athenaNet is back
            await arrive([*UPDATED[8:], *CREATED[4:]])
            await until(some_written, 15, "write-backs landing")
            first.send_signal(signal.SIGKILL)  # mid-stream: entries held, a write maybe in flight
            await first.wait()
        written_at_kill = sum(box.state.writes_for(p) for p in checks.values())
        async with worker(env):
            await until(all_applied, 30, "every write-back applied after the restart")
        pending = await redis_client.xpending(KEYS.outbox, OUTBOX_GROUP)
        backlog = await outbox.backlog()
        dead = await outbox.dead_letters()
    assert len(checks) == len(UPDATED) + len(CREATED)
    assert written_at_kill < len(checks)  # the kill really came mid-stream
    writes = {patient: dict(box.state.writes.get(patient, {})) for patient in checks.values()}
    expected = {p: ({"POST": 1} if p in CREATED else {"PUT": 1}) for p in checks.values()}
    assert writes == expected  # every one landed, none twice
    for patient_id in checks.values():
        active = [p for p in box.state.practice.patients[patient_id].policies if p.active]
        assert len(active) == 1
        assert (active[0].fields["issuedate"], active[0].fields["expirationdate"]) == ("01/01/2026", "12/31/2026")
    assert pending["pending"] == 0
    assert backlog == 0
    assert dead == []


async def test_the_worker_stops_cleanly_on_sigterm(redis_url: str) -> None:
    async with athena_sandbox() as box:
        env = worker_env(settings_for(box, redis_url=redis_url))
        async with worker(env) as process:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=10)
    assert code == 0
