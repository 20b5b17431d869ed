"""Retry timing shared by every outside system we call (clearinghouse, athenaNet, batch items). Pure.

* ``full_jitter``: uniform in ``[0, ceiling)`` — for callers retrying inside one request's deadline,
  where spreading load matters more than a minimum wait;
* ``equal_jitter``: in ``[ceiling/2, ceiling)`` — for queued work, which must never retry at once and
  never in lockstep with its neighbours;
* ``parse_retry_after``: the ``Retry-After`` header, delta-seconds or an HTTP date.

``ceiling`` is ``min(cap, base · 2^(attempt-1))``; ``rand`` is a number in ``[0, 1)`` the caller draws,
so tests can pin it.
"""

from __future__ import annotations

import datetime as dt
import math
from email.utils import parsedate_to_datetime


def ceiling(attempt: int, base: float, cap: float) -> float:
    """The exponential ceiling after ``attempt`` failures (attempt 1 waits up to ``base``)."""
    return min(cap, base * 2.0 ** max(attempt - 1, 0))


def full_jitter(attempt: int, base: float, cap: float, rand: float) -> float:
    return ceiling(attempt, base, cap) * rand


def equal_jitter(attempt: int, base: float, cap: float, rand: float) -> float:
    top = ceiling(attempt, base, cap)
    return top / 2 + top / 2 * rand


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (decimals tolerated) or an HTTP date;
    ``None`` when absent or unreadable, never negative."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now)
    return None if math.isnan(seconds) else max(seconds, 0.0)


def _seconds_until(http_date: str, now: dt.datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return max((when - current).total_seconds(), 0.0)
