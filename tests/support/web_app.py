"""Helpers for the HTTP API tests: the app on a real socket (pytest-aiohttp), keys, fixture requests.

``start_api(aiohttp_client, settings)`` starts ``create_app(settings)`` (its runtime: the in-process
sandbox clearinghouse over HTTP, and Redis when ``settings.redis_url`` is set) and returns an ``Api``
holding the client and a token: the embedded default's key for this run, or a configured one.

``serve(tmp_path, **env)`` runs ``eligibility-svc serve`` as a process on a free port and reads the
key and the example ``curl`` from its banner.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from eligibility_svc.api.app import create_app
from eligibility_svc.api.state import ACCESS, RUNTIME
from eligibility_svc.app_state import Runtime
from eligibility_svc.security import GeneratedKey, generate_api_key
from eligibility_svc.settings import ApiScope, ClearinghouseSettings, Settings
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def scenario_dir(prefix: str) -> Path:
    return next(path for path in sorted(SCENARIOS.iterdir()) if path.name.startswith(prefix))


def fixture_request(prefix: str, *, today: dt.date | None = None) -> dict[str, Any]:
    """The scenario's request as JSON, asking about today (inside CORE's date window)."""
    request: dict[str, Any] = json.loads((scenario_dir(prefix) / "scenario.json").read_text())["request"]
    request["service"]["date"] = (today or dt.date.today()).isoformat()
    return request


def fixture_271(prefix: str) -> str:
    return (scenario_dir(prefix) / "271.x12").read_text()


def embedded_settings(**changes: Any) -> Settings:
    """The embedded default (no Redis, sandbox clearinghouse, no keys), whatever the environment says."""
    values: dict[str, Any] = {"redis_url": None, "api_keys": [], "clearinghouse": ClearinghouseSettings()}
    return Settings(**{**values, **changes})


def key(*scopes: ApiScope, name: str = "test") -> GeneratedKey:
    return generate_api_key(list(scopes), name=name)


@dataclass
class Api:
    client: TestClient[Any, Any]
    token: str

    @property
    def app(self) -> web.Application:
        app: web.Application = self.client.app
        return app

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    def auth(self, token: str | None = None, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}", **headers}

    async def check(self, request: dict[str, Any], **params: str) -> tuple[int, dict[str, Any]]:
        response = await self.client.post("/v1/eligibility", json=request, headers=self.auth(), params=params)
        return response.status, await response.json()


async def start_api(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    *,
    token: str | None = None,
    prepare: Callable[[web.Application], None] | None = None,
) -> Api:
    """The app on a real socket; ``prepare`` may add routes before it starts."""
    app = create_app(settings)
    if prepare is not None:
        prepare(app)
    client = await aiohttp_client(app)
    ephemeral = app[ACCESS].ephemeral
    chosen = token or (ephemeral.token if ephemeral is not None else None)
    assert chosen is not None, "configure a key and pass its token"
    return Api(client, chosen)


# --- `eligibility-svc serve` as a process --------------------------------------------------------------

KEY_LINE = "API key for this run only (not stored anywhere): "
STARTUP_SECONDS = 60.0  # a loaded 2-core machine, several test processes at once


@dataclass
class Served:
    process: asyncio.subprocess.Process
    port: int
    token: str
    curl: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m eligibility_svc``."""
    script = Path(sys.executable).parent / "eligibility-svc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "eligibility_svc"]


async def serve(tmp_path: Path, **env: str) -> Served:
    """Start ``eligibility-svc serve`` on a free port and read its banner."""
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ELIG_")}
    environment.update(env)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command(), "serve", "--port", str(port),
            stdout=asyncio.subprocess.PIPE, stderr=log_file, env=environment,
        )  # fmt: skip
    token, curl = await asyncio.wait_for(_banner(process), STARTUP_SECONDS)
    return Served(process, port, token, curl, log_path)


async def _banner(process: asyncio.subprocess.Process) -> tuple[str, str]:
    assert process.stdout is not None
    token = ""
    while True:
        line = (await process.stdout.readline()).decode()
        assert line, "serve exited before printing its banner"
        if line.startswith(KEY_LINE):
            token = line.removeprefix(KEY_LINE).strip()
        if line.strip().startswith("curl "):
            return token, line.strip()


async def stop(served: Served) -> None:
    """Kill the process if a test left it running."""
    if served.process.returncode is None:
        served.process.kill()
        await served.process.wait()
