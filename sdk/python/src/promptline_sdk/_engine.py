"""What the event senders share, without any I/O: the queue, batches, retries and counters.

The public senders (``promptline_sdk.events``) add a thread or an asyncio task and an HTTP
client; everything they decide is decided here, so both decide alike and tests can
drive it with a clock of their own.

On the caller's thread an event is a tuple ``(seq, kind, key, *fields)`` appended to a
deque: no lock, no I/O, no JSON. The sender's side takes events from the deque, encodes
each to JSON once (a retry resends the same text, so the same key), and keeps what must
be retried in groups with the time they are due.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from promptline_sdk._backoff import Backoff, parse_retry_after
from promptline_sdk._keys import KEYS

logger = logging.getLogger("promptline_sdk.events")

BATCH_PATH = "/api/v1/events/batch"
MAX_BATCH_EVENTS = 500
"""The batch route's limit (``PROMPTLINE_EDGE_BATCH_MAX_EVENTS``)."""
RETRYABLE_EVENT_STATUSES = frozenset({429, 503})
RETRYABLE_REQUEST_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
QUEUE_FULL = "queue_full"
CLOSED = "closed"
NOT_JSON = "not_json"
WARNING_INTERVAL = 60.0
"""Seconds between two warnings about dropped events of one reason."""

Event = tuple[Any, ...]


@dataclass(frozen=True)
class EventStats:
    """A snapshot of a sender's counters (``sender.stats``)."""

    queued: int
    """Events not yet settled: waiting in the queue, in flight, or waiting for a retry."""
    sent: int
    """Events the edge accepted."""
    retried: int
    """Times an event was sent again (the same event, with the same key)."""
    dropped: Mapping[str, int]
    """Events given up, by reason: ``queue_full``, ``closed``, ``not_json`` (not encodable),
    or the edge's error code (``validation_error``, ``invalid_request``, ``not_found``,
    ``unauthorized``, ``forbidden``, ``payload_too_large``, ``rate_limited`` when the wait
    asked for is longer than ``max_retry_after``)."""
    failed_batches: int
    """Requests that failed as a whole (connection, timeout, 5xx, 429/503): retried."""
    batches: int
    """Requests the edge answered with results (200 or 207)."""

    @property
    def dropped_queue_full(self) -> int:
        """Events refused because the queue was full."""
        return self.dropped.get(QUEUE_FULL, 0)


@dataclass(slots=True)
class Item:
    """An event on the sender's side: encoded once, retried as it is."""

    seq: int
    key: str
    text: str
    attempts: int = 0


@dataclass(slots=True)
class RetryGroup:
    """Events refused together, due again at ``due`` (the senders' clock)."""

    due: float
    items: list[Item]
    cap: int = MAX_BATCH_EVENTS
    """At most this many per request, alone (the halves of a batch the edge found too large)."""


