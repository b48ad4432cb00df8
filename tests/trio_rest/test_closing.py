"""Closing a connection: by a view, twice, with the client gone, during a write, with subscriptions."""

from __future__ import annotations

import functools

import trio
import trio.testing

from trio_rest import ServerConnection

from ._edge_app import edge_app, shutdown_scope
from ._raw import memory_connection


async def test_a_view_can_close_its_own_connection(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app()) as (_server, client, _):
        await client.send({"method": "POST", "url": "/bye", "id": "b"})
        with trio.fail_after(10):
            await client.closed.wait()
    assert client.close_code == 4000
    assert [(r["id"], r["status"]) for r in client.responses()] == [("b", 503)]  # cancelled with the rest


async def test_close_returns_when_the_client_leaves_during_the_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app(max_concurrency=1)) as (server, client, _):
        await client.send({"method": "GET", "url": "/hang", "id": "a"})
        await client.send({"method": "GET", "url": "/hang", "id": "b"})  # waits behind "a"
        await trio.sleep(0.1)
        (conn,) = server.connections
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(conn.close, 1001, "", grace=30))
            await trio.sleep(0.1)
            await client.stream.aclose()
        assert trio.current_time() - start < 5


async def test_two_closes_at_once_both_return_once_idle(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app()) as (server, client, _):
        await client.send({"method": "GET", "url": "/nap?s=1", "id": "n"})
        await trio.sleep(0.1)
        (conn,) = server.connections
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(conn.close, grace=30))
            await trio.sleep(0.01)
            nursery.start_soon(functools.partial(conn.close, grace=30))
        assert trio.current_time() - start < 10
    assert [(r["id"], r["status"]) for r in client.responses()] == [("n", 200)]


async def test_a_reply_being_written_at_a_shutdown_still_goes_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app()) as (_server, client, server_scope):
        shutdown_scope[:] = [server_scope]
        await client.send({"method": "GET", "url": "/last", "id": "x"})
        await client.closed.wait()
    assert client.close_code == 1001
    assert [r["id"] for r in client.responses()] == ["x"]


async def test_a_subscription_cut_by_a_shutdown_gets_its_final_notification(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app()) as (_server, client, server_scope):
        await client.send({"method": "SUBSCRIBE", "url": "/forever", "id": "s"})
        await client.wait_for(1)
        server_scope.cancel()
        await client.closed.wait()
    assert [m["seq"] for m in client.messages if m.get("final")] == [2]


async def test_a_subscription_cut_by_close_ends_with_an_error(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_connection(edge_app()) as (server, client, _):
        await client.send({"method": "SUBSCRIBE", "url": "/forever", "id": "s"})
        await client.wait_for(1)
        (conn,) = server.connections
        await conn.close(1001, "going away", grace=0)
        await client.closed.wait()
    (final,) = [m for m in client.messages if m.get("final")]
    assert final["event_name"] == "error" and final["data"]["status"] == 503


async def test_a_notification_while_the_connection_ends_is_dropped_quietly() -> None:
    errors: list[BaseException] = []
    for _ in range(10):  # trio shuffles each batch: the window is hit about half the time
        async with (
            trio.open_nursery() as outer,
            memory_connection(edge_app()) as (server, client, server_scope),
        ):
            await client.send({"method": "GET", "url": "/quick", "id": "q"})
            await client.wait_for(1)  # written by its worker: no writer task yet
            (conn,) = server.connections

            async def broadcaster(conn: ServerConnection = conn) -> None:  # a broker, or another view
                while not conn.closed:
                    # The window between the nursery closing and the connection's end
                    # has no public sign: the private flag is how the test finds it.
                    nursery = conn._nursery
                    if nursery is not None and nursery._closed:
                        try:
                            await conn.send_notification({"x": 1})
                        except BaseException as exc:
                            errors.append(exc)
                        return
                    await trio.lowlevel.checkpoint()

            for _ in range(4):
                outer.start_soon(broadcaster)
            await trio.sleep(0.01)
            server_scope.cancel()
            await client.closed.wait()
    assert not errors
