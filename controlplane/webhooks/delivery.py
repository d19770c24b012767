"""Sending the outbox: claim due deliveries, POST them signed, settle or retry each.

A delivery is claimed in a short transaction that counts the attempt and pushes its
``next_attempt_at`` past the longest a send can take (a lease); on PostgreSQL the claim
reads with ``FOR UPDATE SKIP LOCKED``, so deliverers in several processes take disjoint
rows without waiting on one another, and every claim is also conditional on the row
being as it was read, so on SQLite (which has no row locks) two deliverers never both
take one row either. The request is sent outside any transaction (a slow receiver holds
no lock), then the outcome is written if the row is still the one claimed. A deliverer
that dies mid-send leaves its rows to be sent again once their lease ends: delivery is
at least once, and receivers drop repeats by ``id`` (also ``Promptline-Delivery``).

Failures (no 2xx, a redirect, an error, a refused address) are retried after an
exponential backoff with jitter, until ``webhook_max_attempts`` or
``webhook_give_up_seconds`` is reached, when the delivery is given up (``failed_at``).
The deliverer only reads and settles the outbox, so a receiver that is down never holds
up a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlplane.ids import IdShape, encode
from controlplane.store.models import Delivery, Webhook, utcnow
from controlplane.times import aware, iso
from controlplane.webhooks.outbox import envelope
from controlplane.webhooks.registry import rows_changed
from controlplane.webhooks.signing import signature_header
from controlplane.webhooks.targets import GuardedResolver, TargetPolicy, TargetRefused, check_target
from promptline.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 50
LEASE_MARGIN_SECONDS = 30.0
"""Added to the send timeout: a claimed row is not taken again before this has passed."""
MAX_ERROR_CHARS = 500
USER_AGENT = "promptline-webhooks/1"


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A delivery taken for one attempt, with what sending it needs."""

    delivery: Delivery
    url: str
    secret: str
    project_id: uuid.UUID
    attempts: int
    """The row's attempts once claimed: the outcome is written only while it still is."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None


class WebhookDelivery:
    """Delivers due webhook events until stopped (``run``), or one batch (``deliver_due``).

    ``http_session``: an aiohttp session to send with (closed by its owner); without one
    the deliverer makes its own, whose connections resolve names through
    :class:`~controlplane.webhooks.targets.GuardedResolver` unless private targets are
    allowed. ``clock`` (aware UTC datetimes) and ``rng`` (the jitter) are for tests.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        http_session: aiohttp.ClientSession | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._http = http_session
        self._own_http: aiohttp.ClientSession | None = None
        self._clock = clock
        self._rng = rng or random.Random()
        self._batch_size = batch_size
        self._policy = TargetPolicy.of(settings)
        self._timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds)
        self._lease = timedelta(
            seconds=settings.webhook_timeout_seconds
            + settings.webhook_resolve_timeout_seconds
            + LEASE_MARGIN_SECONDS
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: a full batch is followed at once by the next,
        otherwise the deliverer waits ``webhook_poll_seconds``. A store it cannot reach
        is logged and tried again at the next poll."""
        try:
            while not stop.is_set():
                try:
                    handled = await self.deliver_due()
                except Exception:
                    log.exception("webhook deliveries could not be claimed or settled")
                    handled = 0
                if handled < self._batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._settings.webhook_poll_seconds)
        finally:
            await self.close()

    async def deliver_due(self) -> int:
        """Claim up to one batch of due deliveries, send them together and settle each;
        the number attempted."""
        claimed = await self._claim()
        if claimed:
            http = self._session()
            await asyncio.gather(*(self._attempt(http, one) for one in claimed))
        return len(claimed)

    async def __aenter__(self) -> WebhookDelivery:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session the deliverer made (not one it was given)."""
        if self._own_http is not None:
            await self._own_http.close()
            self._own_http = None

    async def _claim(self) -> list[_Claimed]:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(Delivery, Webhook)
                    .join(Webhook, Webhook.id == Delivery.webhook_id)
                    .where(Delivery.next_attempt_at <= now)
                    .order_by(Delivery.next_attempt_at)
                    .limit(self._batch_size)
                    .with_for_update(of=Delivery, skip_locked=True)
                )
            ).all()
            claimed: list[_Claimed] = []
            for delivery, hook in rows:
                taken = await session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id == delivery.id,
                        Delivery.attempts == delivery.attempts,
                        Delivery.next_attempt_at == delivery.next_attempt_at,
                    )
                    .values(attempts=delivery.attempts + 1, next_attempt_at=now + self._lease)
                    .execution_options(synchronize_session=False)
                )
                if rows_changed(taken) == 1:
                    claimed.append(
                        _Claimed(
                            delivery=delivery,
                            url=hook.url,
                            secret=hook.secret,
                            project_id=hook.project_id,
                            attempts=delivery.attempts + 1,
                        )
                    )
        return claimed

    async def _attempt(self, http: aiohttp.ClientSession, claimed: _Claimed) -> None:
        outcome = await self._send(http, claimed)
        try:
            await self._settle(claimed, outcome)
        except Exception:
            log.exception(
                "webhook delivery %s could not be settled; it is sent again after its lease",
                encode(IdShape.DELIVERY, claimed.delivery.id),
            )

    async def _send(self, http: aiohttp.ClientSession, claimed: _Claimed) -> _Outcome:
        delivery = claimed.delivery
        body = orjson.dumps(envelope(delivery, claimed.project_id, iso(delivery.created_at)))
        delivery_id = encode(IdShape.DELIVERY, delivery.id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Promptline-Event": delivery.event_type,
            "Promptline-Delivery": delivery_id,
            "Promptline-Signature": signature_header(
                claimed.secret, int(self._clock().timestamp()), body
            ),
        }
        try:
            await check_target(claimed.url, self._policy)  # the address may have changed
            async with http.post(
                claimed.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as answer:
                status = answer.status
        except TargetRefused as error:
            return _Outcome(None, f"refused: the URL {error}")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return _Outcome(None, f"{type(error).__name__}: {error}".strip(": "))
        if 200 <= status < 300:
            return _Outcome(status, None)
        return _Outcome(status, f"HTTP {status}")

    async def _settle(self, claimed: _Claimed, outcome: _Outcome) -> None:
        now = self._clock()
        delivery = claimed.delivery
        values: dict[str, object] = {"last_status": outcome.status}
        if outcome.delivered:
            values |= {"delivered_at": now, "next_attempt_at": None, "last_error": None}
        else:
            values["last_error"] = (outcome.error or "")[:MAX_ERROR_CHARS]
            age = now - aware(delivery.created_at)
            settings = self._settings
            if (
                claimed.attempts >= settings.webhook_max_attempts
                or age.total_seconds() >= settings.webhook_give_up_seconds
            ):
                values |= {"failed_at": now, "next_attempt_at": None}
            else:
                values["next_attempt_at"] = now + self.backoff(claimed.attempts)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery.id,
                    Delivery.attempts == claimed.attempts,
                )
                .values(**values)
            )
        if not outcome.delivered:
            log.info(
                "webhook delivery %s (%s) failed, attempt %d: %s",
                encode(IdShape.DELIVERY, delivery.id),
                delivery.event_type,
                claimed.attempts,
                outcome.error,
            )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: the initial wait doubled each time,
        capped, of which a random half is waived (so receivers coming back are not met by
        every sender at once)."""
        settings = self._settings
        full = min(
            settings.webhook_backoff_max_seconds,
            settings.webhook_backoff_initial_seconds * 2.0 ** min(attempts - 1, 62),
        )
        return timedelta(seconds=full * self._rng.uniform(0.5, 1.0))

    def _session(self) -> aiohttp.ClientSession:
        if self._http is not None:
            return self._http
        if self._own_http is None:
            resolver = None if self._policy.allow_private else GuardedResolver()
            connector = aiohttp.TCPConnector(limit=20, resolver=resolver)
            self._own_http = aiohttp.ClientSession(connector=connector)
        return self._own_http
