"""A pre-visit batch at scale: N appointments over 5 payers, worker processes consuming from Redis.

Run from the project root:  .venv/bin/python benchmarks/bench_batch.py [--appointments N] [--workers 1 2] [--core pure]

The sandbox clearinghouse runs in its own process with ~200 ms latency (plus 0-20 ms jitter) for
every payer; the workers are ``eligibility-svc worker`` processes with a per-payer concurrency of 50
(shared through Redis) and a redis-server of their own.  Every appointment is a distinct member, so
every one is a payer call: payer k's members are fixture scenario 0k's person under member IDs
``BNk-...`` (the sandbox's ``member_ranges``), so every answer is that scenario's full 271 (active
PPO, HDHP, family accumulators, HMO, terminated), not a not-found AAA.  The run fails if any answer is
not active or inactive coverage.  The floor is what the limits allow: N / (5 payers x 50) x 0.2 s.  Printed:
elapsed (enqueue to the last result stored), the ratio to the floor (target <= 1.15), and the peak
RSS of each worker process (VmHWM; target < 300 MB).  Workers start and warm up before the clock.
Workers and sandbox run the compiled X12 core, as the image does (``--core pure``: the Python source).
The workers hold the settings' default ``batch.concurrency`` items; ``BENCH_CONCURRENCY=N`` sets another.
``--stages`` also prints where each worker's CPU went: the thread CPU time of each X12/JSON stage per
call (timed from outside the package by ``benchmarks/stage_timer``), and the rest of its CPU per
appointment (asyncio, aiohttp, Redis, the batch and service code around the stages).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.local_procs import CORES, core_env, free_port, start_redis, start_sandbox  # noqa: E402
from eligibility_svc.batch.models import AppointmentRow, BatchProgress, BatchSpec  # noqa: E402
from eligibility_svc.batch.queue import (  # noqa: E402
    BatchQueue,
    queue_redis,
)
from eligibility_svc.batch.sources import CHUNK_ROWS  # noqa: E402
from eligibility_svc.models import EligibilityRequest  # noqa: E402
from eligibility_svc.redis_keys import RedisKeys  # noqa: E402

SCENARIOS = sorted((ROOT / "x12_fixtures" / "scenarios").glob("0[1-5]-*/scenario.json"))  # payers SBX10001-5
PER_PAYER = 50
LATENCY_S = 0.2
ANSWERED = {"active", "inactive"}  # what the five scenarios answer; anything else means the setup is wrong


def profiles() -> list[EligibilityRequest]:
    """The five scenarios' requests, one per payer, asking about today."""
    requests = [EligibilityRequest.model_validate(json.loads(path.read_text())["request"]) for path in SCENARIOS]
    today = {"date": dt.date.today()}
    return [request.model_copy(update={"service": request.service.model_copy(update=today)}) for request in requests]


PROFILES = profiles()
PAYERS = [request.payer.id for request in PROFILES]


def member_prefix(k: int) -> str:
    return f"BN{k + 1}-"


def start_slow_sandbox(port: int, core: str) -> subprocess.Popen[bytes]:
    """The sandbox clearinghouse, answering every payer after 200-220 ms (on the workers' X12 core)."""
    process = start_sandbox(port, core)
    behavior = {"latency": {"fixed_ms": LATENCY_S * 1000, "jitter_ms": 20}}
    ranges = [{"prefix": member_prefix(k), "scenario": path.parent.name} for k, path in enumerate(SCENARIOS)]
    body = json.dumps({"default": behavior, "member_ranges": ranges}).encode()
    put = urllib.request.Request(f"http://127.0.0.1:{port}/admin/config", data=body, method="PUT")
    put.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(put, timeout=5):
        pass
    return process


