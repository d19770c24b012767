"""What a route declares about itself for the published API document.

Each route module declares an :class:`Operation` beside its handler and passes it to
``served_routes(app).add_*``, which records it in the app's :data:`OPERATIONS`. Nothing
reads the registry while serving: only ``promptline.http.openapi`` builds the document
from it, so the hot path pays nothing for being documented.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from promptline.http.errors import ErrorKind

JSON = "application/json"


@dataclass(frozen=True)
class Answer:
    """One documented answer: what it means, and its body (none for a 204)."""

    description: str
    model: type[BaseModel] | None = None
    one_of: tuple[type[BaseModel], ...] = ()
    """Models of which the body is exactly one, when it has several shapes."""
    schema: Mapping[str, Any] | None = None
    """A JSON Schema for a body no model describes (a list, a text format)."""
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response headers it carries: name to description."""


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    description: str
    location: str = "query"
    required: bool = False
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    """A route's contract: who may call it, what it takes, and every answer it gives.

    ``scope`` is the API key scope the route needs (``read``, ``write``, ``deploy``,
    ``ingest``), None for an unauthenticated route. ``errors`` are the kinds the handler
    raises besides those any authenticated route or body gives (401, 403, 429, and the
    body's 400/413/415), which the document adds by itself.
    """

    summary: str
    description: str
    tag: str
    scope: str | None
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    body_description: str = ""
    errors: tuple[ErrorKind, ...] = ()
    parameters: tuple[Param, ...] = ()
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    """Descriptions of path parameters whose meaning differs from the usual one."""
    session: bool = False
    """Signed in by the dashboard's session cookie instead of a key (``ui/``)."""


OPERATIONS = web.AppKey("operations", dict[tuple[str, str], Operation])
"""The app's operations, by (method, route pattern); read only to build the document."""


def record(app: web.Application, method: str, path: str, operation: Operation) -> None:
    """Remember ``operation`` as the contract of ``method`` on ``path``."""
    registry = app.get(OPERATIONS)
    if registry is None:
        registry = app[OPERATIONS] = {}
    registry[(method, path)] = operation


def operations(app: web.Application) -> Mapping[tuple[str, str], Operation]:
    """Every operation recorded on ``app``."""
    return app.get(OPERATIONS) or {}
