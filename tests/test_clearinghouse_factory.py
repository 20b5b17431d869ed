"""The stack the settings describe: the embedded sandbox by default, real transports when configured."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from eligibility_svc.clearinghouse.core_soap import CoreSoapTransport
from eligibility_svc.clearinghouse.factory import build_clearinghouse, open_clearinghouse
from eligibility_svc.clearinghouse.limiter import LocalPayerLimiter, PayerLimits, RedisPayerLimiter
from eligibility_svc.clearinghouse.resilience import scan_aaa
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.settings import ClearinghouseSettings, SandboxClearinghouseSettings, Settings
from eligibility_svc.x12.reader import read_elements
from tests.support.ch_servers import PASSWORD, USERNAME, make_270, scenario, single
from tests.support.redis_server import free_port


def _settings(**clearinghouse: object) -> Settings:
    return Settings(_env_file=None, clearinghouse=ClearinghouseSettings.model_validate(clearinghouse))  # type: ignore[call-arg]


@pytest.mark.parametrize("envelope", ["core_mime", "core_soap"])
async def test_embedded_default_answers_over_a_real_local_socket(envelope: str) -> None:
    settings = _settings(sandbox=SandboxClearinghouseSettings(envelope=envelope))  # type: ignore[arg-type]
    fixture = scenario("01")
    async with open_clearinghouse(settings) as stack:
        assert stack.sandbox is not None
        assert stack.transport.envelope == envelope
        assert stack.transport.endpoint_name.startswith("127.0.0.1:")
        assert isinstance(stack.limiter, LocalPayerLimiter)
        result = await stack.transport.exchange(
            make_270(fixture.request), payer_id="SBX10001", deadline=time.monotonic() + 5
        )
        assert scan_aaa(result.x12_271) == []
        assert result.attempt_count == 1
        assert [v.scope for v in stack.breakers.snapshot()] == ["endpoint", "payer"]


async def test_configured_soap_transport_with_redis_limits(sandbox: RunningSandbox, redis_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url=redis_url,
        clearinghouse=ClearinghouseSettings(
            transport="core_soap", url=sandbox.soap_url, username=USERNAME, password=SecretStr(PASSWORD)
        ),
    )
    stack = await build_clearinghouse(settings)
    try:
        assert isinstance(stack.transport.inner, CoreSoapTransport)
        assert isinstance(stack.limiter, RedisPayerLimiter)
        result = await stack.transport.exchange(
            make_270(scenario("02").request), payer_id="SBX10002", deadline=time.monotonic() + 5
        )
        assert result.envelope == "core_soap"
        assert sandbox.state.captured[-1].envelope == "core_soap"
    finally:
        await stack.close()


@pytest.mark.parametrize(
    ("clearinghouse", "match"),
    [
        ({"transport": "core_mime"}, "clearinghouse.url is not set"),
        ({"transport": "core_mime", "url": "https://ch.example.com/core"}, "needs credentials"),
        (
            {"transport": "core_soap", "url": "http://ch.example.com/core", "username": "u", "password": "p"},
            "plain http",
        ),
        ({"transport": "core_mime", "url": "https://x.example.com", "client_key_file": "k.pem"}, "without"),
        ({"limiter": "redis"}, "redis_url is not set"),
    ],
)
async def test_incomplete_configuration_is_refused_with_the_setting_to_fix(
    clearinghouse: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        await build_clearinghouse(_settings(**clearinghouse))


async def test_the_sandbox_command_serves_until_stopped(tmp_path: Path) -> None:
    """``eligibility-svc sandbox clearinghouse --port P`` as an operator runs it, then the real transport."""
    port = free_port()
    with (tmp_path / "sandbox.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "eligibility_svc",
            "sandbox",
            "clearinghouse",
            "--port",
            str(port),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            transport = single("core_mime", f"http://127.0.0.1:{port}/core/mime")
            result = await transport.exchange(
                make_270(scenario("01").request), payer_id="SBX10001", deadline=time.monotonic() + 5
            )
            await transport.close()
            assert scan_aaa(result.x12_271) == []
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)
    assert f"sandbox clearinghouse on http://127.0.0.1:{port}" in (tmp_path / "sandbox.log").read_text()


async def _wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.returncode is None, "the sandbox command exited"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    pytest.fail(f"the sandbox did not answer {url} within 15 s")


async def test_per_payer_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELIG_CLEARINGHOUSE__PAYER_LIMITS", '{"SBX10001": {"concurrency": 3, "rate_per_second": 7}}')
    monkeypatch.setenv("ELIG_CLEARINGHOUSE__PER_PAYER_CONCURRENCY", "11")
    monkeypatch.delenv("ELIG_REDIS_URL", raising=False)
    async with open_clearinghouse(Settings()) as stack:
        assert isinstance(stack.limiter, LocalPayerLimiter)
        assert stack.limiter.limits("SBX10001") == PayerLimits(concurrency=3, rate_per_second=7, burst=20)
        assert stack.limiter.limits("SBX10002").concurrency == 11


@pytest.mark.parametrize("envelope", ["core_mime", "core_soap"])
async def test_the_271_is_handed_on_as_read_when_its_reply_was_checked(envelope: str) -> None:
    """The interpreter parses what the reply check read (no second read): it must be that 271, whole."""
    settings = _settings(sandbox=SandboxClearinghouseSettings(envelope=envelope))  # type: ignore[arg-type]
    async with open_clearinghouse(settings) as stack:
        for name in ("01", "10"):  # active coverage; a subscriber not found (AAA 75 in 2100C)
            result = await stack.transport.exchange(
                make_270(scenario(name).request), payer_id="SBX10001", deadline=time.monotonic() + 5
            )
            assert result.interchange is not None
            assert result.interchange == read_elements(result.x12_271)
            assert scan_aaa(result.x12_271, result.interchange) == scan_aaa(result.x12_271)
    assert [(hit.loop, hit.reason) for hit in scan_aaa(result.x12_271, result.interchange)] == [("2100C", "75")]