def worker_env(redis_url: str, sandbox_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    env.update({
        "ELIG_REDIS_URL": redis_url,
        "ELIG_LOG_LEVEL": "WARNING",
        "ELIG_CLEARINGHOUSE__TRANSPORT": "core_mime",
        "ELIG_CLEARINGHOUSE__URL": f"http://127.0.0.1:{sandbox_port}/core/mime",
        "ELIG_CLEARINGHOUSE__USERNAME": "sandbox",
        "ELIG_CLEARINGHOUSE__PASSWORD": "sandbox-not-secret",
        "ELIG_CLEARINGHOUSE__PER_PAYER_CONCURRENCY": str(PER_PAYER),
        "ELIG_CLEARINGHOUSE__PER_PAYER_RATE_PER_SECOND": "100000",
        "ELIG_CLEARINGHOUSE__PER_PAYER_RATE_BURST": "100000",
        "ELIG_CACHE__KEY_SECRET": "bench-batch-key-secret",
    })  # fmt: skip
    if "BENCH_CONCURRENCY" in os.environ:  # the workers' batch.concurrency (default: the settings' own)
        env["ELIG_BATCH__CONCURRENCY"] = os.environ["BENCH_CONCURRENCY"]
    return env


def appointments(count: int, tag: str = "BENCH") -> Iterator[AppointmentRow]:
    """The input, made as it is read (like a file streamed in): payer k's members in turn."""
    for n in range(count):
        k = n % len(PROFILES)
        request = PROFILES[k].model_copy(update={"member_id": f"{member_prefix(k)}{tag}{n:07d}"})
        yield AppointmentRow(row=n + 1, appointment_id=f"A{n}", request=request)


async def answers(queue: BatchQueue, batch_id: str) -> Counter[str]:
    """How the payers answered, by coverage status (after the clock)."""
    return Counter([str(row.status) async for row in queue.results(batch_id)])


async def plan(queue: BatchQueue, rows: Iterator[AppointmentRow]) -> str:
    """The CLI's and API's way in: rows planned into Redis a chunk at a time, then committed."""
    async with queue.planner(BatchSpec(source="jsonl")) as planner:
        while chunk := list(islice(rows, CHUNK_ROWS)):
            await planner.add(chunk)
        return await planner.commit()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (``/proc/PID/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def finish(queue: BatchQueue, batch_id: str) -> BatchProgress:
    while (progress := await queue.progress(batch_id)) is None or progress.state != "done":
        await asyncio.sleep(0.05)
        if os.environ.get("BENCH_DEBUG"):
            print(progress, file=sys.stderr)
    return progress


async def warm_up(queue: BatchQueue, workers: int) -> None:
    """A small batch first: the workers are up, their maps loaded and connections open before the clock."""
    await finish(queue, await plan(queue, appointments(100 * workers, "WARM")))


STAGE_TIMER = ROOT / "benchmarks" / "stage_timer"


def stage_env(env: dict[str, str], directory: str) -> dict[str, str]:
    """``env`` with the stage timer first on the path, writing into ``directory``."""
    path = os.pathsep.join(p for p in (str(STAGE_TIMER), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "ELIG_BENCH_STAGES": directory}


def stage_times(directory: str) -> dict[str, float]:
    """µs per call of each stage, over every worker's calls (the warm-up batch included)."""
    sums: dict[str, list[int]] = {}
    for path in Path(directory).glob("stages.*.json"):
        for name, total in json.loads(path.read_text()).items():
            found = sums.setdefault(name, [0, 0])
            found[0] += total["ns"]
            found[1] += total["calls"]
    return {name: ns / calls / 1000 for name, (ns, calls) in sums.items() if calls}


async def run(
    count: int, workers: int, redis_url: str, others: dict[str, int], core: str, *, stages: str | None = None
) -> dict[str, float]:
    """One timed batch; ``others``: the sandbox's and redis-server's pids, whose CPU is reported too;
    ``stages``: a directory for the stage timer's sums (None: no timer)."""
    redis = queue_redis(redis_url)
    await redis.flushall()
    queue = BatchQueue(redis, RedisKeys())
    await queue.ensure_group()
    env = {**worker_env(redis_url, others["sandbox_port"]), **core_env(core)}
    if stages is not None:
        env = stage_env(env, stages)
    command = [sys.executable, "-P", "-m", "eligibility_svc", "worker", "--metrics-port", "0"]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(workers)]  # noqa: ASYNC220
    try:
        await warm_up(queue, workers)
        pids = {"workers": [p.pid for p in processes], "sandbox": [others["sandbox"]], "redis": [others["redis"]],
                "enqueue": [os.getpid()]}  # fmt: skip
        before = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
        started = time.time()
        batch_id = await plan(queue, appointments(count))
        enqueued = time.time() - started
        progress = await finish(queue, batch_id)
        assert progress.finished_at is not None
        elapsed = progress.finished_at - started
        rss = [peak_rss_mb(process.pid) for process in processes]
        cpu = {f"cpu_{name}": sum(cpu_seconds(pid) for pid in group) - before[name] for name, group in pids.items()}
        tally = await answers(queue, batch_id)
        print(f"    answers: {', '.join(f'{status} {n}' for status, n in sorted(tally.items()))}")
        if set(tally) - ANSWERED:
            raise SystemExit("some answers were not coverage: the run did not measure what it says")
        return {"elapsed": elapsed, "enqueue": enqueued, "failed": progress.failed, "rss": max(rss), **cpu}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        await redis.aclose()


def print_cpu(result: dict[str, float], count: int) -> None:
    """Where the CPU went: µs per appointment in each process group, and how many cores were busy."""
    cpu = {name.removeprefix("cpu_"): seconds for name, seconds in result.items() if name.startswith("cpu_")}
    shares = ", ".join(f"{name} {seconds / count * 1e6:.0f}" for name, seconds in cpu.items())
    busy = sum(cpu.values()) / result["elapsed"]
    print(f"    CPU per appointment (us): {shares}; {busy:.2f} of {os.cpu_count()} cores busy")


def print_stages(times: dict[str, float], result: dict[str, float], count: int) -> None:
    """The stages' µs per call, and the rest of the workers' CPU per appointment."""
    print("    worker CPU by stage (us per call): " + ", ".join(f"{name} {us:.0f}" for name, us in times.items()))
    per_appointment = result["cpu_workers"] / count * 1e6
    print(f"    the rest of the worker CPU: {per_appointment - sum(times.values()):.0f} us per appointment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--core", choices=CORES, default="compiled", help="the workers' X12 core (default: compiled, as in the image)"
    )
    parser.add_argument("--stages", action="store_true", help="time the workers' X12 and JSON stages too")
    args = parser.parse_args()
    floor = args.appointments / (len(PAYERS) * PER_PAYER) * LATENCY_S
    sandbox_port, redis_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as workdir:
        redis = start_redis(redis_port, Path(workdir))
        sandbox = start_slow_sandbox(sandbox_port, args.core)
        try:
            shape = f"{len(PAYERS)} payers x {PER_PAYER} concurrent, 200-220 ms"
            print(f"{args.appointments} appointments (streamed in, planned {CHUNK_ROWS} at a time), {shape}")
            print(f"floor: {floor:.2f} s (N / (5 x 50) x 0.2 s); workers and sandbox on the {args.core} X12 core")
            for workers in args.workers:
                others = {"sandbox": sandbox.pid, "redis": redis.pid, "sandbox_port": sandbox_port}
                url = f"redis://127.0.0.1:{redis_port}/0"
                stages = tempfile.mkdtemp(dir=workdir) if args.stages else None
                result = asyncio.run(run(args.appointments, workers, url, others, args.core, stages=stages))
                print(
                    f"workers={workers}: elapsed {result['elapsed']:.2f} s (enqueue {result['enqueue']:.2f} s), "
                    f"ratio {result['elapsed'] / floor:.3f} (target <= 1.15), failed items {result['failed']:.0f}, "
                    f"peak RSS per worker {result['rss']:.0f} MB (target < 300)"
                )
                print_cpu(result, args.appointments)
                if stages is not None:
                    print_stages(stage_times(stages), result, args.appointments)
                if result["failed"]:
                    raise SystemExit("items failed: the run measured errors, not checks (see the sandbox's setup)")
        finally:
            sandbox.terminate()
            redis.terminate()
            sandbox.wait(10)
            redis.wait(10)


if __name__ == "__main__":
    main()
