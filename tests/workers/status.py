"""A worker's health and metrics as a test reads them: over its HTTP port, as Prometheus would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from promptline.settings import Settings
from promptline.worker import run_worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _base(settings: Settings) -> str:
    return f"http://{settings.listen_host}:{settings.worker_http_port}"


async def health(settings: Settings) -> tuple[int, dict[str, Any]] | None:
    """``/healthz``'s status and body, or None while nothing answers."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{_base(settings)}/healthz") as response,
        ):
            return response.status, await response.json()
    except aiohttp.ClientError:
        return None


async def health_if(settings: Settings, status: int) -> dict[str, Any] | None:
    """``/healthz``'s body if it answers ``status``; for ``wait_until``."""
    answer = await health(settings)
    return answer[1] if answer is not None and answer[0] == status else None


async def held(settings: Settings, hold: str) -> dict[str, Any] | None:
    """``/healthz``'s body once it answers 503 for ``hold``; for ``wait_until``. (Records wait
    a moment before the first failed call tells the worker why: ``no_progress`` until then.)"""
    body = await health_if(settings, 503)
    return body if body is not None and body["hold"] == hold else None


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


async def metrics(settings: Settings) -> Samples:
    """Every sample of ``/metrics``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{_base(settings)}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse_samples(await response.text())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, None if it is not there."""
    return samples.get((name, frozenset(labels.items())))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of ``name``, by the value of one of their labels."""
    return {
        dict(labels)[label]: found
        for (sample, labels), found in samples.items()
        if sample == name and label in dict(labels)
    }


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[asyncio.Task[bool]]:
    """``run_worker`` in this event loop, health and metrics served; stopped at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 60)
