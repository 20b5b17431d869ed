"""TTL and freshness rules, from issue 5: expectations are worked out by hand from the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from eligibility_svc.cache_policy import (
    DO_NOT_CACHE,
    TtlPolicy,
    end_of_day,
    entry_age,
    last_service_day,
    may_serve,
    ttl_seconds,
    wants_cached,
)
from eligibility_svc.models import AaaError, CheckStatus, CoverageSummary, EligibilityRequest
from eligibility_svc.settings import CacheSettings

NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600
POLICY = TtlPolicy(max_ttl_seconds=24 * HOUR, negative_ttl_seconds=900, timezone=NEW_YORK)


def at(text: str, zone: ZoneInfo = NEW_YORK) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def aaa(code: str, *, retryable: bool) -> AaaError:
    return AaaError(
        code=code,
        description="",
        follow_up_action="R" if retryable else "C",
        follow_up_description="",
        loop="2100A",
        location="payer",
        valid_request=True,
        retryable=retryable,
        needs_correction=not retryable,
    )


def summary(status: CheckStatus, *errors: AaaError) -> CoverageSummary:
    return CoverageSummary(status=status, errors=list(errors))


ACTIVE = summary(CheckStatus.ACTIVE)


def test_active_lives_until_the_end_of_the_service_day() -> None:
    # 10:00 in New York on the service date: 14 hours to midnight.
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 2), at("2025-06-02T10:00:00"), POLICY) == 14 * HOUR


def test_the_day_ends_in_the_configured_zone_not_in_utc() -> None:
    # 03:00 UTC on 3 June is 23:00 on 2 June in New York (EDT): one hour of the service day left.
    now = at("2025-06-03T03:00:00", ZoneInfo("UTC"))
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 2), now, POLICY) == HOUR
    los_angeles = TtlPolicy(
        max_ttl_seconds=24 * HOUR, negative_ttl_seconds=900, timezone=ZoneInfo("America/Los_Angeles")
    )
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 2), now, los_angeles) == 4 * HOUR


def test_active_is_capped_by_the_maximum() -> None:
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 5), at("2025-06-02T10:00:00"), POLICY) == 24 * HOUR


def test_a_service_day_already_over_gets_the_short_ttl() -> None:
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 1), at("2025-06-02T10:00:00"), POLICY) == 900
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 1), at("2025-06-02T00:00:00"), POLICY) == 900  # exactly midnight


def test_the_last_fraction_of_a_second_still_caches() -> None:
    assert ttl_seconds(ACTIVE, dt.date(2025, 6, 2), at("2025-06-02T23:59:59.600"), POLICY) == 1


def test_days_with_a_clock_change_have_their_real_length() -> None:
    long_max = TtlPolicy(max_ttl_seconds=30 * HOUR, negative_ttl_seconds=900, timezone=NEW_YORK)
    # 9 March 2025: clocks spring forward, the day has 23 hours; 2 November 2025 has 25.
    assert ttl_seconds(ACTIVE, dt.date(2025, 3, 9), at("2025-03-09T00:00:00"), long_max) == 23 * HOUR
    assert ttl_seconds(ACTIVE, dt.date(2025, 11, 2), at("2025-11-02T00:00:00"), long_max) == 25 * HOUR
    assert end_of_day(dt.date(2025, 3, 9), NEW_YORK).utcoffset() == dt.timedelta(hours=-4)


@pytest.mark.parametrize("status", [CheckStatus.INACTIVE, CheckStatus.NOT_FOUND])
def test_negative_answers_are_short(status: CheckStatus) -> None:
    assert ttl_seconds(summary(status), dt.date(2025, 6, 5), at("2025-06-02T10:00:00"), POLICY) == 900
    tight = TtlPolicy(max_ttl_seconds=600, negative_ttl_seconds=900, timezone=NEW_YORK)
    assert ttl_seconds(summary(status), dt.date(2025, 6, 5), at("2025-06-02T10:00:00"), tight) == 600


@pytest.mark.parametrize("status", [CheckStatus.REJECTED, CheckStatus.ERROR])
def test_rejections_and_errors_are_not_cached(status: CheckStatus) -> None:
    assert ttl_seconds(summary(status), dt.date(2025, 6, 2), at("2025-06-02T10:00:00"), POLICY) == DO_NOT_CACHE


def test_an_aaa_a_retry_can_fix_is_not_cached_whatever_the_status() -> None:
    now, day = at("2025-06-02T10:00:00"), dt.date(2025, 6, 2)
    for status in (CheckStatus.ACTIVE, CheckStatus.NOT_FOUND):
        answer = summary(status, aaa("75", retryable=False), aaa("42", retryable=True))
        assert ttl_seconds(answer, day, now, POLICY) == DO_NOT_CACHE
    corrections_only = summary(CheckStatus.NOT_FOUND, aaa("75", retryable=False))
    assert ttl_seconds(corrections_only, day, now, POLICY) == 900


def test_now_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ttl_seconds(ACTIVE, dt.date(2025, 6, 2), dt.datetime(2025, 6, 2, 10), POLICY)


def test_policy_from_settings_and_its_validation() -> None:
    policy = TtlPolicy.from_settings(
        CacheSettings(max_ttl_seconds=7200, negative_ttl_seconds=60, timezone="America/Chicago")
    )
    assert policy == TtlPolicy(max_ttl_seconds=7200, negative_ttl_seconds=60, timezone=ZoneInfo("America/Chicago"))
    assert TtlPolicy.from_settings(CacheSettings()).timezone == NEW_YORK
    with pytest.raises(ValueError, match="time zone"):
        CacheSettings(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="at least one second"):
        TtlPolicy(max_ttl_seconds=0, negative_ttl_seconds=900, timezone=NEW_YORK)


def request(**service: Any) -> EligibilityRequest:
    return EligibilityRequest.model_validate(
        {
            "payer": {"id": "87726", "name": "UHC"},
            "provider": {"npi": "1234567893", "organization_name": "Clinic"},
            "patient": {"last_name": "Doe"},
            "member_id": "W123",
            "service": {"date": "2025-06-02", **service.pop("service", {})},
            **service,
        }
    )


def test_a_date_range_ends_on_its_last_day() -> None:
    assert last_service_day(request()) == dt.date(2025, 6, 2)
    assert last_service_day(request(service={"end_date": "2025-06-04"})) == dt.date(2025, 6, 4)


@pytest.mark.parametrize(
    ("age", "max_age", "force", "served"),
    [
        (10_000.0, None, False, True),  # only the TTL bounds it
        (59.9, 60, False, True),
        (60.0, 60, False, False),  # as HTTP: fresh while age < max-age
        (0.0, 0, False, False),
        (0.0, None, True, False),
        (0.0, 60, True, False),
    ],
)
def test_may_serve(age: float, max_age: int | None, force: bool, served: bool) -> None:
    assert may_serve(age, max_age_seconds=max_age, force_refresh=force) is served


def test_entry_age_treats_a_future_stamp_as_new() -> None:
    assert entry_age(100.0, 130.5) == 30.5
    assert entry_age(131.0, 130.5) == 0.0


def test_wants_cached() -> None:
    assert wants_cached(request())
    assert wants_cached(request(max_age_seconds=30))
    assert not wants_cached(request(max_age_seconds=0))
    assert not wants_cached(request(force_refresh=True))
