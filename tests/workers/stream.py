"""A known stream of events with duplicates of every kind, and what storing it once must give.

Values are chosen so that every sum is exact in floating point whatever the order of the
additions (integers and multiples of 1/1024), so a test can demand equality, not closeness.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.records import AnalyticsRecord, RecordBase, SignalRecord, UsageRecord
from tests.workers.helpers import Tenant, analytics, signal, usage
from workers.tables import usage_key


@dataclass(frozen=True)
class PromptUnderTest:
    """A prompt with its versions' numbers and content hashes."""

    id: uuid.UUID
    hashes: dict[int, str]


@dataclass
class Moments:
    """count, sum and sum of squares of one metric."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.count += 1
            self.total += value
            self.total_sq += value * value


@dataclass
class VersionTotals:
    """What one version's rows must add up to."""

    events: int = 0
    latency: Moments = field(default_factory=Moments)
    cost: Moments = field(default_factory=Moments)
    score: Moments = field(default_factory=Moments)
    latencies: list[float] = field(default_factory=list)
    positive: int = 0
    negative: int = 0
    links: int = 0
    traces: set[uuid.UUID] = field(default_factory=set)


@dataclass
class Stream:
    """Records in the order they are sent, and the unique events among them."""

    sent: list[RecordBase] = field(default_factory=list)
    unique: dict[tuple[str, uuid.UUID, uuid.UUID, str], RecordBase] = field(default_factory=dict)

    def send(self, record: RecordBase) -> None:
        self.sent.append(record)
        key = _identity(record)
        self.unique.setdefault(key, record)

    def count(self, kind: type[RecordBase]) -> int:
        return sum(isinstance(record, kind) for record in self.unique.values())

    def sent_count(self, kind: type[RecordBase]) -> int:
        return sum(isinstance(record, kind) for record in self.sent)

    def totals(self, prompt: PromptUnderTest) -> dict[int, VersionTotals]:
        """Per version number: what the stored events of ``prompt`` add up to."""
        number_of = {digest: number for number, digest in prompt.hashes.items()}
        totals: dict[int, VersionTotals] = defaultdict(VersionTotals)
        for record in self.unique.values():
            if getattr(record, "prompt_id", None) != prompt.id:
                continue
            if isinstance(record, AnalyticsRecord):
                entry = totals[number_of[record.version_hash]]
                entry.events += 1
                entry.latency.add(record.latency_ms)
                entry.cost.add(record.cost_usd)
                entry.score.add(record.score)
                if record.latency_ms is not None:
                    entry.latencies.append(record.latency_ms)
            elif isinstance(record, SignalRecord):
                entry = totals[int(str((record.metadata or {})["version"]).lstrip("v"))]
                if record.value == "positive":
                    entry.positive += 1
                else:
                    entry.negative += 1
            elif isinstance(record, UsageRecord):
                entry = totals[record.version]
                entry.links += 1
                entry.traces.add(record.trace_id)
        return totals


def _identity(record: RecordBase) -> tuple[str, uuid.UUID, uuid.UUID, str]:
    prompt_id: uuid.UUID = getattr(record, "prompt_id")  # noqa: B009
    if isinstance(record, UsageRecord):
        key = usage_key(record.version, record.trace_id, record.span_id)
    else:
        key = record.idempotency_key or str(record.event_id)
    return type(record).__name__, record.project_id, prompt_id, key


def build_stream(
    tenant: Tenant,
    prompts: list[PromptUnderTest],
    *,
    analytics_events: int,
    signals: int,
    links: int,
    seed: int,
    start: datetime | None = None,
) -> Stream:
    """Events of every kind over a few hours, then their duplicates: retries with the same
    idempotency key (later, other event id), byte-for-byte re-sends, repeated usage links."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(hours=5)
    stream = Stream()
    originals: list[RecordBase] = []
    record: RecordBase

    def moment() -> datetime:
        return start + timedelta(seconds=rng.uniform(0, 4 * 3600))

    for n in range(analytics_events):
        prompt = rng.choice(prompts)
        number = rng.choice(sorted(prompt.hashes))
        record = analytics(
            tenant,
            prompt.id,
            prompt.hashes[number],
            latency=float(rng.randint(50, 400) * number),
            cost=rng.randint(1, 64) / 1024 if rng.random() < 0.8 else None,
            score=rng.randint(0, 8) / 8 if rng.random() < 0.6 else None,
            key=f"analytics-{n}" if rng.random() < 0.4 else None,
            at=moment(),
        )
        originals.append(record)
    for n in range(signals):
        prompt = rng.choice(prompts)
        number = rng.choice(sorted(prompt.hashes))
        positive = rng.random() < (0.5 + 0.1 * number)
        originals.append(
            signal(
                tenant,
                prompt.id,
                "positive" if positive else "negative",
                metadata={"version": f"v{number}", "session": n},
                key=f"signal-{n}" if rng.random() < 0.4 else None,
                at=moment(),
            )
        )
    traces = [uuid.uuid4() for _ in range(links // 2)]
    for _ in range(links):
        prompt = rng.choice(prompts)
        number = rng.choice(sorted(prompt.hashes))
        originals.append(
            usage(
                tenant,
                prompt.id,
                number,
                prompt.hashes[number],
                rng.choice(traces),
                span_id=uuid.uuid4(),
                at=moment(),
            )
        )
    rng.shuffle(originals)
    for record in originals:
        stream.send(record)
    # The duplicates come after their originals, as a retry does.
    for record in rng.sample(originals, len(originals) // 8):
        later = record.received_at + timedelta(minutes=rng.randint(1, 90))
        if isinstance(record, UsageRecord) or record.idempotency_key is not None:
            stream.send(record.model_copy(update={"event_id": uuid.uuid4(), "received_at": later}))
        else:
            stream.send(record)  # the same bytes again, as a producer retry sends them
    return stream
