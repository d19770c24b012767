"""Accepting prepared events: quota, ids, records, Kafka; the one path every route takes.

For a list of prepared events (one for a single-event route, many for a batch):

0. while the producer has not reached Kafka yet (it connects in the background, so the
   control plane serves without it), every event gets 503 at once, before any quota is
   reserved;
1. signals (and only signals: exposures, usage links and analytics events are not
   signals) reserve units of the organisation's monthly quota, all in one reservation;
   those beyond what is left get 429 ``rate_limited``, and all get 503 if the counter
   cannot be reached (the quota is exact, so it fails closed); a signal whose
   idempotency key was charged this month is a repeat: not charged, and answered with
   the first one's id, value and receive time (``ingest.quota_claims``);
2. every event that is still in gets a UUIDv7 ``event_id`` and the receive time (and a
   signal its integer id), and becomes one record; a repeat is produced again, so that
   its 2xx, too, stands on a record Kafka has (the warehouse keeps one per key);
3. all records are handed to the producer, then all acknowledgements awaited together;
4. signals Kafka did not take give their quota units back (and their keys), and get 503
   like every other event Kafka did not take.

Each event ends as :class:`Accepted` (its record is in Kafka) or an ``ApiError``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from controlplane.catalog import Principal
from ingest.context import EdgeContext
from ingest.ids import new_event_id, received_now, received_stamp
from ingest.prepare import Prepared
from ingest.producer import Outgoing, ProduceFailed
from ingest.quota import QuotaUnavailable, month_of, monthly_signal_limit, next_month_start
from ingest.quota_claims import GrantKind, KeyedSignal, from_millis, to_millis
from ingest.signal_ids import SignalIdsUnavailable
from promptline.http.errors import ApiError, ErrorKind
from promptline.topics import EventKind
from schemas.records import (
    AnalyticsRecord,
    ExposureRecord,
    RecordBase,
    SignalRecord,
    UsageRecord,
    analytics_record_bytes,
    wire_time,
)

log = logging.getLogger(__name__)

KEYS_KEPT = 10_000
"""Encoded record keys (prompt ids) kept before the cache starts over."""
_keys: dict[int, bytes] = {}

ANALYTICS, UNAVAILABLE = EventKind.ANALYTICS.value, ErrorKind.UNAVAILABLE.value
"""Metric labels of the single-event path, read once (an enum's ``value`` is a property)."""

RECORD_TYPES: dict[EventKind, type[RecordBase]] = {
    EventKind.SIGNAL: SignalRecord,
    EventKind.USAGE: UsageRecord,
    EventKind.ANALYTICS: AnalyticsRecord,
    EventKind.EXPOSURE: ExposureRecord,
}


@dataclass(frozen=True, slots=True)
class Admitted:
    """A signal the quota let in: the id and time it is answered, and what it was charged.

    ``value`` is set for a repeat of a key charged before (the first request's value, as
    the warehouse keeps the first); ``charged`` says whether this request used a unit, and
    ``key`` is the key remembered with it, to be forgotten if Kafka refuses the signal.
    """

    signal_id: int
    received_at: datetime
    value: str | None = None
    charged: bool = False
    key: KeyedSignal | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event Kafka acknowledged: its id, and the record it was produced as.

    ``record`` is None for an analytics event, whose record is encoded straight to bytes
    (``schemas.records.analytics_record_bytes``): nothing reads it back.
    """

    kind: EventKind
    event_id: uuid.UUID
    record: RecordBase | None = None


Outcome = Accepted | ApiError


def unavailable(ctx: EdgeContext, what: str = "The event store") -> ApiError:
    """503 with Retry-After: nothing was accepted, the client should retry."""
    return ApiError(
        ErrorKind.UNAVAILABLE,
        f"{what} is unavailable; nothing was recorded, retry later.",
        retry_after=ctx.limits.retry_after_seconds,
    )


async def accept(
    ctx: EdgeContext, principal: Principal, events: Sequence[Prepared], label: str
) -> list[Outcome]:
    """Accept ``events`` (one outcome each, in order); ``label`` names them in metrics."""
    if not ctx.producer.connected:
        refused: list[Outcome] = [unavailable(ctx) for _ in events]
        _count(ctx, events, refused)
        return refused
    received_at = received_now()
    outcomes: list[Outcome | None] = [None] * len(events)
    admitted: dict[int, Admitted] = {}
    signals = [index for index, event in enumerate(events) if event.kind is EventKind.SIGNAL]
    if signals:
        await _admit_signals(ctx, principal, events, signals, received_at, outcomes, admitted)
    chosen: list[int] = []
    outgoing: list[Outgoing] = []
    accepted: list[Accepted] = []
    stamp = wire_time(received_at)
    for index, event in enumerate(events):
        if outcomes[index] is not None:
            continue
        chosen.append(index)
        if event.kind is EventKind.ANALYTICS:
            # The hot path: the validated body's fields encoded straight, no model.
            event_id = new_event_id()
            value = analytics_record_bytes(
                event_id, stamp, principal.org_id, principal.project_id, event.fields
            )
            accepted.append(Accepted(event.kind, event_id))
        else:
            record = _record(principal, event, received_at, admitted.get(index))
            value = record.to_bytes()
            accepted.append(Accepted(event.kind, record.event_id, record))
        outgoing.append(Outgoing(ctx.topic(event.kind), prompt_key(event.prompt_id), value))
    failures = await _publish(ctx, outgoing, label)
    unkeyed, keyed = 0, []
    for index, done, failure in zip(chosen, accepted, failures, strict=True):
        if failure is None:
            outcomes[index] = done
            continue
        outcomes[index] = unavailable(ctx)
        signal = admitted.get(index)
        if signal is not None and signal.charged:
            if signal.key is None:
                unkeyed += 1
            else:
                keyed.append(signal.key)
    if unkeyed or keyed:
        await _give_back(ctx, principal, month_of(received_at), unkeyed, keyed)
    final = [outcome for outcome in outcomes if outcome is not None]
    _count(ctx, events, final)
    return final


async def accept_analytics(ctx: EdgeContext, principal: Principal, event: Prepared) -> None:
    """One analytics event of its own route: :func:`accept` without its lists.

    It needs no quota nor signal id, so it is encoded, produced and awaited; a 503 is
    raised if Kafka did not take it. The producer is called directly, not through
    :func:`_publish`: one coroutine fewer to start and to resume per event.
    """
    producer, tally = ctx.producer, ctx.metrics.event_tally
    failed = not producer.connected
    if not failed:
        value = analytics_record_bytes(
            new_event_id(), received_stamp(), principal.org_id, principal.project_id, event.fields
        )
        topic = ctx.topic(EventKind.ANALYTICS)
        started = time.perf_counter()
        try:
            await producer.produce(topic, prompt_key(event.prompt_id), value)
        except ProduceFailed:
            failed = True
        tally.produced(ANALYTICS, time.perf_counter() - started)
    tally.events(ANALYTICS, UNAVAILABLE if failed else "accepted")
    if failed:
        raise unavailable(ctx)


def prompt_key(prompt_id: uuid.UUID) -> bytes:
    """A record's key, its prompt's id, encoded once per prompt (events name few prompts)."""
    key = _keys.get(prompt_id.int)  # an int hashes in C, a UUID not
    if key is None:
        if len(_keys) >= KEYS_KEPT:
            _keys.clear()
        key = _keys[prompt_id.int] = str(prompt_id).encode()
    return key


async def _admit_signals(
    ctx: EdgeContext,
    principal: Principal,
    events: Sequence[Prepared],
    signals: list[int],
    received_at: datetime,
    outcomes: list[Outcome | None],
    admitted: dict[int, Admitted],
) -> None:
    """Charge the signals to the monthly quota and give the admitted ones their ids.

    A keyed signal gets its id first, since the quota remembers the key with the id in
    the transaction that charges it; a retry of a key charged before is a repeat: it is
    not charged and takes the first one's id, value and receive time.
    """
    limit = monthly_signal_limit(principal)
    month = month_of(received_at)
    created_ms = to_millis(received_at)
    claims: list[KeyedSignal | None] = []
    claimants: list[int] = []
    for index in signals:
        event = events[index]
        key = event.fields.get("idempotency_key")
        if key is None:
            claims.append(None)
        else:
            try:
                signal_id = ctx.signal_ids.next_id()
            except SignalIdsUnavailable:
                outcomes[index] = unavailable(ctx, "Signal id issuing")
                continue
            value = str(event.fields["value"])
            claims.append(
                KeyedSignal(
                    principal.project_id, event.prompt_id, key, signal_id, value, created_ms
                )
            )
        claimants.append(index)
    if not claimants:
        return
    try:
        grants = await ctx.quota.reserve(principal.org_id, month, limit, claims)
    except QuotaUnavailable:
        for index in claimants:
            outcomes[index] = unavailable(ctx, "The signal quota counter")
        return
    resets = next_month_start(received_at)
    over = ApiError(
        ErrorKind.RATE_LIMITED,
        f"Monthly signal limit of {limit} reached for your organisation; "
        f"it resets at {resets:%Y-%m-%dT%H:%M:%SZ}.",
        retry_after=(resets - received_at).total_seconds(),
    )
    unissued = 0
    for index, claim, grant in zip(claimants, claims, grants, strict=True):
        if grant.kind is GrantKind.OVER_LIMIT:
            outcomes[index] = over
        elif grant.first is not None:  # a repeat: answered as its key was first
            first = grant.first
            admitted[index] = Admitted(first.signal_id, from_millis(first.created_ms), first.value)
        elif claim is not None:
            admitted[index] = Admitted(claim.signal_id, received_at, charged=True, key=claim)
        else:
            try:
                admitted[index] = Admitted(ctx.signal_ids.next_id(), received_at, charged=True)
            except SignalIdsUnavailable:
                outcomes[index] = unavailable(ctx, "Signal id issuing")
                unissued += 1
    if unissued:
        await _give_back(ctx, principal, month, unissued)


def _record(
    principal: Principal, event: Prepared, received_at: datetime, signal: Admitted | None
) -> RecordBase:
    if signal is None:
        # An exposure a client reports carries its own time (when it resolved).
        return RECORD_TYPES[event.kind](
            event_id=new_event_id(),
            org_id=principal.org_id,
            project_id=principal.project_id,
            **{"received_at": received_at, **event.fields},
        )
    fields = event.fields if signal.value is None else {**event.fields, "value": signal.value}
    return SignalRecord(
        event_id=new_event_id(),
        received_at=signal.received_at,
        org_id=principal.org_id,
        project_id=principal.project_id,
        signal_id=signal.signal_id,
        **fields,
    )


async def _publish(
    ctx: EdgeContext, outgoing: list[Outgoing], label: str
) -> list[ProduceFailed | None]:
    """Produce and time it; one record goes through ``produce``, several through one call."""
    if not outgoing:
        return []
    started = time.perf_counter()
    failures: list[ProduceFailed | None]
    if len(outgoing) == 1:
        try:
            await ctx.producer.produce(*outgoing[0])
            failures = [None]
        except ProduceFailed as failure:
            failures = [failure]
    else:
        failures = await ctx.producer.produce_many(outgoing)
    ctx.metrics.observe_produce(label, time.perf_counter() - started)
    return failures


async def _give_back(
    ctx: EdgeContext,
    principal: Principal,
    month: str,
    count: int,
    keyed: Sequence[KeyedSignal] = (),
) -> None:
    """Release quota units of signals that were not accepted after all."""
    try:
        await ctx.quota.release(principal.org_id, month, count, keyed)
    except Exception:
        # The client was told 503 either way; the units are lost to this month only.
        log.exception("could not give back %d signal units", count + len(keyed))


def _count(ctx: EdgeContext, events: Sequence[Prepared], outcomes: list[Outcome]) -> None:
    """Count the outcomes by kind and result: one increment per pair, not per event."""
    if len(events) == 1:
        result = "accepted" if isinstance(outcomes[0], Accepted) else outcomes[0].kind.value
        ctx.metrics.observe_events(events[0].kind.value, result)
        return
    counts: dict[tuple[str, str], int] = {}
    for event, outcome in zip(events, outcomes, strict=True):
        result = "accepted" if isinstance(outcome, Accepted) else outcome.kind.value
        pair = (event.kind.value, result)
        counts[pair] = counts.get(pair, 0) + 1
    for (kind, result), count in counts.items():
        ctx.metrics.observe_events(kind, result, count)
