"""No event the edge accepts can stall the warehouse: extreme numbers end to end.

Events go through the edge (in-process) to real Kafka, one worker and real ClickHouse.
Every extreme value of every number that reaches a column is either refused by the edge
or stored bit for bit (negative zero keeps its sign); nothing accepted is dead-lettered;
and after each one, an ordinary event of another tenant still reaches ClickHouse, so no
value has held the worker still. A hypothesis property test then sends batches drawn
from the documented domains, bounds included: each event is stored exactly, the worker
commits past it, and none is dead-lettered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.authoring import get_or_create_prompt, push_version
from controlplane.store.engine import create_engine, session_factory
from controlplane.tenancy import create_api_key, create_organization, create_project
from promptline.commands.admin import quickstart
from promptline.commands.deadletters import read_dead_letters
from promptline.server import create_app
from promptline.settings import Settings
from promptline.topics import EventKind, dead_letter_topic, topic_name
from promptline.worker import run_worker
from schemas.domains import SMALLEST_MAGNITUDE, Domain
from schemas.signal_columns import UINT32_MAX
from tests.support.extremes import ALL_EXTREMES, DOMAINS, as_uint64
from tests.workers.helpers import committed_offsets, query, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

T = TypeVar("T")

TOP_VERSION = 2**31 - 1
"""The largest version number the control plane stores; the demo prompt gets one."""
WITHIN = 30.0
"""Seconds to wait for a row: far more than a worker needs, so only a stall exceeds it."""
NUMBERS = tuple(DOMAINS)
KINDS = (EventKind.ANALYTICS, EventKind.SIGNAL, EventKind.USAGE)
HASH = "version_hash"


@dataclass
class Tenant:
    """What the tests need of a project: its key, prompt and a version hash of it."""

    project_id: str
    api_key: str
    prompt_id: str
    prompt_name: str
    version_hash: str


@dataclass
class Stack:
    """The edge, one running worker, the tenant under test and a bystander tenant."""

    settings: Settings
    client: TestClient[web.Request, web.Application]
    tenant: Tenant
    bystander: Tenant
    letters: AIOKafkaConsumer
    """Reads the dead-letter topic's end offsets: how many letters were ever written."""
    produced: dict[EventKind, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    keys: itertools.count[int] = field(default_factory=itertools.count)

    def key(self, prefix: str) -> str:
        """An idempotency key no other event of the test has: it names the event's row."""
        return f"{prefix}-{next(self.keys)}"

    async def post(self, path: str, body: Any, tenant: Tenant | None = None) -> tuple[int, Any]:
        """POST ``body`` as JSON (every double exactly, integers of any size)."""
        response = await self.client.post(
            path,
            data=json.dumps(body),
            headers={"Authorization": f"Bearer {(tenant or self.tenant).api_key}"},
        )
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None

    async def analytics(self, **fields: Any) -> tuple[int, Any]:
        body = {"prompt_id": self.tenant.prompt_id, "version_hash": self.tenant.version_hash}
        status, answer = await self.post("/api/v1/prompts/analytics", body | fields)
        if status == 204:
            self.produced[EventKind.ANALYTICS] += 1
        return status, answer

    async def bystander_arrives(self) -> None:
        """An ordinary event of another tenant reaches ClickHouse: the worker is not held."""
        key = self.key("bystander")
        body = {
            "prompt_id": self.bystander.prompt_id,
            "version_hash": self.bystander.version_hash,
            "latency_ms": 120.0,
            "idempotency_key": key,
        }
        status, answer = await self.post("/api/v1/prompts/analytics", body, self.bystander)
        assert status == 204, answer
        self.produced[EventKind.ANALYTICS] += 1
        await self.rows("analytics_events", [key], self.bystander)

    async def stored_then_bystander(self, stored: Awaitable[T]) -> T:
        """``stored`` (an accepted event's row), and a bystander's event sent after it.

        Both are awaited together, so a round costs one flush of the worker.
        """
        row, _ = await asyncio.gather(stored, self.bystander_arrives())
        return row

    async def rows(
        self, table: str, keys: list[str], tenant: Tenant | None = None, columns: str = "1"
    ) -> dict[str, tuple[Any, ...]]:
        """The rows of ``keys`` (dedup keys) once all are stored, each stored exactly once."""
        sql = (
            f"SELECT dedup_key, {columns} FROM {table}"
            " WHERE project_id = {project:UUID} AND dedup_key IN {keys:Array(String)}"
        )
        project = (tenant or self.tenant).project_id

        async def stored() -> list[tuple[Any, ...]] | None:
            found = await query(self.settings, sql, project=project, keys=keys)
            return found if len(found) >= len(keys) else None

        found = await wait_until(stored, f"{len(keys)} rows of {table}", within=WITHIN, every=0.05)
        by_key = {row[0]: row[1:] for row in found}
        assert len(by_key) == len(found) == len(keys), found  # never stored twice
        return by_key

    async def settled(self) -> None:
        """The worker has committed past everything produced, and dead-lettered nothing."""
        wanted = {
            topic_name(self.settings.kafka_topic_prefix, k): n for k, n in self.produced.items()
        }

        async def caught_up() -> bool:
            committed = await committed_offsets(self.settings, KINDS)
            return all(committed.get(topic, 0) >= n for topic, n in wanted.items())

        await wait_until(caught_up, "offsets committed past every event", within=WITHIN)
        topic = dead_letter_topic(self.settings.kafka_topic_prefix)
        partitions = self.letters.partitions_for_topic(topic)
        assert partitions, "the dead-letter topic exists"
        ends = await self.letters.end_offsets([TopicPartition(topic, p) for p in partitions])
        if any(ends.values()):
            pytest.fail(f"dead-lettered: {await read_dead_letters(self.settings)}")


async def _new_tenant(settings: Settings, name: str) -> Tenant:
    """An organisation of its own with a project, a prompt with one version, and a key."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            org = await create_organization(session, name, "business")
            project = await create_project(session, org.id, "default")
            prompt = await get_or_create_prompt(session, project.id, f"{name}-prompt")
            version = await push_version(session, prompt, f"Hello from {name}.")
            issued = await create_api_key(session, project.id, ["ingest"], name)
            return Tenant(
                str(project.id), issued.secret, str(prompt.id), prompt.name, version.content_hash
            )
    finally:
        await engine.dispose()


async def _add_top_version(settings: Settings, tenant: Tenant) -> None:
    """Give the tenant's prompt version 2^31 - 1, so a usage link can name the bound."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            prompt = await get_or_create_prompt(
                session, uuid.UUID(tenant.project_id), tenant.prompt_name
            )
            await push_version(session, prompt, "The top version.", number=TOP_VERSION)
    finally:
        await engine.dispose()


