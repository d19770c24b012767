"""``GET /metrics``: requests by route and status, errors by code, produce time, batch sizes."""

from __future__ import annotations

import logging
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.conftest import Client
from tests.ingest.support import PROMPT_NAME, FakeProducer, auth, edge_app

SIGNALS = "/api/v1/prompts/{prompt_id}/signals"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


async def test_metrics_count_requests_errors_produce_time_and_batches(client: Client) -> None:
    url = f"/api/v1/prompts/{PROMPT_NAME}/signals"
    for _ in range(2):
        await client.post(url, json={"value": "positive"}, headers=auth())
    await client.post(url, json={"value": "meh"}, headers=auth())
    await client.post("/api/v1/prompts/nope/signals", json={"value": "positive"}, headers=auth())
    await client.post("/no/such/route", json={})
    batch = {"events": [{"type": "signal", "prompt_id": PROMPT_NAME, "value": "positive"}] * 3}
    await client.post("/api/v1/events/batch", json=batch, headers=auth())

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = _samples(await response.text())

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    requests = "promptline_http_requests_total"
    assert value(requests, route=SIGNALS, method="POST", status="201") == 2
    assert value(requests, route=SIGNALS, method="POST", status="422") == 1
    assert value(requests, route=SIGNALS, method="POST", status="404") == 1
    assert value(requests, route="unmatched", method="POST", status="404") == 1
    errors = "promptline_http_errors_total"
    assert value(errors, route=SIGNALS, code="validation_error") == 1
    assert value(errors, route=SIGNALS, code="not_found") == 1
    assert value("promptline_http_request_duration_seconds_count", route=SIGNALS) == 4
    assert value("promptline_edge_produce_duration_seconds_count", kind="signal") == 2
    assert value("promptline_edge_produce_duration_seconds_count", kind="batch") == 1
    assert value("promptline_edge_batch_events_count") == 1
    assert value("promptline_edge_batch_events_sum") == 3
    assert value("promptline_edge_events_total", kind="signal", outcome="accepted") == 5
    assert any(name == "process_cpu_seconds_total" for name, _labels in samples)
    assert re.search(r"^# HELP promptline_http_requests_total ", await response.text(), re.M)


async def test_access_log_writes_one_structured_line_per_request_when_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = edge_app(FakeProducer(), access_log=True)
    caplog.set_level(logging.INFO, logger="promptline.access")
    async with TestClient(TestServer(app)) as client:
        await client.post(
            f"/api/v1/prompts/{PROMPT_NAME}/signals", json={"value": "x"}, headers=auth()
        )
    [record] = [r for r in caplog.records if r.name == "promptline.access"]
    assert record.__dict__["route"] == SIGNALS and record.__dict__["status"] == 422
    assert record.__dict__["code"] == "validation_error"
    assert record.__dict__["duration_ms"] >= 0


async def test_access_log_is_off_by_default(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="promptline.access")
    await client.post(f"/api/v1/prompts/{PROMPT_NAME}/signals", json={"value": "x"}, headers=auth())
    assert not [r for r in caplog.records if r.name == "promptline.access"]


async def test_unmatched_paths_and_methods_are_envelopes_counted_as_unmatched(
    client: Client,
) -> None:
    """The catch-all answers what no route takes: 404, or 405 naming the methods that are."""
    missing = await client.get("/v2/nothing/here")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong_method = await client.delete(f"/api/v1/prompts/{PROMPT_NAME}/signals", headers=auth())
    assert wrong_method.status == 405
    assert set(wrong_method.headers["Allow"].split(",")) == {"POST", "OPTIONS"}
    assert (await wrong_method.json())["error"]["code"] == "method_not_allowed"
    head = await client.head("/metrics")  # GET routes take HEAD, as aiohttp's add_get does
    assert head.status == 200

    samples = _samples(await (await client.get("/metrics")).text())
    requests = "promptline_http_requests_total"
    unmatched = {"route": "unmatched"}
    assert (
        samples[(requests, frozenset({**unmatched, "method": "GET", "status": "404"}.items()))] == 1
    )
    assert (
        samples[(requests, frozenset({**unmatched, "method": "DELETE", "status": "405"}.items()))]
        == 1
    )
    errors = "promptline_http_errors_total"
    assert samples[(errors, frozenset({**unmatched, "code": "method_not_allowed"}.items()))] == 1
