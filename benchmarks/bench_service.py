"""CPU the service adds to one uncached eligibility check, over the payer's (the sandbox's) latency.

Run from the project root:  .venv/bin/python benchmarks/bench_service.py [--checks N] [--concurrency C]

The sandbox clearinghouse runs in a process of its own (``eligibility-svc sandbox clearinghouse``),
so its CPU is not ours.  This process runs the service's wiring (``app_state.build_runtime``: the
CORE MIME transport with retries, breakers and limits, the cache and check records) twice: with the
embedded in-memory store ("memory" rows), and with a redis-server of its own ("redis" rows: cache,
records, single-flight locks, per-payer limits and control numbers in Redis, as in production).  It
asks ``--checks`` questions with ``force_refresh`` (every one goes to the payer and is then cached
and recorded), ``--concurrency`` at a time, over the fixture scenarios.  The figure is
``time.process_time()`` of this process divided by the checks: everything the service spends on a
check (inquiry rules, control number, 270, X12 validation both ways, HTTP client, 271 parse,
interpretation, TTL, JSON for the cache and record, and the Redis client in the redis rows) and none
of the waiting.  Target: ≤ 2 ms; production is the redis rows at the default validation (warn).
With ``x12.validation`` warn, our own 270 is validated only when ``x12.validate_outgoing`` is
``always`` (the default ``strict_only`` validates it in strict mode only); the breakdown still times it.

Each validation setting is measured in the same run, with a breakdown of the pure steps timed
in-process, so a change in one step shows where the time went.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from benchmarks.local_procs import free_port, start_redis, start_sandbox  # noqa: E402
from eligibility_svc.app_state import build_runtime  # noqa: E402
from eligibility_svc.clearinghouse.core_mime import decode_form, encode_form  # noqa: E402
from eligibility_svc.metrics import Metrics  # noqa: E402
from eligibility_svc.models import EligibilityRequest  # noqa: E402
from eligibility_svc.service import KeptSummary  # noqa: E402
from eligibility_svc.settings import CacheSettings, ClearinghouseSettings, Settings, X12Settings  # noqa: E402
from eligibility_svc.x12.build270 import Envelope, build_270, new_trace_number  # noqa: E402
from eligibility_svc.x12.inquiry_rules import check_inquiry  # noqa: E402
from eligibility_svc.x12.interpret import summarize  # noqa: E402
from eligibility_svc.x12.parse271 import parse_271  # noqa: E402
from eligibility_svc.x12.validate import validate_x12  # noqa: E402

SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
Mode = Literal["off", "warn", "strict"]
TARGET_MS = 2.0


def requests() -> list[EligibilityRequest]:
    """Every fixture scenario's request, for today (so the CORE 154 window always holds), forced fresh."""
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()
    found = []
    for path in sorted(SCENARIOS.glob("*/scenario.json")):
        request = EligibilityRequest.model_validate(json.loads(path.read_text())["request"])
        service = request.service.model_copy(update={"date": today, "end_date": None})
        found.append(request.model_copy(update={"service": service, "force_refresh": True}))
    return found


def settings(port: int, mode: Mode, redis_url: str | None = None) -> Settings:
    return Settings(
        redis_url=redis_url,
        cache=CacheSettings(key_secret=SecretStr("bench-service-key-secret")),
        x12=X12Settings(validation=mode),
        clearinghouse=ClearinghouseSettings(
            transport="core_mime",
            url=f"http://127.0.0.1:{port}/core/mime",
            username="sandbox",
            password=SecretStr("sandbox-not-secret"),
            max_attempts=1,  # AAA 42 scenarios: one attempt each, as for every other check
            per_payer_rate_per_second=100_000,
            per_payer_rate_burst=10_000,
            # Scenarios 11 and 12 are payers answering AAA 42/80 every time: keep their breakers closed.
            payer_breaker_failure_threshold=1_000_000,
        ),
    )


