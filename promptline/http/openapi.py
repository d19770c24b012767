"""The OpenAPI 3.1 document, built from the app's route table and the routes' operations.

Generated, never written by hand, so it cannot drift from the code: every path and method
comes from the router's registrations (``promptline.http.operations``), every body from
the pydantic models the routes declare, and each error answer lists the codes its route
family spells (``promptline.http.families``). The answers every route of a kind gives
(401/403/429 for an authenticated route, 400/413/415 for a body) are added here, so a
route declares only what is its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from promptline.http.errors import STATUS, ErrorKind
from promptline.http.families import dialect_of_path
from promptline.http.operations import Answer, Operation, operations
from schemas.errors import ErrorEnvelope

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "apiKey"
SESSION_SCHEME = "uiSession"
ERROR_SCHEMA = "ErrorEnvelope"
REF = "#/components/schemas/{model}"

AUTHENTICATED_ERRORS = (ErrorKind.UNAUTHORIZED, ErrorKind.FORBIDDEN, ErrorKind.RATE_LIMITED)
BODY_ERRORS = (
    ErrorKind.INVALID_REQUEST,
    ErrorKind.PAYLOAD_TOO_LARGE,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE,
)
RETRY_AFTER = {ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.CONFLICT}
"""Kinds whose answers may carry ``Retry-After`` (a write conflict says to retry too)."""

PATH_PARAMETERS = {
    "prompt_id": "The prompt: any of its ids (`prm_<hex>`, `pmt_<hex>`, `tmpl-<uuid>`, "
    "the bare UUID) or its name.",
    "name": "The prompt's name (or any of its ids).",
    "version": "A version of the prompt: `vN`, its number, its content hash or its id.",
}

_PATH_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

DESCRIPTION = """\
The promptline API: the control plane (prompts, versions, deployments, resolve, compare)
and the ingestion edge (signals, usage links, analytics events).

Authenticate with an API key: `Authorization: Bearer pl_sk_...`. Each operation names the
key scope it needs (`read`, `write`, `deploy` or `ingest`) in its security requirement
and in `x-scope`. Every error is `{"error": {"code", "message", "docs"[, "field"]}}`;
each route family spells its codes as its own documents do. Every GET route also answers
HEAD; an unknown path is 404, a method a path does not take is 405 with `Allow`, and an
unexpected failure is 500 `internal_error`.
"""


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every operation recorded on ``app``."""
    table = operations(app)
    schemas, refs = _components(table.values())
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for (method, path), operation in sorted(table.items()):
        paths[path][method.lower()] = _operation(method, path, operation, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "promptline", "version": VERSION, "description": DESCRIPTION},
        "paths": dict(paths),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "pl_sk_<key>",
                    "description": "An API key (`promptline admin create-key`), with scopes.",
                },
                SESSION_SCHEME: {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "promptline_ui",
                    "description": "A dashboard session: an API key exchanged at "
                    "`POST /ui/sign-in` (docs/dashboard.md).",
                },
            },
        },
    }


def _version() -> str:
    try:
        return version("promptline")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


VERSION = _version()
"""Read when the module is imported: package metadata is files, not for the event loop."""

Mode = Literal["validation", "serialization"]


def _components(
    table: Iterable[Operation],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], Mode], dict[str, Any]]]:
    """Every model's schema as a component, and how an operation refers to each."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorEnvelope, "serialization"): None
    }
    for operation in table:
        if operation.body is not None:
            wanted[(operation.body, "validation")] = None
        for answer in operation.answers.values():
            for model in (answer.model, *answer.one_of):
                if model is not None:
                    wanted[(model, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=REF)
    return dict(defs.get("$defs", {})), {key: dict(value) for key, value in refs.items()}  # type: ignore[misc]


def _operation(
    method: str,
    path: str,
    operation: Operation,
    refs: Mapping[tuple[type[BaseModel], Mode], dict[str, Any]],
) -> dict[str, Any]:
    scope = str(operation.scope) if operation.scope is not None else None
    described: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": operation.summary,
        "description": operation.description
        + (
            f"\n\nNeeds an API key with the `{scope}` scope."
            if scope
            else "\n\nNeeds a dashboard session (`POST /ui/sign-in`)."
            if operation.session
            else "\n\nNo API key."
        ),
        "tags": [operation.tag],
        "security": [{SECURITY_SCHEME: [scope]}]
        if scope
        else [{SESSION_SCHEME: []}]
        if operation.session
        else [],
    }
    if scope:
        described["x-scope"] = scope
    parameters = _parameters(path, operation)
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "description": operation.body_description or operation.body.__doc__ or "",
            "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
        }
    responses: dict[str, Any] = {
        str(status): _answer(answer, refs) for status, answer in sorted(operation.answers.items())
    }
    responses |= _errors(path, operation)
    described["responses"] = dict(sorted(responses.items()))
    return described


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method.lower()}_{words}" + ("_slash" if path.endswith("/") and path != "/" else "")


def _parameters(path: str, operation: Operation) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": operation.path_parameters.get(name, PATH_PARAMETERS.get(name, "")),
            "schema": {"type": "string", "minLength": 1},
        }
        for name in _PATH_PARAMETER.findall(path)
    ]
    for param in operation.parameters:
        found.append(
            {
                "name": param.name,
                "in": param.location,
                "required": param.required,
                "description": param.description,
                "schema": dict(param.schema),
            }
        )
    return found


def _answer(
    answer: Answer, refs: Mapping[tuple[type[BaseModel], Mode], dict[str, Any]]
) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    schema = refs[(answer.model, "serialization")] if answer.model is not None else answer.schema
    if answer.one_of:
        schema = {"oneOf": [refs[(model, "serialization")] for model in answer.one_of]}
    if schema is not None:
        described["content"] = {answer.content_type: {"schema": dict(schema)}}
    if answer.headers:
        described["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return described


def _errors(path: str, operation: Operation) -> dict[str, Any]:
    """One answer per error status, its codes as the path's family spells them."""
    kinds = list(operation.errors)
    if operation.scope is not None:
        kinds += AUTHENTICATED_ERRORS
    if operation.body is not None:
        kinds += BODY_ERRORS
    by_status: dict[int, list[ErrorKind]] = defaultdict(list)
    for kind in dict.fromkeys(kinds):
        by_status[STATUS[kind]].append(kind)
    dialect = dialect_of_path(path)
    answers: dict[str, Any] = {}
    for status, group in by_status.items():
        codes = [dialect.code(kind) for kind in group]
        described: dict[str, Any] = {
            "description": "Error: " + ", ".join(f"`{code}`" for code in codes) + ".",
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            {"$ref": REF.format(model=ERROR_SCHEMA)},
                            {
                                "type": "object",
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "properties": {"code": {"enum": codes}},
                                    }
                                },
                            },
                        ]
                    }
                }
            },
        }
        if RETRY_AFTER.intersection(group):
            described["headers"] = {
                "Retry-After": {
                    "description": "Whole seconds to wait before retrying.",
                    "schema": {"type": "string"},
                }
            }
        answers[str(status)] = described
    return answers
