"""The aiohttp application: ``create_app(settings)`` wires keys, metrics, middlewares, routes and the runtime.

Nothing is opened until the app starts: its ``cleanup_ctx`` opens the runtime (cache, clearinghouse,
the in-process sandbox on the embedded default) and closes it after the last in-flight request, so
``web.AppRunner.cleanup()`` drains first and disconnects last.  The app owns the ``Metrics`` (HTTP
metrics are recorded before the runtime exists) and hands them to the runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from aiohttp import web
from aiohttp.typedefs import Middleware

from eligibility_svc.api.access import resolve_access
from eligibility_svc.api.middleware import answer_middleware
from eligibility_svc.api.routes import add_routes
from eligibility_svc.api.state import ACCESS, LIFECYCLE, RUNTIME, SETTINGS, Lifecycle, RuntimeFactory
from eligibility_svc.app_state import Runtime, build_runtime
from eligibility_svc.logs import request_id_middleware
from eligibility_svc.metrics import Metrics, http_metrics_middleware
from eligibility_svc.security import ApiKeyAuthenticator, auth_middleware
from eligibility_svc.settings import Settings

SANDBOX_HEADER = "X-Eligibility-Sandbox"
# Answers carry patient data: no shared cache may keep them, no browser may guess their type.
SAFE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings, *, runtime_factory: RuntimeFactory | None = None, metrics: Metrics | None = None
) -> web.Application:
    """The service as an aiohttp app.  Raises ``ConfigurationError`` (before anything binds or opens)
    when there are no API keys and this is not the embedded default.

    ``runtime_factory(settings, metrics)`` opens the runtime (default ``app_state.build_runtime``);
    ``metrics`` default to a fresh registry, served at ``/metrics``."""
    access = resolve_access(settings)
    metrics = metrics or Metrics()
    app = web.Application(
        middlewares=_middlewares(metrics, access.authenticator), client_max_size=settings.max_body_bytes
    )
    app[SETTINGS] = settings
    app[ACCESS] = access
    app[LIFECYCLE] = Lifecycle()
    add_routes(app, metrics)
    app.cleanup_ctx.append(_runtime_context(runtime_factory or default_runtime, metrics))
    app.on_shutdown.append(_start_draining)
    app.on_response_prepare.append(_response_headers)
    return app


def default_runtime(settings: Settings, metrics: Metrics) -> AbstractAsyncContextManager[Runtime]:
    return build_runtime(settings, metrics=metrics)


def _middlewares(metrics: Metrics, authenticator: ApiKeyAuthenticator) -> list[Middleware]:
    """Outermost first; see ``middleware.py`` for what each does and why in this order."""
    return [
        http_metrics_middleware(metrics),
        request_id_middleware(),
        answer_middleware,  # access log, error envelope, 404 / 405
        # security.default_scope: /v1/batches batch:run, /v1/admin admin, the rest eligibility:check.
        auth_middleware(authenticator),
    ]


def _runtime_context(factory: RuntimeFactory, metrics: Metrics) -> CleanupContext:
    async def runtime(app: web.Application) -> AsyncIterator[None]:
        async with factory(app[SETTINGS], metrics) as opened:
            app[RUNTIME] = opened
            app[LIFECYCLE].started = True
            yield

    return runtime


async def _start_draining(app: web.Application) -> None:
    app[LIFECYCLE].draining = True


async def _response_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SAFE_HEADERS)
    runtime = request.app.get(RUNTIME)
    if runtime is not None and runtime.sandbox:
        response.headers[SANDBOX_HEADER] = "true"