@pytest.fixture
async def stack(migrated: Settings) -> AsyncIterator[Stack]:
    # Flush often: each round waits for a flush, and there are a few hundred of them.
    migrated = migrated.model_copy(update={"worker_batch_max_seconds": 0.05})
    demo = await quickstart(migrated)
    tenant = Tenant(
        demo["project_id"],
        demo["api_key"],
        demo["prompt_id"],
        demo["prompt_name"],
        demo["version_hash"],
    )
    await _add_top_version(migrated, tenant)
    bystander = await _new_tenant(migrated, "bystander")
    letters = AIOKafkaConsumer(bootstrap_servers=migrated.kafka_bootstrap_servers)
    await letters.start()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(migrated, stop))
    try:
        await letters.topics()  # metadata: the dead-letter topic's partitions
        async with TestClient(TestServer(create_app(migrated))) as client:
            yield Stack(migrated, client, tenant, bystander, letters)
    finally:
        stop.set()
        await worker
        await letters.stop()


ANALYTICS_BITS = ", ".join(
    f"if(isNull({name}), NULL, reinterpretAsUInt64(assumeNotNull({name})))" for name in NUMBERS
)
HOURLY = (
    "SELECT sum(events), "
    + ", ".join(
        f"sum({n}_count), sum({n}_sum), sum({n}_sum_sq)" for n in ("latency", "cost", "score")
    )
    + ", quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(latency_quantiles)"
    " FROM analytics_hourly WHERE project_id = {project:UUID}"
)


