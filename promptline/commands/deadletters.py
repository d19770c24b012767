"""``promptline dead-letters list|replay``: see what the workers could not store, and retry it.

Both read the whole dead-letter topic without a consumer group (nothing is marked read).
Each record a worker dead-letters keeps its *origin* (where it was first read), so a
dead letter that was replayed and failed again is one dead letter, shown and replayed once.

Replay produces each dead letter's key and value, unchanged, to the topic it came from,
e.g. after deploying a worker that can decode it. Replaying twice is harmless: the same
bytes carry the same event id or idempotency key, and the workers store an event once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from promptline.kafka import create_producer
from promptline.settings import Settings
from promptline.topics import EventKind, dead_letter_topic, topic_name
from workers.dead_letters import ORIGIN_HEADER, DeadLetter

READ_TIMEOUT_MS = 1_000


async def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record of the dead-letter topic, oldest first within each partition."""
    topic = dead_letter_topic(settings.kafka_topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata, so partitions_for_topic knows the topic
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []
        pending = set(tps)
        while pending:
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
            if not pending:
                break
            fetched = await consumer.getmany(*pending, timeout_ms=READ_TIMEOUT_MS)
            for tp, records in fetched.items():
                letters.extend(DeadLetter.from_record(record) for record in records)
                if records and records[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        await consumer.stop()


def latest_by_origin(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """The last attempt at each original record, in the order the attempts were written."""
    latest: dict[str, DeadLetter] = {}
    for letter in letters:
        latest.pop(letter.origin, None)
        latest[letter.origin] = letter
    return list(latest.values())


@dataclass(frozen=True, slots=True)
class Listed:
    """One dead letter as ``list`` shows it, with how many times it was dead-lettered."""

    letter: DeadLetter
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--json``)."""
        letter = self.letter
        return {
            "dead_letter": f"{letter.partition}/{letter.offset}",
            "dead_lettered_at": _iso(letter.timestamp_ms),
            "reason": letter.reason,
            "source_topic": letter.source_topic,
            "source_partition": letter.source_partition,
            "source_offset": letter.source_offset,
            "origin": letter.origin,
            "attempts": self.attempts,
            "value_preview": letter.preview(),
        }

    def as_text(self) -> str:
        """Three lines for a person."""
        letter = self.letter
        source = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        again = f" (dead-lettered {self.attempts} times)" if self.attempts > 1 else ""
        return (
            f"{_iso(letter.timestamp_ms)}  {source}{again}\n"
            f"  reason: {letter.reason}\n"
            f"  value:  {letter.preview()}"
        )


def _iso(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def list_dead_letters(settings: Settings, limit: int) -> list[Listed]:
    """The ``limit`` most recent dead letters (one per original record), oldest first."""
    letters = await read_dead_letters(settings)
    attempts = Counter(letter.origin for letter in letters)
    recent: deque[DeadLetter] = deque(latest_by_origin(letters), maxlen=max(0, limit))
    return [Listed(letter, attempts[letter.origin]) for letter in recent]


def event_topics(settings: Settings) -> dict[str, str]:
    """The topics dead letters may be replayed to, by topic name and by kind."""
    topics: dict[str, str] = {}
    for kind in EventKind:
        name = topic_name(settings.kafka_topic_prefix, kind)
        topics[name] = name
        topics[kind.value] = name
    return topics


async def replay_dead_letters(settings: Settings, topic: str | None) -> Counter[str]:
    """Produce every dead letter (or those of ``topic``) to its source topic; counts by topic."""
    known = event_topics(settings)
    wanted: str | None = None
    if topic is not None:
        wanted = known.get(topic) or known.get(topic.removesuffix("s"))
        if wanted is None:
            raise ValueError(f"unknown topic {topic!r}; one of {sorted(set(known.values()))}")
    targets = set(known.values())
    chosen = [
        letter
        for letter in latest_by_origin(await read_dead_letters(settings))
        if letter.source_topic in targets and (wanted is None or letter.source_topic == wanted)
    ]
    replayed: Counter[str] = Counter()
    if not chosen:
        return replayed
    producer = create_producer(settings)
    await producer.start()
    try:
        deliveries = [
            await producer.send(
                letter.source_topic,
                value=letter.value,
                key=letter.key,
                headers=[(ORIGIN_HEADER, letter.origin.encode())],
            )
            for letter in chosen
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    replayed.update(letter.source_topic for letter in chosen)
    return replayed


def print_listed(listed: list[Listed], as_json: bool) -> None:
    """Print what ``list`` found."""
    if as_json:
        for entry in listed:
            print(json.dumps(entry.as_dict()))
        return
    for entry in listed:
        print(entry.as_text())
    print(f"{len(listed)} dead letter(s) shown")
