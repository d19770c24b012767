"""``python -m promptline.devstack.chdb_server``: serve one chDB data directory until signalled.

Logs to stderr only. SIGTERM or SIGINT stops accepting requests, lets the ones in
flight finish, and closes the chDB session so the data directory is left consistent
and unlocked for the next process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from pathlib import Path

from aiohttp import web

from promptline.devstack.chdb_server.app import create_app
from promptline.devstack.chdb_server.engine import ChdbEngine

log = logging.getLogger("promptline.devstack.chdb_server")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m promptline.devstack.chdb_server",
        description="Serve ClickHouse's HTTP interface from a chDB data directory.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=18123, help="port to listen on")
    parser.add_argument("--data-dir", type=Path, required=True, help="chDB data directory")
    parser.add_argument("--timezone", default="UTC", help="session timezone (default UTC)")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, display_name: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    engine = await ChdbEngine.open(args.data_dir, timezone=args.timezone)
    try:
        runner = web.AppRunner(
            create_app(engine, display_name), auto_decompress=False, access_log=None
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, args.host, args.port).start()
            log.info(
                "chDB %s serving %s on http://%s:%d",
                engine.version,
                args.data_dir,
                args.host,
                args.port,
            )
            await stop.wait()
            log.info("stopping")
        finally:
            await runner.cleanup()
    finally:
        await engine.close()


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; 0 on a clean stop, 1 if it could not start."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        asyncio.run(_serve(args, socket.gethostname()))
    except (OSError, RuntimeError, ValueError) as exc:
        log.error("cannot serve %s: %s", args.data_dir, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
