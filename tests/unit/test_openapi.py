"""The API document covers every route the app serves, exactly, and is valid OpenAPI 3.1."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import hdrs, web
from openapi_spec_validator import OpenAPIV31SpecValidator

from promptline.http.openapi import build_document
from promptline.http.operations import operations
from promptline.server import create_app
from promptline.settings import Settings

SCOPES = {"read", "write", "deploy", "ingest"}
UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}


@pytest.fixture(scope="module")
def app() -> web.Application:
    return create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))


@pytest.fixture(scope="module")
def document(app: web.Application) -> dict[str, Any]:
    return build_document(app)


def served(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, pattern) the router serves; HEAD rides on GET, the catch-all on none."""
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in (hdrs.METH_HEAD, hdrs.METH_ANY)
    }


def test_every_served_route_declares_its_operation(app: web.Application) -> None:
    table = operations(app)
    undocumented = served(app) - set(table)
    assert not undocumented, f"routes without an Operation: {sorted(undocumented)}"
    for key, operation in table.items():
        assert operation.summary.strip(), key
        assert operation.description.strip(), key
        assert operation.answers, key


def test_the_document_lists_exactly_the_served_routes(
    app: web.Application, document: dict[str, Any]
) -> None:
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert documented == served(app)
    assert ("POST", "/v1/resolve") in documented
    assert ("OPTIONS", "/api/v1/prompts/analytics") in documented


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()


def test_every_operation_has_exact_statuses_and_its_security(document: dict[str, Any]) -> None:
    ids = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            ids.append(operation["operationId"])
            statuses = set(operation["responses"])
            assert "default" not in statuses, (method, path)
            assert all(status.isdigit() for status in statuses), (method, path)
            if path in UNAUTHENTICATED or method == "options":
                assert operation["security"] == [], (method, path)
                continue
            if path.startswith("/ui"):  # the dashboard: a session cookie, or nothing yet
                assert operation["security"] in ([], [{"uiSession": []}]), (method, path)
                signed_out = path in ("/ui", "/ui/", "/ui/sign-in", "/ui/sign-out")
                assert (operation["security"] == []) == (signed_out or "static" in path), path
                continue
            [requirement] = operation["security"]
            assert set(requirement) == {"apiKey"}
            assert requirement["apiKey"] == [operation["x-scope"]]
            assert operation["x-scope"] in SCOPES
            assert {"401", "403", "429"} <= statuses, (method, path)
    assert len(ids) == len(set(ids))
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def error_codes(operation: dict[str, Any], status: str) -> list[str]:
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    codes: list[str] = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_error_answers_carry_their_familys_codes(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert error_codes(paths["/api/v1/prompt-templates"]["post"], "400") == ["VALIDATION_ERROR"]
    assert error_codes(paths["/api/v1/prompt-templates"]["get"], "429") == ["RATE_LIMIT_EXCEEDED"]
    assert error_codes(paths["/v1/prompts"]["post"], "400") == ["invalid_request"]
    deploy = paths["/v1/prompts/{prompt_id}/deploy"]["post"]
    assert error_codes(deploy, "422") == ["weight_mismatch"]
    assert "Retry-After" in deploy["responses"]["409"]["headers"]
    assert "Retry-After" in paths["/v1/resolve"]["post"]["responses"]["429"]["headers"]


def test_bodies_and_answers_are_components(document: dict[str, Any]) -> None:
    paths = document["paths"]
    schemas = document["components"]["schemas"]
    resolve = paths["/v1/resolve"]["post"]
    body = resolve["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ResolveIn"}
    assert set(schemas["ResolveIn"]["required"]) == {"prompt", "user_id"}
    answer = resolve["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ResolveOut"}
    assert "204" in paths["/api/v1/prompts/analytics"]["post"]["responses"]
    assert "content" not in paths["/api/v1/prompts/analytics"]["post"]["responses"]["204"]
    assert set(paths["/api/v1/events/batch"]["post"]["responses"]) >= {"200", "207", "422"}
    assert "ErrorEnvelope" in schemas


def test_the_analytics_prompt_id_is_any_prompt_reference(document: dict[str, Any]) -> None:
    """Seed 004 shows a UUID; the product takes any id shape or the name."""
    prompt_id = document["components"]["schemas"]["AnalyticsEventIn"]["properties"]["prompt_id"]
    assert prompt_id.get("format") != "uuid"
    assert prompt_id["type"] == "string"


def test_path_parameters_are_described(document: dict[str, Any]) -> None:
    for path, methods in document["paths"].items():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["name"] in path
                    assert parameter["description"], (path, parameter["name"])
