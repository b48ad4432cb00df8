"""The real client over 127.0.0.1: concurrency, cancel on scope exit, reconnect with backoff."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

from trio_rest import APIError, App, Request, Server, SimpleRouter, endpoint
from trio_rest.auth import JWTAuth
from trio_rest.client import (
    REPLY_MARGIN,
    ConnectionClosedError,
    RequestTimeoutError,
    RequestTooLargeError,
    SubscriptionOverflowError,
    connect,
)
from trio_rest.testing import TestClient

from ._sockets import running
from .conftest import build_app


async def test_concurrent_requests_are_matched_by_id() -> None:
    with trio.fail_after(20):
        async with running(build_app()) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
            results: dict[int, object] = {}

            async def one(i: int) -> None:
                results[i] = (await client.get(f"/user/{i + 1000}")).data

            async with trio.open_nursery() as nursery:
                for i in range(300):
                    nursery.start_soon(one, i)
    assert all(results[i] == {"id": i + 1000, "args": {}} for i in range(300))


async def test_leaving_the_scope_sends_cancel() -> None:
    with trio.fail_after(20):
        async with running(build_app()) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
            with trio.move_on_after(0.2):
                await client.get("/sleep")
            (conn,) = server.connections
            while conn.stats().running:
                await trio.sleep(0.01)
            assert (await client.get("/user/1")).status == 200


async def test_reconnects_with_backoff_after_the_server_restarts() -> None:
    app = build_app()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
            port = server.port
            async with connect(f"ws://127.0.0.1:{port}/", max_backoff=0.2) as client:
                assert (await client.get("/user/1")).status == 200
                await server.shutdown()
                while client._connected.is_set():  # the client notices the close
                    await trio.sleep(0.01)
                replies: list[int] = []

                async def during_the_outage() -> None:
                    replies.append((await client.get("/user/2")).status)

                async with trio.open_nursery() as waiting:
                    waiting.start_soon(during_the_outage)  # waits for the new connection
                    await trio.sleep(0.5)  # a few failed attempts, backing off
                    assert not replies
                    await nursery.start(Server(app).serve, "127.0.0.1", port)
                assert replies == [200]
                assert client.connections == 2
            nursery.cancel_scope.cancel()


async def test_in_flight_request_fails_when_the_connection_drops() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(build_app()).serve, "127.0.0.1", 0)
            async with (
                connect(f"ws://127.0.0.1:{server.port}/", reconnect=False) as client,
                trio.open_nursery() as inner,
            ):

                async def doomed() -> None:
                    with pytest.raises(ConnectionClosedError):
                        await client.get("/sleep")

                inner.start_soon(doomed)
                await trio.sleep(0.1)
                (conn,) = server.connections
                conn._abort(1011, "test")
            nursery.cancel_scope.cancel()


async def test_first_connection_failure_propagates() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(10), pytest.raises(OSError):
        async with connect(f"ws://127.0.0.1:{port}/"):
            pass  # pragma: no cover


async def test_what_the_block_raises_comes_out_as_itself() -> None:
    """``except APIError`` around ``async with connect(...)`` catches it, and so with `TestClient`."""
    with trio.fail_after(10):
        async with running(build_app()) as server:
            with pytest.raises(APIError) as refused:
                url = f"ws://127.0.0.1:{server.port}/"
                async with connect(url) as client, client.subscribe("/no/such/route"):
                    pass  # pragma: no cover
            assert refused.value.status == 404
            with pytest.raises(KeyError, match="mine"):
                async with connect(f"ws://127.0.0.1:{server.port}/") as client:
                    assert (await client.get("/user/1")).status == 200
                    raise KeyError("mine")
            while server.connections:  # both closed on the way out
                await trio.sleep(0.01)
    with pytest.raises(KeyError, match="mine"):
        async with TestClient(build_app()) as client:
            assert (await client.get("/user/1")).status == 200
            raise KeyError("mine")


async def test_what_the_block_raises_keeps_its_cause_and_its_own_group() -> None:
    with pytest.raises(ValueError, match="wrapped") as raised:
        async with TestClient(build_app()):
            try:
                {}["key"]
            except KeyError as exc:
                raise ValueError("wrapped") from exc
    assert isinstance(raised.value.__cause__, KeyError) and raised.value.__context__ is raised.value.__cause__
    with pytest.raises(ExceptionGroup) as grouped:
        async with TestClient(build_app()), trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)
            raise ValueError("in my own nursery")
    (inner,) = grouped.value.exceptions  # the block's own group, not wrapped in another
    assert isinstance(inner, ValueError)


def _authenticated_app() -> tuple[App, JWTAuth]:
    @endpoint
    async def hello(request: Request) -> str:
        return "hello"

    router = SimpleRouter()
    router.register("/hello", hello, "GET")
    auth = JWTAuth("k" * 32)
    return App(router, auth=auth), auth


async def test_a_refused_handshake_raises_alone_from_connect() -> None:
    """A 401 at the handshake is `ConnectionRejected` itself, as its docstring says, not a group."""
    app, _ = _authenticated_app()
    with trio.fail_after(10):
        async with running(app) as server:
            with pytest.raises(trio_websocket.ConnectionRejected) as refused:
                headers = {"Authorization": "Bearer not-a-token"}
                async with connect(f"ws://127.0.0.1:{server.port}/", headers=headers, reconnect=False):
                    pass  # pragma: no cover
    assert refused.value.status_code == 401


async def test_a_reconnect_the_server_refuses_is_tried_again() -> None:
    """Revoked, the client's next handshakes are refused (401): it keeps trying, it does not crash."""
    app, auth = _authenticated_app()
    with trio.fail_after(20):
        async with running(app) as server:
            headers = {"Authorization": f"Bearer {auth.issue('bob')}"}
            async with connect(f"ws://127.0.0.1:{server.port}/", headers=headers, max_backoff=0.05) as client:
                assert (await client.get("/hello")).data == "hello"
                assert app.revoke("bob") == 1
                while client._connected.is_set():  # the client notices the close
                    await trio.sleep(0.01)
                await trio.sleep(0.5)  # several refused attempts
                assert client.connections == 1


