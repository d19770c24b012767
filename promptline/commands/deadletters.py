"""``promptline dead-letters list|replay``: see what the workers could not store, and retry it.

Both read the whole dead-letter topic without joining a consumer group. Each record a worker
dead-letters keeps its *origin* (where it was first read), so a dead letter that was replayed
and failed again is one dead letter, shown and replayed once.

Replay produces each dead letter's key and value, unchanged, to the topic it came from,
e.g. after deploying a worker that can decode it, and then remembers how far it got: it
commits the dead-letter topic's end offsets for a consumer group of each source topic it
replayed (``<kafka_consumer_group>.replay.<kind>``), and the next replay of that topic sends
only letters written since (among them any replayed letter that failed again). That matters
past the raw tables' TTL: the workers drop a replayed copy of an event they already stored
only while the stored row exists, and the hourly aggregates, which keep no TTL, would count
it again. Within the TTL a replay sent twice (its offset commit lost) is harmless: the same
bytes carry the same event id or idempotency key, and the workers store an event once.
To replay everything again, reset that group's offsets to the earliest.
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
    letters, _end = await _read_dead_letters(settings)
    return letters


async def _read_dead_letters(settings: Settings) -> tuple[list[DeadLetter], dict[int, int]]:
    """The dead letters, and the offset each dead-letter partition was read up to."""
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
            return [], {}
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
        ordered = sorted(letters, key=lambda letter: (letter.partition, letter.offset))
        # Past every letter read: a broker may report an end short of its last batch's records.
        read_to = {tp.partition: end[tp] for tp in tps}
        for letter in ordered:
            read_to[letter.partition] = max(read_to[letter.partition], letter.offset + 1)
        return ordered, read_to
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


def replay_group(settings: Settings, source_topic: str) -> str:
    """The consumer group whose offsets say how far dead letters of a topic were replayed."""
    kinds = {topic_name(settings.kafka_topic_prefix, kind): kind for kind in EventKind}
    return f"{settings.kafka_consumer_group}.replay.{kinds[source_topic].value}"


async def replay_dead_letters(settings: Settings, topic: str | None) -> Counter[str]:
    """Produce the dead letters (of ``topic``, or all) not replayed yet to their source topics,
    and remember that they were; counts by topic."""
    known = event_topics(settings)
    targets = sorted(set(known.values()))
    if topic is not None:
        wanted = known.get(topic) or known.get(topic.removesuffix("s"))
        if wanted is None:
            raise ValueError(f"unknown topic {topic!r}; one of {targets}")
        targets = [wanted]
    letters, end = await _read_dead_letters(settings)
    replayed: Counter[str] = Counter()
    if not end:
        return replayed
    dead_letters = dead_letter_topic(settings.kafka_topic_prefix)
    done = {
        target: await _replayed_up_to(settings, replay_group(settings, target), dead_letters, end)
        for target in targets
    }
    chosen = latest_by_origin(
        letter
        for letter in letters
        if letter.source_topic in done
        and letter.offset >= done[letter.source_topic].get(letter.partition, 0)
    )
    if chosen:
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
    for target in targets:
        await _mark_replayed(settings, replay_group(settings, target), dead_letters, end)
    replayed.update(letter.source_topic for letter in chosen)
    return replayed


def _group_consumer(settings: Settings, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )


async def _replayed_up_to(
    settings: Settings, group: str, topic: str, end: dict[int, int]
) -> dict[int, int]:
    """The dead-letter offsets ``group`` has replayed up to, per partition (0 if none)."""
    consumer = _group_consumer(settings, group)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, partition) for partition in end]
        consumer.assign(tps)
        return {tp.partition: await consumer.committed(tp) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def _mark_replayed(settings: Settings, group: str, topic: str, end: dict[int, int]) -> None:
    """Commit ``end`` for ``group``: everything before it was replayed."""
    consumer = _group_consumer(settings, group)
    await consumer.start()
    try:
        offsets = {TopicPartition(topic, partition): offset for partition, offset in end.items()}
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def print_listed(listed: list[Listed], as_json: bool) -> None:
    """Print what ``list`` found."""
    if as_json:
        for entry in listed:
            print(json.dumps(entry.as_dict()))
        return
    for entry in listed:
        print(entry.as_text())
    print(f"{len(listed)} dead letter(s) shown")
