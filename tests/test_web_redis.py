"""The HTTP API in Redis mode against a real redis-server: readiness follows Redis, checks never fail for it."""

from __future__ import annotations

from typing import Any

import pytest

from eligibility_svc.api.app import create_app
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.settings import Settings
from tests.support.redis_server import RedisServer
from tests.support.web_app import AiohttpClient, Api, embedded_settings, fixture_request, key, start_api


async def redis_api(aiohttp_client: AiohttpClient, url: str) -> Api:
    checker = key("eligibility:check")
    settings: Settings = embedded_settings(redis_url=url, api_keys=[checker.settings])
    return await start_api(aiohttp_client, settings, token=checker.token)


async def readiness(api: Api) -> tuple[int, dict[str, Any]]:
    response = await api.client.get("/readyz")
    return response.status, await response.json()


def test_redis_mode_needs_configured_keys(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="no API keys are configured"):
        create_app(embedded_settings(redis_url=redis_url))


async def test_ready_with_redis_and_answers_cached(aiohttp_client: AiohttpClient, redis_url: str) -> None:
    api = await redis_api(aiohttp_client, redis_url)
    status, body = await readiness(api)
    assert (status, body["status"], body["redis"]) == (200, "ready", "ok")
    assert body["sandbox"] is True  # Redis is real, the clearinghouse still the sandbox

    _, first = await api.check(fixture_request("02"))
    code, second = await api.check(fixture_request("02"))
    assert code == 200
    assert first["provenance"]["cached"] is False
    assert second["provenance"]["cached"] is True
    response = await api.client.get(f"/v1/eligibility/{first['check_id']}", headers=api.auth())
    assert response.status == 200


async def test_redis_killed_degrades_readiness_but_not_checks(
    aiohttp_client: AiohttpClient, disposable_redis: RedisServer
) -> None:
    api = await redis_api(aiohttp_client, disposable_redis.url)
    _, before = await api.check(fixture_request("01"))

    disposable_redis.kill()
    status, body = await readiness(api)
    assert (status, body["status"], body["redis"], body["degraded"]) == (200, "degraded", "down", True)
    assert any("redis" in reason for reason in body["reasons"])

    for prefix in ("01", "03", "14"):  # one answered before (the cache is gone with Redis) and two new
        code, summary = await api.check(fixture_request(prefix))
        assert code == 200, summary
        assert summary["provenance"]["cached"] is False
        assert summary["check_id"] != before["check_id"]
    response = await api.client.get(f"/v1/eligibility/{summary['check_id']}", headers=api.auth())
    assert response.status == 200  # records are kept in process while Redis is down
    metrics = await (await api.client.get("/metrics")).text()
    assert "eligibility_cache_available 0.0" in metrics
    assert 'eligibility_redis_errors_total{operation="get"}' in metrics

    disposable_redis.start()
    await api.check(fixture_request("05"))  # the per-payer limiter returns to Redis on its next call
    _, again = await api.check(fixture_request("05"))
    assert again["provenance"]["cached"] is True  # caching resumed without a restart
    status, body = await readiness(api)
    assert (status, body["status"], body["redis"], body["reasons"]) == (200, "ready", "ok", [])
