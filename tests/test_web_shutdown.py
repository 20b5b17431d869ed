"""``eligibility-svc serve`` as a process: the printed example works, and SIGTERM drains in-flight checks."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.web_app import Served, fixture_request, serve, stop


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client:
        yield client


async def in_flight(session: aiohttp.ClientSession, served: Served) -> float:
    async with session.get(f"{served.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("eligibility_checks_in_flight "):
                return float(line.split()[1])
    return 0.0


async def wait_in_flight(session: aiohttp.ClientSession, served: Served, count: float) -> None:
    deadline = time.monotonic() + 20
    while await in_flight(session, served) < count:
        assert time.monotonic() < deadline, "the check never started"
        await asyncio.sleep(0.05)


async def refused(port: int, within: float = 10.0) -> bool:
    """Whether new connections to ``port`` are refused (soon after the signal)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.05)
    return False


async def post_check(session: aiohttp.ClientSession, served: Served) -> tuple[int, dict[str, Any]]:
    # A connection of its own, so that closing idle keep-alive connections cannot touch it.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as own:
        url = f"{served.url}/v1/eligibility"
        async with own.post(url, json=fixture_request("01"), headers=served.auth()) as response:
            return response.status, await response.json()


async def test_the_printed_curl_example_works(tmp_path: Path) -> None:
    served = await serve(tmp_path)
    try:
        assert served.curl.startswith(f"curl -sS {served.url}/v1/eligibility ")
        curl = await asyncio.create_subprocess_exec(
            *shlex.split(served.curl), "-i", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(curl.communicate(), 30)
        assert curl.returncode == 0, err
        head, _, body = out.decode().partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200")
        assert "X-Eligibility-Sandbox: true" in head
        summary = json.loads(body)
        assert summary["status"] == "active"
        assert summary["provenance"]["sandbox"] is True
    finally:
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 30) == 0


async def test_sigterm_finishes_the_check_in_flight_and_refuses_new_ones(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    served = await serve(tmp_path, ELIG_CLEARINGHOUSE__SANDBOX__LATENCY_MS="2500", ELIG_SHUTDOWN_GRACE_SECONDS="30")
    try:
        check = asyncio.create_task(post_check(session, served))
        await wait_in_flight(session, served, 1)
        served.process.send_signal(signal.SIGTERM)

        assert await refused(served.port)
        assert not check.done()  # still waiting on the (slow) payer
        status, summary = await asyncio.wait_for(check, 30)
        assert status == 200
        assert summary["status"] == "active"
        assert await asyncio.wait_for(served.process.wait(), 30) == 0
    finally:
        await stop(served)
    messages = [json.loads(line)["msg"] for line in served.log_path.read_text().splitlines()]
    assert messages.index("draining") < messages.index("stopped")


async def test_a_check_beyond_the_grace_period_is_cut_off(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    served = await serve(tmp_path, ELIG_CLEARINGHOUSE__SANDBOX__LATENCY_MS="15000", ELIG_SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        check = asyncio.create_task(post_check(session, served))
        await wait_in_flight(session, served, 1)
        signalled = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 30) == 0
        assert time.monotonic() - signalled < 12  # well before the payer would have answered
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(check, 10)
    finally:
        await stop(served)
