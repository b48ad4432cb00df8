"""Topics: join, leave, publish; a broadcast to many clients, one of which never reads."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
import wsproto
import wsproto.events

from trio_rest import App, InMemoryBroker, Request, Server, Settings, SimpleRouter, endpoint
from trio_rest.testing import TestClient

from ._raw import MemoryClient


@endpoint
async def join(request: Request) -> str:
    request.connection.join(request.args.get("topic", "news"))
    return "joined"


@endpoint
async def leave(request: Request) -> str:
    request.connection.leave(request.args.get("topic", "news"))
    return "left"


def _app(**settings: Any) -> App:
    router = SimpleRouter()
    router.register("/join", join, "POST")
    router.register("/leave", leave, "POST")
    return App(router, settings=Settings(**settings))


async def test_join_publish_leave() -> None:
    app = _app()
    async with TestClient(app) as first, TestClient(app) as second:
        await first.post("/join")
        await second.post("/join")
        await second.post("/join", args={"topic": "other"})
        assert await app.publish("news", "headline", {"n": 1}) == 2
        for client in (first, second):
            note = await client.notifications.receive()
            assert (note.topic, note.event_name, note.data, note.id) == ("news", "headline", {"n": 1}, None)
        await second.post("/leave")
        assert await app.publish("news", "headline", {"n": 2}) == 1
        assert (await first.notifications.receive()).data == {"n": 2}
        assert await app.publish("nobody", "x") == 0
    assert isinstance(app.broker, InMemoryBroker)
    app.broker.check_invariants()
    assert app.broker.members("news") == 0 and app.broker.members("other") == 0  # left with the connection


async def test_a_broadcast_to_1000_clients_one_stalled() -> None:
    # In memory every client has the same address: the per-address cap is raised to fit them.
    app = _app(max_outbound_bytes=64 * 1024, ping_interval=600, max_connections_per_address=2000)
    server = Server(app)
    count, notes = 1000, 40
    clients: list[MemoryClient] = []
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for i in range(count):
                client_stream, server_stream = trio.testing.lockstep_stream_pair()
                client = MemoryClient(client_stream)  # type: ignore[arg-type]
                clients.append(client)
                nursery.start_soon(server.handle_stream, server_stream)
                if i:
                    nursery.start_soon(client.read_forever)
                else:
                    nursery.start_soon(_open_then_stall, client)
                await client.stream.send_all(client.ws.send(wsproto.events.Request(host="t", target="/")))
            for client in clients:
                await client.opened.wait()
                await client.send({"method": "POST", "url": "/join", "id": 1})
            while app.broker.members("news") < count:  # type: ignore[attr-defined]
                await trio.sleep(0.01)
            start = trio.current_time()
            for n in range(notes):
                await app.publish("news", "n", {"n": n, "pad": "x" * 2000})
            publishing = trio.current_time() - start
            # The stalled client filled its outbound queue: it is disconnected (1008)...
            while len(server.connections) > count - 1:
                await trio.sleep(0.01)
            # ...and every other client got every notification once, in order.
            for client in clients[1:]:
                while sum(m.get("type") == "notification" for m in client.messages) < notes:
                    client.arrived = trio.Event()
                    await client.arrived.wait()
                got = [m["data"]["n"] for m in client.messages if m.get("type") == "notification"]
                assert got == list(range(notes))
            nursery.cancel_scope.cancel()
    assert publishing < 30  # bounded: publishing never waits for a client
    app.broker.check_invariants()  # type: ignore[attr-defined]


async def _open_then_stall(client: MemoryClient) -> None:
    """Read the handshake's answer, then never read again."""
    while not client.opened.is_set():
        data = await client.stream.receive_some(65536)
        client.ws.receive_data(data)
        if any(isinstance(e, wsproto.events.AcceptConnection) for e in client.ws.events()):
            client.opened.set()
    await trio.sleep_forever()


@pytest.mark.parametrize("topic", ["news"])
async def test_joining_an_ended_connection_is_refused(topic: str) -> None:
    app = _app()
    async with TestClient(app) as client:
        await client.post("/join")
        (conn,) = [c for s in app.servers for c in s.connections]
    with pytest.raises(RuntimeError, match="ended"):
        conn.join(topic)


async def follow_news(request: Request) -> None:
    await request.follow("news")
    await trio.sleep_forever()


async def test_a_subscription_follows_a_topic_with_its_id_and_gapless_seq() -> None:
    app = _app()
    app.router.register("/news", follow_news, "SUBSCRIBE")
    async with TestClient(app) as client, TestClient(app) as plain:
        await plain.post("/join")
        async with client.subscribe("/news") as subscription:
            while app.broker.members("news") < 2:  # type: ignore[attr-defined]
                await trio.sleep(0.01)
            for n in range(3):
                assert await app.publish("news", "headline", {"n": n}) == 2
            got = [await subscription.__anext__() for _ in range(3)]
            assert [(note.id, note.seq, note.data) for note in got] == [
                (subscription.id, 1, {"n": 0}),
                (subscription.id, 2, {"n": 1}),
                (subscription.id, 3, {"n": 2}),
            ]
            assert (await plain.notifications.receive()).id is None  # a plain member: no id
        while app.broker.members("news") > 1:  # type: ignore[attr-defined]
            await trio.sleep(0.01)  # the cancelled subscription left the topic
        assert await app.publish("news", "headline", {"n": 3}) == 1
    app.broker.check_invariants()  # type: ignore[attr-defined]
