"""What the app holds while it runs, under typed ``web.AppKey``s.

The runtime (``app_state.build_runtime(settings)``) is opened by the app's ``cleanup_ctx`` and closed
after the last in-flight request finished; handlers reach it through ``request.app[RUNTIME]``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from aiohttp import web

from eligibility_svc.api.access import Access
from eligibility_svc.app_state import Runtime
from eligibility_svc.metrics import Metrics
from eligibility_svc.settings import Settings

# Opens the runtime on the app's metrics: ``app_state.build_runtime`` by default; tests and benchmarks
# pass their own (a write-back sink, a stubbed service).
RuntimeFactory = Callable[[Settings, Metrics], AbstractAsyncContextManager[Runtime]]


@dataclass(slots=True)
class Lifecycle:
    """Set by the app's signals: readiness answers 503 until started and once draining."""

    started: bool = False
    draining: bool = False


SETTINGS = web.AppKey("settings", Settings)
ACCESS = web.AppKey("access", Access)
RUNTIME = web.AppKey("runtime", Runtime)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
