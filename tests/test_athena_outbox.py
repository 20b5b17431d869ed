"""The write-back outbox with a real Redis and the sandbox over HTTP: branches, redelivery, retries, dead letters."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from eligibility_svc.athena.diff import Action
from eligibility_svc.athena.factory import AthenaParts
from eligibility_svc.athena.outbox import (
    AthenaOutbox,
    AthenaWriteBack,
    OutboxWorker,
    WriteBackStatus,
    apply_write_back,
)
from eligibility_svc.cache import ValueCodec, make_redis
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, Patient, Payer
from eligibility_svc.redis_keys import OUTBOX_GROUP, RedisKeys
from eligibility_svc.sandbox.athena import RunningAthenaSandbox, seed_patient
from eligibility_svc.sandbox.athena_seed import Policy
from eligibility_svc.settings import CacheSettings, Settings
from tests.support.athena_servers import (
    athena_client,
    athena_sandbox,
    scenario_request,
    settings_for,
    summary_for,
    target_of,
)

KEYS = RedisKeys()


@dataclass
class Stack:
    box: RunningAthenaSandbox
    settings: Settings
    redis: Redis
    outbox: AthenaOutbox
    worker: OutboxWorker
    parts: AthenaParts

    async def enqueue(
        self, check_id: str, patient_id: str, request: EligibilityRequest, summary: CoverageSummary
    ) -> str:
        return await AthenaWriteBack(self.outbox, target_of(patient_id)).enqueue(check_id, request, summary)

    async def drain(self, done: Callable[[], Any], within: float = 10.0) -> None:
        """Run worker steps until ``await done()`` is true."""
        deadline = time.monotonic() + within
        while not await done():
            assert time.monotonic() < deadline, "the outbox did not finish in time"
            await self.worker.step()

    async def drain_until(self, condition: Callable[[], Any], within: float = 5.0) -> None:
        """Wait (without stepping the worker) until ``await condition()`` is true."""
        deadline = time.monotonic() + within
        while not await condition():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.01)

    async def finished(self, *check_ids: str) -> bool:
        states = [await self.outbox.state(check_id) for check_id in check_ids]
        return all(
            s is not None and s.status in (WriteBackStatus.APPLIED, WriteBackStatus.REFUSED, WriteBackStatus.DEAD)
            for s in states
        )


@asynccontextmanager
async def outbox_stack(redis_url: str, *, cache: CacheSettings | None = None, **athena: Any) -> AsyncIterator[Stack]:
    async with athena_sandbox() as box:
        settings = settings_for(box, redis_url=redis_url, **athena)
        if cache is not None:
            settings = settings.model_copy(update={"cache": cache})
        redis = make_redis(redis_url, socket_timeout=5.0)
        outbox = AthenaOutbox(
            redis, keys=KEYS, codec=ValueCodec.from_settings(settings.cache), settings=settings.athena
        )
        async with athena_client(settings, redis=redis) as parts:
            worker = OutboxWorker(outbox, parts.client, lock_secret=b"test-secret", block_seconds=0.05)
            await outbox.ensure_group()
            try:
                yield Stack(box, settings, redis, outbox, worker, parts)
            finally:
                await redis.aclose()


def request_for(patient: Patient, payer_id: str = "SBX10001") -> EligibilityRequest:
    base = scenario_request("01")
    return base.model_copy(update={"patient": patient, "payer": Payer(id=payer_id, name="Sandbox Mutual Health")})


NELL = Patient(last_name="Nopolicy", first_name="Nell", birth_date="1980-01-01", sex="F")  # type: ignore[arg-type]


async def test_each_branch_lands_as_the_minimal_change_and_only_once(redis_url: str) -> None:
    async with outbox_stack(redis_url) as stack:
        box = stack.box
        seed_patient(  # on file with another payer's package: the verified plan is a change of package
            box.state,
            "3001",
            {"firstname": "Nell", "lastname": "Nopolicy", "dob": "01/01/1980", "sex": "F"},
            [
                {
                    "insurancepackageid": 90002,
                    "sequencenumber": 1,
                    "insuranceidnumber": "ZZOLD",
                    "insurancepolicyholdersex": "F",
                }
            ],
        )
        r01, r02, r05 = scenario_request("01"), scenario_request("02"), scenario_request("05")
        cases = {
            "chk-update": ("1001", r01, summary_for(r01, group="GRP0100")),
            "chk-none": ("1002", r02, summary_for(r02, begin=None, end=None)),
            "chk-create": ("2001", request_for(NELL), summary_for(request_for(NELL), group="GRP0100")),
            "chk-replace": ("3001", request_for(NELL), summary_for(request_for(NELL))),
            "chk-refused": ("1005", r05, summary_for(r05, status=CheckStatus.INACTIVE)),
        }
        for check_id, (patient, request, summary) in cases.items():
            await stack.enqueue(check_id, patient, request, summary)
        await stack.drain(lambda: stack.finished(*cases))
        states = {check_id: await stack.outbox.state(check_id) for check_id in cases}
        first_writes = {patient: dict(counts) for patient, counts in box.state.writes.items()}
        # The same checks again (new ids): athenaNet already holds every plan, so nothing is written.
        for check_id, (patient, request, summary) in cases.items():
            await stack.enqueue(f"{check_id}-again", patient, request, summary)
        await stack.drain(lambda: stack.finished(*(f"{c}-again" for c in cases)))
        again = {check_id: await stack.outbox.state(f"{check_id}-again") for check_id in cases}
    assert {c: (s.status.value, s.action.value if s.action else None) for c, s in states.items() if s} == {
        "chk-update": ("applied", "update"),
        "chk-none": ("applied", "none"),
        "chk-create": ("applied", "create"),
        "chk-replace": ("applied", "replace"),
        "chk-refused": ("refused", "refused"),
    }
    update = states["chk-update"]
    assert update is not None
    assert update.changed == ["expirationdate", "issuedate"]
    assert update.attempts == 1
    assert first_writes == {"1001": {"PUT": 1}, "2001": {"POST": 1}, "3001": {"DELETE": 1, "POST": 1}}
    assert {c: s.action.value if s and s.action else None for c, s in again.items()} == {
        "chk-update": "none",
        "chk-none": "none",
        "chk-create": "none",
        "chk-replace": "none",
        "chk-refused": "refused",
    }
    assert {patient: dict(counts) for patient, counts in box.state.writes.items()} == first_writes
    policy = next(p for p in box.state.practice.patients["1001"].policies if p.active)
    assert (policy.fields["issuedate"], policy.fields["expirationdate"]) == ("01/01/2026", "12/31/2026")
    replaced = box.state.practice.patients["3001"].policies
    assert [(p.fields["insurancepackageid"], p.active) for p in replaced] == [(90002, False), (90001, True)]
    assert replaced[0].cancellation_note is not None
    assert "chk-replace" in replaced[0].cancellation_note


async def test_enqueueing_a_check_twice_queues_it_once(redis_url: str) -> None:
    async with outbox_stack(redis_url) as stack:
        r01 = scenario_request("01")
        first = await stack.enqueue("chk-twice", "1001", r01, summary_for(r01))
        second = await stack.enqueue("chk-twice", "1001", r01, summary_for(r01))
        length = await stack.redis.xlen(KEYS.outbox)
    assert first == second
    assert length == 1


async def test_a_redelivered_write_back_that_already_landed_writes_nothing(redis_url: str) -> None:
    async with outbox_stack(redis_url, outbox_claim_idle_seconds=0.5) as stack:
        r01 = scenario_request("01")
        await stack.enqueue("chk-crash", "1001", r01, summary_for(r01, group="GRP0100"))
        # A worker takes the entry, athenaNet confirms its write, and it dies before acknowledging.
        await stack.redis.xreadgroup(OUTBOX_GROUP, "doomed", {KEYS.outbox: ">"}, count=1)
        payload = await stack.outbox.payload("chk-crash")
        assert payload is not None
        landed = await apply_write_back(stack.parts.client, payload, stack.settings.athena)
        assert stack.box.state.writes_for("1001") == 1
        await asyncio.sleep(stack.settings.athena.outbox_claim_idle_seconds + 0.1)
        await stack.drain(lambda: stack.finished("chk-crash"))  # another worker claims it
        state = await stack.outbox.state("chk-crash")
        pending = await stack.redis.xpending(KEYS.outbox, OUTBOX_GROUP)
    assert landed.action is Action.UPDATE
    assert state is not None
    assert (state.status, state.action) == (WriteBackStatus.APPLIED, Action.NONE)
    assert stack.box.state.writes_for("1001") == 1
    assert pending["pending"] == 0


async def test_write_backs_wait_out_an_outage_then_land(redis_url: str) -> None:
    async with outbox_stack(redis_url) as stack:
        r01 = scenario_request("01")
        await stack.box.stop_listening()
        await stack.enqueue("chk-outage", "1001", r01, summary_for(r01, group="GRP0100"))

        async def retried_twice() -> bool:
            state = await stack.outbox.state("chk-outage")
            return state is not None and state.status is WriteBackStatus.RETRYING and state.attempts >= 2

        await stack.drain(retried_twice)
        during = await stack.outbox.state("chk-outage")
        await stack.box.start_listening()
        await stack.drain(lambda: stack.finished("chk-outage"))
        after = await stack.outbox.state("chk-outage")
        audit = await stack.redis.xrange(KEYS.athena_audit)
    assert during is not None
    assert during.error_code == "athena.unavailable"
    assert after is not None
    assert (after.status, after.action) == (WriteBackStatus.APPLIED, Action.UPDATE)
    assert stack.box.state.writes_for("1001") == 1
    assert {fields[b"check_id"] for _, fields in audit} == {b"chk-outage"}


async def test_after_n_failures_a_dead_letter_with_the_reason_then_requeue(redis_url: str) -> None:
    async with outbox_stack(redis_url, outbox_max_attempts=3, max_attempts=1) as stack:
        r01 = scenario_request("01")
        await stack.box.stop_listening()
        await stack.enqueue("chk-dead", "1001", r01, summary_for(r01, group="GRP0100"))
        await stack.drain(lambda: stack.finished("chk-dead"))
        state = await stack.outbox.state("chk-dead")
        letters = await stack.outbox.dead_letters()
        backlog = await stack.outbox.backlog()
        await stack.box.start_listening()
        assert await stack.outbox.requeue("chk-dead")
        await stack.drain(lambda: stack.finished("chk-dead"))
        revived = await stack.outbox.state("chk-dead")
    assert state is not None
    assert (state.status, state.attempts, state.error_code) == (WriteBackStatus.DEAD, 3, "athena.unavailable")
    assert [(x["check_id"], x["code"], x["attempts"]) for x in letters] == [("chk-dead", "athena.unavailable", "3")]
    assert "could not connect" in letters[0]["reason"]
    assert backlog == 0
    assert revived is not None
    assert revived.status is WriteBackStatus.APPLIED
    assert stack.box.state.writes_for("1001") == 1


async def test_a_payer_without_a_package_is_dead_lettered_at_once(redis_url: str) -> None:
    async with outbox_stack(redis_url) as stack:
        request = request_for(NELL, payer_id="SBX99999")
        await stack.enqueue("chk-unmapped", "2001", request, summary_for(request))
        await stack.drain(lambda: stack.finished("chk-unmapped"))
        state = await stack.outbox.state("chk-unmapped")
    assert state is not None
    assert (state.status, state.attempts, state.error_code) == (WriteBackStatus.DEAD, 1, "athena.payer_unmapped")
    assert state.reason is not None
    assert "athena.practices.195900.payers.SBX99999" in state.reason
    assert stack.box.state.writes == {}


async def test_a_policy_created_meanwhile_is_read_again_not_duplicated(redis_url: str) -> None:
    """athenaNet answers 409 when the sequence filled while our POST was on its way: read, decide again."""
    async with outbox_stack(redis_url) as stack:
        request = request_for(NELL)
        summary = summary_for(request, group="GRP0100")
        stack.box.state.config.faults.write_delay_seconds = 0.3
        await stack.enqueue("chk-race", "2001", request, summary)
        step = asyncio.create_task(stack.worker.step())
        await asyncio.sleep(0.15)  # the POST is being written; the front desk adds the same policy
        patient = stack.box.state.practice.patients["2001"]
        fields = {
            "insurancepackageid": 90001,
            "sequencenumber": 1,
            "insuranceidnumber": "ZZM0100001",
            "policynumber": "GRP0100",
            "issuedate": "01/01/2026",
            "expirationdate": "12/31/2026",
            "insurancepolicyholderlastname": "Nopolicy",
            "insurancepolicyholdersex": "F",
            "relationshiptoinsuredid": 1,
        }
        patient.policies.append(Policy(stack.box.state.practice.new_insurance_id(), fields))
        await step
        await stack.drain(lambda: stack.finished("chk-race"))
        state = await stack.outbox.state("chk-race")
    assert state is not None
    assert (state.status, state.action) == (WriteBackStatus.APPLIED, Action.NONE)
    assert len([p for p in patient.policies if p.active]) == 1
    assert stack.box.state.writes_for("2001") == 0


async def test_payloads_are_sealed_and_the_stream_carries_only_check_ids(redis_url: str) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    async with outbox_stack(redis_url, cache=CacheSettings(encryption_key=key)) as stack:  # type: ignore[arg-type]
        r01 = scenario_request("01")
        await stack.enqueue("chk-sealed", "1001", r01, summary_for(r01))
        blob = await stack.redis.hget(KEYS.outbox_item("chk-sealed"), "payload")
        entries = await stack.redis.xrange(KEYS.outbox)
        await stack.drain(lambda: stack.finished("chk-sealed"))
        state = await stack.outbox.state("chk-sealed")
    assert blob is not None
    assert blob[:1] == b"E"
    for secret in (b"ZZM0100001", b"Fixturely", b"1001"):
        assert secret not in blob
    assert [fields for _, fields in entries] == [{b"check_id": b"chk-sealed"}]
    assert state is not None
    assert state.status is WriteBackStatus.APPLIED


async def test_a_slow_write_is_not_taken_over_by_another_worker(redis_url: str) -> None:
    """athenaNet takes longer than the claim time: the heartbeat keeps the entry and the patient ours."""
    async with outbox_stack(redis_url, outbox_claim_idle_seconds=0.6) as stack:
        r01 = scenario_request("01")
        stack.box.state.config.faults.write_delay_seconds = 1.5
        await stack.enqueue("chk-slow", "1001", r01, summary_for(r01, group="GRP0100"))
        other = OutboxWorker(stack.outbox, stack.parts.client, lock_secret=b"test-secret", block_seconds=0.05)
        first = asyncio.create_task(stack.worker.step())

        async def held() -> bool:  # the first worker holds the entry now
            return bool((await stack.redis.xpending(KEYS.outbox, OUTBOX_GROUP))["pending"])

        await stack.drain_until(held)
        deadline = time.monotonic() + 2.5
        while not first.done():
            assert time.monotonic() < deadline
            await other.step()  # keeps looking for entries idle longer than the claim time
            await asyncio.sleep(0.05)
        await first
        state = await stack.outbox.state("chk-slow")
    assert other.processed == 0
    assert state is not None
    assert (state.status, state.action) == (WriteBackStatus.APPLIED, Action.UPDATE)
    assert stack.box.state.writes_for("1001") == 1
