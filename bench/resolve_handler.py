"""The resolve route in process: handler and serving wrapper per call, without sockets.

Run: ``.venv/bin/python -m bench.resolve_handler [--calls N]``. It builds the app's real
serving wrapper and the control-plane routes over an in-memory catalog (the prompt, 90/10
canary and rule of ``bench.resolve_http``), then times ``Application._handle`` on one
request, against the same app answering a constant body. The difference is what resolve
itself costs per call, free of the network and of the load generator's noise; on a real
server the same code costs a few times more (colder caches), so this is a floor, and the
figure to watch when changing the hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bench.figures import Figure, add_json_option, figure, write_json
from bench.resolve_http import DEPLOY, OVERRIDES, V1, V2
from controlplane import api
from controlplane.catalog import (
    Catalog,
    DeploymentRecord,
    Principal,
    VersionRecord,
    build_prompt_entry,
)
from controlplane.keys import digest
from ingest.metrics import EdgeMetrics
from ingest.observe import serving_app
from promptline.http.families import dialect_for
from promptline.http.routes import served_routes

KEY = "pl_sk_" + "b" * 32
BODY = b'{"prompt":"support-bot","user_id":"usr_12345","context":{"company":"Acme"}}'
ROUNDS = 5


class _Watcher:
    """What the routes read of a catalog watcher: the current snapshot."""

    def __init__(self, catalog: Catalog) -> None:
        self.current = catalog


def catalog() -> Catalog:
    """One business-plan key and the benchmark's prompt, deployed as in the HTTP bench."""
    project, prompt_id = uuid.uuid4(), uuid.uuid4()
    versions = [VersionRecord(uuid.uuid4(), 1, V1), VersionRecord(uuid.uuid4(), 2, V2)]
    deployment = DeploymentRecord(
        uuid.uuid4(),
        str(DEPLOY["label"]),
        DEPLOY["traffic"],
        DEPLOY["rules"],
        datetime.now(UTC),
    )
    entry = build_prompt_entry(prompt_id, project, "support-bot", versions, [deployment])
    principal = Principal(
        uuid.uuid4(),
        project,
        uuid.uuid4(),
        "business",
        frozenset({"read", "write", "deploy", "ingest"}),
        dict(OVERRIDES),
    )
    return Catalog(revision=1, principals={digest(KEY): principal}, prompts={entry.id: entry})


async def _constant(_request: web.Request) -> web.Response:
    return web.Response(body=b'{"constant":true}', content_type="application/json")


async def per_call_us(path: str, calls: int) -> float:
    """Median microseconds per ``Application._handle`` of one POST to ``path``."""
    app = serving_app(dialect_for, EdgeMetrics())
    api.add_routes(app)
    served_routes(app).add_post("/constant", _constant)
    plane = api.ControlPlane(catalog=cast(Any, _Watcher(catalog())), limiter=api.RateLimiter())
    app[api.CONTROL_PLANE] = plane
    app.freeze()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    request = make_mocked_request("POST", path, headers=headers, app=app)
    request._read_bytes = BODY  # the body, as if read from the socket
    first = await app._handle(request)
    if first.status != 200:
        raise RuntimeError(f"{path} answered {first.status}")
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            request._match_info = None  # routed afresh, as a new request is
            await app._handle(request)
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


async def run(calls: int) -> list[Figure]:
    constant = await per_call_us("/constant", calls)
    resolve = await per_call_us("/v1/resolve", calls)
    print(f"in process, median of {ROUNDS} rounds of {calls:,} calls:")
    print(f"  constant handler  {constant:7.2f} us/call")
    print(f"  POST /v1/resolve  {resolve:7.2f} us/call  (+{resolve - constant:.2f} us)")
    return [figure("POST /v1/resolve per call vs a constant handler", resolve, "us", constant)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    add_json_option(parser)
    args = parser.parse_args()
    write_json(args.json, "resolve_handler", asyncio.run(run(args.calls)))


if __name__ == "__main__":
    main()
