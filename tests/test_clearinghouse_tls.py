"""TLS is always verified: an untrusted certificate fails without a retry, ca_file trusts it, X.509 client auth."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eligibility_svc.clearinghouse.http_client import check_url, tls_context
from eligibility_svc.clearinghouse.resilience import RetryPolicy
from eligibility_svc.errors import ClearinghouseUnavailable, ConfigurationError
from tests.support.ch_servers import ENVELOPES, SandboxFactory, TlsFiles, make_270, resilient, scenario, single, url_for

PAYER = "SBX10001"


def _x12() -> str:
    return make_270(scenario("01").request)


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_untrusted_certificate_fails_verification_and_is_not_retried(
    sandbox_factory: SandboxFactory, tls_files: TlsFiles, envelope: str
) -> None:
    box = await sandbox_factory(ssl_context=tls_files.server_context())
    assert box.base_url.startswith("https://127.0.0.1:")
    stack = resilient(envelope, box, policy=RetryPolicy(max_attempts=4, attempt_timeout=2))
    with pytest.raises(ClearinghouseUnavailable, match=r"failed verification.*set clearinghouse\.ca_file") as caught:
        await stack.transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 3)
    await stack.transport.close()
    assert caught.value.details["reason"] == "tls_verification"
    assert caught.value.details["attempts"] == 1, "a certificate does not get better by asking again"
    assert box.state.counts == {}, "nothing was sent over the unverified connection"


@pytest.mark.parametrize("envelope", ENVELOPES)
async def test_ca_file_makes_the_private_ca_trusted(
    sandbox_factory: SandboxFactory, tls_files: TlsFiles, envelope: str
) -> None:
    box = await sandbox_factory(ssl_context=tls_files.server_context())
    transport = single(envelope, url_for(box, envelope), ssl_context=tls_context(ca_file=tls_files.ca))
    result = await transport.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 3)
    await transport.close()
    assert result.x12_271.startswith("ISA")


async def test_client_certificate_is_presented_when_the_server_requires_one(
    sandbox_factory: SandboxFactory, tls_files: TlsFiles
) -> None:
    box = await sandbox_factory(ssl_context=tls_files.server_context(require_client_cert=True))
    without = single("core_mime", box.mime_url, ssl_context=tls_context(ca_file=tls_files.ca))
    with pytest.raises(ClearinghouseUnavailable):
        await without.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 3)
    await without.close()
    context = tls_context(tls_files.ca, tls_files.client_cert, tls_files.client_key)
    with_cert = single("core_mime", box.mime_url, ssl_context=context)
    assert await with_cert.exchange(_x12(), payer_id=PAYER, deadline=time.monotonic() + 3)
    await with_cert.close()


def test_tls_context_verifies_by_default() -> None:
    context = tls_context()
    assert context.check_hostname
    assert context.verify_mode.name == "CERT_REQUIRED"


def test_unreadable_tls_files_are_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="cannot load the clearinghouse TLS files"):
        tls_context(ca_file=tmp_path / "ca.pem")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://ch.example.com/core", True),
        ("http://127.0.0.1:8081/core/mime", True),
        ("http://localhost:8081/core/mime", True),
        ("http://[::1]:8081/core/mime", True),
        ("http://ch.example.com/core", False),
        ("ftp://ch.example.com/core", False),
        ("ch.example.com", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_url(url).host
    else:
        with pytest.raises(ConfigurationError, match="https"):
            check_url(url)
