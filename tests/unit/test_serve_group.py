"""A group's ``/metrics``, in process: siblings' registries fetched, merged, missing counted."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ingest.metrics import EDGE_METRICS, EdgeMetrics
from ingest.routes.metrics import get_metrics
from promptline.devstack.services import free_port
from promptline.serve_group import Group, join

HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@contextlib.asynccontextmanager
async def _member(group: Group, metrics: EdgeMetrics, port: int) -> AsyncIterator[None]:
    app = web.Application()
    app[EDGE_METRICS] = metrics
    app.router.add_get("/metrics", get_metrics)
    join(app, group, metrics.registry)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def _scrape(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        assert answer.status == 200
        return await answer.text()


def test_a_group_travels_in_one_environment_variable() -> None:
    group = Group(index=1, metrics_ports=(4001, 4002), parent_pid=7)
    assert Group.from_env(group.to_env()) == group
    assert Group.from_env({}) is None


async def test_each_member_answers_for_the_group_and_counts_the_missing() -> None:
    private = (free_port(), free_port())
    public = (free_port(), free_port())
    metrics = (EdgeMetrics(), EdgeMetrics())
    metrics[0].observe_request("/healthz", "GET", 200, 0.001)
    metrics[1].observe_request("/healthz", "GET", 200, 0.001)
    metrics[1].observe_request("/healthz", "GET", 200, 0.001)
    groups = [Group(index, private, os.getppid()) for index in (0, 1)]
    healthz = ("promptline_http_requests_total", tuple(sorted(HEALTHZ.items())))
    async with _member(groups[0], metrics[0], public[0]):
        async with _member(groups[1], metrics[1], public[1]):
            for port in public:
                merged = _values(await _scrape(port))
                assert merged[healthz] == 3
                assert merged[("promptline_serving_processes", ())] == 2
                assert merged[("promptline_metrics_children_missing", ())] == 0
                assert merged[("promptline_serving_process_pid", ())] == os.getpid()
        alone = _values(await _scrape(public[0]))
    assert alone[healthz] == 1
    assert alone[("promptline_serving_processes", ())] == 1
    assert alone[("promptline_metrics_children_missing", ())] == 1
