"""The parent of ``promptline serve --processes N``: starts N children and stops them.

Each child is a fresh ``python -m promptline serve --processes 1`` (not a fork of this
process: no loop, sockets or threads are inherited half-made), which runs the whole app
on the shared port with SO_REUSEPORT. The children are in a session of their own, so a
terminal's Ctrl-C reaches only this process, which forwards one SIGTERM to each: each
then drains as a single process does (aiohttp's graceful shutdown, then the Kafka flush).
A child that outlives the shutdown timeout plus a margin is killed. A child that exits
on its own stops the group (exit 1): the service's own supervisor (systemd, Compose,
Kubernetes) restarts it whole, and a crash loop shows there instead of hiding here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys

from promptline.serve_group import LOOPBACK, Group

log = logging.getLogger(__name__)


def _free_ports(count: int) -> tuple[int, ...]:
    """Loopback ports nothing listens on now, all held at once so they differ."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return tuple(int(sock.getsockname()[1]) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


async def supervise(processes: int, stop_seconds: float) -> int:
    """Run ``processes`` children until a signal (exit 0) or one of them exits (exit 1)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    ports = await asyncio.to_thread(_free_ports, processes)
    children: list[asyncio.subprocess.Process] = []
    try:
        for index in range(processes):
            group = Group(index=index, metrics_ports=ports, parent_pid=os.getpid())
            children.append(await _child(group))
        pids = ", ".join(str(child.pid) for child in children)
        log.info("serving with %d processes (pids %s)", processes, pids)
        exits = {asyncio.ensure_future(child.wait()): child for child in children}
        signalled = asyncio.ensure_future(stopping.wait())
        done, _pending = await asyncio.wait(
            [signalled, *exits], return_when=asyncio.FIRST_COMPLETED
        )
        signalled.cancel()
        code = 0
        if signalled in done:
            log.info("stopping %d serving processes (each drains, then flushes Kafka)", processes)
        else:
            for finished in done:
                child = exits[finished]
                log.error(
                    "serving process %d exited with code %s: stopping the others",
                    child.pid,
                    child.returncode,
                )
            code = 1
        stopped = await _stop(children, stop_seconds)
        log.info("every serving process has stopped")
        return code if stopped else 1
    finally:
        for child in children:
            if child.returncode is None:  # an error above: no orphans even then
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _child(group: Group) -> asyncio.subprocess.Process:
    """One serving process: ``serve --processes 1``, told its place in the group."""
    command = [sys.executable, "-m", "promptline", "serve", "--processes", "1"]
    return await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **group.to_env()},
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
    )


async def _stop(children: list[asyncio.subprocess.Process], seconds: float) -> bool:
    """SIGTERM to every running child, then wait; kill those still running after ``seconds``.

    True when every child stopped by itself.
    """
    for child in children:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    waits = [child.wait() for child in children]
    try:
        await asyncio.wait_for(asyncio.gather(*waits), seconds)
    except TimeoutError:
        late = [child for child in children if child.returncode is None]
        log.error(
            "serving processes %s outlived the shutdown timeout (%.0f s): killing them",
            ", ".join(str(child.pid) for child in late),
            seconds,
        )
        for child in late:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await asyncio.gather(*(child.wait() for child in late))
        return False
    return True
