"""End to end: a real Prometheus scrapes a real ``eligibility-svc serve`` and ``eligibility-svc worker``; every
query we ship is run against them.

The service runs as in production but with its sandboxes: Redis (the suite's redis-server), the in-process
sandbox clearinghouse answering from x12_fixtures, a configured API key.  Prometheus (Debian's package)
scrapes it every second on loopback with our alert rules loaded.  Checks go through the HTTP API: active,
inactive, member not found, an auth row, AAA 42/80 from payers that are down (retried, then their breakers
open), cached repeats.  Two pre-visit batches go through the API to the worker: one finishes (the last
success), the other holds an item of a payer that is down, retried much later (pending, with a deadline).
Then:

* every Grafana panel's query returns data, except the few listed in ``NO_DATA_YET`` with the reason, and
  the panels in ``POSITIVE`` show activity (two rounds of checks, so rates have a before and an after);
* every metric selector in every alert returns data (same exceptions), and Prometheus evaluates every rule
  without error;
* the breaker alert goes pending on the breaker this run opened: the rules work on real series.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from eligibility_svc.security import generate_api_key
from tests.support.deploy_prometheus import PrometheusServer, ServiceProcess, http_get, http_post_json
from tests.support.deploy_promql import (
    DashboardQuery,
    alert_rules,
    dashboard_queries,
    exposed_series,
    runnable,
    selectors,
    write_rules_file,
)
from tests.support.deploy_tools import ROOT
from tests.support.redis_server import RedisServer

JOB = "eligibility-svc"
WORKER_JOB = "eligibility-svc-worker"  # the PodMonitor's job label
RATE_INTERVAL = "30s"  # Grafana's $__rate_interval: spans both rounds of traffic with a 1-second scrape
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
DOWN_PAYER = "SBX10011"  # scenario 11: the payer answers AAA 42 (unable to respond now)
DOWN_PAYER_BATCH = "11"  # the same payer's scenario in a batch: retried later, so its batch stays running
DOWN_PAYER_80 = "SBX10012"  # scenario 12: AAA 80 (no response from the payer); three rounds open its breaker too

# Metrics a healthy run of the API does not produce, and why a query on them may come back empty here.
NO_DATA_YET = {
    "eligibility_redis_errors_total": "Redis answered every call; tests/test_web_redis.py makes it fail",
    "eligibility_x12_validation_findings_total": "the sandbox's 271s are valid, so validation finds nothing",
}

# (scenario prefix, times): a cached repeat, inactive, members not found, an auth row; then payers that are
# down (AAA 80 once; AAA 42 twice: eight failed attempts open its breaker, whose threshold is five).
TRAFFIC = [("01", 2), ("05", 1), ("08", 1), ("10", 1), ("16", 1), ("12", 1), ("11", 2)]
ANSWERED = sum(times for prefix, times in TRAFFIC if prefix not in {"11", "12"})


@dataclass
class Stack:
    service: ServiceProcess
    prometheus: PrometheusServer
    answers: list[tuple[int, Any]]


# Panels that must show a positive number after the traffic, not merely a series (rates of counters that
# only appeared with the traffic would be zero: hence two rounds, the second on series Prometheus already has).
POSITIVE = {
    "Checks per second",
    "Requests by route and status",
    "Checks by status and source",
    "POST /v1/eligibility latency",
    "Clearinghouse round trips by payer and outcome",
    "Clearinghouse round trip p90 by payer",
    "Retries by payer and reason",
    "AAA rejections by code",
    "AAA codes over 24 hours",
    "Cache hit ratio",
    "Cache lookups by result",
    "Pods reaching Redis",
    "API pods up",
    "Worker pods up",
    "Batch items pending",
    "Time left before the batch deadline",
    "Since the last successful batch",
}


def scenario_request(prefix: str, date: dt.date) -> dict[str, Any]:
    path = next(p for p in sorted(SCENARIOS.iterdir()) if p.name.startswith(prefix))
    request: dict[str, Any] = json.loads((path / "scenario.json").read_text())["request"]
    request["service"]["date"] = date.isoformat()
    return request


def drive(service: ServiceProcess, token: str, date: dt.date) -> list[tuple[int, Any]]:
    """TRAFFIC for ``date``, then the record of one check, with and without the key."""
    auth = {"Authorization": f"Bearer {token}"}
    answers = []
    for prefix, times in TRAFFIC:
        for _ in range(times):
            request = scenario_request(prefix, date)
            answers.append(http_post_json(f"{service.url}/v1/eligibility", request, headers=auth))
    check_id = next((body["check_id"] for status, body in answers if status == 200 and "check_id" in body), "none")
    answers.append((http_get(f"{service.url}/v1/eligibility/{check_id}", headers=auth)[0], None))
    answers.append((http_get(f"{service.url}/v1/eligibility/{check_id}")[0], None))  # no key: 401
    return answers


def post_batch(service: ServiceProcess, token: str, prefixes: list[str], date: dt.date) -> str:
    """A JSONL batch of the scenarios' checks for ``date`` through ``POST /v1/batches``; its id."""
    lines = [
        json.dumps({"appointment_id": f"E{prefix}", "request": scenario_request(prefix, date)}) for prefix in prefixes
    ]
    request = urllib.request.Request(
        f"{service.url}/v1/batches",
        data=("\n".join(lines) + "\n").encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        batch_id: str = json.loads(response.read())["batch_id"]
    return batch_id


def batch_state(service: ServiceProcess, token: str, batch_id: str) -> dict[str, Any]:
    status, body = http_get(f"{service.url}/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    progress: dict[str, Any] = json.loads(body)
    return progress


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e")
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    key = generate_api_key(["admin"], name="e2e")
    env = {
        "ELIG_REDIS_URL": redis_server.url,
        "ELIG_API_KEYS": json.dumps([key.settings.model_dump(mode="json")]),
        "ELIG_CLEARINGHOUSE__BACKOFF_BASE_SECONDS": "0.01",
        "ELIG_CLEARINGHOUSE__BACKOFF_MAX_SECONDS": "0.05",
        "ELIG_SHUTDOWN_GRACE_SECONDS": "5",
    }
    service = ServiceProcess.start(workdir, env)
    # The worker retries a payer-down item only after 10 minutes: its batch stays running through the test.
    worker_env = {**env, "ELIG_BATCH__RETRY_BASE_SECONDS": "600", "ELIG_BATCH__RETRY_MAX_SECONDS": "600"}
    worker: ServiceProcess | None = None
    prometheus: PrometheusServer | None = None
    try:
        worker = ServiceProcess.start_worker(workdir, worker_env)
        rules = write_rules_file(workdir)
        targets = {JOB: f"127.0.0.1:{service.port}", WORKER_JOB: f"127.0.0.1:{worker.port}"}
        prometheus = PrometheusServer.start(workdir, targets=targets, rule_file=rules)
        assert prometheus.wait_for(f'up{{job="{JOB}"}} == 1'), prometheus.log.read_text()
        assert prometheus.wait_for(f'up{{job="{WORKER_JOB}"}} == 1'), worker.log.read_text()[-3000:]
        today = dt.date.today()
        # Round one: every check is fresh.  Round two, once Prometheus has scraped round one: the same checks
        # (cache hits) and the same patients a day later (fresh again), so every counter grows in the window.
        answers = drive(service, key.token, today)
        _scraped(prometheus, service, sum(times for _, times in TRAFFIC))
        tomorrow = today + dt.timedelta(days=1)  # the batches' deadline: 07:00 tomorrow in the practice's zone
        finished = post_batch(service, key.token, ["01", "05", "16"], tomorrow)
        post_batch(service, key.token, ["02", DOWN_PAYER_BATCH], tomorrow)
        drive(service, key.token, today)
        drive(service, key.token, today + dt.timedelta(days=1))
        _scraped(prometheus, service, 3 * sum(times for _, times in TRAFFIC))
        deadline = time.monotonic() + 30
        while batch_state(service, key.token, finished)["state"] != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
        for ready in (
            "eligibility_batch_last_success_timestamp_seconds > 0",
            "eligibility_batch_items_pending > 0",
            "eligibility_batch_deadline_timestamp_seconds > time()",
        ):
            assert prometheus.wait_for(ready), (ready, worker.log.read_text()[-3000:])
        assert prometheus.wait_for(f'timestamp(up{{job="{JOB}"}}) > {time.time() + 1}')  # one more, for the rules
        yield Stack(service, prometheus, answers)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if worker is not None:
            worker.stop()
        service.stop()


def _scraped(prometheus: PrometheusServer, service: ServiceProcess, posts: int) -> None:
    """Wait until a scrape has seen ``posts`` checks."""
    seen = f'sum(eligibility_http_requests_total{{route="/v1/eligibility", method="POST"}}) >= {posts}'
    assert prometheus.wait_for(seen), service.log.read_text()[-3000:]


def names_in(query: DashboardQuery) -> set[str]:
    return {selector.metric for selector in selectors(runnable(query.expr, RATE_INTERVAL))}


def test_the_checks_were_answered(stack: Stack) -> None:
    """Ordinary checks are 200 summaries; a payer that is down may be a 200 rejection or our 503."""
    answered = stack.answers[:ANSWERED]
    assert [status for status, _ in answered] == [200] * ANSWERED, stack.service.log.read_text()[-3000:]
    assert {body["status"] for _, body in answered} >= {"active", "inactive", "not_found"}
    down = stack.answers[ANSWERED : ANSWERED + 3]
    assert all(status in {200, 503} for status, _ in down), down
    assert [status for status, _ in stack.answers[-2:]] == [200, 401]


def test_prometheus_scrapes_the_service_and_the_worker(stack: Stack) -> None:
    targets = stack.prometheus.api("targets")["activeTargets"]
    assert sorted((t["labels"]["job"], t["health"]) for t in targets) == [(JOB, "up"), (WORKER_JOB, "up")], targets


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    empty, flat = [], []
    for query in dashboard_queries():
        found = stack.prometheus.query(runnable(query.expr, RATE_INTERVAL))
        if not found and not names_in(query) & NO_DATA_YET.keys():
            empty.append(f"{query.where}: {query.expr}")
        if query.panel in POSITIVE and not any(_positive(series["value"][1]) for series in found):
            flat.append(f"{query.where}: {[series['value'][1] for series in found]}")
    assert empty == [], "dashboard queries with no data"
    assert flat == [], "panels that should show activity after the traffic"


def _positive(value: str) -> bool:
    number = float(value)
    return math.isfinite(number) and number > 0


def test_every_metric_an_alert_reads_has_data_and_every_rule_evaluates(stack: Stack) -> None:
    missing = []
    for rule in alert_rules():
        stack.prometheus.query(rule["expr"])  # valid: Prometheus answers success, firing or not
        for selector in selectors(rule["expr"]):
            if selector.metric in NO_DATA_YET:
                continue
            if not stack.prometheus.query(selector.metric):
                missing.append(f"{rule['alert']}: {selector.metric}")
    assert missing == [], "alerts reading metrics the service does not expose"
    groups = stack.prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(alert_rules())
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"] == []


def test_no_alert_fires_and_the_opened_breakers_are_pending(stack: Stack) -> None:
    """The breaker alert goes pending on real series (it fires after 5 minutes); nothing fires."""
    breaker = f'eligibility_circuit_breaker_state{{kind="payer", name="{DOWN_PAYER}"}} == 2'
    assert stack.prometheus.wait_for(breaker), (
        "two checks of a payer answering AAA 42 (eight attempts) open its breaker"
    )
    pending = 'ALERTS{alertname="EligibilityPayerBreakerOpen", alertstate="pending"}'
    assert stack.prometheus.wait_for(pending), "rules are evaluated every second"
    alerts = stack.prometheus.api("alerts")["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []
    names = {a["labels"]["name"] for a in alerts if a["labels"]["alertname"] == "EligibilityPayerBreakerOpen"}
    assert DOWN_PAYER in names
    assert names <= {DOWN_PAYER, DOWN_PAYER_80}


def test_metrics_listed_as_without_data_are_real_metrics() -> None:
    """The exceptions above are metrics the service defines, not a place to hide a typo."""
    assert NO_DATA_YET.keys() <= exposed_series().keys()
