"""A small parser of server-sent events (the WHATWG rules the SDK's stream needs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: its type (``message`` when unnamed) and its data lines joined."""

    name: str
    data: str


class EventParser:
    """Feed it lines (without their ends); it returns an event at each blank line."""

    __slots__ = ("_data", "_name")

    def __init__(self) -> None:
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """The event a blank line dispatches, else None (comments and fields are kept)."""
        if not line:
            if not self._data:
                self._name = ""
                return None
            event = Event(self._name or "message", "\n".join(self._data))
            self._name, self._data = "", []
            return event
        if line.startswith(":"):
            return None  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._name = value
        elif name == "data":
            self._data.append(value)
        return None  # id and retry: the SDK keeps its own backoff


def events(lines: Iterable[str]) -> Iterator[Event]:
    """The events in a stream of lines."""
    parser = EventParser()
    for line in lines:
        event = parser.feed(line.rstrip("\r\n"))
        if event is not None:
            yield event
