"""The load generator of ``bench.edge_load``: a separate process that drives the edge.

``python -m bench.edge_loadgen <json spec>`` sends requests from ``concurrency`` keep-alive
connections until ``events`` events were sent or ``seconds`` passed, and prints one JSON
line: requests, accepted events, errors, elapsed seconds, and latency percentiles.

A batch answered 207 accepted some of its events: those count as accepted and the rest
as rejected events (:func:`outcome`), so a partly refused batch is not a failed request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import aiohttp


def _body(spec: dict[str, Any], sequence: int) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of request number ``sequence``."""
    analytics = {"prompt_id": spec["prompt_id"], "version_hash": spec["version_hash"]}
    if spec["mode"] == "signal":
        return f"/api/v1/prompts/{spec['prompt_name']}/signals", {
            "value": "positive",
            "metadata": {"session_id": f"s{sequence}", "response_length": 342},
        }
    if spec["mode"] == "analytics":
        return "/api/v1/prompts/analytics", {**analytics, "latency_ms": 412.5, "cost_usd": 0.002}
    events = [
        {
            "type": "analytics",
            **analytics,
            "latency_ms": 412.5,
            "cost_usd": 0.002,
            "idempotency_key": f"{sequence}-{i}",
        }
        for i in range(spec["batch"])
    ]
    return "/api/v1/events/batch", {"events": events}


def outcome(status: int, body: bytes, per_request: int) -> tuple[int, int]:
    """(accepted, rejected) events of one answer; a 207 says how many in its body."""
    if status in (200, 201, 204):
        return per_request, 0
    if status == 207:
        answer = json.loads(body)
        return int(answer["accepted"]), int(answer["rejected"])
    return 0, per_request


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive the edge as ``spec`` says; the measurements."""
    per_request = spec["batch"] if spec["mode"] == "batch" else 1
    headers = {"Authorization": f"Bearer {spec['api_key']}", "Content-Type": "application/json"}
    bodies = [_body(spec, n) for n in range(64)]
    encoded = [(path, json.dumps(body).encode()) for path, body in bodies]
    latencies: list[float] = []
    counts = {"requests": 0, "events": 0, "errors": 0, "rejected_events": 0}
    deadline = time.perf_counter() + spec["seconds"]
    budget = spec["events"] // per_request
    tag = uuid.uuid4().hex[:6]

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        sequence = offset
        while time.perf_counter() < deadline and counts["requests"] < budget:
            counts["requests"] += 1
            path, body = encoded[sequence % len(encoded)]
            sequence += spec["concurrency"]
            started = time.perf_counter()
            headers_now = headers
            if spec["mode"] != "batch":
                headers_now = {**headers, "Idempotency-Key": f"{tag}-{sequence}"}
            async with session.post(spec["url"] + path, data=body, headers=headers_now) as resp:
                answer = await resp.read()
                status = resp.status
            latencies.append(time.perf_counter() - started)
            accepted, rejected = outcome(status, answer, per_request)
            counts["events"] += accepted
            counts["rejected_events"] += rejected
            if accepted == 0:
                counts["errors"] += 1

    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session, n) for n in range(spec["concurrency"])))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def percentile(fraction: float) -> float:
        index = min(len(latencies) - 1, int(fraction * len(latencies)))
        return latencies[index] * 1000 if latencies else float("nan")

    return {
        **counts,
        "seconds": elapsed,
        "events_per_second": counts["events"] / elapsed,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    }


def main() -> None:
    """Entry point: the spec is the first argument, as JSON."""
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))


if __name__ == "__main__":
    main()
