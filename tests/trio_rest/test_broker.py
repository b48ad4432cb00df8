"""Topics: join, leave, publish; a broadcast to many clients, one of which never reads."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import pytest
import trio
import trio.testing
import wsproto
import wsproto.events
from trio_rest_protocol import LocalProtocolError

from trio_rest import App, InMemoryBroker, MethodBasedView, Request, Server, Settings, SimpleRouter, endpoint
from trio_rest.auth import BasePermission
from trio_rest.testing import TestClient

from ._raw import MemoryClient, open_lockstep


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


async def _joined(server: Server, nursery: trio.Nursery) -> MemoryClient:
    """A client that joined ``news`` and then reads only when told."""
    client = await open_lockstep(server, nursery)
    await client.read_until(lambda c: c.opened.is_set())
    await client.send({"method": "POST", "url": "/join", "id": 1})
    await client.read_until(lambda c: c.responses())
    return client


def _notes(client: MemoryClient) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == "notification"]


async def test_drop_oldest_tells_a_slow_client_how_many_it_missed() -> None:
    metrics: list[tuple[str, int]] = []
    app = _app(max_outbound_bytes=8 * 1024, notification_overflow="drop_oldest", ping_interval=600)
    app = App(app.router, settings=app.settings, metrics=lambda name, n: metrics.append((name, n)))
    server = Server(app)
    count = 100
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            client = await _joined(server, nursery)
            for n in range(count):  # the client reads nothing meanwhile
                await app.publish("news", "n", {"n": n, "pad": "x" * 1000})
            (connection,) = server.connections
            assert connection.stats().outbound_bytes <= 8 * 1024  # bounded, whatever was published
            await client.send({"method": "GET", "url": "/nowhere", "id": 2})  # a reply is never dropped
            nursery.start_soon(client.read_forever)
            while not any(m.get("id") == 2 for m in client.responses()):
                client.arrived = trio.Event()
                await client.arrived.wait()
            await trio.testing.wait_all_tasks_blocked()
            notes = _notes(client)
            missed = [m for m in notes if m["event_name"] == "missed"]
            got = [m["data"]["n"] for m in notes if m["event_name"] == "n"]
            assert missed and sum(m["data"]["count"] for m in missed) + len(got) == count
            assert got == sorted(got) and got[-1] == count - 1  # the newest survive, in order
            assert missed[0].get("topic") is None and missed[0].get("id") is None
            assert not client.closed.is_set()  # the client is slowed, not disconnected
            assert app.push_stats.dropped == sum(m["data"]["count"] for m in missed)
            assert ("dropped", missed[0]["data"]["count"]) in metrics
            assert app.push_stats.published == count and app.push_stats.slow_disconnects == 0
            nursery.cancel_scope.cancel()


async def test_the_metrics_hook_counts_publishes_deliveries_and_slow_disconnects() -> None:
    metrics: list[tuple[str, int]] = []

    def hook(name: str, amount: int) -> None:
        metrics.append((name, amount))
        if name == "published":
            raise RuntimeError("a broken hook is logged, never raised to the publisher")

    app = App(_app().router, metrics=hook)
    async with TestClient(app) as first, TestClient(app) as second:
        await first.post("/join")
        await second.post("/join")
        assert await app.publish("news", "x", 1) == 2
        await first.notifications.receive()
    assert metrics == [("published", 1), ("delivered", 2)]
    assert repr(app.push_stats) == (
        "PushStats(published=1, delivered=2, dropped=0, slow_disconnects=0, failed=0)"
    )


async def test_a_stalled_client_is_counted_as_a_slow_disconnect() -> None:
    app = _app(max_outbound_bytes=4 * 1024, ping_interval=600)
    server = Server(app)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await _joined(server, nursery)
            for _ in range(20):
                await app.publish("news", "n", "x" * 1000)
            while server.connections:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert app.push_stats.slow_disconnects == 1
    assert app.broker.members("news") == 0  # type: ignore[attr-defined]


async def test_publishing_what_cannot_be_encoded_fails_for_the_publisher() -> None:
    app = _app()
    async with TestClient(app) as client:
        await client.post("/join")
        with pytest.raises(LocalProtocolError, match="cannot publish"):
            await app.publish("news", "x", object())
        with pytest.raises(LocalProtocolError, match="cannot publish"):
            await app.publish(7, "x", 1)  # type: ignore[arg-type]
        assert await app.publish("news", "x", {"at": datetime.date(2026, 1, 2)}) == 1
        assert (await client.notifications.receive()).data == {"at": "2026-01-02"}
    assert app.push_stats.published == 1


class EvenOnly(BasePermission):
    """Lets a subscriber see the even numbers only; fails on a number it cannot read."""

    def has_object_permission(self, request: Request, obj: Any) -> bool:
        return obj["n"] % 2 == 0  # type: ignore[no-any-return]


class FollowEven(MethodBasedView):
    permission_classes: ClassVar = [EvenOnly]

    async def subscribe(self, request: Request) -> None:
        await request.follow("news")
        await trio.sleep_forever()


async def test_a_subscription_receives_only_the_objects_its_permissions_let_it_see(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()
    app.router.register("/even", FollowEven, "SUBSCRIBE")
    app = App(app.router)
    async with TestClient(app) as client, client.subscribe("/even") as subscription:
        while app.broker.members("news") < 1:  # type: ignore[attr-defined]
            await trio.sleep(0.01)
        delivered = [await app.publish("news", "n", {"n": n}) for n in range(5)]
        assert delivered == [1, 0, 1, 0, 1]
        assert await app.publish("news", "n", {"no": 1}) == 0  # the permission failed: refused
        assert await app.publish("news", "n", {"n": 1}, obj={"n": 2}) == 1  # obj decides
        got = [await subscription.__anext__() for _ in range(4)]
        assert [(note.seq, note.data) for note in got] == [
            (1, {"n": 0}),
            (2, {"n": 2}),
            (3, {"n": 4}),
            (4, {"n": 1}),
        ]
    assert "EvenOnly failed" in caplog.text


async def test_a_messagepack_member_and_subscription_get_the_data_itself() -> None:
    app = _app()
    app.router.register("/news", follow_news, "SUBSCRIBE")
    app = App(app.router)
    async with (
        TestClient(app, subprotocol="trio-rest.msgpack") as packed,
        TestClient(app) as plain,
        packed.subscribe("/news") as subscription,
    ):
        await packed.post("/join")
        await plain.post("/join")
        assert await app.publish("news", "x", {"at": datetime.date(2026, 1, 2), "n": [1, 2]}) == 3
        for client in (packed, plain):
            assert (await client.notifications.receive()).data == {"at": "2026-01-02", "n": [1, 2]}
        assert (await subscription.__anext__()).data == {"at": "2026-01-02", "n": [1, 2]}
