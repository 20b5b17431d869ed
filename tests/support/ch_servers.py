"""Test peers for the clearinghouse transports: the sandbox on a real socket, 270s, transports, TLS files.

Fixtures (import them into a test module, or register this module in ``conftest.py``):

* ``sandbox_factory`` (async): ``await sandbox_factory(config=..., ssl_context=...)`` starts a sandbox
  clearinghouse on 127.0.0.1 (a free port) and closes it after the test;
* ``sandbox``: one with the project's ``x12_fixtures`` scenarios and no faults;
* ``tls_files``: a CA, a server certificate for 127.0.0.1 signed by it, and a client certificate.

Helpers build 270s from the fixture scenarios (``x12.build270``) and the real transports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from eligibility_svc.clearinghouse.breaker import BreakerBoard, BreakerConfig
from eligibility_svc.clearinghouse.core_mime import CoreMimeTransport
from eligibility_svc.clearinghouse.core_soap import CoreSoapTransport
from eligibility_svc.clearinghouse.http_client import HttpEndpoint
from eligibility_svc.clearinghouse.limiter import LocalPayerLimiter, PayerLimiter, PayerLimits
from eligibility_svc.clearinghouse.resilience import Observer, ResilientTransport, RetryPolicy
from eligibility_svc.clearinghouse.transport import TransportResult
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.sandbox.ch_config import SandboxClearinghouseConfig
from eligibility_svc.sandbox.clearinghouse import RunningSandbox, start_sandbox_clearinghouse
from eligibility_svc.x12.build270 import Envelope, build_270

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
USERNAME = "sandbox"
PASSWORD = "sandbox-not-secret"  # the sandbox default
RECEIVER = "CLEARINGHOUSE"
SENDER = "ELIGSVC"

ENVELOPES = ("core_mime", "core_soap")
SandboxFactory = Callable[..., Awaitable[RunningSandbox]]


# --- scenarios and 270s ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureScenario:
    name: str
    request: EligibilityRequest
    trace_number: str
    x12_271: str


def scenario(name_prefix: str) -> FixtureScenario:
    """The fixture scenario whose folder name starts with ``name_prefix`` (``"01"``, ``"14-dependent"``)."""
    folder = next(p for p in sorted(SCENARIOS.iterdir()) if p.name.startswith(name_prefix))
    data = json.loads((folder / "scenario.json").read_text())
    return FixtureScenario(
        folder.name,
        EligibilityRequest.model_validate(data["request"]),
        data["trace_number"],
        (folder / "271.x12").read_text(),
    )


def all_scenarios() -> list[FixtureScenario]:
    return [scenario(p.name) for p in sorted(SCENARIOS.iterdir()) if (p / "scenario.json").is_file()]


_CONTROL = iter(range(1000, 999_999_999))


def make_270(request: EligibilityRequest, trace: str = "TRACE-0001", **changes: Any) -> str:
    """Our 270 for ``request`` (``changes`` are model_copy updates: ``member_id="X"`` ...)."""
    if changes:
        request = request.model_copy(update=changes)
    number = next(_CONTROL)
    envelope = Envelope(SENDER, "ZZ", RECEIVER, "ZZ", "T", number, number, number, dt.datetime(2026, 11, 20, 9, 30))
    return build_270(request, envelope, trace)


def payer_of(request: EligibilityRequest) -> str:
    return request.payer.id


# --- transports ------------------------------------------------------------------------------------


def single(envelope: str, url: str, *, username: str = USERNAME, password: str = PASSWORD, **endpoint: Any) -> Any:
    """A one-attempt CORE transport of the given envelope to ``url``."""
    kind = CoreMimeTransport if envelope == "core_mime" else CoreSoapTransport
    return kind(
        HttpEndpoint(url, **endpoint), sender_id=SENDER, receiver_id=RECEIVER, username=username, password=password
    )


async def ask(box: RunningSandbox, x12: str, payer_id: str, *, envelope: str = "core_mime") -> TransportResult:
    """One exchange with ``box`` over a transport opened and closed for it."""
    transport = single(envelope, url_for(box, envelope))
    try:
        result: TransportResult = await transport.exchange(x12, payer_id=payer_id, deadline=time.monotonic() + 3)
        return result
    finally:
        await transport.close()


def url_for(box: RunningSandbox, envelope: str) -> str:
    return box.mime_url if envelope == "core_mime" else box.soap_url


@dataclass
class Stack:
    transport: ResilientTransport
    breakers: BreakerBoard
    sleeps: list[float]


def resilient(
    envelope: str,
    box: RunningSandbox | None,
    *,
    url: str | None = None,
    policy: RetryPolicy | None = None,
    breakers: BreakerBoard | None = None,
    limiter: PayerLimiter | None = None,
    clock: Callable[[], float] = time.monotonic,
    observer: Observer | None = None,
) -> Stack:
    """The production wrapper around a real transport to ``box``; records every backoff sleep."""
    assert box is not None or url is not None
    inner = single(envelope, url or url_for(box, envelope))  # type: ignore[arg-type]
    board = breakers or BreakerBoard(endpoint=BreakerConfig(50, 30), payer=BreakerConfig(50, 30), clock=clock)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(seconds)

    transport = ResilientTransport(
        inner,
        endpoint_name=inner.endpoint.name,
        envelope=envelope,
        policy=policy or RetryPolicy(max_attempts=4, attempt_timeout=1.0, backoff_base=0.02, backoff_max=0.1),
        breakers=board,
        limiter=limiter or LocalPayerLimiter(PayerLimits(50, 1000, 100)),
        clock=clock,
        sleep=sleep,
        observer=observer,
    )
    return Stack(transport, board, sleeps)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
async def sandbox_factory() -> AsyncIterator[SandboxFactory]:
    started: list[RunningSandbox] = []

    async def start(config: SandboxClearinghouseConfig | None = None, **kwargs: Any) -> RunningSandbox:
        box = await start_sandbox_clearinghouse(config or SandboxClearinghouseConfig(seed=7), **kwargs)
        started.append(box)
        return box

    yield start
    for box in started:
        await box.close()


@pytest.fixture
async def sandbox(sandbox_factory: SandboxFactory) -> RunningSandbox:
    return await sandbox_factory()


@dataclass
class Canned:
    """A fixed HTTP answer for ``static_server``."""

    status: int
    body: bytes
    headers: dict[str, str]


StaticServer = Callable[[Canned], Awaitable[str]]


@pytest.fixture
async def static_server() -> AsyncIterator[StaticServer]:
    """``url = await static_server(Canned(...))``: a real server on 127.0.0.1 that answers every POST so.

    For answers the sandbox never gives (a DTD in the SOAP body, an HTML error page, a SOAP 1.2 fault).
    """
    runners: list[web.AppRunner] = []

    async def start(canned: Canned) -> str:
        async def answer(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(status=canned.status, body=canned.body, headers=canned.headers)

        app = web.Application()
        app.router.add_post("/{tail:.*}", answer)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/core"

    yield start
    for runner in runners:
        await runner.cleanup()


# --- TLS material ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path.with_suffix(".crt"), path.with_suffix(".key")


def _issue(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    elif subject == "127.0.0.1":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, all made now."""
    ca_key = _key()
    ca_cert = _issue("Test Clearinghouse CA", ca_key, None)
    ca_path, _ = _write(tmp_path / "ca", ca_cert, ca_key)
    server_key, client_key = _key(), _key()
    server = _write(tmp_path / "server", _issue("127.0.0.1", server_key, (ca_cert.subject, ca_key)), server_key)
    client = _write(tmp_path / "client", _issue("ELIGSVC", client_key, (ca_cert.subject, ca_key)), client_key)
    return TlsFiles(ca_path, server[0], server[1], client[0], client[1])
