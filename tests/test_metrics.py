"""Metrics: every name exposed, labels bounded and free of patient data, /metrics served from a registry."""

from __future__ import annotations

import re

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from pytest_aiohttp import AiohttpClient

from eligibility_svc.metrics import Metrics, http_metrics_middleware, metrics_handler

NAMES = [
    "eligibility_http_requests_total",
    "eligibility_http_request_duration_seconds",
    "eligibility_checks_total",
    "eligibility_checks_in_flight",
    "eligibility_cache_lookups_total",
    "eligibility_cache_available",
    "eligibility_redis_errors_total",
    "eligibility_clearinghouse_request_duration_seconds",
    "eligibility_clearinghouse_retries_total",
    "eligibility_circuit_breaker_state",
    "eligibility_aaa_errors_total",
    "eligibility_x12_validation_findings_total",
    "eligibility_outbox_backlog",
    "eligibility_outbox_dead_letters_total",
    "eligibility_batch_items_total",
    "eligibility_batch_items_pending",
]


def exposition(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_every_metric_is_exposed_with_its_labels() -> None:
    metrics = Metrics()
    metrics.observe_http("/v1/eligibility", "POST", 200, 0.004)
    metrics.count_check("active", "fresh")
    metrics.count_cache("hit")
    metrics.redis_error("get", TimeoutError())
    metrics.set_cache_available(False)
    metrics.observe_clearinghouse("87726", "timeout", 8.0)
    metrics.count_retry("87726", "timeout")
    metrics.set_breaker("payer", "87726", "open")
    metrics.count_aaa("42", "payer")
    metrics.count_findings("warning", 3)
    metrics.outbox_backlog.set(7)
    metrics.outbox_dead_letters.inc()
    metrics.batch_items.labels("active").inc()
    metrics.batch_items_pending.set(120)
    with metrics.checks_in_flight.track_inprogress():
        text = exposition(metrics)
    for name in NAMES:
        assert f"\n{name}" in text or text.startswith(name), name
    expected_samples = [
        'eligibility_http_requests_total{method="POST",route="/v1/eligibility",status="200"} 1.0',
        'eligibility_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/eligibility"} 1.0',
        'eligibility_checks_total{source="fresh",status="active"} 1.0',
        'eligibility_cache_lookups_total{result="hit"} 1.0',
        'eligibility_redis_errors_total{operation="get"} 1.0',
        "eligibility_cache_available 0.0",
        'eligibility_clearinghouse_request_duration_seconds_count{outcome="timeout",payer="87726"} 1.0',
        'eligibility_clearinghouse_retries_total{payer="87726",reason="timeout"} 1.0',
        'eligibility_circuit_breaker_state{kind="payer",name="87726"} 2.0',
        'eligibility_aaa_errors_total{code="42",location="payer"} 1.0',
        'eligibility_x12_validation_findings_total{severity="warning"} 3.0',
        "eligibility_checks_in_flight 1.0",
        "eligibility_outbox_backlog 7.0",
        "eligibility_batch_items_pending 120.0",
    ]
    for sample in expected_samples:
        assert sample in text, sample


def test_registries_are_independent() -> None:
    first, second = Metrics(), Metrics(CollectorRegistry())
    first.count_cache("miss")
    assert 'eligibility_cache_lookups_total{result="miss"} 1.0' in exposition(first)
    assert 'result="miss"' not in exposition(second)


def test_label_values_are_bounded() -> None:
    metrics = Metrics(max_payers=2)
    for payer in ("87726", "60054", "39026", "DOE JANE 1961-03-14"):
        metrics.count_retry(payer, "timeout")
    metrics.count_aaa("not a code; QUORVINDALE", "subscriber")
    metrics.observe_http("/v1/eligibility", "BREW", 405, 0.001)
    metrics.redis_error("get key elig:cache:QUORVINDALE", OSError())
    text = exposition(metrics)
    assert 'payer="87726"' in text
    assert 'payer="60054"' in text
    assert 'payer="39026"' not in text  # over the limit
    assert 'eligibility_clearinghouse_retries_total{payer="other",reason="timeout"} 2.0' in text
    assert 'eligibility_aaa_errors_total{code="other",location="subscriber"} 1.0' in text
    assert 'method="other"' in text
    assert 'eligibility_redis_errors_total{operation="other"} 1.0' in text
    # Label sets only: a sample's value (a ``_created`` time such as 1.7955692961961737e+09) may hold any digits.
    label_sets = " ".join(re.findall(r"\{[^}]*\}", text))
    assert 'payer="other"' in label_sets
    for leaked in ("DOE", "QUORVINDALE", "1961", "BREW"):
        assert leaked not in label_sets


def app_with_metrics(metrics: Metrics) -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info.get("check_id")})

    async def broken(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable

    app = web.Application(middlewares=[http_metrics_middleware(metrics)])
    app.router.add_get("/v1/eligibility/{check_id}", ok)
    app.router.add_get("/readyz", broken)
    app.router.add_get("/metrics", metrics_handler(metrics.registry))
    return app


async def test_metrics_endpoint_serves_the_registry(aiohttp_client: AiohttpClient) -> None:
    metrics = Metrics()
    metrics.count_check("inactive", "cache")
    client = await aiohttp_client(app_with_metrics(metrics))
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'eligibility_checks_total{source="cache",status="inactive"} 1.0' in await response.text()
    openmetrics = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await openmetrics.text()).rstrip().endswith("# EOF")


async def test_requests_are_counted_by_route_template(aiohttp_client: AiohttpClient) -> None:
    metrics = Metrics()
    client = await aiohttp_client(app_with_metrics(metrics))
    for check_id in ("chk-QUORVINDALE", "chk-19610314"):
        assert (await client.get(f"/v1/eligibility/{check_id}")).status == 200
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/patients/QUORVINDALE")).status == 404
    text = exposition(metrics)
    assert 'eligibility_http_requests_total{method="GET",route="/v1/eligibility/{check_id}",status="200"} 2.0' in text
    assert 'eligibility_http_requests_total{method="GET",route="/readyz",status="503"} 1.0' in text
    assert 'eligibility_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert (
        'eligibility_http_request_duration_seconds_count{method="GET",route="/v1/eligibility/{check_id}"} 2.0' in text
    )
    assert "QUORVINDALE" not in text
    assert "19610314" not in text
