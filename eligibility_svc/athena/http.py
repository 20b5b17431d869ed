"""The HTTP edge to athenaNet: one exchange, TLS verified, aiohttp's errors translated (and nothing else).

``AthenaHttp.send(HttpRequest) -> HttpResponse`` is the one-method seam: ``AiohttpAthenaHttp``
talks to athenaNet (or the sandbox, which is a real HTTP server); tests may stand a function behind it.
It never retries and never interprets a status: ``client.AthenaClient`` decides what a status means.

Failures become ``AthenaUnavailable`` / ``AthenaTimeout`` with ``details["sent"]``: ``False`` when
the request certainly never reached athenaNet (the connection was refused), so even a write may be
sent again; ``True`` when it may have arrived (a timeout, a dropped connection).
TLS verification is always on; ``ca_file`` adds a trust anchor.  Plain ``http://`` is accepted only
to a loopback address (the sandbox).
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from eligibility_svc.errors import AthenaBadResponse, AthenaTimeout, AthenaUnavailable, ConfigurationError

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a page of 1000 appointments with patient details stays far below


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # absolute path on the API host, query excluded ("/v1/195900/patients/1")
    endpoint: str  # the path's template, for errors and the audit ("/v1/{practiceid}/patients/{patientid}")
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None  # POST/PUT body, form-encoded
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds for this exchange; None: the transport's default


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, endpoint: str) -> Any:
        """The body as JSON (``None`` when empty); ``AthenaBadResponse`` when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AthenaBadResponse(
                f"athenaNet answered {endpoint} with a body that is not JSON",
                details={"endpoint": endpoint, "status": self.status},
            ) from exc


class AthenaHttp(Protocol):
    """One HTTP exchange with the athenaNet host."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def close(self) -> None: ...


def encode_form(form: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded``, as athenaNet wants every POST and PUT body."""
    return urlencode(list(form.items())).encode("ascii")


def check_base_url(url: str) -> URL:
    """The parsed base URL if it is https, or http to a loopback address; ``ConfigurationError`` otherwise."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"athena.base_url must be an https:// URL, got {url!r}")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise ConfigurationError(
            f"athena.base_url {url!r} is plain http: athenaNet needs TLS (http is allowed to loopback only)"
        )
    return parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's trust plus ``ca_file``."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load athena.ca_file: {exc}") from exc


class AiohttpAthenaHttp:
    """``AthenaHttp`` over one pooled aiohttp session.  ``close()`` when done."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 3.0,
        ca_file: Path | None = None,
        max_connections: int = 100,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._ssl = tls_context(ca_file)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: HttpRequest) -> HttpResponse:
        url = self.base_url.with_path(request.path).with_query(dict(request.query) or None)
        headers = dict(request.headers)
        body: bytes | None = None
        if request.form is not None:
            body = encode_form(request.form)
            headers["Content-Type"] = FORM_CONTENT_TYPE
        try:
            return await self._exchange(request, url, headers, body)
        except TimeoutError as exc:
            raise _timeout(request, exc) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise AthenaUnavailable(
                f"the TLS certificate of {url.host} failed verification ({exc.certificate_error})",
                details={"endpoint": request.endpoint, "reason": "tls_verification", "sent": False},
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise AthenaUnavailable(
                f"could not connect to athenaNet at {url.host}:{url.port}: {_reason(exc)}",
                details={"endpoint": request.endpoint, "reason": "connection", "sent": False},
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AthenaUnavailable(
                f"the exchange with athenaNet ({request.method} {request.endpoint}) broke: {_reason(exc)}",
                details={"endpoint": request.endpoint, "reason": "broken", "sent": True},
            ) from exc

    async def _exchange(
        self, request: HttpRequest, url: URL, headers: dict[str, str], body: bytes | None
    ) -> HttpResponse:
        endpoint = request.endpoint
        timeout = (
            self._timeout
            if request.timeout is None
            else aiohttp.ClientTimeout(total=request.timeout, sock_connect=self._timeout.sock_connect)
        )
        async with self._client().request(
            request.method, url, headers=headers, data=body, allow_redirects=False, timeout=timeout
        ) as answer:
            data = await answer.content.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                raise AthenaBadResponse(
                    f"athenaNet's answer to {endpoint} is larger than {MAX_RESPONSE_BYTES} bytes",
                    details={"endpoint": endpoint},
                )
            return HttpResponse(answer.status, dict(answer.headers), data)


def _timeout(request: HttpRequest, exc: BaseException) -> AthenaUnavailable | AthenaTimeout:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return AthenaUnavailable(
            f"could not connect to athenaNet in time ({request.method} {request.endpoint})",
            details={"endpoint": request.endpoint, "reason": "connect_timeout", "sent": False},
        )
    return AthenaTimeout(
        f"athenaNet did not answer {request.method} {request.endpoint} in time",
        details={"endpoint": request.endpoint, "sent": True},
    )


def _reason(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
