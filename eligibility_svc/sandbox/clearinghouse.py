"""A CAQH CORE clearinghouse simulator: both real-time envelopes, strict checks, scenario-driven 271s.

::

    POST /core/mime       CORE HTTP MIME multipart (multipart/form-data)
    POST /core/soap       CORE SOAP 1.2 + WS-Security UsernameToken
    GET  /healthz         {"status": "ok", "scenarios": n}
    GET  /admin/config    the configuration (password masked)           ┐ when config.admin
    PUT  /admin/config    {"default": PayerBehavior, "payers": {...},    │ (tests, benchmarks)
                           "member_ranges": [MemberRange, ...]}         │
    POST /admin/reset     forget request counts and captured requests    │
    GET  /admin/requests  what was received, field by field (no passwords)┘

A request goes through what a strict server checks, in order, and the first problem is answered
with the CORE error code and a message (never a crash):

1. the envelope itself: ``multipart/form-data`` with each field once (MIME); SOAP 1.2 XML, the
   ``COREEnvelopeRealTimeRequest`` operation, a WS-Security UsernameToken (SOAP faults otherwise);
2. credentials (``UnAuthorized``, HTTP 401);
3. every required field present and acceptable (``<Field>Required`` / ``<Field>Illegal`` /
   ``VersionMismatch``; HTTP 400 for MIME, a normal SOAP response carrying the ErrorCode for SOAP);
4. the payload: not X12 at all → ``PayloadIllegal``; a broken 270 → a 999; otherwise the payer's
   answer (``ch_payer``), subject to the payer's latency and faults (``ch_config``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import random
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from eligibility_svc.clearinghouse import core_soap
from eligibility_svc.clearinghouse.core_mime import decode_form, encode_form
from eligibility_svc.clearinghouse.envelope import core_timestamp
from eligibility_svc.clearinghouse.transport import (
    CORE_RULE_VERSION,
    ERROR_CODE_SUCCESS,
    PAYLOAD_TYPE_271,
    PAYLOAD_TYPE_999,
    PAYLOAD_TYPE_ENVELOPE_ERROR,
    PROCESSING_MODE_REAL_TIME,
)
from eligibility_svc.sandbox.ch_config import (
    Fault,
    FaultKind,
    MemberRange,
    PayerBehavior,
    SandboxClearinghouseConfig,
)
from eligibility_svc.sandbox.ch_envelope import Credentials, EnvelopeProblem, check_credentials, check_fields
from eligibility_svc.sandbox.ch_payer import (
    AaaAnswer,
    Scenario,
    Unreadable,
    answer_from_scenario,
    answer_with_aaa,
    find,
    load_scenarios,
    malform,
    member_id_rejection,
    read_inquiry,
    reject_999,
    truncate,
)
from eligibility_svc.settings import get_settings
from eligibility_svc.x12.parse270 import Inquiry270

log = logging.getLogger(__name__)

MIME_PATH = "/core/mime"
SOAP_PATH = "/core/soap"
_MAX_BODY = 4 * 1024 * 1024


# --- state -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """One request as received (the password replaced by ``***``), for tests and debugging."""

    envelope: str  # "core_mime" or "core_soap"
    content_type: str
    fields: list[tuple[str, str]]
    soap: dict[str, Any]  # SOAP only: envelope namespace, body element, UsernameToken facts
    http_status: int
    error_code: str
    payer_id: str | None


@dataclass(slots=True)
class SandboxState:
    """Everything the running sandbox knows; one per app."""

    config: SandboxClearinghouseConfig
    scenarios: list[Scenario]
    counts: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)  # requests being answered now, per payer
    peak_in_flight: dict[str, int] = field(default_factory=dict)  # the most at once since the last reset
    captured: deque[CapturedRequest] = field(default_factory=deque)
    rng: random.Random = field(default_factory=random.Random)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _controls: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_control(self) -> int:
        return (next(self._controls) - 1) % 999_999_999 + 1

    def count(self, payer_id: str) -> int:
        """This request's number among the payer's requests (1-based)."""
        self.counts[payer_id] = self.counts.get(payer_id, 0) + 1
        return self.counts[payer_id]

    def capture(self, request: CapturedRequest) -> None:
        if self.config.max_captured:
            self.captured.append(request)
            while len(self.captured) > self.config.max_captured:
                self.captured.popleft()

    def reset(self) -> None:
        self.counts.clear()
        self.captured.clear()
        self.peak_in_flight.clear()

    def enter(self, payer_id: str) -> None:
        now = self.in_flight[payer_id] = self.in_flight.get(payer_id, 0) + 1
        self.peak_in_flight[payer_id] = max(self.peak_in_flight.get(payer_id, 0), now)

    def leave(self, payer_id: str) -> None:
        self.in_flight[payer_id] -= 1


STATE = web.AppKey("sandbox_clearinghouse", SandboxState)


def new_state(config: SandboxClearinghouseConfig) -> SandboxState:
    return SandboxState(config, load_scenarios(config.fixtures_dir), rng=random.Random(config.seed))


# --- faults and latency (pure) ---------------------------------------------------------------------


def pick_fault(behavior: PayerBehavior, number: int, draw: float) -> Fault | None:
    """The first fault that applies to the payer's request ``number``; ``draw`` is uniform in [0, 1)."""
    for fault in behavior.faults:
        if (fault.first is None or number <= fault.first) and draw < fault.probability:
            return fault
    return None


def latency_seconds(behavior: PayerBehavior, draw: float) -> float:
    return (behavior.latency.fixed_ms + behavior.latency.jitter_ms * draw) / 1000.0


# --- what to answer (envelope-agnostic) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    http_status: int
    error_code: str
    error_message: str
    payload_type: str
    payload: str = ""
    retry_after: str | None = None
    payer_id: str | None = None


_UNANSWERED = Outcome(0, "", "no answer: the client went away first", PAYLOAD_TYPE_ENVELOPE_ERROR)


def _problem(problem: EnvelopeProblem) -> Outcome:
    return Outcome(problem.http_status, problem.code, problem.message, PAYLOAD_TYPE_ENVELOPE_ERROR)


async def process(state: SandboxState, payload: str) -> Outcome:
    """The answer to a request whose envelope passed every check."""
    control, now = state.next_control(), dt.datetime.now(dt.UTC)
    read = read_inquiry(payload, control, now)
    if isinstance(read, Unreadable):
        if read.ack is not None:
            return Outcome(200, ERROR_CODE_SUCCESS, "", PAYLOAD_TYPE_999, read.ack)
        message = f"the Payload is not a readable 270: {read.message}"
        return Outcome(400, "PayloadIllegal", message, PAYLOAD_TYPE_ENVELOPE_ERROR)
    payer_id = read.source.id
    behavior = state.config.behavior(payer_id)
    fault = pick_fault(behavior, state.count(payer_id), state.rng.random())
    state.enter(payer_id)
    try:
        await asyncio.sleep(latency_seconds(behavior, state.rng.random()))
        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            await _hang(state, fault.hang_seconds)
        outcome = _early_fault(fault) or _answer(state, read, fault, control)
    finally:
        state.leave(payer_id)
    return replace(outcome, payer_id=payer_id)


async def _hang(state: SandboxState, seconds: float) -> None:
    """Hold the request (a payer that never answers); end early when the sandbox shuts down."""
    try:
        await asyncio.wait_for(state.stopping.wait(), seconds)
    except TimeoutError:
        return


def _early_fault(fault: Fault | None) -> Outcome | None:
    if fault is None:
        return None
    if fault.kind is FaultKind.HTTP_5XX:
        message = "the clearinghouse could not reach the payer (simulated failure)"
        return Outcome(fault.status, "ServerError", message, PAYLOAD_TYPE_ENVELOPE_ERROR)
    if fault.kind is FaultKind.RATE_LIMIT:
        message = f"too many requests for this payer; retry after {fault.retry_after_seconds:g} s"
        retry_after = f"{fault.retry_after_seconds:g}"
        return Outcome(429, "RateLimitExceeded", message, PAYLOAD_TYPE_ENVELOPE_ERROR, retry_after=retry_after)
    return None


def _answer(state: SandboxState, inquiry: Inquiry270, fault: Fault | None, control: int) -> Outcome:
    now = dt.datetime.now(dt.UTC)
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.REJECT_999:
        ack = reject_999(inquiry, member_id_rejection(inquiry), control, now)
        return Outcome(200, ERROR_CODE_SUCCESS, "", PAYLOAD_TYPE_999, ack)
    if fault is not None and kind is FaultKind.AAA_42:
        x12 = answer_with_aaa(inquiry, AaaAnswer("2100A", fault.aaa_reason, fault.follow_up), control, now)
    else:
        x12 = _payer_answer(state, inquiry, control, now)
    if kind is FaultKind.TRUNCATED_271:
        x12 = truncate(x12)
    elif kind is FaultKind.MALFORMED_271:
        x12 = malform(x12)
    payload_type = fault.payload_type if fault is not None and kind is FaultKind.WRONG_PAYLOAD_TYPE else None
    return Outcome(200, ERROR_CODE_SUCCESS, "", payload_type or PAYLOAD_TYPE_271, x12)


def _payer_answer(state: SandboxState, inquiry: Inquiry270, control: int, now: dt.datetime) -> str:
    match = find(inquiry, state.scenarios, state.config.member_ranges)
    if match.scenario is not None:
        return answer_from_scenario(match.scenario, inquiry, control, now)
    assert match.aaa is not None
    return answer_with_aaa(inquiry, match.aaa, control, now)


def response_fields(
    outcome: Outcome, request: Mapping[str, str], config: SandboxClearinghouseConfig
) -> list[tuple[str, str]]:
    """The response envelope's fields (the rule's order), echoing the request's PayloadID."""
    fields = [
        ("PayloadType", outcome.payload_type),
        ("ProcessingMode", PROCESSING_MODE_REAL_TIME),
        ("PayloadID", request.get("PayloadID") or str(uuid.uuid4())),
        ("TimeStamp", core_timestamp()),
        ("SenderID", config.receiver_id),
        ("ReceiverID", request.get("SenderID", "")),
        ("CORERuleVersion", CORE_RULE_VERSION),
    ]
    if outcome.payload:
        fields.append(("Payload", outcome.payload))
    fields += [("ErrorCode", outcome.error_code), ("ErrorMessage", outcome.error_message)]
    return fields


# --- MIME ------------------------------------------------------------------------------------------


async def mime_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    content_type = request.headers.get("Content-Type", "")
    parts = decode_form(content_type, await request.read())
    values = dict(parts or [])
    outcome = _UNANSWERED
    try:
        if parts is None:
            outcome = _problem(EnvelopeProblem("PayloadTypeRequired", "the request is not multipart/form-data"))
        else:
            problem = check_fields(parts, state.config, credentials=None)
            outcome = _problem(problem) if problem else await process(state, values.get("Payload", ""))
    finally:  # a request we never answered (the client gave up on a hang) is captured too
        fields = _masked(parts or [])
        state.capture(
            CapturedRequest(
                "core_mime", content_type, fields, {}, outcome.http_status, outcome.error_code, outcome.payer_id
            )
        )
    content, body = encode_form(response_fields(outcome, values, state.config))
    headers = {"Content-Type": content}
    if outcome.retry_after is not None:
        headers["Retry-After"] = outcome.retry_after
    return web.Response(status=outcome.http_status, body=body, headers=headers)


def _masked(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, "***" if name == "Password" else value) for name, value in fields]


# --- SOAP ------------------------------------------------------------------------------------------

SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"


async def soap_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    content_type = request.headers.get("Content-Type", "")
    message = core_soap.read_envelope(await request.read())
    facts = {
        "envelope_ns": message.envelope_ns,
        "body_element": message.body_element,
        "has_security": message.has_security,
        "username": message.username,
        "password_type": message.password_type,
        "must_understand": message.must_understand,
    }
    fault = _soap_fault(content_type, message, state.config)
    if fault is not None:
        status, code, subcode, reason = fault
        state.capture(
            CapturedRequest("core_soap", content_type, list(message.fields.items()), facts, status, code, None)
        )
        return _soap_reply(status, core_soap.build_fault(code, reason, subcode=subcode))
    problem = check_fields(
        [*message.fields.items(), *((name, "") for name in message.repeated)],
        state.config,
        credentials=Credentials(message.username, message.password),
    )
    outcome, status = _UNANSWERED, 0
    try:
        outcome = _problem(problem) if problem else await process(state, message.fields.get("Payload", ""))
        # Envelope-level problems travel in a normal response (HTTP 200) as ErrorCode; HTTP errors stay.
        status = outcome.http_status if outcome.http_status >= 429 else 200
    finally:
        fields = list(message.fields.items())
        state.capture(
            CapturedRequest("core_soap", content_type, fields, facts, status, outcome.error_code, outcome.payer_id)
        )
    reply = _soap_reply(status, core_soap.build_response(response_fields(outcome, message.fields, state.config)))
    if outcome.retry_after is not None:
        reply.headers["Retry-After"] = outcome.retry_after
    return reply


_Fault = tuple[int, str, str | None, str]  # HTTP status, fault code, subcode, reason


def _soap_fault(content_type: str, message: core_soap.SoapMessage, config: SandboxClearinghouseConfig) -> _Fault | None:
    """What is wrong below the CORE envelope (SOAP itself, then WS-Security), or None."""
    return _envelope_fault(content_type, message) or _security_fault(message, config)


def _envelope_fault(content_type: str, message: core_soap.SoapMessage) -> _Fault | None:
    if not content_type.lower().startswith("application/soap+xml"):
        return 415, "Sender", None, f"SOAP 1.2 needs Content-Type application/soap+xml, not {content_type!r}"
    if message.problem is not None:
        return 400, "Sender", None, message.problem
    if message.envelope_ns != core_soap.SOAP12_NS:
        return 400, "VersionMismatch", None, "this endpoint speaks SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope)"
    if message.body_element != f"{{{core_soap.CORE_NS}}}{core_soap.REQUEST_ELEMENT}":
        return 400, "Sender", None, f"expected {core_soap.REQUEST_ELEMENT} in {core_soap.CORE_NS}"
    return None


def _security_fault(message: core_soap.SoapMessage, config: SandboxClearinghouseConfig) -> _Fault | None:
    if message.username is None or message.password is None:
        return (
            400,
            "Sender",
            "wsse:InvalidSecurity",
            "a WS-Security UsernameToken with Username and Password is required",
        )
    if message.password_type not in (None, core_soap.PASSWORD_TEXT):
        return 400, "Sender", "wsse:UnsupportedSecurityToken", "only PasswordText UsernameTokens are accepted"
    if check_credentials(Credentials(message.username, message.password), config) is not None:
        return 401, "Sender", "wsse:FailedAuthentication", "the security token could not be authenticated"
    return None


def _soap_reply(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": SOAP_CONTENT_TYPE})


# --- health and admin ------------------------------------------------------------------------------


class BehaviorUpdate(BaseModel):
    """``PUT /admin/config``: replace the default and/or per-payer behavior, and/or the member ranges
    (counts start over)."""

    model_config = ConfigDict(extra="forbid")

    default: PayerBehavior | None = None
    payers: dict[str, PayerBehavior] | None = None
    member_ranges: list[MemberRange] | None = None


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok", "scenarios": len(request.app[STATE].scenarios)})


async def get_config(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE].config.model_dump(mode="json"))


async def put_config(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        update = BehaviorUpdate.model_validate_json(await request.read())
    except ValidationError as exc:
        return web.json_response({"error": exc.errors(include_url=False, include_input=False)}, status=400)
    unknown = sorted({r.scenario for r in update.member_ranges or ()} - {s.name for s in state.scenarios})
    if unknown:
        message = f"member_ranges name scenarios this sandbox does not have: {', '.join(unknown)}"
        return web.json_response({"error": message}, status=400)
    changes = {name: value for name, value in update if value is not None}
    state.config = state.config.model_copy(update=changes)
    state.reset()
    return web.json_response(state.config.model_dump(mode="json"))


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[STATE].reset()
    return web.json_response({"status": "reset"})


async def captured(request: web.Request) -> web.StreamResponse:
    return web.json_response([asdict(item) for item in request.app[STATE].captured])


# --- app and runner --------------------------------------------------------------------------------


@web.middleware
async def _never_crash(request: web.Request, handler: Any) -> web.StreamResponse:
    """An unexpected exception is a CORE error envelope (HTTP 500), not a stack trace or a dropped socket."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("sandbox clearinghouse: unexpected failure answering %s", request.path)
        outcome = Outcome(500, "ServerError", "the sandbox failed unexpectedly", PAYLOAD_TYPE_ENVELOPE_ERROR)
        if request.path == SOAP_PATH:
            return _soap_reply(500, core_soap.build_fault("Receiver", outcome.error_message))
        content, body = encode_form(response_fields(outcome, {}, request.app[STATE].config))
        return web.Response(status=500, body=body, headers={"Content-Type": content})
    return response


def create_app(config: SandboxClearinghouseConfig) -> web.Application:
    """The sandbox as an aiohttp app (mount it, or run it with ``start_sandbox_clearinghouse``)."""
    app = web.Application(middlewares=[_never_crash], client_max_size=_MAX_BODY)
    state = new_state(config)
    app[STATE] = state
    app.router.add_post(MIME_PATH, mime_endpoint)
    app.router.add_post(SOAP_PATH, soap_endpoint)
    app.router.add_get("/healthz", health)
    if config.admin:
        app.router.add_get("/admin/config", get_config)
        app.router.add_put("/admin/config", put_config)
        app.router.add_post("/admin/reset", reset)
        app.router.add_get("/admin/requests", captured)

    async def _stop_hanging(app: web.Application) -> None:
        app[STATE].stopping.set()

    app.on_shutdown.append(_stop_hanging)
    return app


@dataclass(slots=True)
class RunningSandbox:
    """A sandbox listening on a real socket.  ``await close()`` when done."""

    runner: web.AppRunner
    host: str
    port: int
    scheme: str
    state: SandboxState

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def mime_url(self) -> str:
        return self.base_url + MIME_PATH

    @property
    def soap_url(self) -> str:
        return self.base_url + SOAP_PATH

    async def close(self) -> None:
        self.state.stopping.set()
        await self.runner.cleanup()


async def start_sandbox_clearinghouse(
    config: SandboxClearinghouseConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: Any = None,
) -> RunningSandbox:
    """Serve the sandbox on ``host:port`` (0: a free port) in this event loop, over TLS if given a context."""
    app = create_app(config)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]
    return RunningSandbox(runner, host, int(bound), "https" if ssl_context else "http", app[STATE])


def run_sandbox_clearinghouse(port: int = 8081, host: str = "127.0.0.1") -> None:
    """``eligibility-svc sandbox clearinghouse --port P``: serve until interrupted."""
    config = SandboxClearinghouseConfig.from_settings(get_settings())
    print(
        f"sandbox clearinghouse on http://{host}:{port}  (MIME {MIME_PATH}, SOAP {SOAP_PATH}; "
        f"user {config.username!r}, receiver {config.receiver_id!r})"
    )
    web.run_app(create_app(config), host=host, port=port, print=None, handler_cancellation=True, shutdown_timeout=2.0)
