"""The processes the benchmarks start on this machine: a redis-server and the sandbox clearinghouse."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 30.0
CORES = ("compiled", "pure")


@functools.cache  # one hash of the sources per benchmark run, whatever number of processes it starts
def core_env(core: str) -> Mapping[str, str]:
    """What a child Python's environment needs to run ``core``: the compiled build first on its path, or nothing.

    Children start with ``-P`` (no script or working directory on the path), so the path alone decides
    which package runs: the compiled tree, else the development install (pure).
    """
    if core == "pure":
        return {}
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # after a compiled tree already first on the path
    from build_support.compiled_tree import compiled_tree

    # The tree holds the package only: the sandbox's default fixtures (next to the package) are here.
    return {"PYTHONPATH": str(compiled_tree()), "ELIG_SANDBOX__FIXTURES_DIR": str(ROOT / "x12_fixtures")}


def rerun_on_core(core: str) -> None:
    """Run this benchmark again in a process on ``core`` unless this one already is (the pure run stays here)."""
    from eligibility_svc.core_build import core_kind

    kind = core_kind()
    if kind == core or (core == "pure" and kind == "mixed"):
        return
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(core_env(core))
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-P", *sys.argv], env)  # this very script again


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = STARTUP_SECONDS) -> None:
    """Return once ``url`` answers; exit when it does not in time (or ``process`` ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def redis_command(port: int, workdir: Path) -> list[str]:
    """A redis-server on 127.0.0.1:``port`` with no persistence, its files in ``workdir``."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is missing: scripts/install-test-tools (or apt-get install -y redis-server)")
    return [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]  # fmt: skip


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """``redis_command`` started; returns once it answers PING."""
    process = subprocess.Popen(redis_command(port, workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return process
        time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def start_sandbox(port: int, core: str = "pure") -> subprocess.Popen[bytes]:
    """The sandbox clearinghouse in its own process (on ``core``); returns once it answers /healthz."""
    command = [sys.executable, "-P", "-m", "eligibility_svc", "sandbox", "clearinghouse", "--port", str(port)]
    env = {**os.environ, **core_env(core)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process)
    except SystemExit:
        process.kill()
        raise
    return process
