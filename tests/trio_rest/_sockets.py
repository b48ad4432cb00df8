"""Helpers for tests over real sockets on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio
import wsproto
import wsproto.events

from trio_rest import App, Server


@asynccontextmanager
async def running(app: App) -> AsyncIterator[Server]:
    """Serve `app` on 127.0.0.1, port 0, for the duration of the block."""
    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


async def http_exchange(port: int, request: bytes) -> bytes:
    """Send one plain HTTP request to 127.0.0.1:`port`; everything the server sent before closing."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        received = b""
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def http_get(port: int, target: str, *, method: str = "GET", host: str = "x") -> tuple[bytes, bytes]:
    """A plain ``GET`` (or `method`) of `target`: the response's head and body."""
    received = await http_exchange(port, f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


class RawClient:
    """A WebSocket client that only writes when told, and never reads by itself."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        await client.stream.send_all(client.ws.send(wsproto.events.Request(host="127.0.0.1", target="/")))
        while True:
            client.ws.receive_data(await client.stream.receive_some(65536))
            for event in client.ws.events():
                if isinstance(event, wsproto.events.AcceptConnection):
                    return client

    async def send(self, message: str | bytes) -> None:
        await self.stream.send_all(self.ws.send(wsproto.events.Message(data=message)))

    def frame(self, message: str | bytes) -> bytes:
        return self.ws.send(wsproto.events.Message(data=message))

    async def replies(self, want: int, seconds: float = 3.0) -> list[dict[str, Any]]:
        """Read until `want` messages arrived (or `seconds` passed, or EOF); return them decoded."""
        got: list[dict[str, Any]] = []
        parts: list[str | bytes] = []  # wsproto hands a large message over in pieces
        with trio.move_on_after(seconds):
            while len(got) < want:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, wsproto.events.Message):
                        parts.append(event.data)
                        if event.message_finished:
                            got.append(orjson.loads(parts[0][:0].join(parts)))  # type: ignore[arg-type]
                            parts.clear()
        return got
