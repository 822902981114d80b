"""HTTP/1.1 load from Python for tests/bench/bench.py: closed loop where wrk is missing, and open loop.

Run as a process of its own, so that it has a GIL of its own and none of bench.py's imports:

    python tests/bench/http_load.py SPEC.json    # prints one JSON line: requests, seconds, errors, p50_ms, ...

SPEC holds ``host``, ``port``, ``requests`` (raw HTTP/1.1 requests as latin-1 text, cycled
through), ``seconds``, ``connections``, ``timeout`` (seconds before a request counts as an
error) and ``rate``: requests/s on a fixed schedule (open loop), or 0 for as fast as answered
(closed loop, as wrk). Answers must carry a Content-Length (runqy's and falcon's do).

Open loop: request i is due at start + i / rate, whether or not earlier ones were answered.
It goes out on the connection idle longest; when every connection is busy it waits for one,
and that wait is part of its latency, which runs from the due time, so a stall counts against
every request due during it (no coordinated omission). ``late_p99_ms`` is how late this
process itself was in sending, its own share of the latencies.

Everything runs in callbacks of one event loop (no task or future per request): on a machine
of few cores the load generator's CPU is taken from the server it measures.
"""

import asyncio
import collections
import json
import math
import sys
import time
from pathlib import Path

_CONTENT_LENGTH = b"\r\ncontent-length:"


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; hands each answer to its :class:`Load`."""

    def __init__(self, load: "Load") -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.since = 0.0  # what the latency of the request in flight runs from
        self.sent_at = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, since: float) -> None:
        self.busy, self.since, self.sent_at = True, since, time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or not self.busy:
            return
        head = bytes(self.buffer[:end]).lower() + b"\r\n"
        length = 0
        at = head.find(_CONTENT_LENGTH)
        if at >= 0:
            length = int(head[at + len(_CONTENT_LENGTH):head.find(b"\r\n", at + 2)])
        if len(self.buffer) < end + 4 + length:
            return
        done = time.perf_counter()
        del self.buffer[:end + 4 + length]
        self.busy = False
        if b"\r\nconnection: close\r\n" in head:  # gunicorn's sync workers answer one request per connection
            self.closed = True
            self.transport.close()
        self.load.answered(self, done - self.since, head[9:10] == b"2")  # "http/1.1 200 ..."

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy:
            self.busy = False
            self.load.failed(self)


class Load:
    """The requests of one run, the connections that send them, and what they measured."""

    def __init__(self, spec: dict) -> None:
        self.host, self.port = spec["host"], spec["port"]
        self.requests = [r.encode("latin-1") for r in spec["requests"]]
        self.timeout = spec["timeout"]
        self.latencies: list[float] = []
        self.errors = 0
        self.sent = 0
        self.finished = 0  # requests answered or failed
        self.connections: list[Connection] = []
        self.idle: collections.deque[Connection] = collections.deque()
        self.loop = asyncio.get_running_loop()
        self.watchdog = self.loop.call_later(0.25, self.abort_overdue)

    async def connect(self) -> Connection:
        _, connection = await self.loop.create_connection(lambda: Connection(self), self.host, self.port)
        self.connections = [c for c in self.connections if not c.closed] + [connection]
        return connection

    def send(self, connection: Connection, since: float) -> None:
        connection.send(self.requests[self.sent % len(self.requests)], since)
        self.sent += 1

    def answered(self, connection: Connection, latency: float, ok: bool) -> None:
        self.latencies.append(latency)
        self.errors += not ok
        self.finished += 1
        self.release(connection)

    def failed(self, connection: Connection) -> None:
        self.errors += 1
        self.finished += 1
        self.release(connection)

    def release(self, connection: Connection) -> None:
        """``connection`` may take the next request (a new connection replaces a closed one)."""
        if connection.closed:
            self.loop.create_task(self.replace())
        else:
            self.ready(connection)

    async def replace(self) -> None:
        try:
            connection = await self.connect()
        except OSError:
            self.errors += 1
            return  # one connection fewer
        self.ready(connection)

    def ready(self, connection: Connection) -> None:
        raise NotImplementedError

    def abort_overdue(self) -> None:
        """A request unanswered after ``timeout`` s counts as an error; its connection is dropped."""
        now = time.perf_counter()
        for connection in self.connections:
            if connection.busy and now - connection.sent_at > self.timeout:
                connection.transport.abort()
        self.watchdog = self.loop.call_later(0.25, self.abort_overdue)

    def summary(self, seconds: float) -> dict:
        self.watchdog.cancel()
        self.latencies.sort()
        return {"requests": len(self.latencies), "seconds": seconds, "errors": self.errors,
                **{name: percentile(self.latencies, q) * 1000 for name, q in
                   (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999), ("max_ms", 1.0))}}


class ClosedLoop(Load):
    """Each connection sends its next request when the previous one is answered, as wrk does."""

    async def run(self, seconds: float, connections: int) -> dict:
        """What was answered within ``seconds``; the requests still in flight then are left, as wrk does."""
        self.deadline = time.perf_counter() + seconds
        for connection in await asyncio.gather(*(self.connect() for _ in range(connections))):
            self.ready(connection)
        await asyncio.sleep(seconds)
        return self.summary(seconds)

    def ready(self, connection: Connection) -> None:
        now = time.perf_counter()
        if now < self.deadline:
            self.send(connection, now)


class OpenLoop(Load):
    """Requests on a fixed schedule (see the module docstring)."""

    async def run(self, seconds: float, connections: int, rate: float) -> dict:
        for connection in await asyncio.gather(*(self.connect() for _ in range(connections))):
            self.idle.append(connection)
        self.rate, self.total = rate, int(seconds * rate)
        self.waiting: collections.deque[float] = collections.deque()  # due times of requests without a connection
        self.late: list[float] = []
        self.all_finished = self.loop.create_future()
        self.start = time.perf_counter() + 0.01
        self.due_next = 0
        self.tick()
        try:
            await asyncio.wait_for(self.all_finished, seconds + 2 * self.timeout + 1)
        except asyncio.TimeoutError:
            self.errors += self.total - self.finished  # never answered
        self.late.sort()
        return {**self.summary(seconds), "offered": rate, "late_p99_ms": percentile(self.late, 0.99) * 1000}

    def tick(self) -> None:
        """Send every request due by now, then sleep until the next is due."""
        now = time.perf_counter()
        while self.due_next < self.total:
            due = self.start + self.due_next / self.rate
            if due > now:
                self.loop.call_later(due - now, self.tick)
                return
            self.late.append(now - due)
            self.due_next += 1
            if self.idle:
                self.send(self.idle.popleft(), due)
            else:
                self.waiting.append(due)

    def ready(self, connection: Connection) -> None:
        if self.waiting:
            self.send(connection, self.waiting.popleft())
        else:
            self.idle.append(connection)
        if self.finished >= self.total and not self.all_finished.done():
            self.all_finished.set_result(None)


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q``-quantile of an ascending list (NaN when empty)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


async def run(spec: dict) -> dict:
    if spec.get("rate"):
        return await OpenLoop(spec).run(spec["seconds"], spec["connections"], spec["rate"])
    return await ClosedLoop(spec).run(spec["seconds"], spec["connections"])


def main(argv: list[str]) -> int:
    print(json.dumps(asyncio.run(run(json.loads(Path(argv[0]).read_text())))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
