"""Circuit breakers: stop calling an endpoint (or a payer behind it) that keeps failing, try again later.

::

              N consecutive failures                 cool-down elapsed
    CLOSED ───────────────────────────► OPEN ───────────────────────────► HALF_OPEN
       ▲                                  ▲                                  │ one probe call
       │            probe succeeds        │          probe fails             │
       └──────────────────────────────────┼──────────────────────────────────┤
                                          └──────────────────────────────────┘

The state machine is pure (``BreakerState`` in, ``BreakerState`` out, the time passed in); the
``CircuitBreaker`` holds one state and reads an injected clock.  A half-open probe that never
reports back (its task was cancelled) expires after one cool-down, so a breaker cannot stick.
``BreakerBoard`` keeps one breaker per endpoint and one per payer and exposes their states for
metrics and readiness.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerPhase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    reset_seconds: float = 30.0  # how long it stays open before one probe is let through


@dataclass(frozen=True, slots=True)
class BreakerState:
    phase: BreakerPhase = BreakerPhase.CLOSED
    failures: int = 0  # consecutive, while closed
    opened_at: float | None = None
    probe_started_at: float | None = None  # a half-open probe in flight
    times_opened: int = 0


# --- pure transitions -------------------------------------------------------------------------------


def current(state: BreakerState, config: BreakerConfig, now: float) -> BreakerState:
    """The state as time has moved it: OPEN becomes HALF_OPEN once the cool-down is over."""
    opened = state.opened_at
    if state.phase is BreakerPhase.OPEN and opened is not None and now - opened >= config.reset_seconds:
        return replace(state, phase=BreakerPhase.HALF_OPEN, probe_started_at=None)
    return state


def admit(state: BreakerState, config: BreakerConfig, now: float) -> tuple[bool, BreakerState]:
    """May a call go out now?  In HALF_OPEN only one probe at a time (a stale probe is replaced)."""
    state = current(state, config, now)
    if state.phase is BreakerPhase.CLOSED:
        return True, state
    if state.phase is BreakerPhase.OPEN:
        return False, state
    probe = state.probe_started_at
    if probe is None or now - probe >= config.reset_seconds:
        return True, replace(state, probe_started_at=now)
    return False, state


def on_success(state: BreakerState) -> BreakerState:
    """Any success closes the breaker and forgets past failures."""
    return replace(state, phase=BreakerPhase.CLOSED, failures=0, opened_at=None, probe_started_at=None)


def on_failure(state: BreakerState, config: BreakerConfig, now: float) -> BreakerState:
    """A failure counts while closed, opens at the threshold, and re-opens a half-open breaker."""
    state = current(state, config, now)
    if state.phase is BreakerPhase.HALF_OPEN:
        return _open(state, now)
    if state.phase is BreakerPhase.OPEN:
        return state  # a late report from a call admitted before the breaker opened
    failures = state.failures + 1
    if failures >= config.failure_threshold:
        return _open(replace(state, failures=failures), now)
    return replace(state, failures=failures)


def retry_in(state: BreakerState, config: BreakerConfig, now: float) -> float:
    """Seconds until an open breaker lets a probe through (0 when it would now)."""
    if state.phase is BreakerPhase.OPEN and state.opened_at is not None:
        return max(config.reset_seconds - (now - state.opened_at), 0.0)
    if state.phase is BreakerPhase.HALF_OPEN and state.probe_started_at is not None:
        return max(config.reset_seconds - (now - state.probe_started_at), 0.0)
    return 0.0


def _open(state: BreakerState, now: float) -> BreakerState:
    return replace(
        state,
        phase=BreakerPhase.OPEN,
        opened_at=now,
        probe_started_at=None,
        times_opened=state.times_opened + 1,
    )


# --- holders -----------------------------------------------------------------------------------------


class CircuitBreaker:
    """One breaker: the pure machine above plus its current state and a clock."""

    def __init__(self, config: BreakerConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._state = BreakerState()

    @property
    def state(self) -> BreakerState:
        return current(self._state, self.config, self._clock())

    @property
    def phase(self) -> BreakerPhase:
        return self.state.phase

    def allow(self) -> bool:
        """True if a call may go out now (and, when half-open, mark it as the probe)."""
        allowed, self._state = admit(self._state, self.config, self._clock())
        return allowed

    def record_success(self) -> None:
        self._state = on_success(self._state)

    def record_failure(self) -> None:
        self._state = on_failure(self._state, self.config, self._clock())

    def retry_in(self) -> float:
        return retry_in(self.state, self.config, self._clock())


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A breaker as metrics and readiness see it."""

    scope: str  # "endpoint" or "payer"
    key: str  # endpoint name or payer ID
    phase: BreakerPhase
    consecutive_failures: int
    times_opened: int
    retry_in_seconds: float


class BreakerBoard:
    """Breakers by endpoint and by payer, created on first use with their scope's config."""

    def __init__(
        self,
        *,
        endpoint: BreakerConfig,
        payer: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configs = {"endpoint": endpoint, "payer": payer}
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, scope: str, key: str) -> CircuitBreaker:
        breaker = self._breakers.get((scope, key))
        if breaker is None:
            breaker = CircuitBreaker(self._configs[scope], clock=self._clock)
            self._breakers[(scope, key)] = breaker
        return breaker

    def endpoint(self, name: str) -> CircuitBreaker:
        return self.get("endpoint", name)

    def payer(self, payer_id: str) -> CircuitBreaker:
        return self.get("payer", payer_id)

    def snapshot(self) -> list[BreakerView]:
        """Every breaker's state now, for the metrics collector and ``/readyz``."""
        views = []
        for (scope, key), breaker in sorted(self._breakers.items()):
            state = breaker.state
            views.append(BreakerView(scope, key, state.phase, state.failures, state.times_opened, breaker.retry_in()))
        return views

    def open_endpoints(self) -> list[str]:
        """Endpoints whose breaker is not closed: readiness reports the service degraded."""
        return [v.key for v in self.snapshot() if v.scope == "endpoint" and v.phase is not BreakerPhase.CLOSED]
