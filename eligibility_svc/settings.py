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

from pydantic import BaseModel, Field, SecretStr
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


class CacheSettings(BaseModel):
    key_secret: SecretStr = SecretStr("embedded-default-not-secret")  # HMAC key for cache keys
    encryption_key: SecretStr | None = None  # base64 AES-256-GCM key for cached values
    max_ttl_seconds: int = 24 * 3600
    negative_ttl_seconds: int = 15 * 60


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
    log_level: str = "INFO"
    x12: X12Settings = Field(default_factory=X12Settings)
    clearinghouse: ClearinghouseSettings = Field(default_factory=ClearinghouseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @property
    def embedded(self) -> bool:
        """True when nothing outside the process is configured (the README's first command)."""
        return self.redis_url is None and self.clearinghouse.transport == "sandbox"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
