"""Retry timing: the exponential ceiling, both jitters, and Retry-After in both of its forms."""

from __future__ import annotations

import datetime as dt

import pytest

from eligibility_svc.backoff import ceiling, equal_jitter, full_jitter, parse_retry_after


@pytest.mark.parametrize(("attempt", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)])
def test_ceiling_doubles_from_base_up_to_the_cap(attempt: int, expected: float) -> None:
    assert ceiling(attempt, 0.5, 5.0) == expected


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert full_jitter(3, 0.5, 5.0, 0.0) == 0.0
    assert full_jitter(3, 0.5, 5.0, 0.5) == 1.0


def test_equal_jitter_never_waits_less_than_half() -> None:
    assert equal_jitter(3, 0.5, 5.0, 0.0) == 1.0
    assert equal_jitter(3, 0.5, 5.0, 0.999) == pytest.approx(1.999)


NOW = dt.datetime(2026, 11, 24, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Tue, 24 Nov 2026 12:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds
