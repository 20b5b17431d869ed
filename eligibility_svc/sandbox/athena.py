"""An athenaNet simulator: OAuth2 token endpoint, patients, insurances, packages, booked appointments.

::

    POST   /oauth2/v1/token                                   client credentials (Basic, form), rate-limited
    GET    /v1/{practiceid}/patients/{patientid}              [patient]; showinsurance=true adds insurances[]
    GET    /v1/{practiceid}/patients/{patientid}/insurances   {"insurances": [...], "totalcount": n}
    POST   /v1/{practiceid}/patients/{patientid}/insurances   [insurance]; 409 when a policy holds the sequence
    PUT    /v1/{practiceid}/patients/{patientid}/insurances   update the policy at sequencenumber
    PUT    /v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}      {"success": true}
    DELETE /v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}      cancellationnote ≤ 400
    GET    /v1/{practiceid}/insurancepackages                 by insuranceplanname (≤ 15)
    GET    /v1/{practiceid}/misc/topinsurancepackages         package ids as strings, as athenaNet does
    GET    /v1/{practiceid}/appointments/booked               paged: limit, offset, next, previous, totalcount
    GET    /healthz
    GET|PUT /admin/faults, POST /admin/expire-tokens, POST /admin/reset, GET /admin/stats,
    PUT    /admin/patients/{patientid}                        (tests: JSON; not athenaNet's API)

What it holds to, from ``shared/reference/athenanet.md``: POST/PUT bodies are form-encoded only (JSON
or multipart is a 400), dates ``mm/dd/yyyy`` (anything else: "Expecting format date, but value is
..."), IDs as strings, booleans as strings in older fields, error bodies ``{"error", "detailedmessage"}``
(``missingfields`` when required fields are missing), 401 for a missing, unknown or expired token,
404 for an unknown practice or patient, the 409 rule, a primary before a secondary, the package
fixed once created (change it with DELETE + POST), and the token endpoint's limit per window (5 a
minute, as preview) answered with 429 beyond it.

Faults (``AthenaFaults``, at start or through ``PUT /admin/faults``): the next N API calls answer
429 (with ``Retry-After``) or 503 (no JSON body, as a gateway would), writes take ``write_delay``
seconds (a client that goes away cancels the write), tokens may be expired at once.  Counters:
writes per patient by method (``GET /admin/stats``), for exactly-once assertions.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import logging
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from eligibility_svc.sandbox.athena_seed import (
    PRACTICE_ID,
    Package,
    PatientRecord,
    Policy,
    Practice,
    practice_settings,
    seed_practice,
)
from eligibility_svc.settings import DEFAULT_FIXTURES, AthenaSettings, Settings, get_settings

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/v1/token"  # noqa: S105 (a path, not a password)
SCOPE = "athena/service/Athenanet.MDP.*"
FORM = "application/x-www-form-urlencoded"
CONFLICT = "An existing insurance package exists. Use PUT to update or DELETE to deactivate."
RELATIONSHIPS = frozenset({1, 2, 3, 4, 12, 13, 18, 19, 26})
_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_DATE_FIELDS = ("issuedate", "expirationdate", "insurancepolicyholderdob")
_LENGTHS = {"insurancepolicyholderfirstname": 20, "insurancepolicyholderlastname": 30, "insuranceidnumber": 40}
_MAX_LIMIT = 10_000


class AthenaFaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_limit_next: Annotated[int, Field(ge=0)] = 0  # the next N API calls answer 429
    retry_after_seconds: Annotated[float, Field(ge=0)] = 1.0
    unavailable_next: Annotated[int, Field(ge=0)] = 0  # the next N API calls answer 5xx (no JSON body)
    unavailable_status: Annotated[int, Field(ge=500, le=599)] = 503
    write_delay_seconds: Annotated[float, Field(ge=0)] = 0.0  # slow POST/PUT/DELETE (preview takes ~20 s)
    refuse_tokens: bool = False  # every API call answers 401, even with a token just issued
    methods: list[str] | None = None  # the methods 429/503 hit; None: every method


class SandboxAthenaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = "sandbox-client"
    client_secret: SecretStr = SecretStr("sandbox-not-secret")
    practice_id: str = PRACTICE_ID
    token_lifetime_seconds: Annotated[float, Field(gt=0)] = 3600.0
    token_requests_per_window: Annotated[int, Field(ge=1)] = 5
    token_window_seconds: Annotated[float, Field(gt=0)] = 60.0
    expires_in_as_string: bool = True  # "3600", as some responses carry it (False: a number)
    fixtures_dir: Path = DEFAULT_FIXTURES
    faults: AthenaFaults = Field(default_factory=AthenaFaults)
    admin: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxAthenaConfig:
        box = settings.athena.sandbox
        return cls(
            client_id=box.client_id,
            client_secret=box.client_secret,
            practice_id=box.practice_id,
            token_lifetime_seconds=box.token_lifetime_seconds,
            token_requests_per_window=box.token_requests_per_minute,
            fixtures_dir=settings.sandbox.fixtures_dir,
        )


# --- state -----------------------------------------------------------------------------------------


@dataclass
class SandboxAthenaState:
    config: SandboxAthenaConfig
    practice: Practice
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (monotonic)
    grants: deque[float] = field(default_factory=deque)  # token grant times in the window
    grant_log: list[float] = field(default_factory=list)  # every grant (monotonic), for tests
    token_refusals: int = 0
    writes: dict[str, Counter[str]] = field(default_factory=dict)  # patientid → method → count
    calls: Counter[str] = field(default_factory=Counter)  # "GET /v1/{practiceid}/..." → count

    def count_write(self, patient_id: str, method: str) -> None:
        self.writes.setdefault(patient_id, Counter())[method] += 1

    def writes_for(self, patient_id: str) -> int:
        return sum(self.writes.get(patient_id, Counter()).values())

    def reset(self) -> None:
        self.practice = seed_practice(_fixtures(self.config), self.config.practice_id)
        self.tokens.clear()
        self.grants.clear()
        self.grant_log.clear()
        self.token_refusals = 0
        self.writes.clear()
        self.calls.clear()


def _fixtures(config: SandboxAthenaConfig) -> Path:
    return config.fixtures_dir


def new_state(config: SandboxAthenaConfig) -> SandboxAthenaState:
    return SandboxAthenaState(config, seed_practice(_fixtures(config), config.practice_id))


STATE = web.AppKey("sandbox_athena", SandboxAthenaState)
Handler = Callable[[web.Request, SandboxAthenaState], Awaitable[web.StreamResponse]]


def athena_error(
    status: int,
    error: str,
    detailed: str | None = None,
    *,
    missing: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """athenaNet's error body: ``{"error", "detailedmessage"}`` (and ``missingfields``)."""
    body: dict[str, Any] = {"error": error}
    if detailed:
        body["detailedmessage"] = detailed
    if missing:
        body["missingfields"] = missing
    return web.json_response(body, status=status, headers=headers)


