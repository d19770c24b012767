"""A body that does not decode is a 400, and aiohttp does not log it as an unhandled crash.

After the handler has answered, aiohttp drains the rest of the body, meets the decoding
error again and would log "Unhandled exception" with a traceback; the service drops
exactly that record (``promptline.logs.UndecodableBodyFilter``). The requests go over a
raw connection read to its end: the server closes it only after that record would have
been logged, so the test needs no sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, ContentLengthError
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_protocol import RequestPayloadError

from controlplane.store.migrate import upgrade
from promptline.commands.admin import quickstart
from promptline.devstack.services import free_port
from promptline.logs import AIOHTTP_SERVER_LOGGER
from promptline.server import create_app
from promptline.settings import Settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """The whole app over a SQLite store (no Kafka needed: nothing here is produced)."""
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        log_format="text",
    )
    await upgrade(settings.database_url)
    demo = await quickstart(settings)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client, demo


async def _post_plain_as_gzip(client: Client, path: str, key: str | None) -> bytes:
    """Send a plain JSON body labelled gzip; everything the server sent until it closed."""
    body = orjson.dumps({"prompt_id": "x", "version_hash": "y", "padding": "z" * 4096})
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {client.host}",
        "Content-Type: application/json",
        "Content-Encoding: gzip",
        f"Content-Length: {len(body)}",
    ]
    if key is not None:
        head.append(f"Authorization: Bearer {key}")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        return await reader.read()  # to EOF: the server is done with the connection
    finally:
        writer.close()
        await writer.wait_closed()


def _unhandled(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == AIOHTTP_SERVER_LOGGER and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize(
    ("path", "with_key", "status"),
    [
        ("/api/v1/prompts/analytics", True, b"400"),  # the body is read: 400 invalid_request
        ("/v1/resolve", False, b"401"),  # answered before the body is read
    ],
)
async def test_an_undecodable_body_gets_its_4xx_and_no_traceback(
    service: tuple[Client, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    path: str,
    with_key: bool,
    status: bytes,
) -> None:
    client, demo = service
    with caplog.at_level(logging.DEBUG):
        answer = await _post_plain_as_gzip(client, path, demo["api_key"] if with_key else None)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status
    assert b'"error"' in answer
    assert _unhandled(caplog) == []


def test_the_filter_lets_every_other_record_of_aiohttp_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))  # installs the filter
    logger = logging.getLogger(AIOHTTP_SERVER_LOGGER)
    undecodable = RequestPayloadError("Can not decode content-encoding: gzip")
    undecodable.__cause__ = ContentEncodingError("Can not decode content-encoding: gzip")
    cut_short = RequestPayloadError("Not enough data")
    cut_short.__cause__ = ContentLengthError("Not enough data")
    bug = ValueError("a real bug")
    with caplog.at_level(logging.ERROR, logger=AIOHTTP_SERVER_LOGGER):
        logger.error("Unhandled exception", exc_info=undecodable)  # dropped
        logger.error("Unhandled exception", exc_info=cut_short)
        logger.error("Unhandled exception", exc_info=bug)
        logger.error("Error handling request", exc_info=undecodable)
    kept = [(r.getMessage(), r.exc_info[1] if r.exc_info else None) for r in _unhandled(caplog)]
    assert kept == [
        ("Unhandled exception", cut_short),
        ("Unhandled exception", bug),
        ("Error handling request", undecodable),
    ]
