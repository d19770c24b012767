"""The soak generator's pure parts: answers parsed across reads, the schedule, the tally."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from bench.soak import Minute, p99_steadiness
from bench.soak_http import Answer, Requests, ResponseParser, is_resolve
from bench.soak_loadgen import generate
from bench.soak_pacing import Tally, due_count, due_time, next_tick, percentile

OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: 13\r\nDate: Mon, 07 Dec 2026 09:00:00 GMT\r\nServer: x\r\n\r\n"
    b'{"ok": "yes"}'
)
ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
CHUNKED = (
    b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n"
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
CLOSING = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
STREAM = OK + ACCEPTED + CHUNKED + NO_CONTENT + CLOSING
EXPECTED = [
    Answer(200, True),
    Answer(202, True),
    Answer(429, True),
    Answer(204, True),
    Answer(503, False),
]


def test_answers_pipelined_in_one_read_come_out_in_order() -> None:
    assert ResponseParser().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_an_answer_split_anywhere_across_two_reads_is_read_once(cut: int) -> None:
    parser = ResponseParser()
    assert parser.feed(STREAM[:cut]) + parser.feed(memoryview(STREAM)[cut:]) == EXPECTED


def test_an_answer_fed_a_byte_at_a_time_is_read_once() -> None:
    parser = ResponseParser()
    answers = [answer for i in range(len(STREAM)) for answer in parser.feed(STREAM[i : i + 1])]
    assert answers == EXPECTED


def test_a_body_that_runs_to_the_close_ends_with_the_connection() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nsome body") == []
    assert parser.feed(b" and more") == []
    assert parser.feed_eof() == [Answer(200, False)]
    assert ResponseParser().feed_eof() == []


def test_http_1_0_closes_unless_it_says_keep_alive() -> None:
    assert ResponseParser().feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == [
        Answer(200, False)
    ]
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    assert ResponseParser().feed(kept) == [Answer(200, True)]


def test_what_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an HTTP"):
        ResponseParser().feed(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_a_resolve_differs_only_by_its_user_and_its_length() -> None:
    requests = Requests("127.0.0.1:8080", "k%y", "greet", "p1", "v1")
    for sequence in (7, 123456789):
        head, _, body = requests.resolve(sequence).partition(b"\r\n\r\n")
        assert head.startswith(b"POST /v1/resolve HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
        assert b"\r\nAuthorization: Bearer k%y\r\n" in head
        assert head.endswith(b"\r\nContent-Length: %d" % len(body))
        assert body == (
            b'{"prompt":"greet","user_id":"usr_%d","context":{"company":"Acme"}}' % sequence
        )
    head, _, body = requests.analytics.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/v1/prompts/analytics HTTP/1.1\r\n")
    assert head.endswith(b"\r\nContent-Length: %d" % len(body))
    assert body.startswith(b'{"prompt_id":"p1","version_hash":"v1",')


def test_the_mix_holds_its_share_of_resolves_exactly() -> None:
    assert sum(is_resolve(n, 0.7) for n in range(100)) == 70


def test_request_n_is_due_at_n_over_the_rate() -> None:
    assert due_count(-0.001, 1000.0, 10_000) == 0
    assert due_count(0.0, 1000.0, 10_000) == 1  # request 0 is due at the start
    assert due_count(0.0015, 1000.0, 10_000) == 2
    assert due_count(0.999, 1000.0, 10_000) == 1000
    assert due_count(60.0, 1000.0, 10_000) == 10_000  # never more than the total
    assert due_time(5.0, 250, 1000.0) == pytest.approx(5.25)
    # every request counted due is due by then, the next one not yet
    for elapsed in (0.0, 0.0101, 1.23456, 7.0):
        n = due_count(elapsed, 4206.0, 10**9)
        assert due_time(0.0, n - 1, 4206.0) <= elapsed < due_time(0.0, n, 4206.0)


def test_ticks_keep_to_their_grid_however_late_a_wake_up_came() -> None:
    assert next_tick(10.0, 10.0, 0.001) == pytest.approx(10.001)
    assert next_tick(10.0004, 10.0, 0.001) == pytest.approx(10.001)
    assert next_tick(10.0037, 10.0, 0.001) == pytest.approx(10.004)
    assert next_tick(12.5, 10.0, 0.5) == pytest.approx(13.0)  # on a tick: the next one


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert math.isnan(percentile([], 0.5))


def test_a_minute_line_holds_that_minute_only() -> None:
    tally = Tally()
    tally.sent = 4
    for latency, ok, event in ((0.003, True, False), (0.001, True, True), (0.2, False, True)):
        tally.answered(latency, ok, event)
    line = tally.close(1, cpu_seconds=0.5, elapsed=10.0)
    assert (line["minute"], line["sent"], line["ok"], line["ok_events"], line["errors"]) == (
        1,
        4,
        2,
        1,
        1,
    )
    assert line["p50_ms"] == pytest.approx(3.0)
    assert line["p99_ms"] == pytest.approx(200.0)
    assert line["resolve_p99_ms"] == pytest.approx(3.0)  # the one resolve
    assert line["event_p99_ms"] == pytest.approx(200.0)  # the events: 1 ms and 200 ms
    assert line["generator_cpu"] == pytest.approx(0.05)
    assert line["generator_us_per_request"] == pytest.approx(125_000.0)
    empty = tally.close(2, cpu_seconds=0.0, elapsed=10.0)
    assert (empty["sent"], empty["ok"], empty["errors"]) == (0, 0, 0)
    assert math.isnan(empty["p99_ms"])
    assert empty["generator_us_per_request"] is None


async def test_the_generator_counts_every_request_through_closes_and_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against a tiny server that answers some requests 500 and closes after others: a lane
    whose answer said close sends nothing more on it, so no request is lost to the close."""
    answered = {"count": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                answered["count"] += 1
                n = answered["count"]
                if n % 7 == 0:
                    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                elif n % 5 == 0:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
                    )
                    await writer.drain()
                    break
                elif n % 2:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                    )
                else:
                    writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = {
        "url": f"http://127.0.0.1:{port}",
        "key": "k",
        "prompt": "greet",
        "prompt_id": "p",
        "version_hash": "v",
        "share": 0.7,
        "connections": 4,
        "rate": 500.0,
        "seconds": 0.2,
        "interval": 0.1,
    }
    async with server:
        await generate(spec)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["minute"] for line in lines] == [1, 2, 0]
    assert sum(line["sent"] for line in lines) == 100
    assert sum(line["ok"] + line["errors"] for line in lines) == 100
    assert sum(line["errors"] for line in lines) == 100 // 7
    assert answered["count"] == 100


