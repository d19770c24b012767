"""ClickHouse behind a switch: a TCP relay the test turns off to make ClickHouse unreachable.

While off, the relay drops every open connection and closes each new one at once, as a
server going away would; workers started on its URL see the driver's network errors, not an
error ClickHouse raised, and wait to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from promptline.settings import Settings


class Relay:
    """Forwards TCP connections to ``upstream`` while on."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.on = True
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.switch_off()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def switch_off(self) -> None:
        self.on = False
        for writer in list(self._open):
            writer.close()

    def switch_on(self) -> None:
        self.on = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.on:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open.difference_update((writer, up_writer))
            writer.close()
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def clickhouse_relay(settings: Settings) -> AsyncIterator[Relay]:
    """A relay to ``settings``' ClickHouse; point a worker at ``relay.url()``."""
    url = urlsplit(settings.clickhouse_url)
    relay = Relay(url.hostname or "127.0.0.1", url.port or 8123)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()
