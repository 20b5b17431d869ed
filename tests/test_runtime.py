"""``app_state.build_runtime``: what the settings open, that it works, and that closing closes it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Literal

import pytest
from prometheus_client import CollectorRegistry

from eligibility_svc.app_state import build_runtime
from eligibility_svc.cache import MemoryCache, RedisCache
from eligibility_svc.clearinghouse.limiter import LocalPayerLimiter, RedisPayerLimiter
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.metrics import Metrics
from eligibility_svc.models import CheckStatus
from eligibility_svc.sandbox.ch_config import Fault, FaultKind, PayerBehavior, SandboxClearinghouseConfig
from eligibility_svc.service import UnconfiguredWriteBack
from eligibility_svc.settings import (
    ClearinghouseSettings,
    SandboxClearinghouseSettings,
    Settings,
)
from tests.support.ch_servers import SandboxFactory
from tests.support.service_peers import opened, payer_calls, request_for, sample, settings_for


def embedded(**changes: Any) -> Settings:
    """The embedded default, whatever ELIG_* variables this shell has."""
    return Settings(redis_url=None, clearinghouse=ClearinghouseSettings(**changes))


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("envelope", ["core_mime", "core_soap"])
async def test_the_embedded_default_answers_from_the_in_process_sandbox(
    envelope: Literal["core_mime", "core_soap"],
) -> None:
    settings = embedded(sandbox=SandboxClearinghouseSettings(envelope=envelope))
    async with build_runtime(settings) as runtime:
        box = runtime.clearinghouse.sandbox
        assert box is not None
        assert runtime.sandbox
        assert isinstance(runtime.cache, MemoryCache)
        assert runtime.redis is None
        summary = await runtime.service.verify(request_for("01"))
        again = await runtime.service.verify(request_for("01"))
        ready = await runtime.service.readiness()
        assert port_open(box.port)
    assert summary.status is CheckStatus.ACTIVE
    assert summary.provenance.sandbox
    assert again.provenance.cached
    assert payer_calls(box) == 1
    assert ready.redis == "not_configured"
    assert ready.sandbox
    assert not ready.degraded
    assert not port_open(box.port)  # closing the runtime stopped the sandbox


async def test_build_runtime_can_be_awaited_and_closed_twice() -> None:
    runtime = await build_runtime(embedded())
    try:
        assert (await runtime.service.verify(request_for("02"))).status is CheckStatus.ACTIVE
    finally:
        await runtime.aclose()
    await runtime.aclose()
    assert runtime.clearinghouse.sandbox is not None
    assert not port_open(runtime.clearinghouse.sandbox.port)


async def test_with_redis_everything_shared_goes_through_redis(sandbox_factory: SandboxFactory, redis_url: str) -> None:
    box = await sandbox_factory()
    async with opened(settings_for(box, redis_url=redis_url)) as runtime:
        assert isinstance(runtime.cache, RedisCache)
        assert runtime.redis is not None
        assert runtime.gate is not None
        assert isinstance(runtime.clearinghouse.limiter, RedisPayerLimiter)
        assert not runtime.sandbox
        assert sample(runtime, "eligibility_cache_available") == 1
        await runtime.service.verify(request_for("01"))
        keys = {key.split(b":")[1] async for key in runtime.redis.scan_iter(match="elig:*")}
        assert {b"cache", b"cov", b"check", b"ctl"} <= keys


async def test_without_redis_the_limiter_is_in_process(sandbox_factory: SandboxFactory) -> None:
    box = await sandbox_factory()
    async with opened(settings_for(box)) as runtime:
        assert isinstance(runtime.clearinghouse.limiter, LocalPayerLimiter)
        assert isinstance(runtime.cache, MemoryCache)


async def test_the_caller_s_metrics_and_write_back_sink_are_used() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    sink = UnconfiguredWriteBack()
    async with build_runtime(embedded(), metrics=metrics, writeback=sink) as runtime:
        assert runtime.metrics is metrics
        assert runtime.service.writeback is sink
        await runtime.service.verify(request_for("01"), writeback=True)
    assert registry.get_sample_value("eligibility_checks_total", {"status": "active", "source": "fresh"}) == 1
    assert len(sink.requested) == 1


async def test_settings_that_cannot_work_are_refused(redis_url: str) -> None:
    broken = Settings(redis_url=redis_url, clearinghouse=ClearinghouseSettings(transport="core_mime", url=None))
    with pytest.raises(ConfigurationError, match=r"clearinghouse\.url"):
        await build_runtime(broken)
    no_password = Settings(
        clearinghouse=ClearinghouseSettings(transport="core_soap", url="https://ch.example/core", username="u")
    )
    with pytest.raises(ConfigurationError, match="credentials"):
        async with build_runtime(no_password):
            pass


async def test_closing_cancels_checks_still_waiting_on_the_payer(sandbox_factory: SandboxFactory) -> None:
    hang = PayerBehavior(faults=[Fault(kind=FaultKind.TIMEOUT, hang_seconds=60)])
    box = await sandbox_factory(SandboxClearinghouseConfig(seed=7, default=hang))
    runtime = await build_runtime(settings_for(box), metrics=Metrics())
    check = asyncio.create_task(runtime.service.verify(request_for("01")))
    for _ in range(500):  # until the 270 has reached the sandbox (it never answers)
        if payer_calls(box):
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(runtime.aclose(), 5)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(check, 5)
