"""Cached-path throughput of ``POST /v1/eligibility`` against a floor timed in the same run.

    .venv/bin/python benchmarks/bench_api.py [--duration 10] [--connections 16] [--rounds 3] [--loader auto]

Needs ``redis-server`` (``apt-get install -y redis-server``) and, for the load, ``wrk``
(``apt-get install -y wrk``).  Without wrk (or with ``--loader python``) a Python load generator runs in
a second process instead; it needs more CPU per request than wrk, so its figures are lower for every
server, but the ratio stays meaningful.

What runs, each in a process of its own:

* a ``redis-server`` on a free port, no persistence;
* the service: ``eligibility-svc serve`` in Redis mode with a configured key, the sandbox
  clearinghouse, logs at WARNING.  One check of fixture 01 (asking about today) warms the cache; after
  it every request is a cache hit: auth, JSON body to ``EligibilityRequest``, inquiry rules, HMAC cache
  key, one Redis GET, decode the entry, splice the patched provenance into the kept summary bytes
  (``EligibilityService.verify_json``: no model built), metrics, request id;
* the floor: a bare aiohttp app whose one handler reads the body, does one Redis GET of a value as
  large as the cached summary and returns it as JSON.  No auth, no parsing, no metrics: the least any
  cached lookup over HTTP and Redis can cost on this machine.  Its client is the service's
  (``make_redis``: same pool, same timeouts); it sends its GET on its own, as a bare handler would,
  where the service's GETs go through the auto-pipeline (``redis_pipeline``) and share a round trip
  when requests overlap;
* for attribution, "http layer": the same ``serve`` with ``EligibilityService.verify`` and
  ``verify_json`` replaced by functions returning the cached summary (no Redis, no service work):
  what the HTTP layer alone costs (auth, body parse, middlewares, metrics; the route sends
  ``verify_json``'s bytes as they are, so no serializing).

The servers share one core and the load generator gets the other when there are two.  Rounds take
the servers in turn; the best round of each is reported.  Targets (issue 5): the service at least
0.6x the floor's requests per second, and its p99 under 10 ms at that load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.local_procs import free_port, redis_command, wait_http  # noqa: E402

SCENARIO = ROOT / "x12_fixtures" / "scenarios" / "01-ppo-active-deductible-copays" / "scenario.json"
FLOOR_KEY = "bench:floor"
RATIO_TARGET = 0.6
P99_TARGET_MS = 10.0
SERVER_CORE, LOAD_CORE = 0, 1


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


# --- processes ------------------------------------------------------------------------------------


def pin(pid: int, core: int) -> None:
    """Keep a process on one core (when there are two), so servers and load do not share one."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        os.sched_setaffinity(pid, {cores[core % len(cores)]})


