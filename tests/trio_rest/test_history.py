"""Offsets, history and recovery on the in-memory broker, and the client that recovers on its own."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio

from trio_rest import App, ConfigurationError, InMemoryBroker, Published, Request, Server, SimpleRouter
from trio_rest.brokers import Member, Position, Recovery, recovery_after
from trio_rest.client import connect
from trio_rest.testing import TestClient


async def follow_news(request: Request) -> None:
    await request.follow("news")
    await trio.sleep_forever()


async def follow_two(request: Request) -> None:
    await request.follow("a")
    await request.follow("b")
    await trio.sleep_forever()


def _app(**broker: Any) -> App:
    router = SimpleRouter()
    router.register("/news", follow_news, "SUBSCRIBE")
    router.register("/two", follow_two, "SUBSCRIBE")
    return App(router, broker=InMemoryBroker(**broker))


def _check(app: App) -> None:
    assert isinstance(app.broker, InMemoryBroker)
    app.broker.check_invariants()


async def _publish(app: App, topic: str, numbers: range) -> None:
    for n in numbers:
        await app.publish(topic, "n", n)


async def test_each_publish_gets_the_next_offset_in_its_topics_epoch() -> None:
    app = _app()
    async with TestClient(app) as client, client.subscribe("/news") as subscription:
        await _publish(app, "news", range(3))
        notes = [await subscription.__anext__() for _ in range(3)]
    assert [note.offset for note in notes] == [1, 2, 3]
    assert len({note.epoch for note in notes}) == 1 and isinstance(notes[0].epoch, str)
    _check(app)


async def _recover(client: TestClient, since: dict[str, Any], url: str = "/news") -> tuple[Any, list[Any]]:
    """Subscribe with `since`; the recovery notice and every notification up to a quiet moment."""
    async with client.subscribe(url, args={"since": since}) as subscription:
        notice = await subscription.__anext__()
        notes = []
        while True:
            with trio.move_on_after(0.05) as quiet:
                notes.append(await subscription.__anext__())
            if quiet.cancelled_caught:
                return notice, notes


async def test_a_subscriber_recovers_exactly_what_it_missed() -> None:
    app = _app()
    async with TestClient(app) as client:
        notice, _ = await _recover(client, {})
        assert (notice.event_name, notice.data, notice.offset) == ("recovery", {"recovered": True}, 0)
        epoch = notice.epoch
        await _publish(app, "news", range(3))  # nobody listens
        notice, notes = await _recover(client, {"news": {"epoch": epoch, "offset": 0}})
        assert (notice.data, notice.offset, notice.epoch) == ({"recovered": True}, 3, epoch)
        assert [(note.data, note.offset, note.seq) for note in notes] == [(0, 1, 2), (1, 2, 3), (2, 3, 4)]
        notice, notes = await _recover(client, {"news": {"epoch": epoch, "offset": 3}})
        assert (notice.data, notes) == ({"recovered": True}, [])  # up to date: nothing to send
    _check(app)


async def test_trimmed_history_or_another_epoch_is_not_recovered() -> None:
    app = _app(history_size=3)
    async with TestClient(app) as client:
        await _publish(app, "news", range(5))
        notice, _ = await _recover(client, {})
        epoch = notice.epoch
        notice, notes = await _recover(client, {"news": {"epoch": epoch, "offset": 0}})
        assert notice.data == {"recovered": False}  # 1 and 2 were trimmed
        assert [note.offset for note in notes] == [3, 4, 5]  # what is left, still in order
        notice, notes = await _recover(client, {"news": {"epoch": "another", "offset": 1}})
        assert (notice.data, notes) == ({"recovered": False}, [])
        notice, notes = await _recover(client, {"news": {"epoch": epoch, "offset": 99}})
        assert notice.data == {"recovered": False}  # a position from the future
    _check(app)


async def test_histories_expire_and_are_bounded_in_number() -> None:
    app = _app(history_ttl=0.05, max_history_topics=2)
    async with TestClient(app) as client:
        await _publish(app, "news", range(2))
        notice, _ = await _recover(client, {})
        epoch = notice.epoch
        await trio.sleep(0.1)  # real seconds: the history's clock is the system's
        notice, notes = await _recover(client, {"news": {"epoch": epoch, "offset": 0}})
        assert (notice.data, notes, notice.offset) == ({"recovered": False}, [], 0)  # a new epoch
        assert notice.epoch != epoch
        await _publish(app, "news", range(1))
        await _publish(app, "a", range(1))
        await _publish(app, "b", range(1))  # a third topic: the least recent ("news") goes
        notice, _ = await _recover(client, {"news": {"epoch": notice.epoch, "offset": 1}})
        assert notice.data == {"recovered": False}
    _check(app)


async def test_each_topic_of_a_subscription_recovers_from_its_own_position() -> None:
    app = _app()
    async with TestClient(app) as client:
        async with client.subscribe("/two", args={"since": {}}) as subscription:
            notices = [await subscription.__anext__() for _ in range(2)]
        positions = {note.topic: {"epoch": note.epoch, "offset": note.offset} for note in notices}
        await _publish(app, "a", range(2))
        await _publish(app, "b", range(1))
        async with client.subscribe("/two", args={"since": positions}) as subscription:
            notes = [await subscription.__anext__() for _ in range(5)]
        assert [(note.topic, note.event_name, note.offset) for note in notes] == [
            ("a", "recovery", 2),
            ("a", "n", 1),
            ("a", "n", 2),
            ("b", "recovery", 1),
            ("b", "n", 1),
        ]
        assert [note.seq for note in notes] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "since",
    [["not", "a", "mapping"], {"news": {"epoch": 1, "offset": 0}}, {"news": {"epoch": "e", "offset": -1}}],
)
async def test_a_malformed_position_is_a_400(since: Any) -> None:
    async with TestClient(_app()) as client:
        response = await client.request("SUBSCRIBE", "/news", args={"since": since})
    assert (response.status, response.code) == (400, "invalid")
    assert "since" in response.errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Restartable:
    """`app` served on one port of 127.0.0.1, stopped (every connection drops) and started again."""

    def __init__(self, app: App, nursery: trio.Nursery) -> None:
        self.app, self.nursery, self.port = app, nursery, _free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self._serving = trio.CancelScope()

    async def start(self) -> None:
        self._serving = trio.CancelScope()
        await self.nursery.start(self._serve, self._serving)

    def stop(self) -> None:
        self._serving.cancel()

    async def _serve(self, scope: trio.CancelScope, task_status: trio.TaskStatus[None]) -> None:
        with scope:
            await Server(self.app).serve("127.0.0.1", self.port, task_status=task_status)


async def test_the_client_recovers_what_was_published_while_it_was_away() -> None:
    """The server goes away, 100 messages are published, it comes back: the client gets exactly those."""
    app = _app(history_size=1000)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = _Restartable(app, nursery)
            await server.start()
            url = server.url
            async with connect(url, max_backoff=0.2) as client, client.subscribe("/news") as subscription:
                assert subscription.response.status == 200
                assert (await subscription.__anext__()).event_name == "recovery"
                await _publish(app, "news", range(5))
                before = [(await subscription.__anext__()).data for _ in range(5)]
                server.stop()  # every connection drops
                await trio.sleep(0.1)
                await _publish(app, "news", range(5, 105))  # while the client is away
                await server.start()
                notice = await subscription.__anext__()
                assert (notice.event_name, notice.data) == ("recovery", {"recovered": True})
                after = [(await subscription.__anext__()).data for _ in range(100)]
                await _publish(app, "news", range(105, 106))
                live = (await subscription.__anext__()).data
                assert client.connections == 2
            nursery.cancel_scope.cancel()
    assert before == list(range(5))
    assert after == list(range(5, 105))  # exactly the ones missed, once, in order
    assert live == 105


async def test_a_drop_before_a_topics_first_notice_recovers_from_the_callers_since() -> None:
    """Until a topic has sent anything, the client resubscribes from the position it was given."""
    reached_b = trio.Event()
    go_on = trio.Event()

    async def a_then_b(request: Request) -> None:
        await request.follow("a")
        await go_on.wait()  # "b" sends nothing on the first connection
        await request.follow("b")
        reached_b.set()
        await trio.sleep_forever()

    router = SimpleRouter()
    router.register("/two", follow_two, "SUBSCRIBE")
    router.register("/a-then-b", a_then_b, "SUBSCRIBE")
    app = App(router, broker=InMemoryBroker(history_size=100))
    async with TestClient(app) as client, client.subscribe("/two", args={"since": {}}) as subscription:
        notices = [await subscription.__anext__() for _ in range(2)]
    given = {note.topic: {"epoch": note.epoch, "offset": note.offset} for note in notices}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = _Restartable(app, nursery)
            await server.start()
            url = server.url
            async with (
                connect(url, max_backoff=0.2) as client,
                client.subscribe("/a-then-b", args={"since": given}) as subscription,
            ):
                assert (await subscription.__anext__()).topic == "a"
                assert subscription.positions["b"] == given["b"]  # nothing from "b" yet
                server.stop()  # the connection drops before "b" sent its notice
                await trio.sleep(0.1)
                await _publish(app, "b", range(3))  # while the client is away
                go_on.set()
                await server.start()
                from_b = []
                while len(from_b) < 4:
                    note = await subscription.__anext__()
                    if note.topic == "b":
                        from_b.append((note.event_name, note.data))
                assert reached_b.is_set()
            nursery.cancel_scope.cancel()
    assert from_b == [("recovery", {"recovered": True}), ("n", 0), ("n", 1), ("n", 2)]


class ReplayingBroker(InMemoryBroker):
    """A broker across processes may deliver live, after a recovery, what the history gave."""

    def join(self, topic: str, member: Member) -> None:
        self.followers = [*getattr(self, "followers", []), member]
        super().join(topic, member)

    async def history(self, topic: str, since: Position | None) -> Recovery:
        recovery = await super().history(topic, since)
        self.replay = list(recovery.messages)
        return recovery


async def test_what_the_history_gave_is_never_sent_again_live() -> None:
    broker = ReplayingBroker()
    router = SimpleRouter()
    router.register("/news", follow_news, "SUBSCRIBE")
    app = App(router, broker=broker)
    async with TestClient(app) as client:
        notice, _ = await _recover(client, {})
        await _publish(app, "news", range(3))
        since = {"news": {"epoch": notice.epoch, "offset": 0}}
        async with client.subscribe("/news", args={"since": since}) as subscription:
            notes = [await subscription.__anext__() for _ in range(4)]
            assert [note.offset for note in notes] == [3, 1, 2, 3]  # the notice, then the history
            for message in broker.replay:  # the same messages again, live
                for member in broker.followers:
                    member.deliver(message)
            await app.publish("news", "n", 3)
            assert (await subscription.__anext__()).offset == 4  # the duplicates were dropped


def test_a_history_with_a_hole_is_not_recovered() -> None:
    def message(offset: int) -> Published:
        published = Published("t", "n", offset)
        published.stamp("e", offset)
        return published

    position = Position("e", 5)
    hole = recovery_after(Position("e", 1), position, [message(2), message(3), message(5)])
    assert (hole.recovered, [m.offset for m in hole.messages]) == (False, [2, 3, 5])
    short = recovery_after(Position("e", 1), position, [message(2), message(3)])
    assert short.recovered is False  # the last ones are missing too
    whole = recovery_after(Position("e", 1), position, [message(n) for n in range(1, 6)])
    assert (whole.recovered, [m.offset for m in whole.messages]) == (True, [2, 3, 4, 5])
    assert recovery_after(Position("e", 5), position, []).recovered is True
    assert recovery_after(Position("e", 9), position, []).recovered is False
    assert recovery_after(Position("x", 1), position, [message(2)]).messages == []


async def in_the_room(request: Request) -> None:
    async with request.present("room", {"user": request.args.get("user")}):
        await request.follow("room")
        await trio.sleep_forever()


async def test_presence_with_join_and_leave_notifications() -> None:
    """(A client joins before it follows the topic: it is told of the others, not of itself.)"""
    router = SimpleRouter()
    router.register("/room", in_the_room, "SUBSCRIBE")
    app = App(router)
    with trio.fail_after(10):
        await _presence_scenario(app)
    _check(app)


async def test_a_topic_followed_later_delivers_from_then_on() -> None:
    go_on = trio.Event()
    following_b = trio.Event()

    async def a_then_b(request: Request) -> None:
        await request.follow("a")
        await go_on.wait()
        await request.follow("b")
        following_b.set()
        await trio.sleep_forever()

    router = SimpleRouter()
    router.register("/a-then-b", a_then_b, "SUBSCRIBE")
    app = App(router)
    with trio.fail_after(10):
        async with TestClient(app, reconnect=False) as client, client.subscribe("/a-then-b") as both:
            await _publish(app, "b", range(2))  # before "b" is followed: not for this subscription
            go_on.set()
            await following_b.wait()
            await _publish(app, "b", range(2, 3))
            note = await both.__anext__()
            assert (note.topic, note.data, note.seq) == ("b", 2, 1)
    _check(app)


async def test_a_client_that_follows_before_it_joins_sees_its_own_join() -> None:
    async def follow_then_join(request: Request) -> None:
        await request.follow("room")
        async with request.present("room", {"user": request.args.get("user")}):
            await trio.sleep_forever()

    router = SimpleRouter()
    router.register("/room", follow_then_join, "SUBSCRIBE")
    app = App(router)
    with trio.fail_after(10):
        async with TestClient(app) as client, client.subscribe("/room", args={"user": "ada"}) as ada:
            note = await ada.__anext__()
            assert (note.event_name, note.data["info"]) == ("join", {"user": "ada"})
    _check(app)


async def _presence_scenario(app: App) -> None:
    async with TestClient(app) as client:
        async with client.subscribe("/room", args={"user": "ada"}) as ada:
            async with client.subscribe("/room", args={"user": "bob"}):  # ada sees bob join
                note = await ada.__anext__()
                assert (note.event_name, note.data["info"]) == ("join", {"user": "bob"})
                present = await app.presence("room")
                assert sorted(info["user"] for info in present.values()) == ["ada", "bob"]
                bob = next(client for client, info in present.items() if info["user"] == "bob")
            note = await ada.__anext__()
            assert (note.event_name, note.data) == ("leave", {"client": bob, "info": {"user": "bob"}})
            assert [info["user"] for info in (await app.presence("room")).values()] == ["ada"]
        with trio.fail_after(5):
            while await app.presence("room"):
                await trio.sleep(0.01)


class _SlowHistory(InMemoryBroker):
    """Reads a topic's history only once `release` is set, as Redis answers after a while."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = trio.Event()
        self.release = trio.Event()

    async def history(self, topic: str, since: Position | None) -> Recovery:
        self.reading.set()
        await self.release.wait()
        return await super().history(topic, since)


