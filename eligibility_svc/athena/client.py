"""The athenaNet API client: bearer tokens, the per-practice rate, retries where a retry is safe, typed errors.

One call (``AthenaClient.call``) is one or more attempts::

    per-practice budget ─► token ─► HTTP exchange ─► audit record ─► status
        2xx ─► JSON
        401 ─► invalidate that token, fetch a new one, try again (once per call)
        429 ─► wait Retry-After (or backoff), try again; Retry-After beyond max_retry_after: give up
        503, or never sent ─► backoff with full jitter, try again (any method: nothing was done)
        5xx, timeout, broken connection ─► try again only if the call is a read (GET); a write may
              have landed, so it goes back to the outbox, which reads the patient again and re-decides
        400 / 403 / 404 / 409 ─► the typed error at once: the same request would fail the same way

Errors bodies ``{"error", "detailedmessage", "missingfields"}`` become ``AthenaError`` subclasses
carrying those texts in ``details`` (athenaNet's texts name fields, not patients).  Gateway errors
without a JSON body are read as well.  Requests are form-encoded (POST/PUT) or query strings
(GET/DELETE); every value is a string: ``mm/dd/yyyy`` dates, string IDs, ``"true"``/``"false"``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from eligibility_svc.athena.audit import AuditSink, new_record
from eligibility_svc.athena.http import AthenaHttp, HttpRequest, HttpResponse
from eligibility_svc.athena.ratelimit import Budget
from eligibility_svc.athena.records import (
    AthenaInsurance,
    AthenaPatient,
    as_text,
    insurances_of,
    parse_bool,
)
from eligibility_svc.athena.token import TokenSource
from eligibility_svc.backoff import full_jitter, parse_retry_after
from eligibility_svc.errors import (
    AthenaAuthFailed,
    AthenaBadRequest,
    AthenaBadResponse,
    AthenaConflict,
    AthenaError,
    AthenaNotFound,
    AthenaRateLimited,
    AthenaTimeout,
    AthenaUnavailable,
)
from eligibility_svc.logs import redact_text

READS = frozenset({"GET", "HEAD"})

PATIENT = "/v1/{practiceid}/patients/{patientid}"
INSURANCES = "/v1/{practiceid}/patients/{patientid}/insurances"
INSURANCE = "/v1/{practiceid}/patients/{patientid}/insurances/{insuranceid}"
BOOKED = "/v1/{practiceid}/appointments/booked"
PACKAGES = "/v1/{practiceid}/insurancepackages"


@dataclass(frozen=True, slots=True)
class CallPolicy:
    max_attempts: int = 4
    backoff_base: float = 0.5  # first backoff ceiling, doubled per attempt
    backoff_max: float = 8.0
    max_retry_after: float = 60.0  # a longer Retry-After gives the call up (the outbox retries later)
    budget_wait: float = 30.0  # how long a call may wait for the per-practice rate
    write_timeout: float | None = None  # POST/PUT/DELETE (athenaNet's writes are slow); None: the default


# --- pure decisions --------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` when absent or unreadable."""
    return parse_retry_after(value, now=now)


def backoff(attempt: int, policy: CallPolicy, rand: float) -> float:
    """Full jitter: uniform in [0, min(max, base·2^(attempt-1)))."""
    return full_jitter(attempt, policy.backoff_base, policy.backoff_max, rand)


def retry_delay(error: AthenaError, *, method: str, attempt: int, policy: CallPolicy, rand: float) -> float | None:
    """Seconds to wait before trying ``method`` again after ``error``; ``None``: do not retry."""
    if attempt >= policy.max_attempts or not _safe_to_repeat(error, method):
        return None
    asked = error.details.get("retry_after_seconds")
    if isinstance(error, AthenaRateLimited) and isinstance(asked, int | float):
        if asked > policy.max_retry_after:
            return None
        # Never earlier than asked; the jitter keeps replicas told the same second from returning together.
        return float(asked) + min(policy.backoff_base, 1.0) * rand
    return backoff(attempt, policy, rand)


