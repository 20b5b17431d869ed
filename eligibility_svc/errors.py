"""The one error tree of eligibility-svc.

Every failure the service can report is an ``EligibilityError`` with a stable machine ``code``
(dotted, never reworded once published), the HTTP status an API caller sees, a message a person
can act on, and structured ``details`` (never patient data).  Adapters translate third-party
exceptions at their edge (``raise ClearinghouseTimeout(...) from exc``); nothing else leaks out.

    EligibilityError                         500 internal
    ├── RequestInvalid                       422 request.invalid         (API body / EligibilityRequest)
    │   ├── InquiryInvalid                   422 request.inquiry_invalid (a 270 cannot be built from it)
    │   ├── RequestMalformed                 400 request.malformed       (not JSON, not UTF-8)
    │   ├── RequestTooLarge                  413 request.too_large       (body over max_body_bytes)
    │   └── UnsupportedMediaType             415 request.unsupported_media_type
    ├── MethodNotAllowed                     405 method_not_allowed
    ├── X12Error                             422 x12.*                   (bytes we were given or received)
    │   ├── X12SyntaxError                   422 x12.syntax              (envelope / segment level)
    │   ├── X12StructureError                422 x12.structure           (loops out of order, missing HL ...)
    │   ├── X12UnsupportedVersion            422 x12.unsupported_version (4010, unknown implementation guide)
    │   ├── X12WrongTransaction              422 x12.wrong_transaction   (a 270 or 999 where a 271 was expected)
    │   └── X12ValidationFailed              422 x12.validation_failed   (implementation-guide findings, strict mode)
    ├── AuthError                            401 auth.*
    │   ├── Unauthenticated                  401 auth.unauthenticated
    │   └── Forbidden                        403 auth.forbidden
    ├── NotFound                             404 not_found
    ├── ClearinghouseError                   502 clearinghouse.*
    │   ├── ClearinghouseTimeout             504 clearinghouse.timeout
    │   ├── ClearinghouseUnavailable         503 clearinghouse.unavailable (connect failure, 5xx)
    │   │   └── ClearinghouseCircuitOpen     503 clearinghouse.circuit_open (breaker open: not called)
    │   ├── ClearinghouseRateLimited         429 clearinghouse.rate_limited
    │   ├── ClearinghouseRejected            502 clearinghouse.rejected    (CORE ErrorCode other than Success)
    │   └── ClearinghouseBadResponse         502 clearinghouse.bad_response (no / non-271 payload, 999)
    ├── AthenaError                          502 athena.*
    │   ├── AthenaUnavailable                503 athena.unavailable      (connection failure, 5xx)
    │   ├── AthenaTimeout                    504 athena.timeout
    │   ├── AthenaRateLimited                429 athena.rate_limited     (429, or our own budgets)
    │   ├── AthenaAuthFailed                 502 athena.auth_failed      (token refused, 401 after refresh, 403)
    │   ├── AthenaBadRequest                 502 athena.bad_request      (400: the data we sent)
    │   ├── AthenaNotFound                   404 athena.not_found        (practice, patient, policy)
    │   ├── AthenaConflict                   409 athena.conflict         (a policy holds that sequence)
    │   ├── AthenaBadResponse                502 athena.bad_response
    │   ├── AthenaPayerUnmapped              422 athena.payer_unmapped   (no package for the payer)
    │   └── AthenaPatientDataInvalid         422 athena.patient_data_invalid (a field on file is unusable)
    └── ConfigurationError                   500 config.invalid
"""

from __future__ import annotations

from typing import Any, ClassVar


class EligibilityError(Exception):
    """Base of every error the service reports.  Subclasses fix ``code`` and ``http_status``."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` member of the API's error envelope."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- requests ---------------------------------------------------------------------------------


class RequestInvalid(EligibilityError):
    """The caller's request is malformed; ``details["fields"]`` lists ``{"field", "problem"}``."""

    code = "request.invalid"
    http_status = 422


class InquiryInvalid(RequestInvalid):
    """The request is well-formed JSON but a valid 005010X279A1 270 cannot be built from it."""

    code = "request.inquiry_invalid"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        """``problems`` are ``(field path, what is wrong and how to fix it)`` pairs."""
        text = "; ".join(f"{field}: {problem}" for field, problem in problems)
        super().__init__(
            f"cannot build an eligibility inquiry: {text}",
            details={"fields": [{"field": f, "problem": p} for f, p in problems]},
        )
        self.problems = problems


# ... added with the HTTP API (issue 5) ...


class RequestMalformed(RequestInvalid):
    """The body cannot be read at all (not JSON, not UTF-8), so no field can be named."""

    code = "request.malformed"
    http_status = 400


class RequestTooLarge(RequestInvalid):
    code = "request.too_large"
    http_status = 413


class UnsupportedMediaType(RequestInvalid):
    code = "request.unsupported_media_type"
    http_status = 415


class MethodNotAllowed(EligibilityError):
    """The path exists but not with this method; ``details["allowed"]`` lists the methods it has."""

    code = "method_not_allowed"
    http_status = 405


# --- X12 ----------------------------------------------------------------------------------------


