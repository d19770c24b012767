"""A serving process's part in ``promptline serve --processes N`` (the group's children).

Each child runs the whole app on the shared port (SO_REUSEPORT) and also serves its own
registry on a private loopback port the parent gave it, so that the child the kernel
hands a ``/metrics`` scrape to can fetch its siblings' and answer for the whole service
(``promptline.metrics_merge``). A child also watches its parent: if the parent dies
without stopping it (SIGKILL), the child stops itself gracefully rather than live on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from promptline.http.scrape import GROUP_SCRAPE
from promptline.metrics_merge import gauge, merge, render

GROUP_ENV = "PROMPTLINE_SERVE_GROUP"
"""Set by the parent in each child's environment: its index, the private ports, the parent."""
LOOPBACK = "127.0.0.1"
SIBLING_TIMEOUT_SECONDS = 1.0
PARENT_CHECK_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Group:
    """Where this child stands in its group."""

    index: int
    metrics_ports: tuple[int, ...]
    parent_pid: int

    def to_env(self) -> dict[str, str]:
        """The environment variable that hands this to a child."""
        data = {"index": self.index, "metrics_ports": self.metrics_ports, "parent": self.parent_pid}
        return {GROUP_ENV: json.dumps(data)}

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str] = os.environ) -> Group | None:
        """This process's group, or None when it serves alone."""
        raw = environ.get(GROUP_ENV)
        if not raw:
            return None
        data: dict[str, Any] = json.loads(raw)
        ports = tuple(int(port) for port in data["metrics_ports"])
        return cls(index=int(data["index"]), metrics_ports=ports, parent_pid=int(data["parent"]))


class SiblingMetrics:
    """The whole group's metrics: this child's registry merged with its siblings' texts."""

    def __init__(
        self, group: Group, registry: CollectorRegistry, client: aiohttp.ClientSession
    ) -> None:
        self._group = group
        self._registry = registry
        self._client = client

    async def _sibling(self, port: int) -> str | None:
        try:
            async with self._client.get(f"http://{LOOPBACK}:{port}/metrics") as answer:
                if answer.status == 200:
                    return await answer.text()
                log.warning("serving process on port %d answered %d", port, answer.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("serving process on port %d did not answer: %r", port, error)
        return None

    async def scrape(self) -> bytes:
        """The merged exposition; a sibling that does not answer in time is left out, counted."""
        own = asyncio.to_thread(generate_latest, self._registry)  # reads /proc: off the loop
        others = asyncio.gather(
            *(
                self._sibling(port)
                for index, port in enumerate(self._group.metrics_ports)
                if index != self._group.index
            )
        )
        own_text, texts = await asyncio.gather(own, others)
        answered = [own_text.decode(), *(text for text in texts if text is not None)]
        missing = len(texts) + 1 - len(answered)
        return await asyncio.to_thread(_merged, answered, missing)


def _merged(texts: list[str], missing: int) -> bytes:
    metrics = merge(texts)
    metrics.append(
        gauge(
            "promptline_serving_processes",
            "Serving processes whose metrics this scrape merged.",
            len(texts),
        )
    )
    metrics.append(
        gauge(
            "promptline_metrics_children_missing",
            "Serving processes that did not answer this scrape in time (left out of it).",
            missing,
        )
    )
    metrics.append(
        gauge(
            "promptline_serving_process_pid",
            "Process id of the serving process that answered this scrape.",
            os.getpid(),
        )
    )
    return render(metrics)


def join(app: web.Application, group: Group, registry: CollectorRegistry) -> None:
    """Make ``app`` a member of ``group``: private metrics port, merged ``/metrics``, watch."""

    async def membership(app: web.Application) -> AsyncIterator[None]:
        private = web.Application()
        private.router.add_get("/metrics", _own_metrics(registry))
        runner = web.AppRunner(private, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, group.metrics_ports[group.index]).start()
        timeout = aiohttp.ClientTimeout(total=SIBLING_TIMEOUT_SECONDS)
        client = aiohttp.ClientSession(timeout=timeout)
        app[GROUP_SCRAPE] = SiblingMetrics(group, registry, client)
        watch = asyncio.create_task(_watch_parent(group.parent_pid))
        try:
            yield
        finally:
            watch.cancel()
            await client.close()
            await runner.cleanup()

    app.cleanup_ctx.append(membership)


def _own_metrics(
    registry: CollectorRegistry,
) -> Callable[[web.Request], Any]:
    async def own_metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return own_metrics


async def _watch_parent(parent_pid: int) -> None:
    """Stop this process gracefully (as SIGTERM does) once its parent is gone."""
    while True:  # no event tells of a parent's death (short of prctl), so look every second
        await asyncio.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            break
    log.error("the parent process %d is gone: stopping", parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