async def test_extreme_analytics_numbers_are_refused_or_stored_bit_for_bit(stack: Stack) -> None:
    sent: dict[str, tuple[str, float]] = {}
    for case in ALL_EXTREMES:
        key = stack.key("extreme")
        status, answer = await stack.analytics(**{case.field: case.value, "idempotency_key": key})
        if case.accepted:
            assert status == 204, (case, answer)
            sent[key] = (case.field, case.value)
            await stack.stored_then_bystander(stack.rows("analytics_events", [key]))
        else:
            assert status == 400, (case, answer)
            assert answer["error"]["field"] == case.field
            await stack.bystander_arrives()

    # The batch route, every extreme in one request: the same verdicts, the same rows.
    keys = [stack.key("batched") for _ in ALL_EXTREMES]
    events = [
        {
            "type": "analytics",
            "prompt_id": stack.tenant.prompt_id,
            "version_hash": stack.tenant.version_hash,
            "idempotency_key": key,
            case.field: case.value,
        }
        for key, case in zip(keys, ALL_EXTREMES, strict=True)
    ]
    status, answer = await stack.post("/api/v1/events/batch", {"events": events})
    assert status == 207
    for key, case, result in zip(keys, ALL_EXTREMES, answer["results"], strict=True):
        assert result["status"] == (204 if case.accepted else 400), (case, result)
        if case.accepted:
            sent[key] = (case.field, case.value)
            stack.produced[EventKind.ANALYTICS] += 1
    await stack.bystander_arrives()

    stored = await stack.rows("analytics_events", list(sent), columns=ANALYTICS_BITS)
    for key, (name, value) in sent.items():
        expected = tuple(as_uint64(value) if other == name else None for other in NUMBERS)
        assert stored[key] == expected, (name, value)
    await _hourly_aggregates_hold_every_value(stack, list(sent.values()))
    await stack.settled()


async def _hourly_aggregates_hold_every_value(
    stack: Stack, values: list[tuple[str, float]]
) -> None:
    """Counts exact; sums and sums of squares finite and what the values add up to."""
    [row] = await query(stack.settings, HOURLY, project=stack.tenant.project_id)
    assert row[0] == len(values)
    for position, name in enumerate(NUMBERS):
        mine = [value for field_name, value in values if field_name == name]
        count, total, squares = row[1 + 3 * position : 4 + 3 * position]
        assert count == len(mine), name
        assert math.isfinite(total) and math.isfinite(squares), name
        assert math.isclose(total, math.fsum(mine), rel_tol=1e-9, abs_tol=1e-3), name
        assert math.isclose(squares, math.fsum(v * v for v in mine), rel_tol=1e-9), name
    assert all(math.isfinite(q) for q in row[-1])


USAGE_VERSIONS: list[tuple[Any, bool]] = [
    (1, True),
    (TOP_VERSION, True),
    (TOP_VERSION + 1, False),
    (UINT32_MAX, False),
    (UINT32_MAX + 1, False),
    (2**64 - 1, False),
    (2**64, False),  # past 64 bits: parsed as a double, which is not an integer
    (0, False),
    (-1, False),
    (1.0, False),
    (-0.0, False),
]
"""A link's version, and whether the edge takes it (the demo prompt has 1 and 2^31 - 1)."""
SIGNAL_VERSIONS: list[tuple[Any, int | None]] = [
    (1, 1),
    (UINT32_MAX, UINT32_MAX),
    (f"v{UINT32_MAX}", UINT32_MAX),
    (" 7 ", 7),
    (None, 0),
    (UINT32_MAX + 1, None),
    (2**64 - 1, None),
    (2**64, None),
    (f"v{UINT32_MAX + 1}", None),
    (0, None),
    (4.0, None),
    (-0.0, None),
    (SMALLEST_MAGNITUDE, None),
    (True, 0),  # names no version: the client's own data, kept in the metadata
    ("four", 0),
]


async def test_extreme_versions_are_refused_or_stored_exactly(stack: Stack) -> None:
    for version, accepted in USAGE_VERSIONS:
        trace = str(uuid.uuid4())
        link = {"name": stack.tenant.prompt_name, "version": version, "trace_id": trace}
        status, answer = await stack.post("/dashboard/prompts/usage", link)
        if accepted:
            assert status == 201, (version, answer)
            stack.produced[EventKind.USAGE] += 1
            key = f"{version}:{trace}:"
            row = await stack.stored_then_bystander(
                stack.rows("usage_links", [key], columns="version")
            )
            assert row == {key: (version,)}
        else:
            assert (status, answer["error"]["field"]) == (422, "version"), version
            await stack.bystander_arrives()

    for named, number in SIGNAL_VERSIONS:
        metadata = {"version": named, HASH: stack.tenant.version_hash}
        status, answer = await stack.post(
            f"/api/v1/prompts/{stack.tenant.prompt_name}/signals",
            {"value": "positive", "metadata": metadata},
        )
        if number is not None:
            assert status == 201, (named, answer)
            stack.produced[EventKind.SIGNAL] += 1
            stored = _signal_row(stack, answer["data"]["id"])
            [(version, digest, text)] = await stack.stored_then_bystander(stored)
            assert (version, digest, json.loads(text)) == (number, metadata[HASH], metadata)
        else:
            assert (status, answer["error"]["field"]) == (422, "metadata.version"), named
            await stack.bystander_arrives()
    await stack.settled()


