"""``eligibility-svc serve``: listen, print how to call, and drain on SIGTERM.

Shutdown, in order (``web.AppRunner.cleanup``): the listening socket closes (new connections are
refused), idle keep-alive connections close, ``/readyz`` turns ``not_ready``, requests in flight get
``shutdown_grace_seconds`` to finish (then are cancelled), and only then is the runtime closed
(cache, clearinghouse, sandbox), so a check in flight still has everything it needs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

from aiohttp import web

from eligibility_svc.api.access import banner
from eligibility_svc.api.app import create_app
from eligibility_svc.api.state import ACCESS, RuntimeFactory
from eligibility_svc.errors import ConfigurationError
from eligibility_svc.gc_tuning import freeze_startup_objects
from eligibility_svc.settings import Settings
from eligibility_svc.stopping import STOP_SIGNALS

log = logging.getLogger("eligibility_svc.api.serve")


def base_url(host: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - describing a bind address, not binding one
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    out: TextIO = sys.stdout,
    runtime_factory: RuntimeFactory | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain within ``settings.shutdown_grace_seconds``."""
    app = create_app(settings, runtime_factory=runtime_factory)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_grace_seconds)
    stop = asyncio.Event()
    _install_signals(stop)
    try:
        await runner.setup()  # opens the runtime: cache, clearinghouse, X12 maps
        freeze_startup_objects()
        try:
            bound = await _listen(runner, host, port)
            print(banner(settings, base_url(host, bound), app[ACCESS]), file=out, flush=True)
            log.info("serving", extra={"host": host, "port": bound})
            await stop.wait()
            log.info("draining", extra={"grace_seconds": settings.shutdown_grace_seconds})
        finally:
            await runner.cleanup()
    finally:
        _remove_signals()
    log.info("stopped")


async def _listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Bind ``host:port``; the port actually bound (``port`` 0 picks a free one)."""
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:  # taken, or not an address of this machine
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", details={"host": host, "port": port}
        ) from exc
    return int(runner.addresses[0][1])


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for number in STOP_SIGNALS:
        loop.add_signal_handler(number, stop.set)


def _remove_signals() -> None:
    loop = asyncio.get_running_loop()
    for number in STOP_SIGNALS:
        loop.remove_signal_handler(number)
