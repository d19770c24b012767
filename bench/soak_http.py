"""HTTP/1.1 bytes for the soak's generator: requests prebuilt, answers parsed only as far as needed.

The generator's CPU is taken from the service it measures (the machine's cores are shared),
so a request is one ``%`` on a prebuilt template and an answer is read for its status and
its end (Content-Length, chunked, or the connection's close) and nothing else: no header
dictionary, no body decoding, no client library on the hot path.
"""

from __future__ import annotations

from typing import NamedTuple

RESOLVE_PATH = "/v1/resolve"
ANALYTICS_PATH = "/api/v1/prompts/analytics"


def is_resolve(sequence: int, share: float) -> bool:
    """Whether request ``sequence`` is a resolve: exactly ``share`` of every run of requests."""
    return int((sequence + 1) * share) > int(sequence * share)


def _escaped(value: str) -> bytes:
    """``value`` as bytes safe inside a ``%``-template."""
    return value.encode().replace(b"%", b"%%")


class Requests:
    """The mix's request bytes: request ``n`` is a resolve (a new user each) or an event.

    The analytics event is the same bytes every time (serve gives each its own id); a
    resolve differs only by its user's number, and so by its Content-Length.
    """

    def __init__(self, host: str, key: str, prompt: str, prompt_id: str, version_hash: str) -> None:
        head = (
            "POST {path} HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + key + "\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        )
        body_start = b'{"prompt":"' + _escaped(prompt) + b'","user_id":"usr_'
        body_end = b'","context":{"company":"Acme"}}'
        self._resolve_template = (
            _escaped(head.format(path=RESOLVE_PATH)) + b"%d\r\n\r\n" + body_start + b"%s" + body_end
        )
        self._resolve_fixed = len(body_start) + len(body_end)
        event = b'{"prompt_id":"%s","version_hash":"%s","latency_ms":412.5,"cost_usd":0.002}' % (
            prompt_id.encode(),
            version_hash.encode(),
        )
        self.analytics = head.format(path=ANALYTICS_PATH).encode() + b"%d\r\n\r\n%s" % (
            len(event),
            event,
        )

    def resolve(self, sequence: int) -> bytes:
        """The resolve for user ``usr_<sequence>``."""
        digits = b"%d" % sequence
        return self._resolve_template % (self._resolve_fixed + len(digits), digits)


class Answer(NamedTuple):
    """One complete answer: its status and whether the server keeps the connection."""

    status: int
    keep_alive: bool


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE = range(6)
_CRLF = b"\r\n"


class ResponseParser:
    """Incremental reader of HTTP/1.1 answers on one connection, in order.

    :meth:`feed` takes whatever a read brought (part of an answer, or several) and gives
    back the answers it completed. Bodies are skipped, never kept.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._status = 0
        self._keep_alive = True

    def feed(self, data: bytes | bytearray | memoryview) -> list[Answer]:
        """The answers ``data`` completed; raises ValueError on what is not HTTP/1.x."""
        buffer = self._buffer
        buffer += data
        answers: list[Answer] = []
        while True:
            state = self._state
            if state == _BODY:
                if len(buffer) < self._remaining:
                    return answers
                del buffer[: self._remaining]
                answers.append(Answer(self._status, self._keep_alive))
                self._state = _HEAD
            elif state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > 65536:
                        raise ValueError("an answer's head longer than 64 KiB")
                    return answers
                self._head(bytes(buffer[:end]))
                del buffer[: end + 4]
                if self._state == _HEAD:  # no body
                    answers.append(Answer(self._status, self._keep_alive))
            elif state in (_CHUNK_SIZE, _TRAILER):
                end = buffer.find(_CRLF)
                if end < 0:
                    return answers
                line = bytes(buffer[:end])
                del buffer[: end + 2]
                if state == _TRAILER:
                    if not line:  # the empty line after the last chunk (and trailers)
                        answers.append(Answer(self._status, self._keep_alive))
                        self._state = _HEAD
                    continue
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._remaining, self._state = size + 2, _CHUNK_DATA  # data and its CRLF
            elif state == _CHUNK_DATA:
                if len(buffer) < self._remaining:
                    return answers
                del buffer[: self._remaining]
                self._state = _CHUNK_SIZE
            else:  # _UNTIL_CLOSE: the body runs to the connection's end
                buffer.clear()
                return answers

    def feed_eof(self) -> list[Answer]:
        """The connection closed: the answer whose body ran to the close, if one did."""
        if self._state == _UNTIL_CLOSE:
            self._state = _HEAD
            return [Answer(self._status, False)]
        return []

    def _head(self, head: bytes) -> None:
        """Status, keep-alive and the body's framing, from an answer's head."""
        if not head.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {head[:40]!r}")
        self._status = status = int(head[9:12])
        lowered = head.lower()
        if head[7:8] == b"0":
            self._keep_alive = b"\nconnection: keep-alive" in lowered
        else:
            self._keep_alive = b"\nconnection: close" not in lowered
        if status < 200 or status in (204, 304):
            self._state = _HEAD
            return
        found = lowered.find(b"\ncontent-length:")
        if found >= 0:
            end = lowered.find(b"\r", found)
            length = int(lowered[found + 16 : end if end >= 0 else None])
            self._remaining, self._state = length, _BODY if length else _HEAD
        elif b"\ntransfer-encoding: chunked" in lowered:
            self._state = _CHUNK_SIZE
        else:
            self._state, self._keep_alive = _UNTIL_CLOSE, False
