"""Every Prometheus metric of the service, named once, on a registry the caller owns.

The app builds one ``Metrics`` per process; tests build their own on a fresh ``CollectorRegistry``.
Labels never carry patient data and every label set is bounded: routes are templates
(``/v1/eligibility/{check_id}``, never a raw path), methods and codes are closed sets, and payer
ids (configuration, but they arrive in requests) are cut off at ``max_payers`` distinct values,
after which they count as ``"other"``.

    eligibility_http_requests_total{route,method,status}        eligibility_http_request_duration_seconds{route,method}
    eligibility_checks_total{status,source}                      eligibility_checks_in_flight
    eligibility_cache_lookups_total{result}                      eligibility_cache_available
    eligibility_redis_errors_total{operation}
    eligibility_clearinghouse_request_duration_seconds{payer,outcome}
    eligibility_clearinghouse_retries_total{payer,reason}        eligibility_circuit_breaker_state{kind,name}
    eligibility_aaa_errors_total{code,location}                  eligibility_x12_validation_findings_total{severity}
    eligibility_outbox_backlog                                   eligibility_outbox_dead_letters_total
    eligibility_batch_items_total{outcome}                       eligibility_batch_items_pending
    eligibility_check_duration_seconds{source}                   eligibility_batch_deadline_timestamp_seconds
    eligibility_batch_last_success_timestamp_seconds
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Generic, Literal, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics import MetricWrapperBase

from eligibility_svc.core_build import core_kind

NAMESPACE = "eligibility"
OTHER = "other"

CacheResult = Literal["hit", "miss", "reuse", "stale", "bypass"]
CheckSource = Literal["cache", "reuse", "fresh"]
BreakerState = Literal["closed", "half_open", "open"]
BreakerKind = Literal["endpoint", "payer"]
Severity = Literal["error", "warning", "info"]

_BREAKER_VALUES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CODE = re.compile(r"^[A-Z0-9]{1,3}$")  # AAA03 codes are two characters
_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

# Seconds.  HTTP: a cached answer takes about a millisecond; a payer, up to the CORE 20 s deadline.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
_PAYER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0, 30.0)


class BoundedLabel:
    """Passes through the first ``limit`` distinct well-formed values, then answers ``"other"``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit or not _NAME.fullmatch(value):
            return OTHER
        self._seen.add(value)
        return value