async def _recovering_while_history_is_slow(
    publish_after_200: str | None, during_read: str | None, after_read: str | None, last: str
) -> list[Any]:
    """A recovering subscriber of /news whose history read waits: what it sees, up to `last`.

    It publishes `publish_after_200` itself once answered; `during_read` is published while
    its history is read, and `after_read` once the read is done.
    """
    router = SimpleRouter()
    router.register("/news", follow_news, "SUBSCRIBE")
    broker = _SlowHistory()
    app = App(router, broker=broker)
    seen: list[Any] = []
    with trio.fail_after(10):
        async with TestClient(app) as client, trio.open_nursery() as nursery:

            async def subscriber() -> None:
                async with client.subscribe("/news", args={"since": {}}) as subscription:
                    if publish_after_200 is not None:
                        await app.publish("news", "n", publish_after_200)
                    async for note in subscription:
                        seen.append(note.data)
                        if note.data == last:
                            return

            nursery.start_soon(subscriber)
            await broker.reading.wait()
            if during_read is not None:
                await app.publish("news", "n", during_read)  # joined, not yet answered
            await trio.sleep(0.05)  # the subscriber would publish now, were it already answered
            broker.release.set()
            if after_read is not None:
                await trio.sleep(0.05)
                await app.publish("news", "n", after_read)
    _check(app)
    return seen


