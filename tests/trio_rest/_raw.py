"""A raw in-memory client for one server connection: it writes when told and records every frame."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio
import trio.testing
import wsproto
import wsproto.events

from trio_rest import App, Server


class MemoryClient:
    """A wsproto client over an in-memory stream to `Server.handle_stream`.

    Attributes:
        messages: every message received, decoded, in order.
        close_code: the server's close code, once its close frame arrived.
        closed: set once the stream ended (or the close frame arrived).
    """

    def __init__(self, stream: trio.testing.MemoryStapledStream[Any]) -> None:  # type: ignore[type-var]
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.pings = 0  # pings received (and never answered)
        self.closed = trio.Event()
        self.opened = trio.Event()
        self.arrived = trio.Event()
        self._parts: list[str] = []

    async def send(self, envelope: dict[str, Any]) -> None:
        await self.stream.send_all(self.ws.send(wsproto.events.Message(data=orjson.dumps(envelope).decode())))

    @asynccontextmanager
    async def subscribe_raw(self, url: str, request_id: str) -> AsyncIterator[None]:
        """Send a SUBSCRIBE and wait for its reply; the subscription is left as the server leaves it."""
        await self.send({"method": "SUBSCRIBE", "url": url, "id": request_id})
        while not any(m.get("id") == request_id and m.get("type") == "response" for m in self.messages):
            self.arrived = trio.Event()
            await self.arrived.wait()
        yield

    def responses(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "response"]

    async def wait_for(self, count: int) -> None:
        """Wait until `count` responses arrived (or the stream ended)."""
        while len(self.responses()) < count and not self.closed.is_set():
            self.arrived = trio.Event()
            await self.arrived.wait()

    def _feed(self, data: bytes) -> bool:
        """Take bytes from the server; false once its close frame came."""
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, wsproto.events.AcceptConnection):
                self.opened.set()
            elif isinstance(event, wsproto.events.Message):
                self._parts.append(event.data)  # a message read a little at a time comes in pieces
                if event.message_finished:
                    self.messages.append(orjson.loads("".join(self._parts)))
                    self._parts.clear()
                    self.arrived.set()
            elif isinstance(event, wsproto.events.Ping):
                self.pings += 1
            elif isinstance(event, wsproto.events.CloseConnection):
                self.close_code = event.code
                self.closed.set()
                self.arrived.set()
                return False
        return True

    async def read_forever(self, size: int = 65536, pause: float = 0.0) -> None:
        """Read until the stream ends, `size` bytes at a time, pausing `pause` seconds between reads."""
        try:
            while True:
                data = await self.stream.receive_some(size)
                if not data or not self._feed(data):
                    break
                if pause:
                    await trio.sleep(pause)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.closed.set()
            self.arrived.set()

    async def read_until(self, done: Any) -> None:
        """Read only until ``done(self)`` holds (a client that reads when told)."""
        while not done(self):
            self._feed(await self.stream.receive_some(65536))


async def open_lockstep(server: Server, nursery: trio.Nursery) -> MemoryClient:
    """A client over a lockstep stream (the server's writes wait for its reads), handshake sent."""
    client_stream, server_stream = trio.testing.lockstep_stream_pair()
    client = MemoryClient(client_stream)  # type: ignore[arg-type]
    nursery.start_soon(server.handle_stream, server_stream)
    await client.stream.send_all(client.ws.send(wsproto.events.Request(host="t", target="/")))
    return client


@asynccontextmanager
async def memory_connection(app: App) -> AsyncIterator[tuple[Server, MemoryClient, trio.CancelScope]]:
    """Open one WebSocket to a fresh `Server` for `app`, in memory.

    Yields the server, the client, and the cancel scope of the server's side (cancel it
    to stop the server as a shutdown does).
    """
    server = Server(app)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = MemoryClient(client_stream)
    async with trio.open_nursery() as nursery:
        server_scope = trio.CancelScope()

        async def serve() -> None:
            with server_scope:
                await server.handle_stream(server_stream)

        nursery.start_soon(serve)
        nursery.start_soon(client.read_forever)
        await client_stream.send_all(client.ws.send(wsproto.events.Request(host="test", target="/")))
        await client.opened.wait()
        try:
            yield server, client, server_scope
        finally:
            nursery.cancel_scope.cancel()