async def run_checks(
    port: int, mode: Mode, checks: int, concurrency: int, redis_url: str | None = None
) -> dict[str, float]:
    """CPU ms per check, and wall figures, for ``checks`` uncached checks at ``concurrency``; with
    ``redis_url`` the production wiring (cache, records, single-flight, limits, control numbers in Redis)."""
    asked = requests()
    async with build_runtime(settings(port, mode, redis_url), metrics=Metrics()) as runtime:
        service = runtime.service
        for request in asked * 2:  # warm up: connections, maps, code paths
            await service.verify(request)
        latencies: list[float] = []
        queue = iter(range(checks))

        async def worker() -> None:
            for index in queue:
                started = time.perf_counter()
                await service.verify(asked[index % len(asked)])
                latencies.append(time.perf_counter() - started)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    return {
        "cpu_ms": cpu / checks * 1000,
        "per_second": checks / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def per_call_ms(action: Callable[[], object], rounds: int) -> float:
    """Best of five batches of ``rounds`` calls, in ms per call."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            action()
        best = min(best, (time.process_time() - started) / rounds)
    return best * 1000


def reply_fields(x12_271: str) -> list[tuple[str, str]]:
    """A CORE MIME real-time response's fields, as the sandbox (and a clearinghouse) sends them."""
    return [
        ("PayloadType", "X12_271_Response_005010X279A1"),
        ("ProcessingMode", "RealTime"),
        ("PayloadID", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        ("TimeStamp", "2026-11-24T10:00:00Z"),
        ("SenderID", "CLEARINGHOUSE"),
        ("ReceiverID", "ELIGSVC"),
        ("CORERuleVersion", "2.2.0"),
        ("Payload", x12_271),
        ("ErrorCode", "Success"),
        ("ErrorMessage", ""),
    ]


def breakdown() -> dict[str, float]:
    """The pure steps of one check, timed alone over the fixture scenarios (ms per check, averaged)."""
    asked = requests()
    folders = sorted(SCENARIOS.glob("*/271.x12"))
    answers = [path.read_text() for path in folders]
    today = dt.datetime.now(ZoneInfo("America/New_York")).date()
    envelope = Envelope("ELIGSVC", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 1, 1, 1, dt.datetime.now(dt.UTC))
    sent = [build_270(r, envelope, new_trace_number()) for r in asked]
    summaries = [summarize(parse_271(x)[0], r) for x, r in zip(answers, asked, strict=True)]
    kept = [KeptSummary.of(summary) for summary in summaries]
    replies = [encode_form(reply_fields(x)) for x in answers]
    n = len(asked)

    def each(step: Callable[[int], object]) -> Callable[[], object]:
        return lambda: [step(i) for i in range(n)]

    return {
        "inquiry rules": per_call_ms(each(lambda i: check_inquiry(asked[i], today=today)), 20) / n,
        "build 270": per_call_ms(each(lambda i: build_270(asked[i], envelope, "T1")), 20) / n,
        "validate 270": per_call_ms(each(lambda i: validate_x12(sent[i])), 5) / n,
        "validate 271": per_call_ms(each(lambda i: validate_x12(answers[i])), 5) / n,
        "CORE MIME decode reply": per_call_ms(each(lambda i: decode_form(*replies[i])), 10) / n,
        "parse + summarize 271": per_call_ms(each(lambda i: summarize(parse_271(answers[i])[0], asked[i])), 10) / n,
        "summary to JSON": per_call_ms(each(lambda i: json.dumps(summaries[i].model_dump(mode="json"))), 10) / n,
        "keep summary (cache)": per_call_ms(each(lambda i: KeptSummary.of(summaries[i]).value()), 10) / n,
        "cache hit: kept to JSON": per_call_ms(each(lambda i: kept[i].to_json(12.5, sandbox=True)), 50) / n,
        "cache hit: kept to model": per_call_ms(each(lambda i: kept[i].to_model(12.5)), 10) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    port, redis_port = free_port(), free_port()
    sandbox = start_sandbox(port)
    with tempfile.TemporaryDirectory() as workdir:
        redis = start_redis(redis_port, workdir)
        try:
            report(port, f"redis://127.0.0.1:{redis_port}/0", args)
        finally:
            for process in (sandbox, redis):
                process.terminate()
                process.wait(timeout=10)


def report(port: int, redis_url: str, args: argparse.Namespace) -> None:
    print("uncached checks against the sandbox clearinghouse in another process; a redis-server of our own")
    print(f"{args.checks} checks per row, force_refresh, over {len(requests())} scenarios; cpu = this process only")
    print(
        f"{'store':<7} {'validation':<11} {'conc':>4} {'cpu ms/check':>13} {'checks/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for store, url in (("memory", None), ("redis", redis_url)):
        for mode in ("off", "warn", "strict"):
            for concurrency in (1, args.concurrency):
                figures = asyncio.run(run_checks(port, mode, args.checks, concurrency, url))
                print(
                    f"{store:<7} {mode:<11} {concurrency:>4} {figures['cpu_ms']:>13.3f} {figures['per_second']:>9.0f}"
                    f" {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f}"
                )
    print("\npure steps, timed alone (cpu ms per check):")
    for step, milliseconds in breakdown().items():
        print(f"  {step:<24} {milliseconds:7.3f}")
    print(f"\ntarget: <= {TARGET_MS} ms of CPU per uncached check (cores here: {os.cpu_count()})")
    print("the production wiring is the redis rows at the default validation (warn)")


if __name__ == "__main__":
    main()