@dataclass(slots=True)
class Batch:
    """One request's events and its body."""

    items: list[Item]
    body: bytes = field(repr=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _iso(moment: datetime | float | str) -> str:
    """A time as the edge takes it: ISO 8601, UTC."""
    if isinstance(moment, str):
        return moment
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")


def _analytics(event: Event) -> dict[str, Any]:
    _seq, _kind, key, prompt, version_hash, latency_ms, cost_usd, score = event
    body: dict[str, Any] = {"type": "analytics", "prompt_id": prompt, "version_hash": version_hash}
    if latency_ms is not None:
        body["latency_ms"] = latency_ms
    if cost_usd is not None:
        body["cost_usd"] = cost_usd
    if score is not None:
        body["score"] = score
    body["idempotency_key"] = key
    return body


def _signal(event: Event) -> dict[str, Any]:
    _seq, _kind, key, prompt, value, metadata = event
    body: dict[str, Any] = {"type": "signal", "prompt_id": prompt, "value": value}
    if metadata is not None:
        body["metadata"] = metadata
    body["idempotency_key"] = key
    return body


def _usage(event: Event) -> dict[str, Any]:
    _seq, _kind, key, name, version, trace_id, span_id = event
    body: dict[str, Any] = {"type": "usage", "name": name, "version": version}
    body["trace_id"] = trace_id
    if span_id is not None:
        body["span_id"] = span_id
    body["idempotency_key"] = key  # the edge keys a link by itself; this names it here
    return body


def _exposure(event: Event) -> dict[str, Any]:
    (_seq, _kind, key, prompt, version, content_hash, deployment_id) = event[:7]
    traffic_rule, split, user_id, resolved_at = event[7:]
    body: dict[str, Any] = {"type": "exposure", "prompt_id": prompt, "version": version}
    if content_hash is not None:
        body["content_hash"] = content_hash
    if deployment_id is not None:
        body["deployment_id"] = deployment_id
    body["traffic_rule"] = traffic_rule
    body["split"] = split
    body["user_id"] = user_id
    body["resolved_at"] = _iso(resolved_at)
    body["idempotency_key"] = key
    return body


ENCODERS: dict[str, Callable[[Event], dict[str, Any]]] = {
    "analytics": _analytics,
    "signal": _signal,
    "usage": _usage,
    "exposure": _exposure,
}


def encode(event: Event) -> str:
    """An event's JSON (compact; NaN and infinities refused, as the edge refuses them)."""
    return json.dumps(
        ENCODERS[event[1]](event),
        separators=(",", ":"),
        allow_nan=False,
        default=_json_default,
    )


class Engine:
    """The state and decisions of a sender; the subclasses do the waiting and the I/O."""

    def __init__(
        self,
        *,
        max_queue: int,
        batch_size: int,
        flush_interval: float,
        max_batch_bytes: int,
        max_retry_after: float,
        backoff: Backoff,
        clock: Callable[[], float],
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        self._capacity = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_batch_bytes = max_batch_bytes
        self._max_retry_after = max_retry_after
        self._backoff = backoff
        self._clock = clock
        self._reset_state()

    def _reset_state(self) -> None:
        """Everything a sender holds, empty (at start, and in a child after ``fork()``)."""
        self._queue: deque[Event] = deque()
        self._max_queue = self._capacity  # 0 once closed: every event takes the slow path
        self._rung = False
        self._retry: list[RetryGroup] = []
        self._inflight: list[Item] = []
        self._paused_until = 0.0
        self._failures = 0  # consecutive requests that failed as a whole
        self._tick_at = self._clock() + self._flush_interval
        self._flush_target = 0  # events numbered below it are wanted now
        self._stopping = False
        self._drop_lock = threading.Lock()
        self._dropped: dict[str, int] = {}
        self._warned_at: dict[str, float] = {}
        self._unwarned: dict[str, int] = {}
        self._sent = 0
        self._retried = 0
        self._failed_batches = 0
        self._batches = 0

    # The caller's side -----------------------------------------------------------------

    def analytics(
        self,
        prompt: str,
        version_hash: str,
        *,
        latency_ms: float | None = None,
        cost_usd: float | None = None,
        score: float | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue an analytics event (one LLM call); returns its idempotency key."""
        seq = next(KEYS.counter)
        key = idempotency_key or f"{KEYS.prefix}{seq:012x}"
        self._put((seq, "analytics", key, prompt, version_hash, latency_ms, cost_usd, score))
        return key

    def signal(
        self,
        prompt: str,
        value: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a feedback signal (``"positive"`` or ``"negative"``); returns its key.

        ``metadata`` is copied (one level) and encoded on the sender's side: do not
        change the objects nested in it afterwards.
        """
        seq = next(KEYS.counter)
        key = idempotency_key or f"{KEYS.prefix}{seq:012x}"
        copy = None if metadata is None else dict(metadata)
        self._put((seq, "signal", key, prompt, value, copy))
        return key

    def usage(
        self,
        name: str,
        version: int,
        trace_id: str | uuid.UUID,
        span_id: str | uuid.UUID | None = None,
    ) -> str:
        """Queue a usage link (a prompt version used in a trace); returns its key.

        The edge deduplicates a link by itself (prompt, version, trace, span), whatever
        key it carries: the key returned names the event on this side only.
        """
        seq = next(KEYS.counter)
        key = f"{KEYS.prefix}{seq:012x}"
        self._put((seq, "usage", key, name, version, trace_id, span_id))
        return key

    def exposure(
        self,
        prompt: str,
        version: int | str,
        content_hash: str | None,
        deployment_id: str | None,
        traffic_rule: str,
        split: bool,
        user_id: str,
        resolved_at: datetime | float | str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue an exposure (a version this process resolved and served); returns its key.

        ``resolved_at`` is a datetime (naive means UTC), a Unix time or an ISO string;
        None means now, taken at this call so that a retry keeps it.
        """
        seq = next(KEYS.counter)
        key = idempotency_key or f"{KEYS.prefix}{seq:012x}"
        moment = time.time() if resolved_at is None else resolved_at
        self._put(
            (
                seq,
                "exposure",
                key,
                prompt,
                version,
                content_hash,
                deployment_id,
                traffic_rule,
                split,
                user_id,
                moment,
            )
        )
        return key

    def _put(self, event: Event) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._drop(CLOSED if self._stopping else QUEUE_FULL, 1)
            return
        queue.append(event)
        if len(queue) >= self._batch_size and not self._rung:
            self._rung = True
            self._ring()
        if self._idle_driver():
            self._start()

    def _ring(self) -> None:
        """Wake the sender: a batch is full (or a flush or close wants it)."""
        raise NotImplementedError

    def _idle_driver(self) -> bool:
        """True when no thread or task sends yet (cheap: checked on every event)."""
        raise NotImplementedError

    def _start(self) -> None:
        """Start the thread or task that sends."""
        raise NotImplementedError

    # Counters --------------------------------------------------------------------------

    @property
    def stats(self) -> EventStats:
        """The counters now."""
        with self._drop_lock:
            dropped = dict(self._dropped)
        return EventStats(
            queued=self._outstanding(),
            sent=self._sent,
            retried=self._retried,
            dropped=dropped,
            failed_batches=self._failed_batches,
            batches=self._batches,
        )

    def _outstanding(self) -> int:
        return len(self._queue) + len(self._inflight) + sum(len(g.items) for g in self._retry)

    def _drop(self, reason: str, count: int, detail: str = "") -> None:
        """Count dropped events and warn: at once for a new reason, then once a minute."""
        now = time.monotonic()
        with self._drop_lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            unwarned = self._unwarned.get(reason, 0) + count
            last = self._warned_at.get(reason)
            if last is not None and now - last < WARNING_INTERVAL:
                self._unwarned[reason] = unwarned
                return
            self._warned_at[reason] = now
            self._unwarned[reason] = 0
        logger.warning(
            "promptline events dropped: %d (%s)%s; stats.dropped counts them",
            unwarned,
            reason,
            f": {detail}" if detail else "",
        )

    # The sender's side -----------------------------------------------------------------

    def _done(self, target: int) -> bool:
        """True when every event numbered below ``target`` is settled (sent or dropped)."""
        lowest = [item.seq for item in self._inflight]
        lowest.extend(item.seq for group in self._retry for item in group.items)
        queue = self._queue
        if queue:
            with contextlib.suppress(IndexError):  # taken meanwhile
                lowest.append(queue[0][0])
        return not lowest or min(lowest) >= target

    def _delay(self, now: float) -> tuple[float, bool]:
        """Seconds until there is a batch to send (0: now), and whether it is a backoff.

        A backoff is a wait for retries (the edge asked for it, or it failed): the only
        waits a test's ``sleep`` stands in for.
        """
        if self._paused_until > now:
            return self._paused_until - now, True
        retry_wait = None
        if self._retry:
            due = min(group.due for group in self._retry)
            if due <= now:
                return 0.0, False
            retry_wait = due - now
        queue = self._queue
        queue_wait = self._flush_interval
        if queue:
            if (
                len(queue) >= self._batch_size
                or self._stopping
                or self._flush_target > queue[0][0]
                or now >= self._tick_at
            ):
                return 0.0, False
            queue_wait = self._tick_at - now
        if retry_wait is not None and retry_wait <= queue_wait:
            return retry_wait, True
        return queue_wait, False

    def _take(self, now: float) -> Batch | None:
        """The next batch: retries that are due first, then queued events, in order."""
        items: list[Item] = []
        size = 2
        limit = self._batch_size
        due = sorted((group for group in self._retry if group.due <= now), key=lambda g: g.due)
        capped = [group for group in due if group.cap < limit]
        if capped:
            due, limit = capped[:1], capped[0].cap
        for group in due:
            while group.items and len(items) < limit and size < self._max_batch_bytes:
                item = group.items.pop(0)
                items.append(item)
                size += len(item.text) + 1
                if item.attempts:
                    self._retried += 1
            if not group.items:
                self._retry.remove(group)
        queue = self._queue
        while queue and not capped and len(items) < limit and size < self._max_batch_bytes:
            event = queue.popleft()
            try:
                text = encode(event)
            except Exception as error:  # NaN, a cycle, an object JSON has no form for
                self._drop(NOT_JSON, 1, f"{event[1]} event: {type(error).__name__}: {error}")
                continue
            items.append(Item(event[0], event[2], text))
            size += len(text) + 1
        self._rung = False
        self._tick_at = now + self._flush_interval
        if not items:
            return None
        self._inflight = items
        body = '{"events":[' + ",".join(item.text for item in items) + "]}"
        return Batch(items, body.encode())

    def _settle_failure(
        self, batch: Batch, now: float, retry_after: float | None, why: str
    ) -> None:
        """The request failed as a whole: every event waits, and so does the sender."""
        self._inflight = []
        self._failed_batches += 1
        self._failures += 1
        if retry_after is not None:
            retry_after = min(retry_after, self._max_retry_after)
        wait = self._backoff.delay(self._failures, retry_after)
        self._paused_until = now + wait
        for item in batch.items:
            item.attempts += 1
        self._retry.append(RetryGroup(now + wait, batch.items))
        log = logger.warning if self._failures in (1, 10, 100) else logger.debug
        log(
            "promptline events: batch of %d not delivered (%s), attempt %d; retrying in %.1f s",
            len(batch.items),
            why,
            self._failures,
            wait,
        )

    def _settle(
        self, batch: Batch, now: float, status: int, retry_after_header: str | None, body: bytes
    ) -> None:
        """Decide every event of an answered request."""
        retry_after = parse_retry_after(retry_after_header)
        if status == 200:
            self._inflight = []
            self._failures = 0
            self._batches += 1
            self._sent += len(batch.items)
            return
        if status == 207:
            results = _results(body, len(batch.items))
            if results is not None:
                self._settle_results(batch, now, results, retry_after)
                return
            self._settle_failure(batch, now, retry_after, "207 without readable results")
            return
        if status in RETRYABLE_REQUEST_STATUSES or status >= 500:
            self._settle_failure(batch, now, retry_after, f"HTTP {status}")
            return
        self._inflight = []
        if status == 413 and len(batch.items) > 1:
            half = (len(batch.items) + 1) // 2  # too big: send it in halves, now
            self._retry.append(RetryGroup(now, batch.items[:half], half))
            self._retry.append(RetryGroup(now, batch.items[half:], half))
            return
        code, detail = _error(body, status)
        self._drop(code, len(batch.items), detail)

    def _settle_results(
        self,
        batch: Batch,
        now: float,
        results: list[dict[str, Any]],
        retry_after: float | None,
    ) -> None:
        self._inflight = []
        self._batches += 1
        again: list[Item] = []
        waits: list[float] = []
        for item, result in zip(batch.items, results, strict=True):
            status = result.get("status")
            if isinstance(status, int) and 200 <= status < 300:
                self._sent += 1
                continue
            error = result.get("error")
            error = error if isinstance(error, dict) else {}
            wait = error.get("retry_after")
            if status in RETRYABLE_EVENT_STATUSES or isinstance(wait, int | float):
                wait = float(wait) if isinstance(wait, int | float) else retry_after
                if wait is not None and wait > self._max_retry_after:
                    self._drop(str(error.get("code", status)), 1, _describe(error, wait))
                    continue
                item.attempts += 1
                again.append(item)
                if wait is not None:
                    waits.append(wait)
                continue
            self._drop(str(error.get("code", f"http_{status}")), 1, _describe(error))
        if not again:
            self._failures = 0
            return
        if len(again) == len(batch.items):  # nothing got through: the edge is in trouble
            self._failures += 1
            attempt = self._failures
        else:
            self._failures = 0
            attempt = max(item.attempts for item in again)
        wait = self._backoff.delay(attempt, max(waits) if waits else retry_after)
        self._retry.append(RetryGroup(now + wait, again))
        if len(again) == len(batch.items):
            self._paused_until = now + wait


def _results(body: bytes, count: int) -> list[dict[str, Any]] | None:
    """A 207's results, one per event in order; None if the body does not say."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != count:
        return None
    if not all(isinstance(r, dict) and r.get("index") == i for i, r in enumerate(results)):
        return None
    return results


def _error(body: bytes, status: int) -> tuple[str, str]:
    """A refused request's error code and a description without secrets."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"http_{status}", f"HTTP {status}"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return f"http_{status}", f"HTTP {status}"
    return str(error.get("code", f"http_{status}")), f"HTTP {status}, " + _describe(error)


def _describe(error: Mapping[str, Any], wait: float | None = None) -> str:
    """The edge's message and field (never the key nor the event's content)."""
    text = str(error.get("message", ""))[:200]
    if error.get("field") is not None:
        text += f" (field {str(error['field'])[:100]})"
    if wait is not None:
        text += f"; asked to wait {wait:.0f} s, more than max_retry_after"
    return text
