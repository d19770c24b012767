"""The soak's load generator, a process of its own: raw asyncio connections, one ticker.

``python -m bench.soak_loadgen loadgen|saturate <json spec>``. Its CPU is taken from the
service it measures (two cores, shared with serve, the worker, the broker and ClickHouse),
so it is built to cost little per request: a fixed lane per keep-alive connection (one
request in flight each, as wrk2 does), request bytes prebuilt (:mod:`bench.soak_http`),
answers read into a reused buffer and parsed only for status and length, and pacing by a
ticker that sends every request due across the idle lanes in one loop iteration
(:mod:`bench.soak_pacing`) rather than a timer or a task per request. Requests due while
every lane is busy wait their turn, their latency still counted from their due time.

``loadgen`` sends open-loop at ``rate`` and prints a JSON line per ``interval``;
``saturate`` runs the same lanes as closed loops for ``seconds`` (the maximum) and prints
one line. A failure is an answer other than 2xx, a request not answered within
``REQUEST_TIMEOUT_SECONDS`` (its connection aborted) or a connection lost under a request;
a lost connection is opened again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import resource
import sys
from typing import Any
from urllib.parse import urlsplit

from bench.soak_http import Requests, ResponseParser, is_resolve
from bench.soak_pacing import Tally, due_count, due_time, next_tick

REQUEST_TIMEOUT_SECONDS = 30.0
DRAIN_SECONDS = 30.0
TICK_SECONDS = 0.001
RECONNECT_SECONDS = 0.1
READ_BUFFER = 65536


def own_cpu() -> float:
    """CPU seconds this process used so far (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Lane(asyncio.BufferedProtocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.buffer = memoryview(bytearray(READ_BUFFER))
        self.sequence = -1
        """The request in flight; -1 when none is."""
        self.due = 0.0
        self.sent_at = 0.0
        self.event = False
        self.closing = False
        """The last answer said the server closes: no request is sent on it again."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.driver.ready(self)

    def send(self, sequence: int, due: float, now: float) -> None:
        assert self.transport is not None
        self.sequence, self.due, self.sent_at = sequence, due, now
        data, self.event = self.driver.request(sequence)
        self.transport.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        try:
            answers = self.parser.feed(self.buffer[:nbytes])
        except ValueError:
            self.abort()
            return
        for answer in answers:
            self.closing = not answer.keep_alive
            self.driver.answered(self, answer.status)
            if self.closing:
                self.abort()
                return

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        for answer in self.parser.feed_eof():
            self.driver.answered(self, answer.status)
        self.driver.lost(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Driver:
    """The lanes, the schedule and the tally; open-loop at ``rate``, or closed loops."""

    def __init__(self, spec: dict[str, Any], closed: bool) -> None:
        url = urlsplit(spec["url"])
        assert url.hostname is not None and url.port is not None
        self.host, self.port = url.hostname, url.port
        self.requests = Requests(
            url.netloc, spec["key"], spec["prompt"], spec["prompt_id"], spec["version_hash"]
        )
        self.share: float = spec["share"]
        self.connections: int = spec["connections"]
        self.closed = closed
        self.rate: float = spec.get("rate", 0.0)
        self.total = 2**62 if closed else int(spec["seconds"] * self.rate)
        self.loop = asyncio.get_running_loop()
        self.tally = Tally()
        self.lanes: set[Lane] = set()
        self.idle: list[Lane] = []
        self.next = 0
        """The next request to send."""
        self.due_so_far = 0
        self.start = 0.0
        self.deadline = float("inf")
        """Closed loops send no new request after it."""
        self.stopping = False
        self.busy = 0
        """Requests in flight."""
        self.drained: asyncio.Event | None = None
        """Set once no request is in flight, when one waits for that."""
        self.reconnecting: set[asyncio.Task[None]] = set()

    def request(self, sequence: int) -> tuple[bytes, bool]:
        """(bytes, whether an analytics event) of request ``sequence``."""
        if is_resolve(sequence, self.share):
            return self.requests.resolve(sequence), False
        return self.requests.analytics, True

    def ready(self, lane: Lane) -> None:
        """A lane connected or answered: it takes the next request due, if any is."""
        if lane.closing:
            return  # a new connection replaces it
        if self.closed:
            now = self.loop.time()
            if now < self.deadline:
                self._send(lane, now, now)
                return
        elif self.next < self.due_so_far:
            self._send(lane, due_time(self.start, self.next, self.rate), self.loop.time())
            return
        self.idle.append(lane)

    def _send(self, lane: Lane, due: float, now: float) -> None:
        lane.send(self.next, due, now)
        self.next += 1
        self.busy += 1
        self.tally.sent += 1

    def answered(self, lane: Lane, status: int) -> None:
        if lane.sequence < 0:  # an answer to no request: the connection is out of step
            lane.abort()
            return
        self.tally.answered(self.loop.time() - lane.due, 200 <= status < 300, lane.event)
        lane.sequence = -1
        self._done()
        self.ready(lane)

    def _done(self) -> None:
        self.busy -= 1
        if self.busy == 0 and self.drained is not None:
            self.drained.set()

    def lost(self, lane: Lane) -> None:
        """A connection ended: its request in flight failed; a new connection replaces it."""
        if lane.sequence >= 0 and not self.stopping:  # stopping: counted by the caller
            self.tally.answered(self.loop.time() - lane.due, False, lane.event)
            self._done()
        self.lanes.discard(lane)
        if lane in self.idle:
            self.idle.remove(lane)
        if not self.stopping:
            self.reconnecting.add(task := self.loop.create_task(self.connect()))
            task.add_done_callback(self.reconnecting.discard)

    async def connect(self) -> None:
        """Open a lane, retrying until the server accepts."""
        for attempt in itertools.count():
            if attempt:
                await asyncio.sleep(RECONNECT_SECONDS)
            if await self._open():
                return

    async def _open(self) -> bool:
        lane = Lane(self)
        self.lanes.add(lane)
        try:
            await self.loop.create_connection(lambda: lane, self.host, self.port)
        except OSError:
            self.lanes.discard(lane)
            return False
        return True

    def tick(self, now: float) -> None:
        """Send every request due by ``now`` that an idle lane can take."""
        self.due_so_far = due_count(now - self.start, self.rate, self.total)
        idle, start, rate = self.idle, self.start, self.rate
        while self.next < self.due_so_far and idle:
            self._send(idle.pop(), due_time(start, self.next, rate), now)

    def time_out(self, now: float) -> None:
        """Abort the connections whose request has waited too long (a failure each)."""
        for lane in list(self.lanes):
            if lane.sequence >= 0 and now - lane.sent_at > REQUEST_TIMEOUT_SECONDS:
                lane.abort()

    async def drain(self, seconds: float) -> int:
        """Wait (at most ``seconds``) for the answers in flight; how many never came."""
        if self.busy:
            self.drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), seconds)
        return self.busy

    async def close(self) -> None:
        """Close every lane, opening none again."""
        self.stopping = True
        for task in self.reconnecting:
            task.cancel()
        for lane in list(self.lanes):
            if lane.transport is not None:
                lane.transport.close()
        await asyncio.sleep(0.05)  # connection_lost runs


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


async def generate(spec: dict[str, Any]) -> None:
    """Open-loop at ``spec["rate"]``; a JSON line per ``spec["interval"]``, then the drain's."""
    driver = Driver(spec, closed=False)
    loop = driver.loop
    await asyncio.gather(*(driver.connect() for _ in range(driver.connections)))
    gc.freeze()  # what set-up made lives on: collections need not walk it again
    interval = spec["interval"]
    driver.start = start = loop.time()
    cpu_mark, number, next_check = own_cpu(), 1, start + 1.0
    boundary = start + interval
    while driver.next < driver.total:
        await asyncio.sleep(next_tick(loop.time(), start, TICK_SECONDS) - loop.time())
        now = loop.time()
        driver.tick(now)
        if now >= next_check:
            driver.time_out(now)
            next_check = now + 1.0
        if now >= boundary:  # a minute is over: its line
            cpu = own_cpu()
            emit(driver.tally.close(number, cpu - cpu_mark, interval))
            cpu_mark, number, boundary = cpu, number + 1, start + (number + 1) * interval
    drain_started = loop.time()  # the last answers, counted in a line of their own
    unanswered = await driver.drain(DRAIN_SECONDS)
    while number <= spec["seconds"] / interval:  # the last minute, if the sends ended in it
        cpu = own_cpu()
        emit(driver.tally.close(number, cpu - cpu_mark, interval))
        cpu_mark, number = cpu, number + 1
    driver.tally.errors += unanswered
    await driver.close()
    cpu = own_cpu()
    emit(driver.tally.close(0, cpu - cpu_mark, max(loop.time() - drain_started, 1e-3)))


async def saturate(spec: dict[str, Any]) -> None:
    """The mix's maximum through these lanes as closed loops; one JSON line.

    The soak's rate is a share of this figure, not of wrk's: on a machine of few cores the
    generator takes CPU from the service, and a share of a maximum measured without that
    cost would put the service past its knee (queues, not a soak).
    """
    driver = Driver(spec, closed=True)
    loop = driver.loop
    driver.deadline = loop.time() + spec["seconds"]
    cpu_before, started = own_cpu(), loop.time()
    await asyncio.gather(*(driver.connect() for _ in range(driver.connections)))
    while loop.time() < driver.deadline:
        await asyncio.sleep(0.5)
        driver.time_out(loop.time())
    unanswered = await driver.drain(DRAIN_SECONDS)
    elapsed = loop.time() - started
    tally, cpu = driver.tally, own_cpu() - cpu_before
    await driver.close()
    emit(
        {
            "ok": tally.ok,
            "errors": tally.errors + unanswered,
            "rate": tally.ok / elapsed,
            "generator_cpu": cpu / elapsed,
            "generator_us_per_request": cpu / max(tally.sent, 1) * 1e6,
        }
    )


def main() -> None:
    command, spec = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(generate(spec) if command == "loadgen" else saturate(spec))


if __name__ == "__main__":
    main()
