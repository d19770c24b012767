"""Answer hooks run on the answers of their own routes only, whenever either was added."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.metrics import EdgeMetrics
from ingest.observe import ANSWER_HOOKS, AnswerHook, serving_app
from promptline.http.errors import ApiError, ErrorKind
from promptline.http.families import dialect_for
from promptline.http.routes import served_routes


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _refused(_request: web.Request) -> web.Response:
    raise ApiError(ErrorKind.FORBIDDEN, "no")


def _mark(name: str) -> AnswerHook:
    def hook(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers.add("X-Hook", name)

    return hook


async def test_each_route_calls_its_own_hooks_errors_included() -> None:
    app = serving_app(dialect_for, EdgeMetrics())
    routes = served_routes(app)
    routes.add_get("/early", _ok)
    app[ANSWER_HOOKS].add(_mark("a"), ["/early", "/late", "/refused"])
    routes.add_get("/late", _ok)  # added after its hook
    routes.add_get("/refused", _refused)
    routes.add_get("/other", _ok)
    app[ANSWER_HOOKS].add(_mark("b"), ["/early"])
    async with TestClient(TestServer(app)) as client:
        seen = {}
        for path in ("/early", "/late", "/refused", "/other", "/missing"):
            response = await client.get(path)
            seen[path] = (response.status, response.headers.getall("X-Hook", []))
    assert seen == {
        "/early": (200, ["a", "b"]),
        "/late": (200, ["a"]),
        "/refused": (403, ["a"]),
        "/other": (200, []),
        "/missing": (404, []),
    }