@contextlib.contextmanager
def running(command: list[str], *, env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(process.pid, SERVER_CORE)
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def service_env(redis_url: str, keys_json: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ELIG_")}
    environment.update({"ELIG_REDIS_URL": redis_url, "ELIG_API_KEYS": keys_json, "ELIG_LOG_LEVEL": "WARNING"})
    return environment


# --- the floor and the stubbed service (run in their own processes) --------------------------------


def run_floor(port: int, redis_url: str) -> None:
    """``--floor PORT REDIS_URL``: bare aiohttp, one handler, one Redis GET."""
    from aiohttp import web

    from eligibility_svc.cache import make_redis

    redis_key = web.AppKey("redis", object)

    async def on_startup(app: web.Application) -> None:
        app[redis_key] = make_redis(redis_url)

    async def lookup(request: web.Request) -> web.Response:
        await request.read()
        value = await request.app[redis_key].get(FLOOR_KEY)  # type: ignore[attr-defined]
        return web.Response(body=value, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.on_startup.append(on_startup)
    app.router.add_post("/lookup", lookup)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_stub(port: int, redis_url: str, keys_json: str) -> None:
    """``--stub PORT REDIS_URL KEYS``: ``serve`` with the service's ``verify`` answering the cached summary."""
    import redis

    from eligibility_svc.api.serve import serve
    from eligibility_svc.app_state import Runtime, build_runtime
    from eligibility_svc.metrics import Metrics
    from eligibility_svc.models import CoverageSummary, EligibilityRequest
    from eligibility_svc.settings import ApiKeySettings, Settings

    summary = CoverageSummary.model_validate_json(redis.Redis.from_url(redis_url).get(FLOOR_KEY) or b"")
    answer = summary.__pydantic_serializer__.to_json(summary)
    keys = [ApiKeySettings.model_validate(item) for item in json.loads(keys_json)]
    settings = Settings(redis_url=None, api_keys=keys, log_level="WARNING")

    async def verify(request: EligibilityRequest, *, writeback: bool = False) -> CoverageSummary:
        return summary

    async def verify_json(request: EligibilityRequest, *, writeback: bool = False) -> bytes:
        return answer  # the route sends the service's bytes as they are

    @contextlib.asynccontextmanager
    async def stubbed(settings: Settings, metrics: Metrics) -> AsyncIterator[Runtime]:
        async with build_runtime(settings, metrics=metrics) as runtime:
            runtime.service.verify = verify  # type: ignore[method-assign]
            runtime.service.verify_json = verify_json  # type: ignore[method-assign]
            yield runtime

    with open(os.devnull, "w") as quiet:
        asyncio.run(serve(settings, "127.0.0.1", port, out=quiet, runtime_factory=stubbed))


# --- load generators -------------------------------------------------------------------------------

_WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_script(body: str, token: str | None, workdir: Path) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]", 'wrk.headers["Content-Type"] = "application/json"']
    if token is not None:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    script = workdir / f"post-{token is not None}.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


def load_wrk(name: str, url: str, script: Path, args: argparse.Namespace) -> Result:
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "-s", str(script), url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pin(process.pid, LOAD_CORE)
    output, _ = process.communicate(timeout=args.duration + 60)
    rate = _WRK_RATE.search(output)
    latencies = {pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _WRK_LATENCY.findall(output)}
    if rate is None or len(latencies) < 2:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    errors = sum(int(count) for count in _WRK_NON_2XX.findall(output))
    return Result(name, float(rate[1]), latencies["50"], latencies["99"], errors)


def load_python(name: str, url: str, body: str, token: str | None, args: argparse.Namespace) -> Result:
    """The fallback generator, in a process of its own (``--load``)."""
    command = [sys.executable, __file__, "--load", url, "--duration", str(args.duration),
               "--connections", str(args.connections)]  # fmt: skip
    if token is not None:
        command += ["--token", token]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pin(process.pid, LOAD_CORE)
    output, _ = process.communicate(body, timeout=args.duration + 60)
    figures = json.loads(output)
    return Result(name, figures["rate"], figures["p50"], figures["p99"], figures["errors"])


def run_load(url: str, duration: float, connections: int, token: str | None) -> None:
    """``--load URL``: post stdin's body for ``duration`` seconds over ``connections``; print JSON figures."""
    import aiohttp

    body = sys.stdin.read().encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + duration
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop_at:
                    started = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        errors += response.status != 200
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        cuts = statistics.quantiles(latencies, n=100)
        return {"rate": len(latencies) / elapsed, "p50": cuts[49] * 1000, "p99": cuts[98] * 1000, "errors": errors}

    print(json.dumps(asyncio.run(main())))


# --- the run -----------------------------------------------------------------------------------------


def example_body() -> str:
    request = json.loads(SCENARIO.read_text())["request"]
    request["service"]["date"] = dt.date.today().isoformat()
    return json.dumps(request, separators=(",", ":"))


def post(url: str, body: str, token: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def warm(service_url: str, body: str, token: str) -> bytes:
    """Answer once from the payer, check the next answer comes from the cache; the cached bytes."""
    post(service_url, body, token)
    again = post(service_url, body, token)
    if not again["provenance"]["cached"]:
        raise SystemExit("the second check was not served from the cache; is Redis mode on?")
    return json.dumps(again, separators=(",", ":")).encode()


def choose_loader(requested: str) -> str:
    if requested == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or use --loader python)")
    if requested != "auto":
        return requested
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk); using the Python load generator", file=sys.stderr)
        return "python"
    return "wrk"


def measure(args: argparse.Namespace) -> None:
    import redis

    from eligibility_svc.security import generate_api_key

    loader = choose_loader(args.loader)
    key = generate_api_key(["eligibility:check"], name="bench")
    keys_json = json.dumps([key.settings.model_dump(mode="json")])
    ports = {name: free_port() for name in ("redis", "service", "floor", "layer")}
    redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
    body = example_body()
    urls = {
        "floor": f"http://127.0.0.1:{ports['floor']}/lookup",
        "http layer": f"http://127.0.0.1:{ports['layer']}/v1/eligibility",
        "service": f"http://127.0.0.1:{ports['service']}/v1/eligibility",
    }
    serve = [sys.executable, "-m", "eligibility_svc", "serve", "--port", str(ports["service"])]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        stack.enter_context(running(redis_command(ports["redis"], workdir)))
        stack.enter_context(running(serve, env=service_env(redis_url, keys_json)))
        stack.enter_context(running([sys.executable, __file__, "--floor", str(ports["floor"]), redis_url]))
        wait_http(f"http://127.0.0.1:{ports['service']}/healthz")
        wait_http(f"http://127.0.0.1:{ports['floor']}/healthz")
        cached = warm(urls["service"], body, key.token)
        redis.Redis(port=ports["redis"]).set(FLOOR_KEY, cached)
        stack.enter_context(running([sys.executable, __file__, "--stub", str(ports["layer"]), redis_url, keys_json]))
        wait_http(f"http://127.0.0.1:{ports['layer']}/healthz")
        results = rounds(args, loader=loader, body=body, token=key.token, urls=urls, workdir=workdir)
    report(results, loader, args, len(cached))


def rounds(
    args: argparse.Namespace, *, loader: str, body: str, token: str, urls: dict[str, str], workdir: Path
) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {name: [] for name in urls}
    for number in range(args.rounds):
        for name, url in urls.items():
            bearer = None if name == "floor" else token
            if loader == "wrk":
                result = load_wrk(name, url, wrk_script(body, bearer, workdir), args)
            else:
                result = load_python(name, url, body, bearer, args)
            results[name].append(result)
            print(f"round {number + 1} {name:10} {result.requests_per_second:8.0f} req/s  "
                  f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}")  # fmt: skip
    return results


def report(results: dict[str, list[Result]], loader: str, args: argparse.Namespace, size: int) -> None:
    best = {name: max(series, key=lambda r: r.requests_per_second) for name, series in results.items()}
    floor, service = best["floor"], best["service"]
    ratio = service.requests_per_second / floor.requests_per_second
    print()
    print(f"loader {loader}, {args.connections} connections, {args.duration} s per round, "
          f"best of {args.rounds}; response {size} bytes")  # fmt: skip
    labels = {
        "floor": "floor (aiohttp + 1 Redis GET)",
        "http layer": "http layer (service stubbed)",
        "service": "service (POST /v1/eligibility)",
    }
    for name, result in best.items():
        per_request = 1e6 / result.requests_per_second
        print(f"{labels[name]:32} {result.requests_per_second:8.0f} req/s  {per_request:5.0f} us/req  "
              f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms")  # fmt: skip
    verdict_ratio = "ok" if ratio >= RATIO_TARGET else "BELOW TARGET"
    verdict_p99 = "ok" if service.p99_ms < P99_TARGET_MS else "ABOVE TARGET"
    print(f"ratio {ratio:.2f}x the floor (target >= {RATIO_TARGET}x): {verdict_ratio}")
    print(f"service p99 {service.p99_ms:.2f} ms (target < {P99_TARGET_MS:g} ms): {verdict_p99}")
    errors = {name: result.errors for name, result in best.items() if result.errors}
    if errors:
        print(f"non-2xx answers: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the servers (default 3)")
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--floor", nargs=2, metavar=("PORT", "REDIS_URL"), help=argparse.SUPPRESS)
    parser.add_argument("--stub", nargs=3, metavar=("PORT", "REDIS_URL", "KEYS"), help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        run_floor(int(args.floor[0]), args.floor[1])
    elif args.stub:
        run_stub(int(args.stub[0]), args.stub[1], args.stub[2])
    elif args.load:
        run_load(args.load, args.duration, args.connections, args.token)
    else:
        measure(args)


if __name__ == "__main__":
    main()
