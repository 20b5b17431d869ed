"""Pure cache decisions: how long an answer may be kept, and whether a kept one may be served.

No I/O and no clock: ``now`` is always an argument.  The rules (issue 5):

* active coverage is kept until the end of the last service day, in ``CacheSettings.timezone``
  (default America/New_York: the earliest midnight of the continental US, so an answer is never
  served for a day that has already ended for the practice; a west-coast practice loses its cache
  for the last three hours of its evening, when clinics are closed), capped by ``max_ttl_seconds``;
* a service day that has already ended gets the short TTL (``negative_ttl_seconds``), never a
  negative or zero one: retro checks for billing still deserve a little caching;
* inactive / not found answers are kept ``negative_ttl_seconds`` (capped by ``max_ttl_seconds``):
  a member added today should be found soon;
* an answer carrying an AAA error a retry can fix is not kept (TTL 0): the retry must reach the payer;
* rejected / error answers are not kept;
* per request, ``force_refresh`` never serves a kept answer, and ``max_age_seconds`` serves one only
  while its age is below it (``max_age_seconds=0`` therefore never serves one, as in HTTP).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest
from eligibility_svc.settings import CacheSettings

DO_NOT_CACHE = 0


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    """The numbers the TTL rules use; build it with ``from_settings``."""

    max_ttl_seconds: int
    negative_ttl_seconds: int
    timezone: ZoneInfo

    def __post_init__(self) -> None:
        if self.max_ttl_seconds < 1 or self.negative_ttl_seconds < 1:
            raise ValueError("cache TTLs must be at least one second")

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> TtlPolicy:
        return cls(
            max_ttl_seconds=settings.max_ttl_seconds,
            negative_ttl_seconds=settings.negative_ttl_seconds,
            timezone=ZoneInfo(settings.timezone),
        )

    @property
    def short_ttl_seconds(self) -> int:
        """The TTL of answers that should be asked again soon."""
        return min(self.negative_ttl_seconds, self.max_ttl_seconds)


def last_service_day(request: EligibilityRequest) -> dt.date:
    """The day whose end bounds an active answer: the end of a date range, else the service date."""
    return request.service.end_date or request.service.date


def end_of_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant after ``day`` in ``zone`` (its local midnight; DST-correct)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)


def ttl_seconds(summary: CoverageSummary, service_day: dt.date, now: dt.datetime, policy: TtlPolicy) -> int:
    """Seconds to keep ``summary`` for a check whose last service day is ``service_day``.

    ``now`` must be timezone-aware.  Returns ``DO_NOT_CACHE`` (0) when the answer must not be
    kept; otherwise a value in ``1 .. policy.max_ttl_seconds``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if any(error.retryable for error in summary.errors):
        return DO_NOT_CACHE
    if summary.status is CheckStatus.ACTIVE:
        return _active_ttl(service_day, now, policy)
    if summary.status in (CheckStatus.INACTIVE, CheckStatus.NOT_FOUND):
        return policy.short_ttl_seconds
    return DO_NOT_CACHE  # rejected, error


def _active_ttl(service_day: dt.date, now: dt.datetime, policy: TtlPolicy) -> int:
    # In UTC: subtracting two datetimes of the same zone ignores a DST change between them.
    remaining = (end_of_day(service_day, policy.timezone).astimezone(dt.UTC) - now.astimezone(dt.UTC)).total_seconds()
    if remaining <= 0:
        return policy.short_ttl_seconds
    # Round up: a fraction of a second left still deserves one second, never zero.
    return min(math.ceil(remaining), policy.max_ttl_seconds)


def entry_age(stored_at: float, now: float) -> float:
    """Age in seconds of an entry stored at unix time ``stored_at``; replicas' clock skew can make
    it look negative, which we read as brand new."""
    return max(0.0, now - stored_at)


def may_serve(age_seconds: float, *, max_age_seconds: int | None, force_refresh: bool) -> bool:
    """Whether a kept answer ``age_seconds`` old may answer a request with these controls."""
    if force_refresh:
        return False
    if max_age_seconds is None:
        return True  # the TTL alone bounds it
    return age_seconds < max_age_seconds


def wants_cached(request: EligibilityRequest) -> bool:
    """Whether looking in the cache can help this request at all (saves a Redis round trip)."""
    return not request.force_refresh and request.max_age_seconds != 0
