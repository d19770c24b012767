"""Kafka topic names, one per event kind plus the dead-letter topic (docs/topics.md)."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """The kinds of event the edge accepts (an exposure also comes from resolve)."""

    SIGNAL = "signal"
    USAGE = "usage"
    ANALYTICS = "analytics"
    EXPOSURE = "exposure"


TOPIC_SUFFIX = {
    EventKind.SIGNAL: "signals.v1",
    EventKind.USAGE: "usage.v1",
    EventKind.ANALYTICS: "analytics.v1",
    EventKind.EXPOSURE: "exposures.v1",
}
DEAD_LETTER_SUFFIX = "dead-letter.v1"


def topic_name(prefix: str, kind: EventKind) -> str:
    """The topic that carries events of ``kind``."""
    return prefix + TOPIC_SUFFIX[kind]


def dead_letter_topic(prefix: str) -> str:
    """Where workers put records they cannot decode, with the reason."""
    return prefix + DEAD_LETTER_SUFFIX


def all_topics(prefix: str) -> list[str]:
    """Every topic the product uses."""
    return [topic_name(prefix, kind) for kind in EventKind] + [dead_letter_topic(prefix)]
