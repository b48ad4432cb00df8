"""Idempotent writes: a request sent again with its idempotency key is answered, not run, again."""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

import pytest
import trio

from tests._redis import RedisServer
from trio_rest import App, Request, Response, Server, SimpleRouter, ValidationError, endpoint
from trio_rest.brokers import RedisBroker
from trio_rest.client import connect
from trio_rest.testing import TestClient


def _app(**app: Any) -> tuple[App, list[Any]]:
    """An app whose writes count their runs."""
    runs: list[Any] = []

    @endpoint
    async def create(request: Request) -> Response:
        runs.append(request.data)
        if request.data == "invalid":
            raise ValidationError("no")
        if request.data == "crash":
            raise RuntimeError("a bug")
        if request.data == "slow":
            await trio.sleep(0.2)
        return Response({"id": len(runs), "data": request.data}, status=201)

    router = SimpleRouter()
    router.register("/things", create, ["POST", "PUT"])
    return App(router, **app), runs


async def test_a_retry_gets_the_first_reply_without_running_again() -> None:
    app, runs = _app()
    async with TestClient(app) as client:
        first = await client.post("/things", "a", idempotency_key="k1")
        again = await client.post("/things", "a", idempotency_key="k1")
        other = await client.post("/things", "a", idempotency_key="k2")
        plain = await client.post("/things", "a")
    assert (first.status, first.data) == (201, {"id": 1, "data": "a"})
    assert (again.status, again.data) == (201, {"id": 1, "data": "a"})  # replayed
    assert other.data == {"id": 2, "data": "a"} and plain.data == {"id": 3, "data": "a"}
    assert runs == ["a", "a", "a"]


async def test_a_key_reused_for_another_request_is_a_409() -> None:
    app, runs = _app()
    async with TestClient(app) as client:
        await client.post("/things", "a", idempotency_key="k")
        body = await client.post("/things", "b", idempotency_key="k")
        method = await client.put("/things", "a", idempotency_key="k")
    for response in (body, method):
        assert (response.status, response.code) == (409, "idempotency_conflict")
    assert runs == ["a"]


async def test_errors_below_500_are_replayed_and_the_others_run_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, runs = _app()
    async with TestClient(app) as client:
        refused = [await client.post("/things", "invalid", idempotency_key="bad") for _ in range(2)]
        crashed = [await client.post("/things", "crash", idempotency_key="boom") for _ in range(2)]
    assert [(r.status, r.code) for r in refused] == [(400, "invalid")] * 2
    assert [r.status for r in crashed] == [500, 500]
    assert runs == ["invalid", "crash", "crash"]  # the 400 is remembered, the 500 is not


async def test_a_retry_while_the_first_runs_waits_for_its_reply() -> None:
    app, runs = _app()
    async with TestClient(app) as client:
        replies: list[Any] = []

        async def post() -> None:
            replies.append(await client.post("/things", "slow", idempotency_key="same"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            nursery.start_soon(post)
    assert runs == ["slow"]
    assert [r.data for r in replies] == [{"id": 1, "data": "slow"}] * 2
    app.idempotency.check_invariants()


@pytest.mark.parametrize("key", [7, "", "k" * 201])
async def test_a_malformed_key_is_a_400(key: Any) -> None:
    app, runs = _app()
    async with TestClient(app) as client:
        response = await client.post("/things", "a", idempotency_key=key)
    assert (response.status, response.code) == (400, "invalid_idempotency_key")
    assert runs == []


async def test_reads_ignore_the_key_and_keys_are_bounded_and_expire() -> None:
    app, runs = _app()
    assert app.settings.idempotency_ttl == 300
    app.broker.max_kept = 2  # type: ignore[attr-defined]
    async with TestClient(app) as client:
        for key in ("a", "b", "c"):  # "a" is pushed out by the bound
            await client.post("/things", key, idempotency_key=key)
        await client.post("/things", "a", idempotency_key="a")
        await client.post("/things", "c", idempotency_key="c")
    assert runs == ["a", "b", "c", "a"]


async def test_redis_shares_the_replies_between_processes(redis: RedisServer) -> None:
    one, runs_one = _app(broker=RedisBroker(redis.url))
    two, runs_two = _app(broker=RedisBroker(redis.url))
    async with TestClient(one) as first, TestClient(two) as second:
        a = await first.post("/things", "x", idempotency_key="shared")
        b = await second.post("/things", "x", idempotency_key="shared")
    assert a.data == b.data == {"id": 1, "data": "x"}
    assert (runs_one, runs_two) == (["x"], [])


async def test_the_client_resends_a_write_whose_reply_was_lost_and_it_runs_once() -> None:
    """A proxy drops the reply and the connection; the client reconnects and re-sends the write."""
    app, runs = _app()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
            proxy = _Proxy(server.port)
            port = await nursery.start(proxy.serve)
            async with connect(f"ws://127.0.0.1:{port}/", max_backoff=0.2) as client:
                assert (await client.post("/things", "before")).status == 201
                proxy.drop_next_reply = True
                response = await client.post("/things", "lost")
                assert client.connections == 2
            nursery.cancel_scope.cancel()
    assert (response.status, response.data) == (201, {"id": 2, "data": "lost"})
    assert runs == ["before", "lost"]  # the re-sent write was answered from memory


class _Proxy:
    """Forwards TCP to the server; armed, it drops the server's next bytes and cuts the connection."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.drop_next_reply = False

    async def serve(self, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", self.target)
        async with trio.open_nursery() as nursery:

            async def up() -> None:
                with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                    async for chunk in client:
                        await server.send_all(chunk)
                nursery.cancel_scope.cancel()

            async def down() -> None:
                async for chunk in server:
                    if self.drop_next_reply:
                        self.drop_next_reply = False
                        linger = struct.pack("ii", 1, 0)  # on, 0 s: closing resets the connection
                        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        await client.aclose()  # a reset: the reply never arrives
                        break
                    await client.send_all(chunk)
                nursery.cancel_scope.cancel()

            nursery.start_soon(up)
            nursery.start_soon(down)
        await server.aclose()
