"""The seam to the service: a check by athenaNet patient id, verified by the real service, written back."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from eligibility_svc.app_state import build_runtime
from eligibility_svc.athena.diff import Action
from eligibility_svc.athena.intake import AthenaIntake, open_athena_intake, writing_to
from eligibility_svc.athena.outbox import WriteBackState, WriteBackStatus
from eligibility_svc.errors import RequestInvalid
from eligibility_svc.models import CheckStatus
from eligibility_svc.redis_keys import RedisKeys
from eligibility_svc.settings import Settings
from tests.support.athena_servers import PRACTICE, athena_sandbox, scenario_request, settings_for, summary_for


async def settled(intake: AthenaIntake, check_id: str) -> WriteBackState:
    deadline = time.monotonic() + 10
    while True:
        state = await intake.state(check_id)
        if state is not None and state.status in (
            WriteBackStatus.APPLIED,
            WriteBackStatus.REFUSED,
            WriteBackStatus.DEAD,
        ):
            return state
        assert time.monotonic() < deadline, f"write-back of {check_id} did not finish: {state}"
        await asyncio.sleep(0.02)


async def test_embedded_check_by_patient_id_writes_the_payers_answer_back() -> None:
    """athenaNet sandbox → inquiry → clearinghouse sandbox → 271 → summary → write-back → athenaNet sandbox."""
    settings = Settings(redis_url=None)
    async with AsyncExitStack() as resources:
        intake = await open_athena_intake(settings, resources=resources)
        runtime = await resources.enter_async_context(build_runtime(settings, writeback=intake.sink))
        summaries = {}
        for patient_id, service_types in (("1001", ["30", "98", "UC"]), ("1015", ["98"])):
            body = {
                "athena": {"practice_id": PRACTICE, "patient_id": patient_id},
                "service": {"date": "2026-11-20", "service_types": service_types},
            }
            request, target = await intake.resolve(body)
            with writing_to(target):
                summaries[patient_id] = await runtime.service.verify(request, writeback=True)
        states = {p: await settled(intake, s.check_id or "") for p, s in summaries.items()}
        record = await runtime.service.get_check(summaries["1001"].check_id or "")
        on_file = {p: (await intake.client.list_insurances(PRACTICE, p))[0] for p in summaries}
    assert {s.status for s in summaries.values()} == {CheckStatus.ACTIVE}
    assert record.writeback.value == "queued"
    assert states["1001"].action is Action.UPDATE
    assert states["1001"].changed == ["expirationdate", "issuedate"]
    assert (on_file["1001"].issuedate, on_file["1001"].expirationdate) == (
        summaries["1001"].plan.coverage_begin,
        summaries["1001"].plan.coverage_end,
    )
    corrected = on_file["1015"]  # the payer corrected name, birth date and member ID (scenario 15)
    assert states["1015"].action is Action.UPDATE
    assert corrected.insuranceidnumber == "ZZC1500015A"
    assert (corrected.insurancepolicyholderlastname, corrected.insurancepolicyholderfirstname) == (
        "SMYTHEE-TESTOR",
        "ALLEN",
    )
    assert corrected.insurancepolicyholderdob is not None
    assert corrected.insurancepolicyholderdob.isoformat() == "1966-02-14"


async def test_with_redis_the_sink_queues_to_the_outbox_only_for_a_named_policy(
    redis_url: str, redis_client: Redis
) -> None:
    async with athena_sandbox() as box, AsyncExitStack() as resources:
        settings = settings_for(box, redis_url=redis_url)
        intake = await open_athena_intake(settings, resources=resources, redis=redis_client)
        request = scenario_request("01")
        summary = summary_for(request)
        without = await intake.sink.enqueue("chk-no-target", request, summary)
        request2, target = await intake.resolve(
            {"athena": {"practice_id": PRACTICE, "patient_id": "1001"}, "service": {"date": "2026-11-20"}}
        )
        with writing_to(target):
            queued = await intake.sink.enqueue("chk-target", request2, summary)
        state = await intake.state("chk-target")
        length = await redis_client.xlen(RedisKeys().outbox)
    assert without == "skipped"
    assert queued == "queued"
    assert state is not None
    assert state.status is WriteBackStatus.QUEUED
    assert length == 1
    assert await redis_client.exists(RedisKeys().outbox_item("chk-no-target")) == 0


async def test_a_malformed_athena_body_names_the_field() -> None:
    async with athena_sandbox() as box, AsyncExitStack() as resources:
        intake = await open_athena_intake(settings_for(box), resources=resources)
        with pytest.raises(RequestInvalid) as caught:
            await intake.resolve(
                {"athena": {"practice_id": PRACTICE, "patient_id": "10 01"}, "service": {"date": "2026-11-20"}}
            )
    assert [f["field"] for f in caught.value.details["fields"]] == ["athena.patient_id"]