async def test_a_silent_server_is_a_connect_timeout() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def accept_and_say_nothing() -> None:
                stream = await listeners[0].accept()
                await trio.sleep_forever()
                del stream  # pragma: no cover

            nursery.start_soon(accept_and_say_nothing)
            with pytest.raises(OSError, match=r"no WebSocket handshake within 0\.2 s"):
                async with connect(f"ws://127.0.0.1:{port}/", connect_timeout=0.2):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()
    await listeners[0].aclose()


async def test_a_request_the_server_would_refuse_fails_before_it_is_sent() -> None:
    # The server's 413 for a message over its limit cannot name the request's id: the
    # client refuses to send it instead of waiting for a reply that names nothing.
    app = build_app(max_message_size=10_000)
    with trio.fail_after(10):
        async with running(app) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with connect(url, reconnect=False, max_request_size=10_000) as client:
                with pytest.raises(RequestTooLargeError, match="10000"):
                    await client.request("PUT", "/user/1", data={"pad": "x" * 20_000})
                assert (await client.get("/user/1")).status == 200  # the connection is fine
            # A client told a larger limit than the server's: the 413 names no id, and
            # the request ends at its client-side deadline instead of waiting forever.
            async with connect(url, reconnect=False, request_timeout=0.5) as client:
                with pytest.raises(RequestTimeoutError):
                    await client.request("PUT", "/user/1", data={"pad": "x" * 20_000})


async def test_every_request_waits_a_bounded_time(autojump_clock: trio.testing.MockClock) -> None:
    async with TestClient(build_app(request_timeout=None)) as client:
        client.request_timeout = 30
        start = trio.current_time()
        with pytest.raises(RequestTimeoutError, match="30"):
            await client.get("/sleep?seconds=100")
        assert 30 <= trio.current_time() - start < 31
        # With a deadline of its own, the request waits for it plus a margin: the
        # server's 504 comes first.
        assert (await client.get("/sleep?seconds=100", timeout=2)).status == 504
        assert REPLY_MARGIN > 0


async def _flood(request: Request) -> None:
    for n in range(50):
        await request.notify(n)
    await trio.sleep_forever()


async def test_a_subscription_read_too_slowly_ends_and_the_client_goes_on() -> None:
    router = SimpleRouter()
    router.register("/flood", _flood, "SUBSCRIBE")
    router.register("/ok", _ok, "GET")
    app = App(router)
    async with TestClient(app, subscription_buffer=4) as client:
        async with client.subscribe("/flood") as flood:
            with trio.fail_after(5):
                while not [c for s in app.servers for c in s.connections if c.stats().subscriptions == 0]:
                    await trio.sleep(0.01)  # the client cancelled it on the server
            got = [note.data async for note in _until_error(flood)]
            assert got == [0, 1, 2, 3]
        assert (await client.get("/ok")).data == "ok"  # the client lives on


@endpoint
async def _ok(request: Request) -> str:
    return "ok"


async def _until_error(subscription: Any) -> Any:
    with pytest.raises(SubscriptionOverflowError):
        async for note in subscription:
            yield note