def _safe_to_repeat(error: AthenaError, method: str) -> bool:
    if isinstance(error, AthenaRateLimited):
        return True  # refused before doing anything
    if not isinstance(error, AthenaUnavailable | AthenaTimeout):
        return False  # 4xx, unreadable answers: the same request fails the same way
    if method in READS:
        return True
    status = error.details.get("status")
    return status == 503 or error.details.get("sent") is False


def error_from(response: HttpResponse, method: str, endpoint: str) -> AthenaError:
    """The typed error for a non-2xx answer, with athenaNet's texts in ``details``."""
    body = _error_body(response)
    texts = [body[key] for key in ("error", "detailedmessage") if body.get(key)]
    text = " - ".join(dict.fromkeys(texts)) or "no error body"
    if body.get("missingfields"):
        text += f" (missing: {', '.join(body['missingfields'])})"
    details: dict[str, Any] = {"endpoint": endpoint, "method": method, "status": response.status, **body}
    kind = _error_kind(response.status)
    if kind is AthenaRateLimited:
        details["retry_after_seconds"] = retry_after_seconds(
            response.headers.get("Retry-After"), dt.datetime.now(dt.UTC)
        )
    return kind(f"athenaNet refused {method} {endpoint} (HTTP {response.status}): {text}", details=details)


def _error_kind(status: int) -> type[AthenaError]:
    kinds: dict[int, type[AthenaError]] = {
        400: AthenaBadRequest,
        401: AthenaAuthFailed,
        403: AthenaAuthFailed,
        404: AthenaNotFound,
        409: AthenaConflict,
        429: AthenaRateLimited,
    }
    if status in kinds:
        return kinds[status]
    return AthenaUnavailable if status >= 500 else AthenaBadResponse


def _error_body(response: HttpResponse) -> dict[str, Any]:
    """``error``, ``detailedmessage`` and ``missingfields`` when the body is athenaNet's JSON."""
    try:
        payload = response.json("")
    except AthenaBadResponse:
        return {}
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]
    if not isinstance(payload, dict):
        return {}
    found: dict[str, Any] = {}
    for key in ("error", "detailedmessage"):
        text = as_text(payload.get(key))
        if text:  # athenaNet echoes values it refused ("... but value is 12/04/1966"): dates and ids go
            found[key] = redact_text(text[:500])
    missing = payload.get("missingfields")
    if isinstance(missing, list):
        found["missingfields"] = [str(item)[:64] for item in missing[:50]]
    return found


