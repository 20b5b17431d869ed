"""A real ``redis-server`` for the tests: started once per session, flushed per test.

Fixtures:

* ``redis_server`` (session): a ``RedisServer`` on a free port, no persistence, in a temp dir;
* ``redis_url`` (function): that server running (restarted if a test stopped it) and empty;
* ``redis_client`` (function, async): a ``redis.asyncio`` client on it, made like the service's;
* ``disposable_redis`` (function): a server of its own, for tests that kill and restart Redis.

The executable is ``$REDIS_SERVER`` or ``redis-server`` on ``PATH`` (``scripts/test`` installs the
Debian package).  Missing, the tests fail: they are not optional.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from eligibility_svc.cache import make_redis


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_executable() -> str:
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        pytest.fail("redis-server is not installed (apt-get install redis-server, or set REDIS_SERVER)")
    return found


class RedisServer:
    """One ``redis-server`` process; ``kill`` and ``start`` again keep the same port."""

    def __init__(self, workdir: Path, executable: str | None = None) -> None:
        self.workdir = workdir
        self.executable = executable or redis_executable()
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start on ``self.port`` and wait until it answers PING."""
        self._process = subprocess.Popen(
            [
                self.executable,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                *("--daemonize", "no", "--loglevel", "warning", "--logfile", str(self.workdir / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                if not self.running:
                    log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited on port {self.port}: {log}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL, as a crashed or OOM-killed Redis: no goodbye to connected clients."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=5)

    def stop(self) -> None:
        if self._process is not None and self.running:
            self.resume()  # a stopped process would not act on SIGTERM
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        """SIGSTOP: Redis stays connected but answers nothing (a stuck or overloaded server)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Kill (if running) and start again on the same port, empty."""
        self.kill()
        self.start()

    def flush(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            client.flushall()
        finally:
            client.close()


def _started(workdir: Path) -> RedisServer:
    # Another process may take the free port between our probe and Redis binding it: try again.
    for _ in range(4):
        server = RedisServer(workdir)
        try:
            server.start()
        except RuntimeError:
            server.kill()
            continue
        return server
    pytest.fail("could not start redis-server")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = _started(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, running and empty."""
    if not redis_server.running:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


async def reads_processed(client: Redis) -> int:
    """Requests the server has read from its clients so far, this INFO included (a pipeline or an MGET
    written at once is one read, so differences count round trips)."""
    info = await client.info("stats")
    return int(info["total_reads_processed"])


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = make_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def disposable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server only this test uses: kill it, restart it."""
    server = _started(tmp_path)
    yield server
    server.stop()
