"""Stage timing for ``bench_batch.py --stages``: imported at start-up by the worker processes it runs.

When ``ELIG_BENCH_STAGES`` names a directory, the CPU-heavy stages a worker runs for every payer call
(the 270 builder, the 271 pre-check and validation, parse, interpretation, the kept summary's JSON)
are wrapped where ``eligibility_svc.service`` calls them, their thread CPU time summed, and the sums
written to ``stages.<pid>.json`` in that directory when the process exits.  The instrumentation
lives here, outside the package: no product code carries timers.  Unset, this file does nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

_STAGES = {  # where service.py calls it -> the stage's name
    "build_270": "build 270",
    "validate_x12": "validate 271",
    "parse_271": "parse 271",
    "parse_elements": "parse 271",  # the 271 as read when the reply was checked
    "summarize": "interpret",
}


def _timed(function: Callable[..., Any], name: str, totals: dict[str, list[int]]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            total = totals.setdefault(name, [0, 0])
            total[0] += time.thread_time_ns() - started
            total[1] += 1

    return timed


def _install(directory: str) -> None:
    from eligibility_svc import service

    totals: dict[str, list[int]] = {}
    for attribute, name in _STAGES.items():
        setattr(service, attribute, _timed(getattr(service, attribute), name, totals))
    service.KeptSummary.of = staticmethod(_timed(service.KeptSummary.of, "summary JSON", totals))  # type: ignore[method-assign]

    def write() -> None:
        path = os.path.join(directory, f"stages.{os.getpid()}.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump({name: {"ns": ns, "calls": calls} for name, (ns, calls) in totals.items()}, out)

    atexit.register(write)


if os.environ.get("ELIG_BENCH_STAGES") and "worker" in sys.argv:
    _install(os.environ["ELIG_BENCH_STAGES"])