class X12Error(EligibilityError):
    """Problems with X12 bytes.  ``position`` is the 1-based segment index in the interchange."""

    code = "x12.error"
    http_status = 422

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        segment_id: str | None = None,
        expected: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        extra: dict[str, Any] = dict(details or {})
        where = ""
        if position is not None:
            extra["position"] = position
            where = f"segment {position}"
        if segment_id is not None:
            extra["segment_id"] = segment_id
            where = f"{where} ({segment_id})" if where else segment_id
        if expected is not None:
            extra["expected"] = expected
        text = f"{where}: {message}" if where else message
        if expected is not None:
            text = f"{text}; expected {expected}"
        super().__init__(text, details=extra)
        self.position = position
        self.segment_id = segment_id
        self.expected = expected


class X12SyntaxError(X12Error):
    code = "x12.syntax"


class X12StructureError(X12Error):
    code = "x12.structure"


class X12UnsupportedVersion(X12Error):
    code = "x12.unsupported_version"


class X12WrongTransaction(X12Error):
    code = "x12.wrong_transaction"


class X12ValidationFailed(X12Error):
    """Implementation-guide validation found errors; ``details["findings"]`` lists them."""

    code = "x12.validation_failed"


# --- API access -----------------------------------------------------------------------------------


class AuthError(EligibilityError):
    code = "auth.error"
    http_status = 401


class Unauthenticated(AuthError):
    code = "auth.unauthenticated"
    http_status = 401


class Forbidden(AuthError):
    code = "auth.forbidden"
    http_status = 403


class NotFound(EligibilityError):
    code = "not_found"
    http_status = 404


# --- clearinghouse --------------------------------------------------------------------------------


class ClearinghouseError(EligibilityError):
    """The clearinghouse (or the payer behind it) did not give us a usable 271."""

    code = "clearinghouse.error"
    http_status = 502
    retryable: ClassVar[bool] = False


class ClearinghouseTimeout(ClearinghouseError):
    code = "clearinghouse.timeout"
    http_status = 504
    retryable = True


class ClearinghouseUnavailable(ClearinghouseError):
    code = "clearinghouse.unavailable"
    http_status = 503
    retryable = True


class ClearinghouseRateLimited(ClearinghouseError):
    code = "clearinghouse.rate_limited"
    http_status = 429
    retryable = True


class ClearinghouseRejected(ClearinghouseError):
    code = "clearinghouse.rejected"


class ClearinghouseBadResponse(ClearinghouseError):
    code = "clearinghouse.bad_response"


# ... added by the clearinghouse transports (issue 4) ...


class ClearinghouseCircuitOpen(ClearinghouseUnavailable):
    """We did not call at all: the breaker for this endpoint or payer is open after repeated failures.

    ``details`` names the ``scope`` (``endpoint`` or ``payer``) and ``retry_in_seconds``.
    """

    code = "clearinghouse.circuit_open"
    retryable = False  # not within this check; the breaker half-opens after its cool-down


# --- athenaNet ------------------------------------------------------------------------------------


class AthenaError(EligibilityError):
    """athenaNet did not do what we asked, or its data cannot be used (the client translates at its edge).

    ``retryable``: the same call may succeed later (the outbox retries it); ``details`` carry athenaNet's
    ``error`` / ``detailedmessage`` texts, the HTTP status and the endpoint template, never patient data.
    """

    code = "athena.error"
    http_status = 502
    retryable: ClassVar[bool] = False


# ... added with the athenaNet client (issue 6) ...


class AthenaUnavailable(AthenaError):
    """Connection failed, or athenaNet answered 5xx (after the client's own retries)."""

    code = "athena.unavailable"
    http_status = 503
    retryable = True


class AthenaTimeout(AthenaError):
    code = "athena.timeout"
    http_status = 504
    retryable = True


class AthenaRateLimited(AthenaError):
    """429 from athenaNet, or our own per-practice / token-endpoint budget left no room in time."""

    code = "athena.rate_limited"
    http_status = 429
    retryable = True


class AthenaAuthFailed(AthenaError):
    """The token endpoint refused our credentials, or a fresh token was refused too (401/403)."""

    code = "athena.auth_failed"


class AthenaBadRequest(AthenaError):
    """400: athenaNet refused the data we sent (``details["missingfields"]`` when it says which)."""

    code = "athena.bad_request"


class AthenaNotFound(AthenaError):
    """404: no such practice or patient, or no policy at that sequence number."""

    code = "athena.not_found"
    http_status = 404


class AthenaConflict(AthenaError):
    """409: an active policy already holds that sequence number (the write-back reads again and re-decides)."""

    code = "athena.conflict"
    http_status = 409
    retryable = True


class AthenaBadResponse(AthenaError):
    """athenaNet answered something we cannot read (not JSON, not the documented shape)."""

    code = "athena.bad_response"


class AthenaPayerUnmapped(AthenaError):
    """A payer ID (or insurance package) has no mapping in the practice's configuration: not guessed."""

    code = "athena.payer_unmapped"
    http_status = 422


class AthenaPatientDataInvalid(AthenaError):
    """What athenaNet holds for the patient cannot make an inquiry; ``details["field"]`` names the field."""

    code = "athena.patient_data_invalid"
    http_status = 422


# --- configuration --------------------------------------------------------------------------------


class ConfigurationError(EligibilityError):
    code = "config.invalid"
    http_status = 500
