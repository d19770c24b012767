"""``GET /openapi.json`` and ``GET /docs``: the API document and its reference page.

Unauthenticated, like ``/healthz``: the document describes the API, it holds no data.
Both are built once per app, at the first request, from the routes registered by then
(an app's routes cannot change once it serves).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from promptline.http.openapi import build_document
from promptline.http.operations import Answer, Operation
from promptline.http.reference_page import render
from promptline.http.routes import served_routes

DOCUMENT_PATH = "/openapi.json"
PAGE_PATH = "/docs"


class Published:
    """The app's document and page, made at the first request for either."""

    def __init__(self) -> None:
        self._document: dict[str, Any] | None = None
        self._json = b""
        self._page = ""

    def document(self, app: web.Application) -> dict[str, Any]:
        """The OpenAPI document of ``app``."""
        if self._document is None:
            self._document = build_document(app)
            self._json = orjson.dumps(self._document)
            self._page = render(self._document)
        return self._document

    async def get_document(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document, as JSON."""
        self.document(request.app)
        return web.Response(body=self._json, content_type="application/json")

    async def get_page(self, request: web.Request) -> web.Response:
        """The reference page, rendered from the document."""
        self.document(request.app)
        return web.Response(text=self._page, content_type="text/html")


DOCUMENT = Operation(
    summary="The API document",
    description="This API's OpenAPI 3.1 document, generated from the routes and their models.",
    tag="meta",
    scope=None,
    answers={200: Answer("The document.", schema={"type": "object"})},
)
PAGE = Operation(
    summary="The API reference page",
    description="Every operation with its parameters, bodies and answers, as one HTML page "
    "that needs no internet access.",
    tag="meta",
    scope=None,
    answers={200: Answer("The page.", schema={"type": "string"}, content_type="text/html")},
)


def add_routes(app: web.Application) -> None:
    """Register the document and the page."""
    published = Published()
    served_routes(app).add_get(DOCUMENT_PATH, published.get_document, DOCUMENT)
    served_routes(app).add_get(PAGE_PATH, published.get_page, PAGE)
