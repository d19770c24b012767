"""``ok_json`` and ``no_content`` answer what the usual ``web.Response(...)`` answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from promptline.http import answers
from promptline.http.answers import CONTENT_TYPE, no_content, ok_json, same_as_usual, same_objects

BODY = b'{"prompt":"support-bot","version":"v1"}'
STATE = web.ResponseKey("state", int)


def _usual(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=CONTENT_TYPE)


Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _answered(*handlers: Handler) -> list[tuple[int, str, dict[str, str], bytes]]:
    """What each handler answers a POST with on the wire: status, reason, headers (but the
    date) and body."""
    app = web.Application()
    for n, handler in enumerate(handlers):
        app.router.add_post(f"/{n}", handler)
    answered = []
    async with TestClient(TestServer(app)) as client:
        for n in range(len(handlers)):
            response = await client.post(f"/{n}", data=b"{}")
            headers = {k: v for k, v in response.headers.items() if k != "Date"}
            answered.append(
                (response.status, response.reason or "", headers, await response.read())
            )
    return answered


def test_this_aiohttp_gets_the_shortcut() -> None:
    assert ok_json is not answers._usual
    assert same_as_usual(ok_json)


def test_a_builder_that_differs_is_not_the_same_as_usual() -> None:
    def other_reason(body: bytes) -> web.Response:
        response = ok_json(body)
        response._reason = "Fine"
        return response

    def extra_attribute(body: bytes) -> web.Response:
        response = ok_json(body)
        response.extra = 1  # type: ignore[attr-defined]
        return response

    assert not same_as_usual(other_reason)
    assert not same_as_usual(extra_attribute)
    assert not same_as_usual(lambda body: web.Response(body=body, status=201))


def test_answers_are_independent() -> None:
    first, second = ok_json(BODY), ok_json(b"{}")
    first.headers["X-One"] = "1"
    first[STATE] = 1
    assert "X-One" not in second.headers
    assert STATE not in second
    assert second.body == b"{}"


async def test_on_the_wire_it_is_the_usual_answer() -> None:
    async def lean(_request: web.Request) -> web.Response:
        return ok_json(BODY)

    async def usual(_request: web.Request) -> web.Response:
        return _usual(BODY)

    answered = await _answered(lean, usual)
    assert answered[0] == answered[1]
    assert answered[0][0] == 200
    assert answered[0][2]["Content-Type"] == CONTENT_TYPE
    assert answered[0][3] == BODY


def test_no_content_gets_the_shortcut_and_is_the_usual_204() -> None:
    assert no_content is not answers._usual_no_content
    assert same_objects(no_content(), web.Response(status=204))
    assert not same_objects(no_content(), web.Response(status=200))
    first, second = no_content(), no_content()
    first.headers["X-One"] = "1"
    assert "X-One" not in second.headers


async def test_on_the_wire_no_content_is_the_usual_204() -> None:
    async def lean(_request: web.Request) -> web.Response:
        return no_content()

    async def usual(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    answered = await _answered(lean, usual)
    assert answered[0] == answered[1]
    assert answered[0][0] == 204 and answered[0][3] == b""
