"""The one ``Settings`` object: environment (prefix ``ELIG_``, ``__`` for nesting) and a secrets dir.

Built once behind ``get_settings()`` and passed down; nothing else reads ``os.environ``.
With no configuration at all it describes the embedded default: in-memory cache, the sandbox
clearinghouse and the athenaNet sandbox in process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
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
    # Our own 270 under ``validation``: ``always`` validates it in warn mode too; ``strict_only`` (the
    # default) only where a finding stops it (strict): the builder is property-tested to write valid 270s,
    # and pyx12 on each one costs ~1 ms of CPU.  Received 271s are validated in either case.
    validate_outgoing: Literal["always", "strict_only"] = "strict_only"
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


# --- athenaNet (issue 6) ----------------------------------------------------------------------------

_PROCEDURE_REF = r"^(?:(?:HC|AD|CJ|N4|ZZ):)?[A-Za-z0-9]{1,48}$"  # "99213" (CPT/HCPCS) or "AD:D0120"
_CLIENT_ID = r"^[A-Za-z0-9._\-]{1,128}$"  # it names a Redis key (the shared token)


class AthenaProviderSettings(BaseModel):
    """The information receiver (2100B) of checks built from athenaNet data."""

    npi: str = Field(pattern=r"^\d{10}$")
    organization_name: str | None = None
    last_name: str | None = None  # a person instead of an organization
    first_name: str | None = None


class AthenaPayerPackage(BaseModel):
    """Where one payer lives in a practice's athenaNet: its insurance package."""

    insurance_package_id: int = Field(ge=1)
    payer_name: str | None = None  # the 270's payer name (2100A); None: athenaNet's plan name
    # Other packages of the same payer (plans of one carrier): holding one of them is no package change.
    also_accept: list[int] = Field(default_factory=list)


class AthenaPracticeSettings(BaseModel):
    """One athenaNet practice: payer ID → insurance package, and who asks for its checks."""

    payers: dict[str, AthenaPayerPackage] = Field(default_factory=dict)  # by payer ID (2100A NM109)
    provider: AthenaProviderSettings | None = None  # default information receiver
    department_providers: dict[str, AthenaProviderSettings] = Field(default_factory=dict)  # by departmentid
    requests_per_second: float | None = Field(default=None, gt=0)  # None: athena.requests_per_second
    # appointmenttypeid → procedures, over athena.appointment_procedures.
    appointment_procedures: dict[str, list[Annotated[str, Field(pattern=_PROCEDURE_REF)]]] = Field(default_factory=dict)

    @field_validator("payers")
    @classmethod
    def _one_payer_per_package(cls, value: dict[str, AthenaPayerPackage]) -> dict[str, AthenaPayerPackage]:
        owners: dict[int, str] = {}
        for payer_id, package in value.items():
            for package_id in (package.insurance_package_id, *package.also_accept):
                if owners.setdefault(package_id, payer_id) != payer_id:
                    raise ValueError(
                        f"insurance package {package_id} is mapped to payers {owners[package_id]} and {payer_id}"
                    )
        return value


class AthenaSandboxSettings(BaseModel):
    """The athenaNet simulator (``sandbox athena``, and in process for the embedded default)."""

    client_id: str = "sandbox-client"
    client_secret: SecretStr = SecretStr("sandbox-not-secret")
    practice_id: str = "195900"  # athenaNet's preview practice
    token_lifetime_seconds: int = Field(default=3600, ge=1)
    token_requests_per_minute: int = Field(default=5, ge=1)  # preview's limit


