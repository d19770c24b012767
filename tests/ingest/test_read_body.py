"""``read_body`` gives the same bytes as ``request.read()`` on each of its paths, and
``buffered_body`` gives them only when the whole body is there to take."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from promptline.http.bodies import FAST_READ_MAX_BYTES, buffered_body, read_body, read_json
from promptline.http.errors import ApiError

Reader = tuple[str, bytes]


class _Protocol:
    """What a StreamReader asks of its protocol when it is read."""

    _reading_paused = False

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Nothing to resume: the whole body is already buffered."""


async def _echo_server(
    read_first: bool,
) -> tuple[TestClient[web.Request, web.Application], list[Reader]]:
    seen: list[Reader] = []

    async def echo(request: web.Request) -> web.Response:
        buffered = request.content.is_eof()
        if read_first:
            await request.read()
        taken = buffered_body(request)
        body = taken if taken is not None else await read_body(request)
        how = "taken" if taken is not None else "buffered" if buffered else "streamed"
        seen.append((how, body))
        return web.Response(body=body)

    app = web.Application(client_max_size=4 * FAST_READ_MAX_BYTES)
    app.router.add_post("/echo", echo)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, seen


@pytest.mark.parametrize(
    "size", [1, 300, FAST_READ_MAX_BYTES, FAST_READ_MAX_BYTES + 1, 3 * FAST_READ_MAX_BYTES]
)
@pytest.mark.parametrize("read_first", [False, True])
async def test_body_is_whole_whatever_its_size_and_whether_read_before(
    size: int, read_first: bool
) -> None:
    client, seen = await _echo_server(read_first)
    try:
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        response = await client.post("/echo", data=body)
        assert response.status == 200
        assert await response.read() == body
        assert seen[-1][1] == body
        if read_first or size > FAST_READ_MAX_BYTES:  # only a whole, unread body is taken
            assert seen[-1][0] != "taken"
    finally:
        await client.close()


async def test_body_still_arriving_is_awaited() -> None:
    """A body sent in parts, the handler running before its end: read the usual way."""
    client, seen = await _echo_server(read_first=False)

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a": '
        await asyncio.sleep(0.05)
        yield b"1}"

    try:
        response = await client.post("/echo", data=parts())
        assert await response.read() == b'{"a": 1}'
        assert seen == [("streamed", b'{"a": 1}')]
    finally:
        await client.close()


async def test_empty_body_is_empty() -> None:
    client, _seen = await _echo_server(read_first=False)
    try:
        response = await client.post("/echo", data=b"")
        assert await response.read() == b""
    finally:
        await client.close()


async def test_a_body_whose_stream_failed_after_it_arrived_is_a_400_not_a_crash() -> None:
    """The client hung up once its whole body was buffered, before the handler ran."""
    reader = StreamReader(cast(Any, _Protocol()), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(b'{"a": 1}')
    reader.feed_eof()
    reader.set_exception(ConnectionResetError("gone"))
    request = make_mocked_request("POST", "/echo", payload=reader)
    assert buffered_body(request) is None
    with pytest.raises(ApiError) as refused:
        await read_json(request)
    assert refused.value.status == 400
