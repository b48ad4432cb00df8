"""Test helpers: an in-memory client for an `App`, the rules checked, the server in echo mode.

async def test_user(app):
    async with TestClient(app) as client:
        response = await client.get("/user/1")
        assert response.status == 200
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import trio
import trio.testing
import trio_websocket

from . import _connection
from ._app import App
from ._connection import ServerConnection
from ._groups import alone
from ._routing import SimpleRouter
from ._server import Server
from ._settings import Settings
from .client import Client, _lend

__all__ = ["TestClient", "checking_invariants", "serve_echo"]


class TestClient:
    """An in-memory client for `app`: the whole server stack, no socket.

    The server side runs the real connection driver and WebSocket engine over
    an in-memory stream, inside the app's lifespan (as `serve` runs it); the
    client side is `trio_rest.client.Client`, so the methods (`get`, `post`,
    `put`, `patch`, `delete`, `request`, `subscribe`, `ping`) are those of the
    real client.

    Args:
        app: the application under test.
        subprotocol: ``"trio-rest.json"`` or ``"trio-rest.msgpack"``.
        path: the handshake path.
        **options: the `Client`'s own options (``subscription_buffer``,
            ``request_timeout``...).
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self, app: App, *, subprotocol: str = "trio-rest.json", path: str = "/", **options: Any
    ) -> None:
        self.app = app
        self._options = options
        self.server = Server(app)
        self._subprotocol = subprotocol
        self._path = path
        self._context: Any = None

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[Client]:
        with alone() as block:
            async with self.app.open_lifespan(), trio.open_nursery() as nursery:

                async def opener(client_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
                    client_stream, server_stream = trio.testing.memory_stream_pair()
                    nursery.start_soon(self.server.handle_stream, server_stream)
                    return await trio_websocket.wrap_client_stream(
                        client_nursery,
                        client_stream,  # type: ignore[arg-type]
                        "testserver",
                        self._path,
                        subprotocols=[self._subprotocol],
                    )

                client = Client(nursery, opener, **self._options)
                await client.start()
                async with _lend(client, nursery, block):
                    yield client

    async def __aenter__(self) -> Client:
        self._context = self._open()
        return await self._context.__aenter__()  # type: ignore[no-any-return]

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._context.__aexit__(*exc_info)  # type: ignore[no-any-return]


@contextmanager
def checking_invariants() -> Iterator[list[str]]:
    """Check the rules of every server connection between the steps of a test.

    While the block runs, each connection checks its rules (and its worker pool's,
    outbox's and budget's: see their modules) whenever its reader is about to wait for
    the client, and once more when it has ended. A broken rule does not crash the
    server under test; it is recorded, and the block raises at its end.

    Yields:
        The list of violations recorded so far (empty while all is well).

    Raises:
        AssertionError: at the end of the block, when a rule was broken.
    """
    violations: list[str] = []

    def check(connection: ServerConnection) -> None:
        try:
            connection.check_invariants()
        except AssertionError:
            violations.append(f"{connection.peer}: {traceback.format_exc()}")

    previous = _connection.at_rest
    _connection.at_rest = check
    try:
        yield violations
    finally:
        _connection.at_rest = previous
    if violations:
        raise AssertionError("a connection broke its rules:\n" + "\n".join(violations))


async def serve_echo(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    engine: str | None = None,
    max_message_size: int = 32 * 2**20,
    permessage_deflate: bool = False,
    task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the WebSocket transport alone, echoing every message (for conformance suites).

    Args:
        host: the address to bind (keep it on loopback).
        port: the port; 0 picks a free one.
        engine: the WebSocket engine (the default one when None).
        max_message_size: the largest message (32 MiB: the suite sends 16 MiB).
        permessage_deflate: accept the compression clients offer (off, as by default;
            the suite's groups 12 and 13 need it on). The echo then compresses every
            message, even the shortest (``deflate_min_size=1``): RFC 7692 lets a server
            send short ones as they are, but kosoku 0.1.0 fails on uncompressed text
            replies in those groups ("Strings must be encoded before hashing").
        task_status: for ``nursery.start``; started with the `Server`.
    """
    defaults = Settings()
    settings = Settings(
        engine=engine or defaults.engine,
        max_message_size=max_message_size,
        max_frame_size=max_message_size,
        max_outbound_bytes=2 * max_message_size,
        permessage_deflate=permessage_deflate,
        deflate_min_size=1,
    )
    server = Server(App(SimpleRouter(), settings=settings), connection_class=_EchoConnection)
    await server.serve(host, port, task_status=task_status)


class _EchoConnection(ServerConnection):
    """Sends every message back unchanged: the WebSocket transport alone."""

    __slots__ = ()

    def handle_message(self, message: str | bytes) -> None:
        self.send_raw(message)

    def _from_binary(self, message: bytes) -> bytes:
        # A JSON connection reads a binary message that looks like base64 as base64 (aiorest-ws
        # clients send that); an echo sends back exactly what came.
        return message
