"""Many checks at once: single-flight across replicas, and Redis dying (and coming back) under load.

Two ``EligibilityService`` runtimes sharing one redis-server stand in for two replicas; the sandbox
clearinghouse answers slowly enough that the checks overlap.  Timing assertions are loose: other
test suites share this machine.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client.samples import Sample

from eligibility_svc.app_state import Runtime
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest
from eligibility_svc.sandbox.ch_config import Latency, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from tests.support.ch_servers import SandboxFactory
from tests.support.redis_server import RedisServer
from tests.support.service_peers import opened, payer_calls, request_for, sample, settings_for

PPO = "SBX10001"
SOURCES = ("fresh", "cache", "reuse")
MIX = ("01", "02", "03", "04", "05", "14", "16")  # scenarios of seven payers and patients


async def slow_sandbox(factory: SandboxFactory, milliseconds: float) -> RunningSandbox:
    latency = Latency(fixed_ms=milliseconds, jitter_ms=milliseconds / 5)
    return await factory(SandboxClearinghouseConfig(seed=7, default=PayerBehavior(latency=latency)))


async def test_fifty_identical_checks_on_two_replicas_make_one_payer_call(
    sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    box = await slow_sandbox(sandbox_factory, 300)
    settings = settings_for(box, redis_url=redis_url)
    request = request_for("01")
    async with opened(settings) as one, opened(settings) as two:
        replicas = [one, two]
        answers = await asyncio.gather(*(replicas[i % 2].service.verify(request) for i in range(50)))
        assert payer_calls(box) == 1
        assert {a.check_id for a in answers} == {answers[0].check_id}
        assert all(a.status is CheckStatus.ACTIVE for a in answers)
        total = sum(sample(r, "eligibility_checks_total", status="active", source=s) for r in replicas for s in SOURCES)
        assert total == 50
        assert all(sample(r, "eligibility_checks_in_flight") == 0 for r in replicas)


async def test_forced_refreshes_at_once_share_the_one_fresh_answer(
    sandbox_factory: SandboxFactory, redis_url: str
) -> None:
    box = await slow_sandbox(sandbox_factory, 300)
    settings = settings_for(box, redis_url=redis_url)
    request = request_for("01").model_copy(update={"force_refresh": True})
    async with opened(settings) as one, opened(settings) as two:
        await one.service.verify(request_for("01"))  # an older answer, which none of them may get
        answers = await asyncio.gather(*((one, two)[i % 2].service.verify(request) for i in range(20)))
    assert payer_calls(box) == 2
    assert len({a.check_id for a in answers}) == 1
    assert not any(a.provenance.cached and (a.provenance.age_seconds or 0) > 0.5 for a in answers)


async def test_fifty_identical_checks_in_one_process_make_one_payer_call(sandbox_factory: SandboxFactory) -> None:
    box = await slow_sandbox(sandbox_factory, 200)
    async with opened(settings_for(box)) as runtime:
        answers = await asyncio.gather(*(runtime.service.verify(request_for("01")) for _ in range(50)))
    assert payer_calls(box) == 1
    assert len({a.check_id for a in answers}) == 1


async def test_different_checks_are_not_merged(sandbox_factory: SandboxFactory, redis_url: str) -> None:
    box = await slow_sandbox(sandbox_factory, 100)
    async with opened(settings_for(box, redis_url=redis_url)) as runtime:
        answers = await asyncio.gather(*(runtime.service.verify(request_for(p)) for p in MIX))
    assert payer_calls(box) == len(MIX)
    assert len({a.check_id for a in answers}) == len(MIX)


class Load:
    """Checks from ``workers`` concurrent callers over a mix of patients; every outcome is kept."""

    def __init__(self, runtime: Runtime, total: int, workers: int) -> None:
        self.runtime = runtime
        self.total = total
        self.workers = workers
        self.done: list[CoverageSummary] = []
        self.failed: list[BaseException] = []
        self._next = 0
        self._progress = asyncio.Event()

    def request(self, index: int) -> EligibilityRequest:
        request = request_for(MIX[index % len(MIX)])
        # Every third check insists on a fresh answer, so the payer and Redis both stay busy.
        return request.model_copy(update={"force_refresh": index % 3 == 0})

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while self._next < self.total:
            index, self._next = self._next, self._next + 1
            try:
                self.done.append(await self.runtime.service.verify(self.request(index)))
            except Exception as exc:  # any failure fails the test below, with the exception shown
                self.failed.append(exc)
            self._progress.set()

    async def wait_until(self, finished: int) -> None:
        while len(self.done) + len(self.failed) < finished:
            self._progress.clear()
            await self._progress.wait()


async def test_redis_killed_mid_run_fails_no_check_and_caching_resumes_after_restart(
    sandbox_factory: SandboxFactory, disposable_redis: RedisServer
) -> None:
    box = await slow_sandbox(sandbox_factory, 20)
    async with opened(settings_for(box, redis_url=disposable_redis.url)) as runtime:
        assert (await runtime.service.readiness()).redis == "ok"
        load = Load(runtime, total=150, workers=12)
        running = asyncio.create_task(load.run())
        await load.wait_until(50)
        disposable_redis.kill()
        await running

        assert load.failed == []
        assert len(load.done) == 150
        ready = await runtime.service.readiness()
        assert ready.redis == "down"
        assert ready.degraded
        assert sum(s.value for s in _samples(runtime, "eligibility_redis_errors_total")) > 0
        assert sample(runtime, "eligibility_cache_available") == 0
        # Without Redis a check still works, and its record can still be fetched here.
        while_down = await runtime.service.verify(request_for("01", service_types=["30", "98"]))
        assert (await runtime.service.get_check(while_down.check_id or "")).summary == while_down

        disposable_redis.start()  # same port, empty; the service is not restarted
        request = request_for("02", service_types=["30", "UC"])
        calls = payer_calls(box)
        first = await runtime.service.verify(request)
        second = await runtime.service.verify(request)
        assert not first.provenance.cached
        assert second.provenance.cached
        assert payer_calls(box) == calls + 1
        assert (await runtime.service.readiness()).redis == "ok"
        assert sample(runtime, "eligibility_cache_available") == 1


async def test_a_stalled_redis_slows_checks_boundedly_and_fails_none(
    sandbox_factory: SandboxFactory, disposable_redis: RedisServer
) -> None:
    box = await slow_sandbox(sandbox_factory, 10)
    async with opened(settings_for(box, redis_url=disposable_redis.url)) as runtime:
        await runtime.service.verify(request_for("01"))  # connections are open before Redis stalls
        disposable_redis.pause()
        try:
            started = time.monotonic()
            answers = await asyncio.gather(*(runtime.service.verify(request_for(p)) for p in MIX))
            elapsed = time.monotonic() - started
        finally:
            disposable_redis.resume()
    assert all(a.status in (CheckStatus.ACTIVE, CheckStatus.INACTIVE) for a in answers)
    assert elapsed < 15  # each Redis call gives up after its timeout; nothing waits for Redis forever


def _samples(runtime: Runtime, name: str) -> list[Sample]:
    found: list[Sample] = []
    for family in runtime.metrics.registry.collect():
        found += [s for s in family.samples if s.name == name]
    return found