M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """A labelled metric's children by label values, each resolved once: ``labels()`` checks the values
    and takes the metric's lock on every call, which the hot path (a cached check) need not pay.

    Holds exactly the children the metric itself keeps (it never forgets one either), so it is as
    bounded as the label values the callers pass, which they bound."""

    __slots__ = ("_bound", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._bound: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._bound.get(values)
        if child is None:
            child = self._bound[values] = self._metric.labels(*values)
        return child


class Metrics:
    """The service's metrics on ``registry`` (a fresh one when not given)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_payers: int = 500) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._payer = BoundedLabel(max_payers)
        self._define_http_and_checks()
        self._define_payer_side()
        self._define_background()
        self._define_build()
        self._bind_hot_path()

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

    def _histogram(self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, labels, namespace=NAMESPACE, registry=self.registry, buckets=buckets)

    def _define_http_and_checks(self) -> None:
        self.http_requests = self._counter("http_requests", "HTTP requests answered", ("route", "method", "status"))
        self.http_duration = self._histogram(
            "http_request_duration_seconds", "HTTP request latency", ("route", "method"), _HTTP_BUCKETS
        )
        self.checks = self._counter("checks", "Eligibility checks answered", ("status", "source"))
        self.checks_in_flight = self._gauge("checks_in_flight", "Eligibility checks being answered now")
        self.cache_lookups = self._counter("cache_lookups", "Cache lookups by result", ("result",))
        self.cache_available = self._gauge("cache_available", "1 when the last Redis call succeeded")
        self.redis_errors = self._counter("redis_errors", "Redis calls that failed or timed out", ("operation",))

    def _define_payer_side(self) -> None:
        self.clearinghouse_duration = self._histogram(
            "clearinghouse_request_duration_seconds",
            "Clearinghouse round trips by payer and outcome",
            ("payer", "outcome"),
            _PAYER_BUCKETS,
        )
        self.retries = self._counter("clearinghouse_retries", "Clearinghouse attempts retried", ("payer", "reason"))
        self.breaker_state = self._gauge(
            "circuit_breaker_state", "Circuit breakers: 0 closed, 1 half-open, 2 open", ("kind", "name")
        )
        self.aaa_errors = self._counter("aaa_errors", "Payer AAA rejections by code", ("code", "location"))
        self.x12_findings = self._counter(
            "x12_validation_findings", "Implementation-guide findings in 271s", ("severity",)
        )

    def _define_build(self) -> None:
        self.x12_core = self._gauge(
            "x12_core", "1 on how this process runs the X12 core: compiled (mypyc), pure (Python) or mixed", ("kind",)
        )
        self.x12_core.labels(core_kind()).set(1)

    def _define_background(self) -> None:
        self.outbox_backlog = self._gauge("outbox_backlog", "athenaNet write-backs waiting")
        self.outbox_dead_letters = self._counter("outbox_dead_letters", "athenaNet write-backs given up")
        self.batch_items = self._counter("batch_items", "Batch items finished by outcome", ("outcome",))
        self.batch_items_pending = self._gauge("batch_items_pending", "Batch items not finished yet")
        self.batch_deadline = self._gauge(
            "batch_deadline_timestamp_seconds", "When the earliest running batch must be done (0: none has one)"
        )
        self.batch_last_success = self._gauge(
            "batch_last_success_timestamp_seconds", "When the last batch finished with answers (0: none known)"
        )
        # Check latency by where the answer came from (cache, reuse, fresh): a bounded, closed label.
        self.check_duration = self._histogram(
            "check_duration_seconds", "Eligibility check latency by answer source", ("source",), _HTTP_BUCKETS
        )

    def _bind_hot_path(self) -> None:
        """Children resolved once for what every request records (see ``Children``)."""
        self._http_requests = Children(self.http_requests)
        self._http_duration = Children(self.http_duration)
        self._checks = Children(self.checks)
        self._check_duration = Children(self.check_duration)
        self._cache_lookups = Children(self.cache_lookups)

    # --- recording helpers: they bound the label values -------------------------------------------

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else OTHER
        self._http_requests(route, method, str(status)).inc()
        self._http_duration(route, method).observe(seconds)

    def count_check(self, status: str, source: CheckSource) -> None:
        self._checks(status, source).inc()

    def observe_check(self, source: CheckSource, seconds: float) -> None:
        self._check_duration(source).observe(seconds)

    def count_cache(self, result: CacheResult) -> None:
        self._cache_lookups(result).inc()

    def redis_error(self, operation: str, error: BaseException) -> None:
        """The ``cache.ErrorHook`` the app hands to ``RedisGate``."""
        self.redis_errors.labels(operation if _NAME.fullmatch(operation) else OTHER).inc()

    def set_cache_available(self, available: bool) -> None:
        self.cache_available.set(1 if available else 0)

    def observe_clearinghouse(self, payer: str, outcome: str, seconds: float) -> None:
        """``outcome``: ``"ok"`` or the error code's last part (``"timeout"``, ``"rejected"`` ...)."""
        self.clearinghouse_duration.labels(self._payer(payer), outcome).observe(seconds)

    def count_retry(self, payer: str, reason: str) -> None:
        self.retries.labels(self._payer(payer), reason).inc()

    def set_breaker(self, kind: BreakerKind, name: str, state: BreakerState) -> None:
        label = self._payer(name) if kind == "payer" else name
        self.breaker_state.labels(kind, label).set(_BREAKER_VALUES[state])

    def count_aaa(self, code: str, location: str) -> None:
        self.aaa_errors.labels(code if _CODE.fullmatch(code) else OTHER, location).inc()

    def count_findings(self, severity: Severity, count: int = 1) -> None:
        self.x12_findings.labels(severity).inc(count)


# --- aiohttp ----------------------------------------------------------------------------------------


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``GET /metrics``: the registry in the text format Prometheus asked for (OpenMetrics or 0.0.4)."""

    async def handle(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    return handle


def route_template(request: web.Request) -> str:
    """The matched route's template (``/v1/eligibility/{check_id}``), or ``"unmatched"``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def http_metrics_middleware(metrics: Metrics) -> Middleware:
    """Counts and times every request; install it outermost so it sees the final status."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500  # an exception no inner middleware turned into a response
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's code for it)
            raise
        finally:
            metrics.observe_http(route_template(request), request.method, status, time.perf_counter() - started)

    return record
