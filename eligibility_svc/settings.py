"""The one ``Settings`` object: environment (prefix ``ELIG_``, ``__`` for nesting) and a secrets dir.

Built once behind ``get_settings()`` and passed down; nothing else reads ``os.environ``.
With no configuration at all it describes the embedded default: in-memory cache, the sandbox
clearinghouse and the athenaNet sandbox in process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = PROJECT_ROOT / "x12_fixtures"


class X12Settings(BaseModel):
    """Who we are in the envelopes, and how strict we are about the implementation guide."""

    sender_id: str = "ELIGSVC"  # ISA06 / GS02
    sender_qualifier: str = "ZZ"  # ISA05
    receiver_id: str = "CLEARINGHOUSE"  # ISA08 / GS03
    receiver_qualifier: str = "ZZ"  # ISA07
    usage: Literal["P", "T"] = "T"  # ISA15
    validation: Literal["off", "warn", "strict"] = "warn"
    procedure_map_file: Path | None = None  # JSON overrides of the CPT→STC table


class SandboxClearinghouseSettings(BaseModel):
    """The sandbox clearinghouse: run in process for the embedded default, or by ``sandbox clearinghouse``."""

    envelope: Literal["core_mime", "core_soap"] = "core_mime"  # which CORE envelope the embedded default uses
    username: str = "sandbox"
    password: SecretStr = SecretStr("sandbox-not-secret")
    receiver_id: str = "CLEARINGHOUSE"  # the ReceiverID (and ISA08) the sandbox answers to
    latency_ms: float = Field(default=0.0, ge=0)  # fixed part of every answer's latency
    jitter_ms: float = Field(default=0.0, ge=0)  # plus a uniform 0..jitter_ms


class PayerLimitSettings(BaseModel):
    """One payer's own limits, when it tolerates more (or less) than ``per_payer_*``."""

    concurrency: int = Field(ge=1)
    rate_per_second: float = Field(gt=0)
    burst: int = Field(default=20, ge=1)


class ClearinghouseSettings(BaseModel):
    transport: Literal["sandbox", "core_mime", "core_soap"] = "sandbox"
    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    ca_file: Path | None = None
    receiver_id: str = "CLEARINGHOUSE"  # CORE ReceiverID
    deadline_seconds: float = 20.0  # CORE 156
    attempt_timeout_seconds: float = 8.0
    max_attempts: int = 4
    per_payer_concurrency: int = 50
    per_payer_rate_per_second: float = 100.0
    # --- added with the transports (issue 4) ---
    sender_id: str | None = None  # CORE SenderID; None: the X12 sender ID (ISA06)
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    backoff_base_seconds: float = Field(default=0.25, ge=0)  # exponential backoff with full jitter
    backoff_max_seconds: float = Field(default=4.0, ge=0)
    max_retry_after_seconds: float = Field(default=10.0, ge=0)  # longer Retry-After: give up, don't wait
    per_payer_rate_burst: int = Field(default=20, ge=1)  # token bucket size
    max_connections: int = Field(default=200, ge=1)  # pooled HTTP connections per endpoint
    limiter: Literal["auto", "memory", "redis"] = "auto"  # auto: Redis when redis_url is set
    breaker_failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open an endpoint breaker
    breaker_reset_seconds: float = Field(default=30.0, gt=0)  # open → half-open after this cool-down
    payer_breaker_failure_threshold: int = Field(default=5, ge=1)
    payer_breaker_reset_seconds: float = Field(default=60.0, gt=0)
    payer_limits: dict[str, PayerLimitSettings] = Field(default_factory=dict)  # by payer ID (2100A NM109)
    sandbox: SandboxClearinghouseSettings = Field(default_factory=SandboxClearinghouseSettings)


class CacheSettings(BaseModel):
    key_secret: SecretStr = SecretStr("embedded-default-not-secret")  # HMAC key for cache keys
    encryption_key: SecretStr | None = None  # base64 AES-256-GCM key for cached values
    max_ttl_seconds: int = 24 * 3600
    negative_ttl_seconds: int = 15 * 60
    # Active coverage is cached until the end of the service date's day in this zone.  The default is the
    # earliest midnight of the continental US, so no practice is served yesterday's answer after its day ends.
    timezone: str = "America/New_York"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (is tzdata installed?)") from exc
        return value


ApiScope = Literal["eligibility:check", "batch:run", "admin"]


class ApiKeySettings(BaseModel):
    """One API key, configured by its hash; the secret itself is shown once, when generated.

    ``id`` is the public part of ``elig_<id>_<secret>`` and picks this entry; ``secret_hash`` is
    ``sha256:<hex>`` (see ``security.hash_secret``).  ``admin`` grants every scope.
    """

    id: str = Field(pattern=r"^[a-z0-9]{6,32}$")
    secret_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    scopes: list[ApiScope] = Field(min_length=1)
    name: str | None = None  # who holds it, for people reading the configuration
    disabled: bool = False


class SandboxSettings(BaseModel):
    fixtures_dir: Path = DEFAULT_FIXTURES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ELIG_",
        env_nested_delimiter="__",
        secrets_dir=os.environ.get("ELIG_SECRETS_DIR") or None,
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="elig:", min_length=1, max_length=32)  # every key we write starts so
    log_level: str = "INFO"
    x12: X12Settings = Field(default_factory=X12Settings)
    clearinghouse: ClearinghouseSettings = Field(default_factory=ClearinghouseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    # JSON list in ELIG_API_KEYS (or the secrets dir): [{"id": ..., "secret_hash": ..., "scopes": [...]}].
    api_keys: list[ApiKeySettings] = Field(default_factory=list)

    @field_validator("api_keys")
    @classmethod
    def _unique_key_ids(cls, value: list[ApiKeySettings]) -> list[ApiKeySettings]:
        ids = [key.id for key in value]
        if len(ids) != len(set(ids)):
            raise ValueError("api_keys: every key id must be unique")
        return value

    @property
    def embedded(self) -> bool:
        """True when nothing outside the process is configured (the README's first command)."""
        return self.redis_url is None and self.clearinghouse.transport == "sandbox"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
