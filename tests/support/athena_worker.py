"""A write-back worker process for the chaos tests: ``python -m tests.support.athena_worker``.

Runs ``run_outbox_worker`` with settings from the environment (``ELIG_*``), as ``eligibility-svc worker``
will; prints ``ready <consumer>`` once it is about to consume, so the test knows it is up.
"""

from __future__ import annotations

import asyncio

from eligibility_svc.athena.outbox import OutboxWorker, run_outbox_worker
from eligibility_svc.logs import configure_logging
from eligibility_svc.settings import get_settings


async def _ready(worker: OutboxWorker) -> None:
    print(f"ready {worker.consumer}", flush=True)


def main() -> None:
    configure_logging("WARNING")
    asyncio.run(run_outbox_worker(get_settings(), on_ready=_ready))


if __name__ == "__main__":
    main()
