"""Test peers for the athenaNet side: the sandbox on a real socket, settings pointing at it, real clients.

* ``athena_sandbox(config)``: the simulator on 127.0.0.1 (a free port), closed afterwards;
* ``settings_for(box, redis_url=..., **athena)``: ``Settings`` whose ``athena`` section points at ``box``
  with the sandbox practice's mapping, and test-sized backoffs (``athena`` overrides any field);
* ``athena_client(settings, redis=...)``: the production client (``factory.build_athena``), closed afterwards;
* ``summary_for`` / ``scenario_request``: a verified ``CoverageSummary`` and the request of a fixture scenario;
* ``worker_env``: the environment a worker subprocess needs to reach the same sandbox and Redis.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from eligibility_svc.athena.factory import AthenaParts, build_athena
from eligibility_svc.athena.patients import WriteTarget
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, MemberInfo, PayerInfo, PlanInfo
from eligibility_svc.sandbox.athena import (
    RunningAthenaSandbox,
    SandboxAthenaConfig,
    sandbox_athena_settings,
    start_sandbox_athena,
)
from eligibility_svc.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
PRACTICE = "195900"

FAST: dict[str, Any] = {
    "backoff_base_seconds": 0.01,
    "backoff_max_seconds": 0.05,
    "max_retry_after_seconds": 5.0,
    "request_timeout_seconds": 5.0,
    "write_timeout_seconds": 5.0,
    "connect_timeout_seconds": 1.0,
    "requests_per_second": 1000.0,
    "request_burst": 1000,
    "outbox_backoff_base_seconds": 0.05,
    "outbox_backoff_max_seconds": 0.2,
    "outbox_claim_idle_seconds": 2.0,
}


@asynccontextmanager
async def athena_sandbox(
    config: SandboxAthenaConfig | None = None, **changes: Any
) -> AsyncIterator[RunningAthenaSandbox]:
    box = await start_sandbox_athena(config or SandboxAthenaConfig(**changes))
    try:
        yield box
    finally:
        await box.close()


def settings_for(
    box: RunningAthenaSandbox, *, redis_url: str | None = None, prefix: str = "elig:", **athena: Any
) -> Settings:
    base = Settings(redis_url=redis_url, redis_key_prefix=prefix)
    pointed = sandbox_athena_settings(base.athena, box)
    section = pointed.model_copy(update={**FAST, **athena})
    return base.model_copy(update={"athena": type(section).model_validate(section.model_dump())})


@asynccontextmanager
async def athena_client(settings: Settings, *, redis: Redis | None = None) -> AsyncIterator[AthenaParts]:
    parts = build_athena(settings, redis=redis)
    try:
        yield parts
    finally:
        await parts.client.close()


# --- checks ---------------------------------------------------------------------------------------


def scenario_request(prefix: str) -> EligibilityRequest:
    folder = next(p for p in sorted(SCENARIOS.iterdir()) if p.name.startswith(prefix))
    return EligibilityRequest.model_validate(json.loads((folder / "scenario.json").read_text())["request"])


def patient_of(prefix: str) -> str:
    """The sandbox patient seeded from scenario ``prefix`` ("01" → "1001")."""
    return str(1000 + int(prefix[:2]))


def summary_for(
    request: EligibilityRequest,
    *,
    status: CheckStatus = CheckStatus.ACTIVE,
    member_id: str | None = None,
    group: str | None = None,
    begin: dt.date | None = dt.date(2026, 1, 1),
    end: dt.date | None = dt.date(2026, 12, 31),
    **subscriber: Any,
) -> CoverageSummary:
    """What a payer confirming ``request`` answers (subscriber fields and corrections overridable)."""
    holder = request.subscriber or request.patient
    person = {
        "last_name": holder.last_name.upper(),
        "first_name": (holder.first_name or "").upper() or None,
        "birth_date": holder.birth_date,
        "sex": holder.sex,
        "member_id": member_id or request.member_id,
        **subscriber,
    }
    return CoverageSummary(
        status=status,
        payer=PayerInfo(id=request.payer.id, name=request.payer.name.upper()),
        plan=PlanInfo(name="SANDBOX PLAN", group_number=group, coverage_begin=begin, coverage_end=end),
        subscriber=MemberInfo(**person),
    )


def target_of(patient_id: str, sequence: int = 1) -> WriteTarget:
    return WriteTarget(practice_id=PRACTICE, patient_id=patient_id, department_id="1", sequence_number=sequence)


# --- worker subprocesses ----------------------------------------------------------------------------


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment for ``python -m tests.support.athena_worker`` reaching the same sandbox and Redis."""
    athena = settings.athena
    env = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    env.update(
        {
            "ELIG_REDIS_URL": settings.redis_url or "",
            "ELIG_REDIS_KEY_PREFIX": settings.redis_key_prefix,
            "ELIG_ATHENA__TRANSPORT": "athena",
            "ELIG_ATHENA__BASE_URL": athena.base_url or "",
            "ELIG_ATHENA__CLIENT_ID": athena.client_id,
            "ELIG_ATHENA__CLIENT_SECRET": athena.client_secret.get_secret_value(),
            "ELIG_ATHENA__PRACTICES": json.dumps(
                {key: value.model_dump(mode="json") for key, value in athena.practices.items()}
            ),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in FAST.items():
        env[f"ELIG_ATHENA__{name.upper()}"] = str(value)
    for name in ("outbox_max_attempts", "outbox_concurrency", "max_attempts"):
        env[f"ELIG_ATHENA__{name.upper()}"] = str(getattr(athena, name))
    return env


WORKER_COMMAND = [sys.executable, "-m", "tests.support.athena_worker"]
