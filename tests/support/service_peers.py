"""Helpers for the service tests: requests dated today, settings pointing at a sandbox, open runtimes.

The service is always the production wiring (``app_state.build_runtime``) talking to a real sandbox
clearinghouse over HTTP and, when asked, a real ``redis-server``.  Payer calls are counted where
they arrive: the sandbox's own request counts.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from eligibility_svc.app_state import Runtime, build_runtime
from eligibility_svc.metrics import Metrics
from eligibility_svc.models import EligibilityRequest, ProcedureCode
from eligibility_svc.sandbox.clearinghouse import RunningSandbox
from eligibility_svc.service import WriteBackSink
from eligibility_svc.settings import CacheSettings, ClearinghouseSettings, Settings, X12Settings
from tests.support.ch_servers import PASSWORD, SCENARIOS, USERNAME, scenario

PRACTICE_ZONE = ZoneInfo("America/New_York")  # CacheSettings.timezone's default: "today" for the inquiry rules
KEY_SECRET = "service-tests-key-secret"
ENCRYPTION_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 ASCII bytes


def today() -> dt.date:
    return dt.datetime.now(PRACTICE_ZONE).date()


def request_for(
    prefix: str,
    *,
    service_types: list[str] | None = None,
    procedures: list[str] | None = None,
    **changes: Any,
) -> EligibilityRequest:
    """Scenario ``prefix``'s request, for a service today (inside the CORE 154 window whenever the
    tests run), optionally asking other codes; ``changes`` replace top-level fields."""
    request = scenario(prefix).request
    service_changes: dict[str, Any] = {"date": today(), "end_date": None}
    if service_types is not None:
        service_changes["service_types"] = service_types
    if procedures is not None:
        service_changes["procedures"] = [ProcedureCode(code=code) for code in procedures]
    service = request.service.model_copy(update=service_changes)
    return request.model_copy(update={"service": service, **changes})


def settings_for(
    box: RunningSandbox,
    *,
    redis_url: str | None = None,
    validation: Literal["off", "warn", "strict"] = "warn",
    encryption_key: str | None = None,
    negative_ttl_seconds: int = 15 * 60,
    max_attempts: int = 1,
    envelope: Literal["core_mime", "core_soap"] = "core_mime",
) -> Settings:
    """Settings for a service talking CORE to ``box`` (over 127.0.0.1), with Redis when given."""
    url = box.mime_url if envelope == "core_mime" else box.soap_url
    return Settings(
        redis_url=redis_url,
        x12=X12Settings(validation=validation),
        clearinghouse=ClearinghouseSettings(
            transport=envelope,
            url=url,
            username=USERNAME,
            password=SecretStr(PASSWORD),
            max_attempts=max_attempts,
            backoff_base_seconds=0.01,
            backoff_max_seconds=0.05,
            deadline_seconds=15.0,
            attempt_timeout_seconds=10.0,
        ),
        cache=CacheSettings(
            key_secret=SecretStr(KEY_SECRET),
            encryption_key=SecretStr(encryption_key) if encryption_key else None,
            negative_ttl_seconds=negative_ttl_seconds,
        ),
    )


@asynccontextmanager
async def opened(
    settings: Settings, *, writeback: WriteBackSink | None = None, clock: Any = None
) -> AsyncIterator[Runtime]:
    """A runtime on a fresh metrics registry, closed on exit."""
    options: dict[str, Any] = {"metrics": Metrics(), "writeback": writeback}
    if clock is not None:
        options["clock"] = clock
    async with build_runtime(settings, **options) as runtime:
        yield runtime


def payer_calls(box: RunningSandbox, payer_id: str | None = None) -> int:
    """How many 270s reached the sandbox (for one payer, or all)."""
    counts = box.state.counts
    return counts.get(payer_id, 0) if payer_id is not None else sum(counts.values())


def sample(runtime: Runtime, metric: str, /, **labels: str) -> float:
    """A metric sample's value (0 when it was never recorded)."""
    return runtime.metrics.registry.get_sample_value(metric, labels) or 0.0


def isa13_sent(box: RunningSandbox) -> list[str]:
    """ISA13 of every 270 the sandbox received (from its captured requests)."""
    numbers = []
    for captured in box.state.captured:
        payload = dict(captured.fields).get("Payload", "")
        if payload.startswith("ISA"):
            numbers.append(payload.split(payload[3])[13])
    return numbers


class Clock:
    """Unix time with an adjustable offset: ages of kept answers as the service sees them."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def fixtures_with(tmp: Path, prefix: str, old: str, new: str) -> Path:
    """A copy of the scenarios with one scenario's 271 changed (``old`` → ``new``, first occurrence)."""
    target = tmp / "scenarios"
    shutil.copytree(SCENARIOS, target)
    folder = next(p for p in sorted(target.iterdir()) if p.name.startswith(prefix))
    text = (folder / "271.x12").read_text()
    assert old in text, f"{old!r} is not in {folder.name}'s 271"
    (folder / "271.x12").write_text(text.replace(old, new, 1))
    return tmp
