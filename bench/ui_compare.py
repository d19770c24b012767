"""Dashboard compare benchmark: ``GET /ui/prompts/{id}/compare`` over 10M stored events.

``python -m bench.ui_compare [--events N] [--repeat R] [--use-env]``

The requirement measured: the service answers the compare page within 300 ms (its own
time, the page's ``Server-Timing: page;dur=``) on the local stack with 10 million events.

It runs the whole service (``promptline.server.create_app``) in process over the local
stack (``bench.worker_services``) with a SQLite store of its own: an organisation, project
and key made in the store, a prompt with four versions made and deployed 70/10/10/10
through the JSON API, then N analytics events of that prompt's real content hashes over
the last 30 days, made by ``bench.compare_latency``'s generator. Signed in through the
sign-in form, it times the page for the preset windows (hour, day, week: they end now)
and a custom window over the whole 30 days (by day), and, as the same run's baseline,
``GET /v1/prompts/{id}/compare`` with the same window and bucket, the two called in turn
so a change in the machine's load weighs on both alike. The JSON route sends no
``Server-Timing``, so a middleware of the benchmark's own, the innermost, times its
handler; the page's figure is its header's. The ratio page/JSON is the page's overhead
over compare's own work (the session, the prompt and its rollout read from the store,
the charts and the template).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import ClientResponse, ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from bench.compare_latency import DAYS, generate, p95, timed
from bench.figures import Figure, add_json_option, figure, write_json
from bench.worker_services import bench_settings
from compare.window import floor_hour
from controlplane.api.context import CONTROL_PLANE
from controlplane.api.references import prompt_in_catalog
from controlplane.catalog import PromptEntry
from controlplane.keys import digest
from controlplane.store.migrate import upgrade
from controlplane.tenancy import create_api_key, create_organization, create_project
from promptline.clickhouse import connect
from promptline.commands.admin import transaction
from promptline.server import create_app
from promptline.settings import Settings
from sql.runner import migrate
from ui.viewer import COOKIE

SPLIT = ((1, 70), (2, 10), (3, 10), (4, 10))
HANDLER_MS = "X-Bench-Handler-Ms"
TARGET_MS = 300.0
CATALOG_WAIT_SECONDS = 10.0
SETTLE_SECONDS = 300.0
MINUTE = "%Y-%m-%dT%H:%M"

T = TypeVar("T")


@web.middleware
async def handler_time(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The handler's own time, on every answer (the JSON routes send no Server-Timing)."""
    started = time.perf_counter()
    response = await handler(request)
    response.headers[HANDLER_MS] = f"{(time.perf_counter() - started) * 1000:.1f}"
    return response


async def seed_key(settings: Settings) -> tuple[uuid.UUID, str]:
    """A business organisation, a project and a read/write/deploy key: (project, secret)."""
    async with transaction(settings) as session:
        org = await create_organization(session, f"bench-{uuid.uuid4().hex[:8]}", "business")
        project = await create_project(session, org.id, "bench")
        key = await create_api_key(session, project.id, ["read", "write", "deploy"], "bench")
    return project.id, key.secret


