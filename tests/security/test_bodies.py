"""Large request bodies over a real socket, against a server in a subprocess: its memory must stay bounded.

A server used to read every request a client pipelined and queue it, body and all, behind
the handlers that were running: 256 queued requests of 1 MiB on one connection held
256 MiB. Now a connection stops reading once it holds `Settings.max_buffered_bytes` of
requests (or `max_in_flight` of them), so TCP slows its client down, and the server
refuses with 503 (code ``"busy"``) a request that would take it past
`Settings.max_server_buffered_bytes` in all. These tests measure the server's resident
memory from outside while clients pipeline large requests to a slow route
(`tests.security._bodies_app`), and check that every request gets exactly one reply and
that a well-behaved client is still served.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import trio

from benchmarks._wire import (
    OP_TEXT,
    HandshakeError,
    check_response_head,
    masked_frame,
    split_frames,
    upgrade_request,
)
from trio_rest._engine import ENGINE_NAMES

from ._server_process import ServerProcess, run_server

MiB = 2**20

# Every large request is one text message of exactly this many bytes, a 1 MB string in
# "data": just under the default Settings.max_message_size (1 MiB), so the server parses
# and holds it rather than refusing it with a 413.
REQUEST_BYTES = 1_000_000

TIMEOUT = 15.0  # seconds for a whole test, once its server listens
SAMPLE_EVERY = 0.02  # seconds between two readings of the server's RSS

# Copies of a large message one connection may hold that no byte limit counts, measured
# on idle connections that each sent one 1 MB request, already answered: the reader's
# last message and the parked worker's last request stay referenced until the next ones
# (and, with the websockets engine, the library's parser keeps the last frame); add the
# next message, which the engine buffers while it arrives. The copies made while parsing
# are freed at once, but glibc may keep their pages: the bounds below leave slack for it.
EXTRA_COPIES = 4


def sleep_request(id: int, seconds: float) -> bytes:
    """The client frame of a ``POST /sleep`` request of `REQUEST_BYTES` bytes."""
    head = b'{"method": "POST", "url": "/sleep?seconds=%g", "id": %d, "data": "' % (seconds, id)
    tail = b'"}'
    return masked_frame(OP_TEXT, head + b"x" * (REQUEST_BYTES - len(head) - len(tail)) + tail)


class WebSocket:
    """A client WebSocket over a Trio stream, framed with `benchmarks._wire`.

    One task may send while another receives (a Trio stream allows one of each).
    """

    def __init__(self, stream: trio.SocketStream, received: bytes) -> None:
        self.stream = stream
        self._received = received
        self._messages: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> WebSocket:
        """Open a connection to 127.0.0.1 and complete the WebSocket handshake."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        request, expected = upgrade_request("127.0.0.1", port)
        await stream.send_all(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise HandshakeError("connection closed during the handshake")
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        check_response_head(head, expected)
        return cls(stream, rest)

    async def receive(self) -> dict[str, Any]:
        """Return the next text message from the server, decoded."""
        while not self._messages:
            frames, self._received = split_frames(self._received)
            self._messages += [payload for opcode, payload in frames if opcode == OP_TEXT]
            if self._messages:
                break
            chunk = await self.stream.receive_some(65536)
            assert chunk, "the server closed the connection"
            self._received += chunk
        reply: dict[str, Any] = orjson.loads(self._messages.pop(0))
        return reply


async def ping(port: int) -> dict[str, Any]:
    """Send ``GET /ping`` on a fresh WebSocket and return the decoded reply."""
    ws = await WebSocket.connect(port)
    async with ws.stream:
        await ws.stream.send_all(masked_frame(OP_TEXT, b'{"method": "GET", "url": "/ping", "id": 1}'))
        return await ws.receive()


async def open_connections(port: int) -> int:
    """The number of WebSockets the server holds open, as its ``/health`` route tells."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    count: int = orjson.loads(body)["connections"]
    return count


async def wait_for_no_connections(port: int) -> None:
    while await open_connections(port):
        await trio.sleep(0.05)


class Sampler:
    """The largest RSS of a server seen so far, read every `SAMPLE_EVERY` seconds."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.before = self.peak = server.rss()

    async def sample(self, seconds: float = math.inf) -> None:
        """Read the RSS for `seconds` (until cancelled, by default)."""
        with trio.move_on_after(seconds):
            while True:
                self.peak = max(self.peak, self.server.rss())
                await trio.sleep(SAMPLE_EVERY)

    @property
    def growth(self) -> int:
        return self.peak - self.before


# -- one connection ----------------------------------------------------------------------

# One client pipelines this many requests, 64 MB in all, to a handler that sleeps for
# longer than the test: before the change the server read them all and held every body.
PIPELINED = 64

# The bound on the server's growth while one connection pipelines. The connection reads
# a request only while it holds less than max_buffered_bytes (4 MiB), so it holds five of
# them, 5 MB: each keeps its "data" string, one copy of its body. Outside that count, the
# connection may hold up to four more copies of its largest message (see
# `EXTRA_COPIES`). The socket buffers are the kernel's, not the process's. So 5 MB +
# 4 MB, and the rest of 16 MiB as slack for the allocator. Measured: 8-10 MiB with either
# engine. Without the bound the server would hold the 64 MB it was sent.
MAX_GROWTH_ONE_CONNECTION = 16 * MiB


class Pipeline:
    """A background sender of `PIPELINED` large requests: how far it got, and whether it finished."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.sent = 0
        self.done = False

    async def run(self, seconds: float) -> None:
        for id in range(PIPELINED):
            await self.ws.stream.send_all(sleep_request(id, seconds))
            self.sent += 1
        self.done = True


@pytest.mark.parametrize("engine", ENGINE_NAMES)
async def test_one_connection_stops_reading_past_its_buffered_bytes(
    engine: str, record_property: Callable[[str, object], None]
) -> None:
    with run_server("tests.security._bodies_app:one_at_a_time", "--engine", engine) as server:
        with trio.fail_after(TIMEOUT):
            # A first exchange loads what the server imports lazily: the baseline below is
            # its steady state.
            assert (await ping(server.port))["data"] == "pong"
            sampler = Sampler(server)
            ws = await WebSocket.connect(server.port)
            async with ws.stream, trio.open_nursery() as nursery:
                pipeline = Pipeline(ws)
                nursery.start_soon(pipeline.run, 60.0)  # past the test, below request_timeout
                await sampler.sample(2.0)
                # The server stopped reading, so the sender is stuck in send_all ...
                assert not pipeline.done, "the server read all 64 MB"
                sent = pipeline.sent
                # ... and it is not stuck itself: another client is served at once.
                assert (await ping(server.port))["data"] == "pong"
                await sampler.sample(0.2)
                assert pipeline.sent == sent, "the server read more, though no request finished"
                nursery.cancel_scope.cancel()
    record_property("rss_before", sampler.before)
    record_property("rss_peak", sampler.peak)
    record_property("requests_sent", sent)
    print(
        f"\n{engine}: one connection, {sent} of {PIPELINED} requests of {REQUEST_BYTES} bytes sent"
        f" (the rest blocked): RSS {sampler.before / MiB:.1f} MiB before,"
        f" {sampler.peak / MiB:.1f} MiB at the peak (+{sampler.growth / MiB:.1f})"
    )
    assert sampler.growth < MAX_GROWTH_ONE_CONNECTION, f"{engine}: grew by {sampler.growth / MiB:.1f} MiB"


# -- the whole server --------------------------------------------------------------------

# Eight connections pipeline six requests each, 48 MB, to a server that holds at most
# 8 MiB of requests in all (tests.security._bodies_app.small_budget), 4 MiB per connection.
CONNECTIONS = 8
PER_CONNECTION = 6
SLEEP_SECONDS = 2.0

# The bound on the server's growth: the budget (8 MiB of requests held), plus what each
# connection may hold outside it (`EXTRA_COPIES` of a 1 MB message), plus 8 MiB of slack
# for the allocator: 48 MiB. Measured: 38-40 MiB (websockets), 28-31 MiB (wsproto).
# Without the server's budget, the same clients grew it by 74 MiB (websockets), each
# connection holding five requests, at its own bound.
MAX_GROWTH_SERVER = 8 * MiB + CONNECTIONS * EXTRA_COPIES * MiB + 8 * MiB


async def pipeline_and_read(port: int, first_id: int, replies: dict[int, dict[str, Any]]) -> None:
    """Pipeline `PER_CONNECTION` requests on one connection and read a reply to each."""
    ws = await WebSocket.connect(port)
    ids = range(first_id, first_id + PER_CONNECTION)

    async def send() -> None:
        for id in ids:
            await ws.stream.send_all(sleep_request(id, SLEEP_SECONDS))

    async with ws.stream, trio.open_nursery() as nursery:
        nursery.start_soon(send)
        for _ in ids:
            reply = await ws.receive()
            assert reply["id"] in ids and reply["id"] not in replies, f"unexpected reply {reply}"
            replies[reply["id"]] = reply


@pytest.mark.parametrize("engine", ENGINE_NAMES)
async def test_server_refuses_requests_past_its_buffered_bytes(
    engine: str, record_property: Callable[[str, object], None]
) -> None:
    replies: dict[int, dict[str, Any]] = {}
    with run_server("tests.security._bodies_app:small_budget", "--engine", engine) as server:
        with trio.fail_after(TIMEOUT):
            assert (await ping(server.port))["data"] == "pong"
            sampler = Sampler(server)
            async with trio.open_nursery() as outer:
                outer.start_soon(sampler.sample)
                async with trio.open_nursery() as clients:
                    for n in range(CONNECTIONS):
                        clients.start_soon(pipeline_and_read, server.port, n * 100, replies)
                outer.cancel_scope.cancel()
            # Every client left after its last reply: the server lets go of them all. Its
            # RSS then is reported, not checked: glibc keeps freed pages, and a closed
            # connection is garbage in reference cycles (with websockets, still holding
            # its last frame) until Python's cyclic collector runs.
            await wait_for_no_connections(server.port)
            after = server.rss()
            reply = await ping(server.port)
            assert (reply["status"], reply["data"]) == (200, "pong")
    statuses = [(reply["status"], reply.get("code")) for reply in replies.values()]
    served, busy = statuses.count((200, None)), statuses.count((503, "busy"))
    for name, value in (
        ("rss_before", sampler.before),
        ("rss_peak", sampler.peak),
        ("rss_after_close", after),
        ("served", served),
        ("busy", busy),
    ):
        record_property(name, value)
    print(
        f"\n{engine}: {CONNECTIONS} connections x {PER_CONNECTION} requests of {REQUEST_BYTES} bytes:"
        f" {served} served, {busy} refused (busy); RSS {sampler.before / MiB:.1f} MiB before,"
        f" {sampler.peak / MiB:.1f} MiB at the peak (+{sampler.growth / MiB:.1f}),"
        f" {after / MiB:.1f} MiB after the clients left"
    )
    assert len(replies) == CONNECTIONS * PER_CONNECTION, "a request got no reply"
    assert served + busy == len(replies), f"unexpected replies: {sorted(set(statuses))}"
    assert busy > 0, "the server never refused a request"
    assert served > 0, "the server refused every request"
    assert sampler.growth < MAX_GROWTH_SERVER, f"{engine}: grew by {sampler.growth / MiB:.1f} MiB"
