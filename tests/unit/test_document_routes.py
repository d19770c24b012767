"""/openapi.json and /docs are served without a key, and the page needs nothing from elsewhere."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.metrics import EdgeMetrics
from ingest.observe import serving_app
from promptline.http import document_routes
from promptline.http.families import dialect_for
from promptline.http.operations import Answer, Operation
from promptline.http.routes import served_routes

WIDGETS = Operation(
    summary="List widgets",
    description="A route only this test serves.",
    tag="test",
    scope="read",
    answers={200: Answer("The widgets.", schema={"type": "array"})},
)


async def widgets(_request: web.Request) -> web.Response:
    return web.json_response([])


def app() -> web.Application:
    served = serving_app(dialect_for, EdgeMetrics())
    served_routes(served).add_get("/widgets/{widget_id}", widgets, WIDGETS)
    document_routes.add_routes(served)
    return served


async def test_the_document_is_served_without_a_key() -> None:
    async with TestClient(TestServer(app())) as client:
        response = await client.get("/openapi.json")
        assert response.status == 200
        assert response.content_type == "application/json"
        document = await response.json()
    operation = document["paths"]["/widgets/{widget_id}"]["get"]
    assert operation["summary"] == "List widgets"
    assert operation["security"] == [{"apiKey": ["read"]}]
    assert set(document["paths"]) == {"/widgets/{widget_id}", "/openapi.json", "/docs"}


async def test_the_page_lists_each_operation_and_loads_nothing_from_elsewhere() -> None:
    async with TestClient(TestServer(app())) as client:
        response = await client.get("/docs")
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "<code>/widgets/{widget_id}</code>" in page
    assert "List widgets" in page
    assert "widget_id" in page
    assert "ErrorEnvelope" in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
