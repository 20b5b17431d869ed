"""Reading request bodies and query flags into models, with every failure one of our errors.

* a body over ``max_body_bytes`` → ``RequestTooLarge`` (413);
* a content type the route does not take → ``UnsupportedMediaType`` (415);
* bytes that are not JSON (or not UTF-8) → ``RequestMalformed`` (400);
* JSON that does not fit the model → ``RequestInvalid`` (422) with ``details["fields"]``.

Messages and details never echo the caller's values: they may be patient data.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from eligibility_svc.errors import RequestInvalid, RequestMalformed, RequestTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

JSON_TYPES = frozenset({"application/json"})
X12_TYPES = frozenset({"text/plain", "application/edi-x12"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


async def read_body(request: web.Request, *, limit: int) -> bytes:
    """The whole body; ``limit`` is the app's ``client_max_size``, which aiohttp enforces while reading."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestTooLarge(
            f"the request body is larger than {limit} bytes (setting max_body_bytes)",
            details={"max_bytes": limit},
        ) from exc


def media_type(request: web.Request, accepted: frozenset[str], *, default: str) -> str:
    """The request's media type if the route takes it (``default`` when none is sent), else 415."""
    if not request.headers.get("Content-Type"):
        return default
    kind = request.content_type.lower()
    if kind in accepted or (kind.startswith("application/") and kind.endswith("+json") and default in JSON_TYPES):
        return "application/json" if kind.endswith("+json") else kind
    raise UnsupportedMediaType(
        f"this route takes {', '.join(sorted(accepted))}, not {kind}",
        details={"accepted": sorted(accepted)},
    )


def parse_json_model(model: type[M], body: bytes) -> M:
    """``body`` validated as ``model``, strictly: JSON types as the OpenAPI document states them (``0``
    is not ``false``, ``"5"`` not ``5``); dates are ISO strings, as JSON has no date type."""
    if not body.strip():
        raise RequestMalformed("the request body is empty; send a JSON object")
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise invalid(exc) from None


def invalid(exc: ValidationError, *, prefix: tuple[str | int, ...] = ()) -> RequestInvalid:
    """Our error for pydantic's: malformed JSON is 400, anything else 422 with the failing fields."""
    problems = exc.errors(include_url=False, include_input=False, include_context=False)
    for problem in problems:
        if problem["type"] == "json_invalid":
            return RequestMalformed(f"the request body is not valid JSON: {problem['msg']}")
    fields = [{"field": field_path((*prefix, *problem["loc"])), "problem": problem["msg"]} for problem in problems]
    text = "; ".join(f"{f['field']}: {f['problem']}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return RequestInvalid(f"the request is not valid: {text}{more}", details={"fields": fields})


def field_path(loc: tuple[Any, ...]) -> str:
    """``("service", "procedures", 0, "code")`` → ``service.procedures.0.code``; the root is ``body``."""
    return ".".join(str(part) for part in loc) or "body"


def query_flag(request: web.Request, name: str, *, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``, ``1``/``0``, ``yes``/``no``); 422 otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE or value == "":
        return True
    if value in _FALSE:
        return False
    raise RequestInvalid(
        f"query parameter {name} must be true or false",
        details={"fields": [{"field": f"query.{name}", "problem": "must be true or false"}]},
    )


def decode_text(body: bytes, charset: str | None) -> str:
    """A raw X12 body as text (``charset`` from the Content-Type, else UTF-8)."""
    try:
        return body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError) as exc:
        raise RequestMalformed(f"the request body is not text in {charset or 'utf-8'}") from exc
