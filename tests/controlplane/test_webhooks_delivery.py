"""The deliverer against a local receiver: signed, retried with backoff, given up, and sent
once however many deliverers run, on SQLite and PostgreSQL. Time is a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.ids import IdShape, encode
from controlplane.store.models import Delivery, Webhook
from controlplane.tenancy import create_organization, create_project
from controlplane.webhooks.delivery import WebhookDelivery
from controlplane.webhooks.events import DEPLOYMENT_CREATED, ROLLOUT_STEP
from controlplane.webhooks.outbox import enqueue
from controlplane.webhooks.registry import create_webhook
from controlplane.webhooks.signing import verify_signature
from controlplane.webhooks.targets import GuardedResolver
from promptline.settings import Settings

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Clock:
    """The deliverer's time: moved by the test only."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local webhook receiver answering each request with the next status of ``statuses``
    (the last one repeats)."""

    url: str
    statuses: list[int]
    got: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="", statuses=[204])

    async def hook(request: web.Request) -> web.Response:
        state.got.append(Received(request.path, dict(request.headers), await request.read()))
        state.arrived.set()
        status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
        if status in (301, 302, 307):
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/elsewhere", hook)
    async with TestServer(app, host="127.0.0.1") as server:
        state.url = str(server.make_url("/hook"))
        yield state


@dataclass
class Project:
    id: uuid.UUID
    webhook: Webhook


async def _project(sessions: async_sessionmaker[AsyncSession], url: str) -> Project:
    async with sessions() as session, session.begin():
        org = await create_organization(session, f"org-{uuid.uuid4().hex[:8]}", "free")
        project = await create_project(session, org.id, "hooks")
        hook = await create_webhook(session, project.id, url, ["*"], "")
    return Project(project.id, hook)


async def _enqueue(
    sessions: async_sessionmaker[AsyncSession],
    project: Project,
    data: dict[str, Any],
    event_type: str = DEPLOYMENT_CREATED,
) -> None:
    async with sessions() as session, session.begin():
        assert await enqueue(session, project.id, event_type, data) == 1
        # Created "now" on the test's clock, so its age is the clock's business too.
        await session.execute(update(Delivery).values(created_at=START, next_attempt_at=START))


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Delivery]:
    async with sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def _one_event(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver, statuses: list[int]
) -> Project:
    """A project whose webhook is the receiver, answering ``statuses``, and one event."""
    receiver.statuses = statuses
    project = await _project(sessions, receiver.url)
    await _enqueue(sessions, project, {"n": 1})
    return project


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _settings(**overrides: Any) -> Settings:
    return Settings(webhook_allow_private_targets=True, **overrides)


async def test_a_delivery_is_signed_and_carries_its_envelope(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    project = await _project(sessions, receiver.url)
    data = {"deployment_id": "dep_1", "traffic": [{"version": "v2", "weight": 100}]}
    await _enqueue(sessions, project, data)
    clock = Clock()
    async with WebhookDelivery(sessions, _settings(), clock=clock) as deliverer:
        assert await deliverer.deliver_due() == 1
        assert await deliverer.deliver_due() == 0

    [request] = receiver.got
    [row] = await _rows(sessions)
    delivery_id = encode(IdShape.DELIVERY, row.id)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Promptline-Event"] == DEPLOYMENT_CREATED
    assert request.headers["Promptline-Delivery"] == delivery_id
    assert orjson.loads(request.body) == {
        "id": delivery_id,
        "type": DEPLOYMENT_CREATED,
        "created_at": "2026-12-07T12:00:00Z",
        "project_id": str(project.id),
        "data": data,
    }
    header = request.headers["Promptline-Signature"]
    assert header.startswith(f"t={int(START.timestamp())},v1=")
    secret, now = project.webhook.secret, START.timestamp()
    assert verify_signature(secret, header, request.body, 300, now=now)
    assert not verify_signature(secret, header, request.body + b" ", 300, now=now)
    assert not verify_signature("whsec_other", header, request.body, 300, now=now)
    assert not verify_signature(secret, header, request.body, 300, now=now + 301)
    assert (row.attempts, row.last_status, row.last_error) == (1, 204, None)
    assert (_aware(row.delivered_at), row.next_attempt_at, row.failed_at) == (START, None, None)


async def test_a_failed_delivery_is_retried_after_a_backoff_and_then_delivered(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await _one_event(sessions, receiver, [500, 500, 200])
    clock = Clock()
    waits = []
    async with WebhookDelivery(sessions, _settings(), clock=clock) as deliverer:
        for attempt in (1, 2):
            assert await deliverer.deliver_due() == 1
            [row] = await _rows(sessions)
            assert (row.attempts, row.last_status, row.last_error) == (attempt, 500, "HTTP 500")
            due = _aware(row.next_attempt_at)
            assert due is not None
            waits.append(due - clock.now)
            assert await deliverer.deliver_due() == 0  # not due yet
            clock.now = due
        assert await deliverer.deliver_due() == 1

    # 10 s doubling, less up to half of it at random
    assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=10)
    assert timedelta(seconds=10) <= waits[1] <= timedelta(seconds=20)
    [row] = await _rows(sessions)
    assert (row.attempts, row.last_status, row.last_error) == (3, 200, None)
    assert _aware(row.delivered_at) == clock.now
    assert len({request.headers["Promptline-Delivery"] for request in receiver.got}) == 1
    assert len({request.body for request in receiver.got}) == 1  # the same event each time


async def test_a_delivery_is_given_up_after_its_last_attempt(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await _one_event(sessions, receiver, [503])
    clock = Clock()
    async with WebhookDelivery(
        sessions, _settings(webhook_max_attempts=3), clock=clock
    ) as deliverer:
        for _attempt in range(3):
            assert await deliverer.deliver_due() == 1
            [row] = await _rows(sessions)
            clock.now = _aware(row.next_attempt_at) or clock.now + timedelta(days=1)
        assert await deliverer.deliver_due() == 0
    [row] = await _rows(sessions)
    assert (row.attempts, row.next_attempt_at, row.delivered_at) == (3, None, None)
    assert row.failed_at is not None and row.last_error == "HTTP 503"
    assert len(receiver.got) == 3


async def test_a_delivery_older_than_the_limit_is_given_up_after_one_more_failure(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await _one_event(sessions, receiver, [500])
    clock = Clock()
    clock.now = START + timedelta(hours=25)
    async with WebhookDelivery(sessions, _settings(), clock=clock) as deliverer:
        assert await deliverer.deliver_due() == 1
    [row] = await _rows(sessions)
    assert (row.attempts, row.next_attempt_at, _aware(row.failed_at)) == (1, None, clock.now)


async def test_redirects_are_not_followed(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    await _one_event(sessions, receiver, [302])
    async with WebhookDelivery(sessions, _settings(), clock=Clock()) as deliverer:
        assert await deliverer.deliver_due() == 1
    assert [request.path for request in receiver.got] == ["/hook"]
    [row] = await _rows(sessions)
    assert (row.last_status, row.delivered_at) == (302, None)


async def test_private_targets_are_refused_at_delivery_unless_allowed(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    """A webhook registered while allowed (or whose name now resolves to loopback)."""
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
        project = await _project(sessions, url)
        await _enqueue(sessions, project, {"n": 1})
    async with WebhookDelivery(sessions, Settings(), clock=Clock()) as deliverer:
        assert await deliverer.deliver_due() == 2
    assert receiver.got == []
    for row in await _rows(sessions):
        assert row.last_error is not None and row.last_error.startswith("refused: the URL")
        assert row.next_attempt_at is not None  # retried later: addresses can change back


async def test_the_guarded_resolver_refuses_names_of_private_addresses() -> None:
    resolver = GuardedResolver()
    try:
        with pytest.raises(OSError, match="non-public"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


async def test_concurrent_deliverers_send_each_delivery_once(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    """On PostgreSQL the claims skip each other's locked rows; on SQLite they are taken by
    conditional updates: either way no delivery is sent twice, nor missed."""
    project = await _project(sessions, receiver.url)
    for number in range(40):
        async with sessions() as session, session.begin():
            await enqueue(session, project.id, ROLLOUT_STEP, {"n": number})
    clock = Clock()
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    async with contextlib.AsyncExitStack() as stack:
        deliverers = [
            await stack.enter_async_context(
                WebhookDelivery(sessions, _settings(), clock=clock, batch_size=7)
            )
            for _ in range(3)
        ]
        while sum(await asyncio.gather(*(one.deliver_due() for one in deliverers))):
            pass
    sent = [orjson.loads(request.body)["data"]["n"] for request in receiver.got]
    assert sorted(sent) == list(range(40))
    assert all(row.delivered_at is not None and row.attempts == 1 for row in await _rows(sessions))


async def test_run_delivers_until_stopped(
    sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    project = await _project(sessions, receiver.url)
    stop = asyncio.Event()
    deliverer = WebhookDelivery(sessions, _settings(webhook_poll_seconds=0.05))
    running = asyncio.create_task(deliverer.run(stop))
    async with sessions() as session, session.begin():
        await enqueue(session, project.id, DEPLOYMENT_CREATED, {"n": 1})
    await asyncio.wait_for(receiver.arrived.wait(), 60)
    stop.set()
    await asyncio.wait_for(running, 60)
    [row] = await _rows(sessions)
    assert row.delivered_at is not None