def test_each_kind_has_its_own_p99_however_equal_their_latencies() -> None:
    tally = Tally()
    resolves = [0.001 * n for n in range(1, 101)]
    events = [0.001 * n for n in range(50, 250)]  # 50-100 ms also taken by resolves
    for latency in resolves:
        tally.answered(latency, True, False)
    for latency in events:
        tally.answered(latency, True, True)
    line = tally.close(1, cpu_seconds=0.0, elapsed=60.0)
    assert line["resolve_p99_ms"] == pytest.approx(100.0)
    assert line["event_p99_ms"] == pytest.approx(248.0)  # nearest rank: the 199th of 200
    assert line["p99_ms"] == pytest.approx(sorted(resolves + events)[int(0.99 * 300)] * 1000)


def test_a_kinds_steadiness_is_judged_like_the_criterion() -> None:
    def minute(number: int, resolve_ms: float, event_ms: float) -> Minute:
        return Minute(number, 100, 100, 0, 1.0, 2.0, 100.0, 100.0, 0.5, 0.1,
                      resolve_p99_ms=resolve_ms, event_p99_ms=event_ms)  # fmt: skip

    minutes = [minute(n, 10.0, 20.0 + n) for n in range(1, 13)]
    minutes[1] = minute(2, 90.0, 20.0)  # before minute 5: not judged
    assert p99_steadiness(minutes, "resolve_p99_ms") == (10.0, 12, 1.0)
    assert p99_steadiness(minutes, "event_p99_ms") == (32.0, 12, 32.0 / 27.5)
    assert p99_steadiness(minutes[:8], "event_p99_ms") is None  # minutes 9 and 10 missing
