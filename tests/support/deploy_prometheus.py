"""A real Prometheus server scraping a real ``eligibility-svc serve``, both on loopback, for the end-to-end test.

``ServiceProcess.start(env)`` runs ``eligibility-svc serve`` on a free port and waits for ``/healthz``;
``ServiceProcess.start_worker(env)`` runs ``eligibility-svc worker`` with its metrics server on a free port
and waits for its ``/healthz``; ``PrometheusServer.start(workdir, targets, rule_file)`` runs Debian's
``prometheus`` with a 1-second scrape of those targets (job → address) and our alert rules loaded, and waits
until it is ready.  ``query()`` is its HTTP API's
instant query.  Both stop with SIGTERM (then SIGKILL) and keep their output in a log file for messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.deploy_tools import find_tool
from tests.support.redis_server import free_port

STARTUP_SECONDS = 60.0  # a 2-core machine with other test processes running


def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post_json(url: str, body: object, *, headers: dict[str, str], timeout: float = 60) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait(ready: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready in {STARTUP_SECONDS}s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


@dataclass
class LocalServer:
    """A program this test started, listening on ``port`` of 127.0.0.1, writing to ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        return _stop(self.process)


class ServiceProcess(LocalServer):
    @classmethod
    def start(cls, workdir: Path, env: dict[str, str]) -> ServiceProcess:
        """``eligibility-svc serve`` with ``env`` as its only ELIG_ configuration."""
        port = free_port()
        return cls._run(workdir / "service.log", env, port, ["serve", "--host", "127.0.0.1", "--port", str(port)])

    @classmethod
    def start_worker(cls, workdir: Path, env: dict[str, str]) -> ServiceProcess:
        """``eligibility-svc worker`` with ``env``; ``port`` and ``url`` are its metrics server's."""
        port = free_port()
        return cls._run(workdir / "worker.log", env, port, ["worker", "--metrics-port", str(port)])

    @classmethod
    def _run(cls, log: Path, env: dict[str, str], port: int, args: list[str]) -> ServiceProcess:
        environment = {name: value for name, value in os.environ.items() if not name.startswith("ELIG_")}
        environment.update(env)
        script = Path(sys.executable).parent / "eligibility-svc"
        argv = [str(script)] if script.exists() else [sys.executable, "-m", "eligibility_svc"]
        with log.open("wb") as out:
            process = subprocess.Popen([*argv, *args], stdout=out, stderr=subprocess.STDOUT, env=environment)
        service = cls(process, port, log)
        what = f"eligibility-svc {args[0]}"
        _wait(lambda: http_get(f"{service.url}/healthz", timeout=2)[0] == 200, what, process, log)
        return service


class PrometheusServer(LocalServer):
    @classmethod
    def start(cls, workdir: Path, *, targets: dict[str, str], rule_file: Path) -> PrometheusServer:
        """Scrape each target (job → address) every second, with the rules of ``rule_file`` evaluated every second."""
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rule_file)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        log = workdir / "prometheus.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    find_tool("prometheus"),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(process, port, log)
        _wait(lambda: http_get(f"{server.url}/-/ready", timeout=2)[0] == 200, "prometheus", process, log)
        return server

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``; the ``data`` member, or an ``AssertionError`` with Prometheus's error."""
        status, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        assert status == 200, f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}"
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query now: the result's series (empty when there are none)."""
        data = self.api("query", query=expr)
        result: Any = data["result"]
        return result if data["resultType"] in {"vector", "matrix"} else [{"value": result}]

    def wait_for(self, expr: str, *, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns something."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.query(expr)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)