async def _signal_row(stack: Stack, signal_id: int) -> list[tuple[Any, ...]]:
    """The stored row of the signal the edge answered ``signal_id`` for, once it is stored."""
    sql = "SELECT version, version_hash, metadata FROM signal_events WHERE signal_id = {i:UInt64}"
    rows: list[tuple[Any, ...]] = await wait_until(
        lambda: query(stack.settings, sql, i=signal_id),
        f"signal {signal_id} stored",
        within=WITHIN,
        every=0.05,
    )
    return rows


def _numbers(domain: Domain) -> st.SearchStrategy[float | None]:
    """None, both zeros, the bounds, and any double between them (either sign if signed)."""
    inside = st.floats(min_value=SMALLEST_MAGNITUDE, max_value=domain.high)
    bounds = st.sampled_from(
        [SMALLEST_MAGNITUDE, math.nextafter(SMALLEST_MAGNITUDE, 1), domain.high]
    )
    magnitudes = inside | bounds
    signed = st.tuples(magnitudes, st.booleans()).map(lambda m: -m[0] if m[1] else m[0])
    return st.none() | st.sampled_from([0.0, -0.0]) | (signed if domain.signed else magnitudes)


ANALYTICS_FIELDS = st.fixed_dictionaries({name: _numbers(d) for name, d in DOMAINS.items()})
SIGNAL_VERSION = (
    st.none()
    | st.integers(1, UINT32_MAX)
    | st.integers(1, UINT32_MAX).map(lambda n: f"v{n}")
    | st.sampled_from([1, UINT32_MAX, str(UINT32_MAX), f"V{UINT32_MAX}"])
)
EVENTS = st.lists(
    st.one_of(
        ANALYTICS_FIELDS.map(lambda fields: ("analytics", fields)),
        SIGNAL_VERSION.map(lambda version: ("signal", version)),
        st.sampled_from([1, TOP_VERSION]).map(lambda version: ("usage", version)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=EVENTS)
async def test_every_event_the_edge_accepts_is_stored_exactly_and_never_dead_lettered(
    stack: Stack, drawn: list[tuple[str, Any]]
) -> None:
    events: list[dict[str, Any]] = []
    expected: dict[str, dict[str, Any]] = {
        "analytics_events": {},
        "signal_events": {},
        "usage_links": {},
    }
    for kind, drawn_value in drawn:
        key = stack.key(kind)
        if kind == "analytics":
            fields = {name: value for name, value in drawn_value.items() if value is not None}
            events.append(
                {
                    "type": "analytics",
                    "prompt_id": stack.tenant.prompt_id,
                    "version_hash": stack.tenant.version_hash,
                    "idempotency_key": key,
                    **drawn_value,
                }
            )
            bits = tuple(as_uint64(fields[n]) if n in fields else None for n in NUMBERS)
            expected["analytics_events"][key] = bits
            stack.produced[EventKind.ANALYTICS] += 1
        elif kind == "signal":
            events.append(
                {
                    "type": "signal",
                    "prompt_id": stack.tenant.prompt_name,
                    "value": "negative",
                    "metadata": {"version": drawn_value},
                    "idempotency_key": key,
                }
            )
            number = 0 if drawn_value is None else int(str(drawn_value).strip().lstrip("vV"))
            expected["signal_events"][key] = (number,)
            stack.produced[EventKind.SIGNAL] += 1
        else:
            trace = str(uuid.uuid4())
            events.append(
                {
                    "type": "usage",
                    "name": stack.tenant.prompt_name,
                    "version": drawn_value,
                    "trace_id": trace,
                }
            )
            expected["usage_links"][f"{drawn_value}:{trace}:"] = (drawn_value,)
            stack.produced[EventKind.USAGE] += 1
    status, answer = await stack.post("/api/v1/events/batch", {"events": events})
    assert status == 200, answer
    assert answer["accepted"] == len(events)
    columns = {
        "analytics_events": ANALYTICS_BITS,
        "signal_events": "version",
        "usage_links": "version",
    }
    for table, wanted in expected.items():
        if wanted:
            assert await stack.rows(table, list(wanted), columns=columns[table]) == wanted
    await stack.settled()