async def until(what: str, found: Callable[[], T | None]) -> T:
    """Poll the app's catalog (it reloads from the store every quarter second)."""
    deadline = time.monotonic() + CATALOG_WAIT_SECONDS
    while (value := found()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the catalog never showed {what}")
        await asyncio.sleep(0.05)
    return value


async def call_api(http: ClientSession, key: str, path: str, body: Any) -> Any:
    """POST to the JSON API; its answer (2xx asserted)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(path, json=body, headers=headers) as response:
        assert response.status < 300, f"{path}: {response.status} {await response.text()}"
        return await response.json()


async def make_prompt(
    app: web.Application, http: ClientSession, project_id: uuid.UUID, key: str
) -> tuple[str, PromptEntry]:
    """A prompt with four versions deployed 70/10/10/10: its public id and catalog entry."""
    plane = app[CONTROL_PLANE]
    await until("the bench key", lambda: plane.catalog.current.principal(digest(key)))
    made = await call_api(http, key, "/v1/prompts", {"name": "bench", "description": "bench"})
    prompt_id = str(made["id"])
    for number, _ in SPLIT:
        content = f"bench prompt, version {number}: {{{{q}}}}"
        await call_api(http, key, f"/v1/prompts/{prompt_id}/versions", {"content": content})
    traffic = [{"version": f"v{number}", "weight": weight} for number, weight in SPLIT]
    await call_api(http, key, f"/v1/prompts/{prompt_id}/deploy", {"traffic": traffic})

    def deployed() -> PromptEntry | None:
        entry = prompt_in_catalog(plane.catalog.current, project_id, prompt_id)
        ready = entry is not None and len(entry.versions_by_number) == len(SPLIT)
        return entry if ready else None

    return prompt_id, await until("the deployed prompt", deployed)


async def sign_in(http: ClientSession, key: str) -> None:
    """Post the sign-in form; the session's cookie stays in the client's jar."""
    form = {"key": key, "next": "/ui/prompts"}
    async with http.post("/ui/sign-in", data=form, allow_redirects=False) as response:
        assert response.status == 303, f"sign-in: {response.status} {await response.text()}"
    assert any(cookie.key == COOKIE for cookie in http.cookie_jar), "no session cookie"


@dataclass(frozen=True, slots=True)
class Case:
    """One window, as the page's query and as the JSON route's."""

    name: str
    page: dict[str, str]
    api: dict[str, str]


def cases(start: datetime, now: datetime) -> list[Case]:
    """The page's preset windows (from a whole hour, open at the end) and the whole history."""
    made = []
    for preset, length, bucket in (
        ("hour", timedelta(hours=1), "hour"),
        ("day", timedelta(days=1), "hour"),
        ("week", timedelta(days=7), "day"),
    ):
        begin = floor_hour(now - length).isoformat()
        made.append(Case(preset, {"window": preset}, {"from": begin, "bucket": bucket}))
    bounds = {"from": start.strftime(MINUTE), "to": now.strftime(MINUTE)}
    made.append(
        Case(f"custom {DAYS} days", {"window": "custom", **bounds}, {**bounds, "bucket": "day"})
    )
    return made


@dataclass(slots=True)
class Route:
    """One route of a case and its samples: wall time at the client, the service's own."""

    path: str
    params: dict[str, str]
    server_ms: Callable[[ClientResponse], float]
    headers: dict[str, str] | None = None
    wall: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)

    async def get(self, http: ClientSession) -> None:
        started = time.perf_counter()
        async with http.get(
            self.path, params=self.params, headers=self.headers, allow_redirects=False
        ) as response:
            body = await response.read()
            wall = (time.perf_counter() - started) * 1000
            assert response.status == 200, f"{self.path}: {response.status} {body[:300]!r}"
            self.wall.append(wall)
            self.server.append(self.server_ms(response))


async def measure(http: ClientSession, repeat: int, routes: list[Route]) -> None:
    """``repeat`` rounds after a warm-up one (``bench.compare_latency.timed``), each round
    calling every route in turn, so a change in the machine's load weighs on all alike."""

    async def round_() -> None:
        for route in routes:
            await route.get(http)

    await timed(repeat, round_)
    for route in routes:  # the warm-up's samples left out, as timed() does
        del route.wall[0], route.server[0]


def page_dur(response: ClientResponse) -> float:
    """The page's ``Server-Timing: page;dur=<ms>``."""
    timing = response.headers["Server-Timing"]
    name, _, dur = timing.partition(";dur=")
    assert name == "page", timing
    return float(dur)


def handler_dur(response: ClientResponse) -> float:
    """The benchmark middleware's time of the handler."""
    return float(response.headers[HANDLER_MS])


