"""The OpenAPI document: OpenAPI 3.1 in shape, every route of the app in it, every reference resolving."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eligibility_svc.api.app import create_app
from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.openapi import ERRORS, openapi_bytes, openapi_document
from tests.support.web_app import ROOT, AiohttpClient, Api, embedded_settings, fixture_request, serve, start_api, stop

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_top_level_shape(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"] == "eligibility-svc"
    assert document["info"]["version"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "elig_<id>_<secret>",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert document["security"] == [{"bearer": []}]


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    found = set(refs(document))
    assert "#/components/schemas/CoverageSummary" in found
    for ref in found:
        assert resolve(document, ref) is not None


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    app = create_app(embedded_settings())
    served = {
        (resource.canonical, route.method.lower())
        for resource in app.router.resources()
        for route in resource
        if route.method not in ("HEAD", "*")
    }
    documented = {(path, method) for path, method, _ in operations(openapi_document())}
    assert served == documented
    assert {path for path, _ in served} == {
        "/v1/eligibility",
        "/v1/eligibility/{check_id}",
        "/v1/x12/271",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/batches",  # issue 7
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/results",
        "/v1/batches/{batch_id}/report",
    }


def test_operations_are_complete(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for path, _, operation in operations(document):
        assert operation["responses"], path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["required"] is True
                assert "{" + parameter["name"] + "}" in path
        if path in OPEN_ROUTES:
            assert operation["security"] == []
        else:
            assert "security" not in operation  # the document's bearer requirement applies
            assert {"401", "403", "500"} <= set(operation["responses"])


def test_error_responses_are_the_envelope(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    assert {int(status) for status in ERRORS} >= {401, 403, 404, 413, 422, 429, 502, 503, 504}
    for name, _ in ERRORS.values():
        assert responses[name]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body = resolve(document, envelope["properties"]["error"]["$ref"])
    assert set(body["properties"]) == {"code", "message", "details"}
    assert "WWW-Authenticate" in responses["Unauthenticated"]["headers"]
    check = document["paths"]["/v1/eligibility"]["post"]["responses"]
    assert {"400", "401", "403", "413", "415", "422", "429", "502", "503", "504"} <= set(check)


def test_bodies_come_from_the_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    check = document["paths"]["/v1/eligibility"]["post"]
    assert check["requestBody"]["content"]["application/json"]["schema"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/EligibilityRequest"},
            {"$ref": "#/components/schemas/AthenaEligibilityBody"},
        ]
    }
    assert set(schemas["EligibilityRequest"]["properties"]) == set(EligibilityRequest.model_fields)
    assert set(schemas["AthenaEligibilityBody"]["properties"]) == {
        "athena",
        "service",
        "max_age_seconds",
        "force_refresh",
    }
    assert set(schemas["CoverageSummary"]["properties"]) == set(CoverageSummary.model_fields)
    assert check["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CoverageSummary"
    }
    x12 = document["paths"]["/v1/x12/271"]["post"]["requestBody"]["content"]
    assert set(x12) == {"application/json", "text/plain", "application/edi-x12"}
    # Money is written as a string: the response schema says so (the request side would take a number too).
    total = schemas["Amounts"]["properties"]["total"]["anyOf"]
    assert {"type": "string"} in [{"type": option.get("type")} for option in total]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    """Against the official OpenAPI 3.1 meta-schema (shipped with schemathesis)."""
    import jsonschema
    from schemathesis.specs.openapi import definitions

    validator = jsonschema.Draft202012Validator(definitions.OPENAPI_31)
    problems = [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(document)]
    assert problems == []


async def test_served_document_and_real_answers_match_it(aiohttp_client: AiohttpClient) -> None:
    import jsonschema

    api: Api = await start_api(aiohttp_client, embedded_settings())
    response = await api.client.get("/openapi.json", headers=api.auth())
    assert await response.read() == openapi_bytes()
    document = await response.json()

    def validate(answer: Any, ref: str) -> None:
        schema = {**resolve(document, ref), "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(answer)

    status, summary = await api.check(fixture_request("01"))
    assert status == 200
    validate(summary, "#/components/schemas/CoverageSummary")
    failed = await api.client.post("/v1/eligibility", json={}, headers=api.auth())
    validate(await failed.json(), "#/components/schemas/ErrorEnvelope")
    ready = await api.client.get("/readyz")
    validate(await ready.json(), "#/components/schemas/ReadinessReport")


async def test_schemathesis_finds_nothing_against_the_running_service(tmp_path: Path) -> None:
    """Every operation fuzzed over a real socket (``st run``, fixed seed): no 5xx, every answer as
    documented, auth enforced, bad input refused.  ``positive_data_acceptance`` is left out: schema-valid
    requests that break rules JSON Schema cannot state (NPI check digit, CORE's date window relative to
    today, a provider's name, X12 syntax) are rightly 422."""
    st = Path(sys.executable).parent / "st"
    assert st.exists(), "schemathesis's `st` command is missing: install the test extras"
    served = await serve(tmp_path)
    try:
        command = [
            *(str(st), "run", f"{served.url}/openapi.json", "-H", f"Authorization: Bearer {served.token}"),
            *("--checks", "all", "--exclude-checks", "positive_data_acceptance"),
            *("--max-examples", "20", "--seed", "20261124", "--workers", "1", "--no-color"),
        ]
        environment = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks"}
        run = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(run.communicate(), 240)
        assert run.returncode == 0, output.decode()[-4000:]
    finally:
        served.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.process.wait(), 30)
        await stop(served)