# --- token endpoint ----------------------------------------------------------------------------------


async def token_endpoint(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    if not request.content_type.startswith(FORM):
        return athena_error(400, "invalid_request", "the token request must be form-encoded")
    if not _client_ok(request, config):
        return athena_error(401, "invalid_client", "client authentication failed")
    form = dict(parse_qsl(await request.text(), keep_blank_values=True))
    if form.get("grant_type") != "client_credentials":
        return athena_error(400, "unsupported_grant_type")
    if form.get("scope") != SCOPE:
        return athena_error(400, "invalid_scope", f"the scope must be {SCOPE}")
    wait = _window_wait(state)
    if wait > 0:
        state.token_refusals += 1
        headers = {"Retry-After": str(max(1, round(wait)))}
        return athena_error(429, "Too many token requests", "rate limit exceeded for this client", headers=headers)
    return web.json_response(_grant(state))


def _client_ok(request: web.Request, config: SandboxAthenaConfig) -> bool:
    """HTTP Basic ``client_id:secret``, as athenaNet authenticates the token request."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (
        scheme.lower() == "basic"
        and secrets.compare_digest(login, config.client_id)
        and secrets.compare_digest(password, config.client_secret.get_secret_value())
    )


def _window_wait(state: SandboxAthenaState) -> float:
    now, window = time.monotonic(), state.config.token_window_seconds
    while state.grants and state.grants[0] <= now - window:
        state.grants.popleft()
    if len(state.grants) < state.config.token_requests_per_window:
        return 0.0
    return state.grants[0] + window - now


def _grant(state: SandboxAthenaState) -> dict[str, Any]:
    now = time.monotonic()
    state.grants.append(now)
    state.grant_log.append(now)
    token = secrets.token_urlsafe(24)
    lifetime = state.config.token_lifetime_seconds
    state.tokens[token] = now + lifetime
    expires: str | int = str(int(lifetime)) if state.config.expires_in_as_string else int(lifetime)
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires, "scope": SCOPE}


# --- the API guard ------------------------------------------------------------------------------------


def api(template: str) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wraps a handler with what every API call passes first: faults, the bearer token, the practice."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE]
            state.calls[f"{request.method} {template}"] += 1
            refused = _fault(request, state) or _unauthorized(request, state) or _bad_body(request)
            if refused is not None:
                return refused
            if request.match_info.get("practiceid") != state.config.practice_id:
                return athena_error(404, "Invalid practice.", "the practice does not exist or is not available")
            return await handler(request, state)

        return guarded

    return wrap


def _fault(request: web.Request, state: SandboxAthenaState) -> web.Response | None:
    faults = state.config.faults
    if faults.methods is not None and request.method not in faults.methods:
        return None
    if faults.rate_limit_next > 0:
        faults.rate_limit_next -= 1
        headers = {"Retry-After": f"{faults.retry_after_seconds:g}"}
        return athena_error(429, "Rate limit exceeded", "too many requests; retry later", headers=headers)
    if faults.unavailable_next > 0:
        faults.unavailable_next -= 1
        status = faults.unavailable_status
        return web.Response(status=status, text=f"<html><body>{status} Service Temporarily Unavailable</body></html>")
    return None


def _unauthorized(request: web.Request, state: SandboxAthenaState) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    expiry = state.tokens.get(token)
    if expiry is None or expiry <= time.monotonic() or state.config.faults.refuse_tokens:
        state.tokens.pop(token, None)
        return athena_error(401, "Invalid access token", "the access token is missing, unknown or expired")
    return None


def _bad_body(request: web.Request) -> web.Response | None:
    if request.method not in ("POST", "PUT"):
        return None
    if request.content_type != FORM:
        return athena_error(
            400,
            "Invalid request body",
            f"the body must be {FORM}, not {request.content_type or 'missing'}",
        )
    return None


async def _form(request: web.Request) -> dict[str, str]:
    return dict(parse_qsl(await request.text(), keep_blank_values=True))


def _patient(state: SandboxAthenaState, request: web.Request) -> PatientRecord | None:
    return state.practice.patients.get(request.match_info["patientid"])


def _no_patient() -> web.Response:
    return athena_error(404, "The patient is not valid.", "no patient with this patientid in the practice")


# --- patients and insurances ---------------------------------------------------------------------------


def insurance_json(policy: Policy, packages: dict[int, Package]) -> dict[str, Any]:
    """A policy as athenaNet shows it: IDs as strings, the package id an integer."""
    shown: dict[str, Any] = {**policy.fields, "insuranceid": policy.insuranceid}
    package = packages.get(int(policy.fields["insurancepackageid"]))
    if package is not None:
        shown.setdefault("insuranceplanname", package.name)
        shown["insurancetype"] = package.insurancetype
    if "relationshiptoinsuredid" in shown:
        shown["relationshiptoinsuredid"] = str(shown["relationshiptoinsuredid"])
    if policy.cancelled is not None:
        shown["cancelled"] = policy.cancelled.strftime("%m/%d/%Y")
    return shown


def _truthy(value: str | None) -> bool:
    return (value or "").lower() == "true"


@api("/v1/{practiceid}/patients/{patientid}")
async def get_patient(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    shown: dict[str, Any] = {"patientid": record.patientid, **record.demographics}
    if _truthy(request.query.get("showinsurance")):
        shown["insurances"] = [insurance_json(p, state.practice.packages) for p in record.policies if p.active]
    return web.json_response([shown])


@api("/v1/{practiceid}/patients/{patientid}/insurances")
async def list_insurances(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    show_cancelled = _truthy(request.query.get("showcancelled"))
    policies = [p for p in record.policies if p.active or show_cancelled]
    shown = [insurance_json(p, state.practice.packages) for p in policies]
    offset, limit = _paging(request)
    return web.json_response({"insurances": shown[offset : offset + limit], "totalcount": len(shown)})


def _problems(form: dict[str, str], packages: dict[int, Package]) -> web.Response | None:
    """athenaNet's 400 for a value it cannot take (first problem wins)."""
    for name in _DATE_FIELDS:
        if name in form and not _valid_date(form[name]):
            return athena_error(400, "Invalid data", f"Expecting format date, but value is {form[name]}")
    for name, longest in _LENGTHS.items():
        if len(form.get(name, "")) > longest:
            return athena_error(400, "Invalid data", f"{name} is longer than {longest} characters")
    if "insurancepolicyholdersex" in form and form["insurancepolicyholdersex"] not in ("M", "F"):
        return athena_error(400, "Invalid data", "insurancepolicyholdersex must be M or F")
    relationship = form.get("relationshiptoinsuredid")
    if relationship is not None and (not relationship.isdigit() or int(relationship) not in RELATIONSHIPS):
        return athena_error(400, "Invalid data", "relationshiptoinsuredid is not a known relationship")
    package = form.get("insurancepackageid")
    if package is not None and (not package.isdigit() or int(package) not in packages):
        return athena_error(400, "Invalid insurance package", "insurancepackageid does not name a package")
    return None


def _valid_date(text: str) -> bool:
    match = _DATE.match(text)
    if not match:
        return False
    month, day, year = (int(part) for part in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _active_at(record: PatientRecord, sequence: int) -> Policy | None:
    return next((p for p in record.policies if p.active and int(p.fields.get("sequencenumber", 1)) == sequence), None)


async def _slow_write(state: SandboxAthenaState) -> None:
    """Preview's writes are slow; a client that leaves meanwhile cancels the write (nothing is applied)."""
    if state.config.faults.write_delay_seconds > 0:
        await asyncio.sleep(state.config.faults.write_delay_seconds)


@api("/v1/{practiceid}/patients/{patientid}/insurances")
async def create_insurance(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    form = await _form(request)
    missing = [name for name in ("insurancepackageid", "insurancepolicyholdersex") if not form.get(name)]
    if missing:
        return athena_error(400, "Additional fields are required.", "required fields are missing", missing=missing)
    refused = _problems(form, state.practice.packages) or _sequence_problem(record, form)
    if refused is not None:
        return refused
    await _slow_write(state)
    if _active_at(record, int(form.get("sequencenumber") or 1)) is not None:  # filled while we were slow
        return athena_error(409, CONFLICT)
    policy = Policy(state.practice.new_insurance_id(), _stored(form, {"eligibilitystatus": "Unverified"}))
    record.policies.append(policy)
    state.count_write(record.patientid, "POST")
    return web.json_response([insurance_json(policy, state.practice.packages)])


def _sequence_problem(record: PatientRecord, form: dict[str, str]) -> web.Response | None:
    sequence_text = form.get("sequencenumber") or "1"
    if sequence_text not in ("1", "2"):
        return athena_error(400, "Invalid data", "sequencenumber must be 1 (primary) or 2 (secondary)")
    sequence = int(sequence_text)
    if _active_at(record, sequence) is not None:
        return athena_error(409, CONFLICT)
    if sequence == 2 and _active_at(record, 1) is None:
        return athena_error(400, "Invalid data", "a primary policy must exist before a secondary")
    return None


_INTEGER_FIELDS = frozenset({"insurancepackageid", "sequencenumber"})
_READ_ONLY = frozenset({"insuranceid", "eligibilitystatus", "eligibilityreason", "eligibilitylastchecked"})


def _stored(form: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    stored = dict(base)
    for name, value in form.items():
        if name in _READ_ONLY or name in ("departmentid", "updateappointments"):
            continue
        stored[name] = int(value) if name in _INTEGER_FIELDS and value.isdigit() else value
    stored.setdefault("sequencenumber", 1)
    return stored


@api("/v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}")
async def update_insurance(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    policy = _active_by_id(record, request.match_info["insuranceid"])
    return await _update(request, state, record, policy)


@api("/v1/{practiceid}/patients/{patientid}/insurances")
async def update_by_sequence(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    form = await _form(request)
    sequence = form.get("sequencenumber") or "1"
    policy = _active_at(record, int(sequence)) if sequence.isdigit() else None
    return await _update(request, state, record, policy, form)


def _active_by_id(record: PatientRecord, insurance_id: str) -> Policy | None:
    return next((p for p in record.policies if p.insuranceid == insurance_id and p.active), None)


async def _update(
    request: web.Request,
    state: SandboxAthenaState,
    record: PatientRecord,
    policy: Policy | None,
    form: dict[str, str] | None = None,
) -> web.StreamResponse:
    if policy is None:
        return athena_error(404, "Invalid insurance.", "there is no insurance package at that sequence number")
    form = form if form is not None else await _form(request)
    refused = _problems(form, state.practice.packages)
    if refused is not None:
        return refused
    package = form.get("insurancepackageid")
    if package is not None and int(package) != int(policy.fields["insurancepackageid"]):
        return athena_error(
            400, "Invalid data", "the insurance package cannot be changed: DELETE the policy and POST a new one"
        )
    await _slow_write(state)
    policy.fields.update(_stored({k: v for k, v in form.items() if k != "sequencenumber"}, {}))
    state.count_write(record.patientid, "PUT")
    return web.json_response({"success": True})


@api("/v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}")
async def delete_insurance(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    record = _patient(state, request)
    if record is None:
        return _no_patient()
    policy = _active_by_id(record, request.match_info["insuranceid"])
    if policy is None:
        return athena_error(404, "Invalid insurance.", "no active insurance with this insuranceid")
    note = request.query.get("cancellationnote", "")
    if len(note) > 400:
        return athena_error(400, "Invalid data", "cancellationnote is longer than 400 characters")
    await _slow_write(state)
    policy.cancelled, policy.cancellation_note = dt.date.today(), note
    state.count_write(record.patientid, "DELETE")
    return web.json_response({"success": "true"})


# --- packages and appointments ------------------------------------------------------------------------


@api("/v1/{practiceid}/insurancepackages")
async def search_packages(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    wanted = (request.query.get("insuranceplanname") or "").lower()
    found = [
        {"insurancepackageid": p.insurancepackageid, "insuranceplanname": p.name, "insurancetype": p.insurancetype}
        for p in state.practice.packages.values()
        if wanted in p.name.lower()
    ][:15]
    return web.json_response({"insurancepackages": found, "totalcount": len(found)})


@api("/v1/{practiceid}/misc/topinsurancepackages")
async def top_packages(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    found = [
        {"insurancepackageid": str(p.insurancepackageid), "name": p.name} for p in state.practice.packages.values()
    ]
    return web.json_response({"insurancepackages": found, "totalcount": len(found)})


def _paging(request: web.Request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        text = request.query.get(name, "")
        return int(text) if text.isdigit() else default

    return number("offset", 0), min(max(number("limit", 1000), 1), _MAX_LIMIT)


@api("/v1/{practiceid}/appointments/booked")
async def booked(request: web.Request, state: SandboxAthenaState) -> web.StreamResponse:
    query = request.query
    dates = [query.get("startdate", ""), query.get("enddate", "")]
    for text in dates:
        if not _valid_date(text):
            return athena_error(400, "Invalid data", f"Expecting format date, but value is {text or 'missing'}")
    start, end = (dt.datetime.strptime(text, "%m/%d/%Y").date() for text in dates)
    matching = [a for a in state.practice.appointments if _booked_match(a, query, start, end)]
    offset, limit = _paging(request)
    page = [_shown_appointment(a, query, state) for a in matching[offset : offset + limit]]
    body: dict[str, Any] = {"appointments": page, "totalcount": len(matching)}
    base = f"/v1/{state.config.practice_id}/appointments/booked"
    if offset + limit < len(matching):
        body["next"] = f"{base}?{urlencode({**query, 'offset': str(offset + limit), 'limit': str(limit)})}"
    if offset > 0:
        body["previous"] = f"{base}?{urlencode({**query, 'offset': str(max(offset - limit, 0)), 'limit': str(limit)})}"
    return web.json_response(body)


def _booked_match(appointment: dict[str, Any], query: Any, start: dt.date, end: dt.date) -> bool:
    when = dt.datetime.strptime(appointment["date"], "%m/%d/%Y").date()
    if not start <= when <= end:
        return False
    if appointment["appointmentstatus"] == "x" and not _truthy(query.get("showcancelled")):
        return False
    for name in ("departmentid", "providerid", "appointmenttypeid", "patientid", "appointmentstatus"):
        wanted = query.get(name)
        if wanted and str(appointment.get(name, "")) not in wanted.split(","):
            return False
    return True


def _shown_appointment(appointment: dict[str, Any], query: Any, state: SandboxAthenaState) -> dict[str, Any]:
    shown = dict(appointment)
    record = state.practice.patients.get(str(appointment.get("patientid", "")))
    if record is not None and _truthy(query.get("showpatientdetail")):
        shown["patient"] = {"patientid": record.patientid, **record.demographics}
    if record is not None and _truthy(query.get("showinsurance")):
        shown["insurances"] = [insurance_json(p, state.practice.packages) for p in record.policies if p.active]
    return shown


# --- health and admin ----------------------------------------------------------------------------------


async def health(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return web.json_response(
        {"status": "ok", "practice": state.config.practice_id, "patients": len(state.practice.patients)}
    )


async def get_faults(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE].config.faults.model_dump(mode="json"))


async def put_faults(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        faults = AthenaFaults.model_validate_json(await request.read())
    except ValidationError as exc:
        return web.json_response({"error": exc.errors(include_url=False, include_input=False)}, status=400)
    state.config = state.config.model_copy(update={"faults": faults})
    return web.json_response(faults.model_dump(mode="json"))


async def expire_tokens(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    expired = len(state.tokens)
    state.tokens.clear()
    return web.json_response({"expired": expired})


async def reset(request: web.Request) -> web.StreamResponse:
    request.app[STATE].reset()
    return web.json_response({"status": "reset"})


def stats(state: SandboxAthenaState) -> dict[str, Any]:
    return {
        "token_grants": len(state.grant_log),
        "token_refusals": state.token_refusals,
        "writes": {patient: dict(counts) for patient, counts in state.writes.items()},
        "calls": dict(state.calls),
    }


async def get_stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(stats(request.app[STATE]))


class PatientSeed(BaseModel):
    """``PUT /admin/patients/{id}``: a patient's demographics and policies, replacing what was there."""

    model_config = ConfigDict(extra="forbid")

    demographics: dict[str, Any]
    insurances: list[dict[str, Any]] = []


async def put_patient(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        seed = PatientSeed.model_validate_json(await request.read())
    except ValidationError as exc:
        return web.json_response({"error": exc.errors(include_url=False, include_input=False)}, status=400)
    record = seed_patient(state, request.match_info["patientid"], seed.demographics, seed.insurances)
    return web.json_response({"patientid": record.patientid, "insuranceids": [p.insuranceid for p in record.policies]})


def seed_patient(
    state: SandboxAthenaState, patient_id: str, demographics: dict[str, Any], insurances: list[dict[str, Any]]
) -> PatientRecord:
    """Put a patient (and their active policies) into the practice, replacing one with the same id."""
    record = PatientRecord(patient_id, dict(demographics))
    for fields in insurances:
        stored = {**fields, "sequencenumber": int(fields.get("sequencenumber", 1))}
        stored["insurancepackageid"] = int(stored["insurancepackageid"])
        record.policies.append(Policy(state.practice.new_insurance_id(), stored))
    state.practice.patients[patient_id] = record
    return record


# --- app and runner ------------------------------------------------------------------------------------


@web.middleware
async def _never_crash(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            return athena_error(404, "Not found", f"no such endpoint: {request.method} {request.path}")
        if exc.status == 405:
            return athena_error(405, "Method not allowed", f"{request.method} is not allowed here")
        raise
    except Exception:
        log.exception("sandbox athenaNet: unexpected failure answering %s", request.path)
        return athena_error(500, "Internal error", "the sandbox failed unexpectedly")
    return response


def create_app(config: SandboxAthenaConfig, state: SandboxAthenaState | None = None) -> web.Application:
    """The simulator as an aiohttp app; ``state`` carries a practice over from an earlier app (restarts)."""
    app = web.Application(middlewares=[_never_crash], client_max_size=1024 * 1024)
    app[STATE] = state or new_state(config)
    router = app.router
    router.add_post(TOKEN_PATH, token_endpoint)
    router.add_get("/v1/{practiceid}/patients/{patientid}", get_patient)
    router.add_get("/v1/{practiceid}/patients/{patientid}/insurances", list_insurances)
    router.add_post("/v1/{practiceid}/patients/{patientid}/insurances", create_insurance)
    router.add_put("/v1/{practiceid}/patients/{patientid}/insurances", update_by_sequence)
    router.add_put("/v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}", update_insurance)
    router.add_delete("/v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}", delete_insurance)
    router.add_get("/v1/{practiceid}/insurancepackages", search_packages)
    router.add_get("/v1/{practiceid}/misc/topinsurancepackages", top_packages)
    router.add_get("/v1/{practiceid}/appointments/booked", booked)
    router.add_get("/healthz", health)
    if config.admin:
        router.add_get("/admin/faults", get_faults)
        router.add_put("/admin/faults", put_faults)
        router.add_post("/admin/expire-tokens", expire_tokens)
        router.add_post("/admin/reset", reset)
        router.add_get("/admin/stats", get_stats)
        router.add_put("/admin/patients/{patientid}", put_patient)
    return app


@dataclass(slots=True)
class RunningAthenaSandbox:
    """The simulator on a real socket.  ``stop_listening``/``start_listening`` take it down and back up
    on the same port with the same practice (an outage); ``close()`` when done."""

    host: str
    port: int
    state: SandboxAthenaState
    runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start_listening(self) -> None:
        if self.runner is not None:
            return
        runner = web.AppRunner(
            create_app(self.state.config, self.state), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self.runner = runner

    async def stop_listening(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def close(self) -> None:
        await self.stop_listening()


async def start_sandbox_athena(
    config: SandboxAthenaConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> RunningAthenaSandbox:
    """Serve the simulator on ``host:port`` (0: a free port) in this event loop."""
    config = config or SandboxAthenaConfig()
    box = RunningAthenaSandbox(host, port, new_state(config))
    await box.start_listening()
    return box


def sandbox_athena_settings(base: AthenaSettings, box: RunningAthenaSandbox) -> AthenaSettings:
    """``base`` pointed at ``box`` with its credentials and its practice's mapping (the embedded default)."""
    config = box.state.config
    practices = {config.practice_id: practice_settings(box.state.practice), **base.practices}
    return base.model_copy(
        update={
            "base_url": box.base_url,
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "practices": practices,
            "token_requests_per_minute": min(base.token_requests_per_minute, config.token_requests_per_window),
        }
    )


def run_sandbox_athena(port: int = 8082, host: str = "127.0.0.1") -> None:
    """``eligibility-svc sandbox athena --port P``: serve until interrupted."""
    config = SandboxAthenaConfig.from_settings(get_settings())
    print(
        f"sandbox athenaNet on http://{host}:{port}  (practice {config.practice_id}, client {config.client_id!r}, "
        f"token limit {config.token_requests_per_window}/{config.token_window_seconds:g} s)"
    )
    web.run_app(create_app(config), host=host, port=port, print=None, handler_cancellation=True, shutdown_timeout=2.0)
