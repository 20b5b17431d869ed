"""The HTTP edge both CORE transports share: TLS, one POST within a deadline, errors translated.

Here and only here aiohttp's exceptions become ``ClearinghouseError``s.  TLS verification is always
on (``ssl.create_default_context``); ``ca_file`` adds a trust anchor, a client certificate and key
are the rule's X.509 option.  Plain ``http://`` is refused except to a loopback address (the sandbox).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from eligibility_svc.errors import (
    ClearinghouseBadResponse,
    ClearinghouseTimeout,
    ClearinghouseUnavailable,
    ConfigurationError,
)

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # a real-time 271 is kilobytes; anything near this is not one
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def tls_context(
    ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A verifying client context: system trust plus ``ca_file``; ``cert_file``/``key_file`` for X.509 auth."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert_file is not None:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cannot load the clearinghouse TLS files (ca_file, client_cert_file, client_key_file): {exc}"
        ) from exc
    return context


def check_url(url: str) -> URL:
    """The parsed URL, if it is https, or http to a loopback address; ``ConfigurationError`` otherwise."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"clearinghouse.url must be an https:// URL, got {url!r}")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise ConfigurationError(
            f"clearinghouse.url {url!r} is plain http: CORE requires TLS; use https:// "
            "(plain http is allowed only to a loopback address, for the sandbox)"
        )
    return parsed


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpEndpoint:
    """One clearinghouse URL with its connection pool.  ``close()`` when done."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 3.0,
        max_connections: int = 200,
    ) -> None:
        self.url = check_url(url)
        self._ssl = ssl_context or tls_context()
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        """``host:port/path`` for messages and breaker keys (no credentials, no query)."""
        return f"{self.url.host}:{self.url.port}{self.url.path}"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._max_connections)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, body: bytes, *, headers: dict[str, str], deadline: float) -> HttpAnswer:
        """POST ``body`` and read the whole answer before ``deadline`` (``time.monotonic()``)."""
        budget = deadline - time.monotonic()
        if budget <= 0:
            raise ClearinghouseTimeout("no time left in the deadline to call the clearinghouse", details={})
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(self._connect_timeout, budget))
        try:
            async with asyncio.timeout(budget):
                return await self._post(body, headers, timeout)
        except TimeoutError as exc:
            raise self._timeout_error(exc, budget) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ClearinghouseUnavailable(
                f"the TLS certificate of {self.url.host} failed verification ({exc.certificate_error}); "
                "if the clearinghouse uses a private CA, set clearinghouse.ca_file to it",
                details={"endpoint": self.name, "permanent": True, "reason": "tls_verification"},
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise ClearinghouseUnavailable(
                f"the connection to {self.name} broke while the answer was being read ({exc})",
                details={"endpoint": self.name, "reason": "payload_broken"},
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ClearinghouseUnavailable(
                f"could not reach the clearinghouse at {self.name}: {_reason(exc)}",
                details={"endpoint": self.name, "reason": "connection"},
            ) from exc

    async def _post(self, body: bytes, headers: dict[str, str], limits: aiohttp.ClientTimeout) -> HttpAnswer:
        async with self._client().post(self.url, data=body, headers=headers, timeout=limits) as response:
            data = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(data) > MAX_RESPONSE_BYTES:
                raise ClearinghouseBadResponse(
                    f"the answer from {self.name} is larger than {MAX_RESPONSE_BYTES} bytes; not a real-time 271",
                    details={"endpoint": self.name},
                )
            return HttpAnswer(response.status, response.headers, data)

    def _timeout_error(self, exc: TimeoutError, budget: float) -> ClearinghouseTimeout | ClearinghouseUnavailable:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ClearinghouseUnavailable(
                f"could not connect to the clearinghouse at {self.name} within "
                f"{min(self._connect_timeout, budget):.1f} s",
                details={"endpoint": self.name, "reason": "connect_timeout"},
            )
        return ClearinghouseTimeout(
            f"the clearinghouse at {self.name} did not answer within {budget:.1f} s",
            details={"endpoint": self.name, "timeout_seconds": round(budget, 3)},
        )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
