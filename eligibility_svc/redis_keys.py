"""Every Redis key, channel and stream name the service uses, in one place, under one prefix.

Nothing else in the package spells a Redis key: modules ask a ``RedisKeys`` for it, so a reader
can see the whole keyspace here and two deployments can share one Redis with different prefixes.

    {prefix}cache:{digest}                 cached CoverageSummary (JSON, maybe AES-GCM)   TTL policy
    {prefix}cov:{digest}                   general (STC 30) answer for patient/payer/date  TTL policy
    {prefix}check:{check_id}               a finished check, for GET /v1/eligibility/{id}  TTL policy
    {prefix}sf:{digest}                    single-flight lock (token)                      PX expiry
    {prefix}ctl:{name}                     X12 control-number counter (INCR)               none
    {prefix}limit:conc:{payer}             per-payer concurrency slots                      limiter
    {prefix}limit:rate:{payer}             per-payer token bucket                           limiter
    {prefix}breaker:{scope}                shared circuit-breaker state                     breaker
    {prefix}athena:token:{client}          athenaNet OAuth2 access token                    token expiry
    {prefix}outbox:athena                  write-back outbox (stream)                       trimmed
    {prefix}outbox:athena:dead             write-back dead letters (stream)                 trimmed
    {prefix}outbox:athena:item:{check_id}  a write-back's sealed payload and state (hash)   state TTL
    {prefix}outbox:athena:retry            write-backs waiting to retry (zset by due time)  none
    {prefix}athena:token:{client}:lock     one replica fetching a token                     PX expiry
    {prefix}athena:token:{client}:requests token requests in the window (zset)              window
    {prefix}athena:rate:{practice}         per-practice API token bucket                    idle expiry
    {prefix}athena:lock:{digest}           one write-back at a time per patient             PX expiry
    {prefix}athena:audit                   one record per athenaNet call (stream)           trimmed
    {prefix}batch:{id}                     batch metadata (hash)
    {prefix}batch:{id}:results             batch results (stream)
    {prefix}batch:work                     batch items for the workers (stream)
    {prefix}batch:{id}:items               a batch's checks to make (hash: item id → sealed JSON)  batch TTL
    {prefix}batch:{id}:planning            while planning: HMAC of a question → item id (hash)  deleted after
    {prefix}batch:{id}:done                items whose result is stored (set)              batch TTL
    {prefix}batch:retry                    payer-down items waiting (zset by due time)     none

``digest`` values are HMACs computed by ``cache.py`` (never patient data); check and batch ids are
our own identifiers (anything else raises ``ValueError``); payer ids and breaker scopes come from
configuration or requests, so an untidy one is replaced by a hash.  Consumer-group names sit here too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_PREFIX = "elig:"

# Stream consumer groups (Redis Streams): one per kind of worker.
OUTBOX_GROUP = "athena-writers"
BATCH_GROUP = "batch-workers"

# Our own identifiers may contain only these characters; it keeps keys readable and unambiguous
# (no ":" inside a part, so a key splits back into its parts).
_PART = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def _part(kind: str, value: str) -> str:
    """``value`` (our own identifier) checked to be one key part; ``ValueError`` otherwise (a bug)."""
    if not _PART.fullmatch(value):
        raise ValueError(f"{kind} {value!r} cannot be part of a Redis key")
    return value


def _outside_part(value: str) -> str:
    """A key part for a value that arrives from outside (a payer id in a request): itself when it
    is tidy, else ``~`` and a hash of it ("~" never starts a tidy value, so the two cannot meet)."""
    if _PART.fullmatch(value):
        return value
    return "~" + hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds every key under ``prefix`` (``Settings.redis_key_prefix``, default ``"elig:"``)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        # A glob character in the prefix would make ``pattern`` match other deployments' keys.
        if not re.fullmatch(r"[A-Za-z0-9._\-:]{1,32}", self.prefix):
            raise ValueError(f"Redis key prefix {self.prefix!r}: use 1-32 of A-Z a-z 0-9 . _ - :")

    # --- cache ---------------------------------------------------------------------------------------

    def cache_entry(self, digest: str) -> str:
        """A cached answer for one exact question (identity + provider + dates + inquiry codes)."""
        return f"{self.prefix}cache:{_part('digest', digest)}"

    def coverage_entry(self, digest: str) -> str:
        """The general answer for a patient/payer/provider/dates, reusable for other procedures."""
        return f"{self.prefix}cov:{_part('digest', digest)}"

    def check(self, check_id: str) -> str:
        """A finished check by its id, so callers can fetch it again."""
        return f"{self.prefix}check:{_part('check id', check_id)}"

    # --- coordination between replicas ----------------------------------------------------------------

    def single_flight_lock(self, digest: str) -> str:
        """The lock held by the one replica asking the payer for ``digest``."""
        return f"{self.prefix}sf:{_part('digest', digest)}"

    def control_counter(self, name: str = "interchange") -> str:
        """The atomic counter X12 control numbers come from."""
        return f"{self.prefix}ctl:{_part('counter', name)}"

    def payer_concurrency(self, payer_id: str) -> str:
        """Slots in use for one payer (shared concurrency limit)."""
        return f"{self.prefix}limit:conc:{_outside_part(payer_id)}"

    def payer_waiting(self, payer_id: str) -> str:
        """Replicas whose callers found every slot of a payer taken lately (fairness between replicas)."""
        return f"{self.prefix}limit:wait:{_outside_part(payer_id)}"

    def payer_rate(self, payer_id: str) -> str:
        """One payer's token bucket (shared rate limit)."""
        return f"{self.prefix}limit:rate:{_outside_part(payer_id)}"

    def breaker(self, scope: str) -> str:
        """Shared circuit-breaker state for an endpoint or a payer (``scope`` such as ``payer.87726``)."""
        return f"{self.prefix}breaker:{_outside_part(scope)}"

    # --- athenaNet -------------------------------------------------------------------------------------

    def athena_token(self, client: str) -> str:
        """The cached OAuth2 access token of one athenaNet client (``client`` is an id, not the secret)."""
        return f"{self.prefix}athena:token:{_part('client', client)}"

    @property
    def outbox(self) -> str:
        """The write-back outbox stream."""
        return f"{self.prefix}outbox:athena"

    @property
    def outbox_dead(self) -> str:
        """Write-backs that exhausted their retries."""
        return f"{self.prefix}outbox:athena:dead"

    # ... added with the athenaNet client and outbox (issue 6) ...

    def athena_token_lock(self, client: str) -> str:
        """Held by the one replica fetching a new token for ``client``."""
        return f"{self.prefix}athena:token:{_part('client', client)}:lock"

    def athena_token_requests(self, client: str) -> str:
        """When ``client``'s recent token requests were made (sorted set): the endpoint's rate limit."""
        return f"{self.prefix}athena:token:{_part('client', client)}:requests"

    def athena_rate(self, practice_id: str) -> str:
        """One practice's token bucket for API calls (our self-imposed rate, shared by replicas)."""
        return f"{self.prefix}athena:rate:{_outside_part(practice_id)}"

    def athena_patient_lock(self, digest: str) -> str:
        """Held while one write-back reads and writes a patient's insurances (``digest``: HMAC of the patient)."""
        return f"{self.prefix}athena:lock:{_part('digest', digest)}"

    @property
    def athena_audit(self) -> str:
        """One record per athenaNet call (stream): endpoint template, status, duration, check id."""
        return f"{self.prefix}athena:audit"

    def outbox_item(self, check_id: str) -> str:
        """A write-back's payload (sealed) and state (hash), by its check."""
        return f"{self.prefix}outbox:athena:item:{_part('check id', check_id)}"

    @property
    def outbox_retry(self) -> str:
        """Write-backs waiting for their next attempt (sorted set: check id by due time)."""
        return f"{self.prefix}outbox:athena:retry"

    # --- batches ---------------------------------------------------------------------------------------

    def batch(self, batch_id: str) -> str:
        """A batch's metadata and progress counters (hash)."""
        return f"{self.prefix}batch:{_part('batch id', batch_id)}"

    def batch_results(self, batch_id: str) -> str:
        """A batch's results, in completion order (stream)."""
        return f"{self.prefix}batch:{_part('batch id', batch_id)}:results"

    @property
    def batch_work(self) -> str:
        """Batch items waiting for a worker (stream read by ``BATCH_GROUP``)."""
        return f"{self.prefix}batch:work"

    def batch_items(self, batch_id: str) -> str:
        """A batch's checks to make (hash: item id → item JSON)."""
        return f"{self.prefix}batch:{_part('batch id', batch_id)}:items"

    def batch_planning(self, batch_id: str) -> str:
        """While a batch is planned: which item asks each question (hash: HMAC → item id; then deleted)."""
        return f"{self.prefix}batch:{_part('batch id', batch_id)}:planning"

    def batch_done(self, batch_id: str) -> str:
        """Item ids whose result is stored: a redelivered item is never sent to the payer again (set)."""
        return f"{self.prefix}batch:{_part('batch id', batch_id)}:done"

    @property
    def batch_retry(self) -> str:
        """Items of a payer that was down, waiting for their next attempt (sorted set by due time)."""
        return f"{self.prefix}batch:retry"

    # --- housekeeping ----------------------------------------------------------------------------------

    @property
    def pattern(self) -> str:
        """``SCAN MATCH`` pattern for every key of this deployment (operations, tests)."""
        return f"{self.prefix}*"
