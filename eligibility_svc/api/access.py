"""Who may call: the configured API keys, or, on the embedded sandbox default only, a key for this run.

With no ``api_keys`` configured:

* embedded default (no Redis, sandbox clearinghouse): a fresh key with ``eligibility:check`` and
  ``batch:run`` is made at start, held in memory only, and printed once by ``serve`` with a ``curl``
  request that works against the sandbox;
* anything else: ``ConfigurationError`` before the service binds a port; an unauthenticated production
  service must never start by accident.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eligibility_svc.errors import ConfigurationError
from eligibility_svc.security import ApiKeyAuthenticator, GeneratedKey, generate_api_key
from eligibility_svc.settings import ApiScope, Settings

EXAMPLE_SCENARIO = "01-ppo-active-deductible-copays"
EPHEMERAL_SCOPES: tuple[ApiScope, ...] = ("eligibility:check", "batch:run")
NO_KEYS = (
    "no API keys are configured and this is not the embedded sandbox default (redis_url or a real "
    "clearinghouse is set); create one with `eligibility-svc keys new --scope eligibility:check --name NAME` "
    "and put its settings line in ELIG_API_KEYS (or the secrets directory)"
)


@dataclass(frozen=True, slots=True)
class Access:
    authenticator: ApiKeyAuthenticator
    ephemeral: GeneratedKey | None  # the embedded default's key for this run, if one was made


def resolve_access(settings: Settings) -> Access:
    """The authenticator for ``settings``; see the module docstring for the no-keys cases."""
    if settings.api_keys:
        return Access(ApiKeyAuthenticator(settings.api_keys), None)
    if not settings.embedded:
        raise ConfigurationError(NO_KEYS, details={"setting": "api_keys"})
    key = generate_api_key(EPHEMERAL_SCOPES, name="embedded default (this run only)")
    return Access(ApiKeyAuthenticator([key.settings]), key)


def example_request(fixtures_dir: Path, today: dt.date) -> dict[str, Any] | None:
    """The example scenario's request, asking about ``today`` (inside CORE's date window); None if
    the fixtures are not installed."""
    path = fixtures_dir / "scenarios" / EXAMPLE_SCENARIO / "scenario.json"
    try:
        request: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["request"]
    except (OSError, ValueError, KeyError):
        return None
    request["service"] = {**request["service"], "date": today.isoformat()}
    return request


def curl_example(base_url: str, token: str, request: dict[str, Any]) -> str:
    """A shell command that posts ``request`` to ``base_url`` with ``token``."""
    body = json.dumps(request, separators=(",", ":"))
    return " ".join(
        [
            "curl -sS",
            shlex.quote(f"{base_url}/v1/eligibility"),
            "-H",
            shlex.quote(f"Authorization: Bearer {token}"),
            "-H",
            shlex.quote("Content-Type: application/json"),
            "-d",
            shlex.quote(body),
        ]
    )


def banner(settings: Settings, base_url: str, access: Access, *, today: dt.date | None = None) -> str:
    """What ``serve`` prints when it is listening."""
    lines = [f"eligibility-svc listening on {base_url}"]
    if settings.clearinghouse.transport == "sandbox":
        lines.append("sandbox clearinghouse: answers are simulated from x12_fixtures and marked sandbox")
    if access.ephemeral is None:
        return "\n".join(lines)
    lines += [
        "embedded default: in-memory cache, sandbox clearinghouse in process, no API keys configured",
        f"API key for this run only (not stored anywhere): {access.ephemeral.token}",
    ]
    example = example_request(settings.sandbox.fixtures_dir, today or dt.date.today())
    if example is not None:
        lines += ["try it:", "  " + curl_example(base_url, access.ephemeral.token, example)]
    return "\n".join(lines)