def render_path(template: str, params: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by its URL-quoted value."""
    return template.format(**{name: quote(str(value), safe="") for name, value in params.items()})


# --- the client ------------------------------------------------------------------------------------


class AthenaClient:
    """Calls athenaNet for every practice this deployment serves.  ``close()`` closes the HTTP pool."""

    def __init__(
        self,
        http: AthenaHttp,
        tokens: TokenSource,
        *,
        budget_for: Callable[[str], Budget],
        audit: AuditSink,
        policy: CallPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._http = http
        self.tokens = tokens
        self._budget_for = budget_for
        self._audit = audit
        self.policy = policy or CallPolicy()
        self._sleep = sleep
        self._rand = rand

    async def close(self) -> None:
        await self._http.close()

    async def call(
        self,
        method: str,
        template: str,
        params: Mapping[str, str],
        *,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call (see the module docstring); the answer's JSON, or a typed ``AthenaError``."""
        practice_id = params.get("practiceid")
        path = render_path(template, params)
        attempt, refreshed = 0, False
        while True:
            attempt += 1
            token = await self._attempt_token(practice_id)
            request = HttpRequest(
                method,
                path,
                template,
                query or {},
                form,
                {"Authorization": f"Bearer {token}"},
                None if method in READS else self.policy.write_timeout,
            )
            try:
                response = await self._exchange(request, attempt, practice_id)
                if response.status == 401 and not refreshed:
                    refreshed = True
                    attempt -= 1  # a refused token is not the call's fault
                    await self.tokens.invalidate(token)
                    continue
                if 200 <= response.status < 300:
                    return response.json(template)
                raise error_from(response, method, template)
            except AthenaError as error:
                delay = retry_delay(error, method=method, attempt=attempt, policy=self.policy, rand=self._rand())
                if delay is None:
                    error.details.setdefault("attempts", attempt)
                    raise
                await self._sleep(delay)

    async def _attempt_token(self, practice_id: str | None) -> str:
        if practice_id is not None:
            await self._budget_for(practice_id).take(time.monotonic() + self.policy.budget_wait)
        return await self.tokens.token()

    async def _exchange(self, request: HttpRequest, attempt: int, practice_id: str | None) -> HttpResponse:
        started, began = time.time(), time.monotonic()
        status, outcome = 0, "ok"
        try:
            response = await self._http.send(request)
            status = response.status
            if status >= 300:
                outcome = _error_kind(status).code
            return response
        except AthenaError as exc:
            outcome = exc.code
            raise
        finally:
            await self._audit.record(
                new_record(
                    started=started,
                    method=request.method,
                    endpoint=request.endpoint,
                    status=status,
                    outcome=outcome,
                    duration=time.monotonic() - began,
                    attempt=attempt,
                    practice_id=practice_id,
                )
            )

    # --- patients and insurances ---------------------------------------------------------------------

    async def get_patient(self, practice_id: str, patient_id: str, *, show_insurance: bool = True) -> AthenaPatient:
        """``GET /patients/{id}`` (an array holding one patient)."""
        query = {"showinsurance": "true"} if show_insurance else {}
        payload = await self.call("GET", PATIENT, {"practiceid": practice_id, "patientid": patient_id}, query=query)
        if isinstance(payload, list) and payload and isinstance(payload[0], dict):
            payload = payload[0]
        if not isinstance(payload, dict):
            raise AthenaBadResponse(
                "athenaNet answered the patient lookup without a patient", details={"endpoint": PATIENT}
            )
        return AthenaPatient.model_validate(payload)

    async def list_insurances(
        self, practice_id: str, patient_id: str, *, department_id: str | None = None
    ) -> list[AthenaInsurance]:
        """The patient's active policies (``GET /patients/{id}/insurances``)."""
        query = {"departmentid": department_id} if department_id else {}
        params = {"practiceid": practice_id, "patientid": patient_id}
        return insurances_of(await self.call("GET", INSURANCES, params, query=query))

    async def create_insurance(self, practice_id: str, patient_id: str, fields: Mapping[str, str]) -> str | None:
        """``POST /patients/{id}/insurances``; the new policy's ``insuranceid`` when athenaNet returns it."""
        payload = await self.call("POST", INSURANCES, {"practiceid": practice_id, "patientid": patient_id}, form=fields)
        created = insurances_of(payload if isinstance(payload, list) else [payload])
        return created[0].insuranceid if created else None

    async def update_insurance(
        self, practice_id: str, patient_id: str, insurance_id: str, fields: Mapping[str, str]
    ) -> None:
        """``PUT /patients/{id}/insurances/{insuranceid}`` with only ``fields``."""
        params = {"practiceid": practice_id, "patientid": patient_id, "insuranceid": insurance_id}
        _require_success(await self.call("PUT", INSURANCE, params, form=fields), INSURANCE)

    async def delete_insurance(self, practice_id: str, patient_id: str, insurance_id: str, note: str) -> None:
        """``DELETE /patients/{id}/insurances/{insuranceid}`` with a cancellation note (≤ 400 characters)."""
        params = {"practiceid": practice_id, "patientid": patient_id, "insuranceid": insurance_id}
        query = {"cancellationnote": note[:400]} if note else {}
        _require_success(await self.call("DELETE", INSURANCE, params, query=query), INSURANCE)


def _require_success(payload: Any, endpoint: str) -> None:
    """``{"success": true}`` (or ``"true"``); a body saying otherwise is a refusal."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict) and "success" in payload and parse_bool(payload["success"]) is False:
        raise AthenaBadRequest(
            f"athenaNet answered {endpoint} with success false",
            details={"endpoint": endpoint, **_texts(payload)},
        )


def _texts(payload: dict[str, Any]) -> dict[str, str]:
    return {key: str(payload[key])[:500] for key in ("error", "detailedmessage") if payload.get(key)}