def row(case: str, name: str, route: Route, ratio: str) -> str:
    median = statistics.median
    return (
        f"  {case:<16} {name:<5} {median(route.server):10.1f} {p95(route.server):10.1f}"
        f" {median(route.wall):10.1f} {ratio:>10}"
    )


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def settled(settings: Settings) -> tuple[int, float]:
    """Wait for ClickHouse's background merges of the new parts to end (up to a limit), so
    they do not weigh on the first cases timed; the events stored, and the seconds waited."""
    client = await connect(settings)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < SETTLE_SECONDS:
            merges = await client.query(
                "SELECT count() FROM system.merges WHERE database = currentDatabase()"
            )
            if not merges.result_rows[0][0]:
                break
            await asyncio.sleep(1)
        result = await client.query("SELECT count() FROM analytics_events")
        return int(result.result_rows[0][0]), time.perf_counter() - started
    finally:
        await client.close()


async def run(settings: Settings, events: int, repeat: int) -> list[Figure]:
    print(f"load average at start (1, 5, 15 min): {load()}  ({os.cpu_count()} CPUs)")
    await upgrade(settings.database_url)
    await migrate(settings)
    project_id, key = await seed_key(settings)
    app = create_app(settings)
    app.middlewares.append(handler_time)  # the innermost: around the handler alone
    server = TestServer(app)
    await server.start_server()
    try:
        async with ClientSession(
            base_url=str(server.make_url("/")), cookie_jar=CookieJar(unsafe=True)
        ) as http:
            prompt_id, entry = await make_prompt(app, http, project_id, key)
            start = floor_hour(datetime.now(UTC) - timedelta(days=DAYS))
            seconds = await generate(settings, entry, events, start)
            print(
                f"generated {events:,} analytics events (+ {events // 10:,} signals,"
                f" {events // 20:,} usage links) in {seconds:.1f}s"
                f" from {start:%Y-%m-%d %H:%M} UTC over {DAYS} days"
            )
            stored, waited = await settled(settings)
            print(f"analytics events stored: {stored:,} (merges settled in {waited:.0f}s)")
            await sign_in(http, key)
            bearer = {"Authorization": f"Bearer {key}"}
            print(
                f"compare page vs JSON route, {repeat} interleaved runs each after a warm-up (ms);"
                " server = page: Server-Timing, json: handler time; page/json: of server p50s"
            )
            print(
                f"  {'case':<16} {'route':<5} {'server p50':>10} {'server p95':>10}"
                f" {'wall p50':>10} {'page/json':>10}"
            )
            worst = 0.0
            made: list[Figure] = []
            for case in cases(start, datetime.now(UTC)):
                page = Route(f"/ui/prompts/{prompt_id}/compare", case.page, page_dur)
                api = Route(f"/v1/prompts/{prompt_id}/compare", case.api, handler_dur, bearer)
                await measure(http, repeat, [page, api])
                ratio = statistics.median(page.server) / statistics.median(api.server)
                print(row(case.name, "page", page, f"{ratio:.2f}x"))
                print(row(case.name, "json", api, ""))
                worst = max(worst, p95(page.server))
                made.append(
                    figure(
                        f"{case.name}: page vs JSON route, server p50",
                        statistics.median(page.server),
                        "ms",
                        statistics.median(api.server),
                    )
                )
            verdict = "within" if worst <= TARGET_MS else "OVER"
            print(f"worst page p95 (server): {worst:.1f} ms, {verdict} {TARGET_MS:.0f} ms")
    finally:
        await server.close()
    print(f"load average at end (1, 5, 15 min): {load()}")
    return [*made, figure("worst page p95 (server)", worst, "ms")]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_compare")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--use-env", action="store_true", help="use PROMPTLINE_* services")
    add_json_option(parser)
    args = parser.parse_args()
    with bench_settings(args.use_env) as settings:
        write_json(args.json, "ui_compare", asyncio.run(run(settings, args.events, args.repeat)))


if __name__ == "__main__":
    main()