class AthenaSettings(BaseModel):
    """The athenaNet client, the write-back outbox and its worker."""

    transport: Literal["sandbox", "athena"] = "sandbox"
    # https://api.preview.platform.athenahealth.com (preview) or https://api.platform.athenahealth.com;
    # None with the sandbox transport: the simulator in process.
    base_url: str | None = None
    client_id: str = Field(default="sandbox-client", pattern=_CLIENT_ID)
    client_secret: SecretStr = SecretStr("sandbox-not-secret")
    scope: str = "athena/service/Athenanet.MDP.*"
    ca_file: Path | None = None  # an extra trust anchor; verification is always on
    # Token endpoint: 50 new tokens a minute in production, 5 in preview; counted across replicas.
    token_requests_per_minute: int = Field(default=5, ge=1)
    token_window_seconds: float = Field(default=60.0, gt=0)
    token_refresh_margin_seconds: float = Field(default=60.0, ge=0)  # refresh this long before expiry
    request_timeout_seconds: float = Field(default=15.0, gt=0)  # reads
    write_timeout_seconds: float = Field(default=40.0, gt=0)  # POST/PUT/DELETE: preview's take ~20 s
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    requests_per_second: float = Field(default=5.0, gt=0)  # self-imposed, per practice, across replicas
    request_burst: int = Field(default=5, ge=1)
    max_attempts: int = Field(default=4, ge=1)  # per call, for 429 / 5xx / connection failures
    backoff_base_seconds: float = Field(default=0.5, ge=0)  # exponential with full jitter
    backoff_max_seconds: float = Field(default=8.0, ge=0)
    max_retry_after_seconds: float = Field(default=60.0, ge=0)  # a longer Retry-After: give the call up
    practices: dict[str, AthenaPracticeSettings] = Field(default_factory=dict)  # by practice id
    appointment_procedures: dict[str, list[Annotated[str, Field(pattern=_PROCEDURE_REF)]]] = Field(
        default_factory=dict
    )  # appointmenttypeid → procedures, for every practice
    default_provider: AthenaProviderSettings | None = None  # when a practice names none
    # Write inactive / unverified coverage over an active policy (off: such checks are refused).
    allow_inactive_overwrite: bool = False
    outbox_max_attempts: int = Field(default=8, ge=1)  # then a dead letter with the reason
    outbox_backoff_base_seconds: float = Field(default=2.0, ge=0)
    outbox_backoff_max_seconds: float = Field(default=300.0, ge=0)
    # A write-back a dead worker held is taken over after this long (a live worker keeps renewing its
    # claim while it waits on athenaNet, so this only bounds how long a crash delays the write-back).
    outbox_claim_idle_seconds: float = Field(default=90.0, gt=0)
    outbox_concurrency: int = Field(default=4, ge=1)  # write-backs in flight per worker
    outbox_state_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)  # how long a check's write-back state is kept
    audit_stream_max_len: int = Field(default=100_000, ge=0)  # 0: audit records go to the log only
    sandbox: AthenaSandboxSettings = Field(default_factory=AthenaSandboxSettings)


class BatchSettings(BaseModel):
    """Pre-visit batches (``eligibility_svc.batch``): the workers' concurrency, retries and claims."""

    # Items in hand per worker process: waiting for a payer slot, on the wire, or being read and stored.  The
    # per-payer limits still bound what reaches each payer; holding more items than those limits add up to
    # keeps every slot busy while the answers just in are read (a slot given back is taken again at once).
    # The Redis client's pool waits rather than fails when busy (cache.make_redis), so this can exceed its size.
    concurrency: int = Field(default=500, ge=1)
    claim_idle_seconds: float = Field(default=60.0, gt=0)  # a dead worker's items are taken over after this
    max_attempts: int = Field(default=4, ge=1)  # a payer that stays down: then the item is marked, not dropped
    retry_base_seconds: float = Field(default=5.0, ge=0)  # backoff before a payer-down item runs again
    retry_max_seconds: float = Field(default=120.0, ge=0)
    results_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)  # how long a batch and its results are kept


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
    # --- added with the HTTP API (issue 5) ---
    # SIGTERM: stop accepting, give in-flight checks this long (under Kubernetes' 30 s default grace period).
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # larger request bodies are answered 413
    # --- added with athenaNet (issue 6) ---
    athena: AthenaSettings = Field(default_factory=AthenaSettings)
    # --- added with pre-visit batches (issue 7) ---
    batch: BatchSettings = Field(default_factory=BatchSettings)

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