async def test_what_is_published_after_the_200_of_a_recovering_subscription_reaches_it() -> None:
    """The 200 waits for the history's position: a publish the client makes after it lies past it."""
    seen = await _recovering_while_history_is_slow("after the 200", None, None, last="after the 200")
    assert seen == [{"recovered": True}, "after the 200"]


async def test_what_is_published_while_a_recovering_subscription_reads_its_history_reaches_it() -> None:
    """Live messages wait while the history is read (before the 200), then follow it, in order.

    The history's position is read after the first publish: that one is part of what was
    there before (since={} asks for nothing before), and the second one follows, live.
    """
    seen = await _recovering_while_history_is_slow(
        None, "during the read", "after the history", last="after the history"
    )
    assert seen == [{"recovered": True}, "after the history"]


async def test_the_clients_positions_stay_on_a_recovered_notice_and_move_with_messages() -> None:
    """Resubscribed from where it was, the client's position holds until a message comes."""
    app = _app()
    async with TestClient(app) as client:
        async with client.subscribe("/news", args={"since": {}}) as subscription:
            notice = await subscription.__anext__()
        given = {"news": {"epoch": notice.epoch, "offset": notice.offset}}
        async with client.subscribe("/news", args={"since": given}, recover=True) as subscription:
            assert (await subscription.__anext__()).data == {"recovered": True}
            assert subscription.positions == given  # a recovered notice does not move it
            await _publish(app, "news", range(1))
            note = await subscription.__anext__()
            assert subscription.positions == {"news": {"epoch": note.epoch, "offset": note.offset}}
    _check(app)


@pytest.mark.parametrize("limit", ["history_size", "history_ttl", "max_history_topics"])
@pytest.mark.parametrize("value", [0, -1, True, "5"])
def test_each_history_limit_must_be_a_positive_number(limit: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"InMemoryBroker: {limit} must be positive"):
        InMemoryBroker(**{limit: value})
