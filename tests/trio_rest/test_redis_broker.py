"""RedisBroker against a real redis-server: delivery across Apps, history, recovery, outages.

Each App here has its own RedisBroker and its own connection to Redis, as a process of its
own would; tests/test_workers.py runs real processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import coredis
import pytest
import trio

from tests._redis import RedisServer
from trio_rest import (
    App,
    AuthenticationError,
    BrokerUnavailableError,
    ConfigurationError,
    Request,
    SimpleRouter,
)
from trio_rest.brokers import RedisBroker
from trio_rest.client import Subscription
from trio_rest.testing import TestClient


async def follow_news(request: Request) -> None:
    await request.follow("news")
    await trio.sleep_forever()


def _app(url: str, **options: Any) -> App:
    router = SimpleRouter()
    router.register("/news", follow_news, "SUBSCRIBE")
    return App(router, broker=RedisBroker(url, max_backoff=0.2, **options))


def _broker(app: App) -> RedisBroker:
    assert isinstance(app.broker, RedisBroker)
    return app.broker


@asynccontextmanager
async def _serving(app: App) -> AsyncIterator[None]:
    """The App's broker running, as `serve` runs it."""
    async with app.open_lifespan():
        yield
    _broker(app).check_invariants()


async def _next(subscription: Subscription) -> tuple[Any, ...]:
    with trio.fail_after(10):
        note = await subscription.__anext__()
    return note.event_name, note.data, note.offset


async def _members(app: App, count: int) -> None:
    with trio.fail_after(5):
        while _broker(app).members("news") < count:
            await trio.sleep(0.01)


async def test_what_one_app_publishes_reaches_the_others_once_in_order(redis: RedisServer) -> None:
    one, two = _app(redis.url), _app(redis.url)
    async with _serving(one), _serving(two), TestClient(two) as client, client.subscribe("/news") as news:
        await _members(two, 1)
        for n in range(20):
            assert await one.publish("news", "n", {"n": n}) == 2  # both processes receive it
        got = [await _next(news) for _ in range(20)]
        assert got == [("n", {"n": n}, n + 1) for n in range(20)]
        with trio.move_on_after(0.2):
            raise AssertionError(f"delivered twice: {await news.__anext__()}")
    assert two.push_stats.delivered == 20 and one.push_stats.published == 20


async def test_a_subscriber_recovers_from_the_stream(redis: RedisServer) -> None:
    one, two = _app(redis.url), _app(redis.url)
    async with _serving(one), _serving(two), TestClient(two) as client:
        async with client.subscribe("/news", args={"since": {}}) as news:
            notice = await news.__anext__()
            assert (notice.event_name, notice.data, notice.offset) == ("recovery", {"recovered": True}, 0)
            await _members(two, 1)
            await one.publish("news", "n", 0)
            assert await _next(news) == ("n", 0, 1)
        for n in range(1, 6):  # nobody follows the topic now
            await one.publish("news", "n", n)
        since = {"news": {"epoch": notice.epoch, "offset": 1}}
        async with client.subscribe("/news", args={"since": since}) as news:
            assert await _next(news) == ("recovery", {"recovered": True}, 6)
            assert [await _next(news) for _ in range(5)] == [("n", n, n + 1) for n in range(1, 6)]
            await one.publish("news", "n", 6)
            assert await _next(news) == ("n", 6, 7)
        stale = {"news": {"epoch": "gone", "offset": 1}}
        async with client.subscribe("/news", args={"since": stale}) as news:
            assert (await _next(news))[:2] == ("recovery", {"recovered": False})


async def test_a_trimmed_stream_is_not_recovered(redis: RedisServer) -> None:
    one = _app(redis.url, history_size=3)
    async with _serving(one), TestClient(one) as client:
        async with client.subscribe("/news", args={"since": {}}) as news:
            epoch = (await news.__anext__()).epoch
        for n in range(200):  # MAXLEN ~ trims whole nodes: far past the size
            await one.publish("news", "n", n)
        async with client.subscribe("/news", args={"since": {"news": {"epoch": epoch, "offset": 0}}}) as news:
            notice = await _next(news)
            assert notice == ("recovery", {"recovered": False}, 200)


async def _outage(server: RedisServer, one: App, two: App, news: Subscription) -> tuple[list[Any], list[Any]]:
    """Publish 5, kill Redis, fail a publish, restart it, publish 5: what the subscriber saw."""
    for n in range(5):
        await one.publish("news", "n", n)
    before = [await _next(news) for _ in range(5)]
    server.kill()
    assert (await _next(news))[:2] == ("interrupted", {"reason": "The message broker is unreachable."})
    with pytest.raises(BrokerUnavailableError):
        await one.publish("news", "n", "lost")
    server.start()
    with trio.fail_after(10):
        while not (_broker(one).connected and _broker(two).connected):
            await trio.sleep(0.02)
    after = [await _next(news)]
    for n in range(5, 10):
        await one.publish("news", "n", n)
    after += [await _next(news) for _ in range(5)]
    with trio.move_on_after(0.2):
        raise AssertionError(f"unexpected: {await news.__anext__()}")
    return before, after


async def test_an_outage_is_reported_and_recovered_with_persistence(redis: RedisServer) -> None:
    one, two = _app(redis.url), _app(redis.url)
    async with _serving(one), _serving(two), TestClient(two) as client, client.subscribe("/news") as news:
        await _members(two, 1)
        before, after = await _outage(redis, one, two, news)
    assert before == [("n", n, n + 1) for n in range(5)]
    assert after[0] == ("resumed", {"recovered": True}, None)
    assert after[1:] == [("n", n, n + 1) for n in range(5, 10)]  # the same epoch, offsets go on


async def test_an_outage_without_persistence_says_nothing_could_be_recovered(
    volatile_redis: RedisServer,
) -> None:
    one, two = _app(volatile_redis.url), _app(volatile_redis.url)
    async with _serving(one), _serving(two), TestClient(two) as client, client.subscribe("/news") as news:
        await _members(two, 1)
        before, after = await _outage(volatile_redis, one, two, news)
    assert [data for _, data, _ in before] == list(range(5))
    assert after[0] == ("resumed", {"recovered": False}, None)  # Redis came back empty: a new epoch
    assert after[1:] == [("n", n, n - 4) for n in range(5, 10)]  # offsets start again


async def test_a_gap_in_the_live_offsets_is_filled_from_the_stream(redis: RedisServer) -> None:
    """A message published past this process's subscription is read from the stream, in order."""
    one, two = _app(redis.url), _app(redis.url)
    async with _serving(one), _serving(two), TestClient(two) as client, client.subscribe("/news") as news:
        await _members(two, 1)
        await one.publish("news", "n", 0)
        assert await _next(news) == ("n", 0, 1)
        # Two messages that skip the channel (as if lost between Redis and this process)...
        async with coredis.Redis.from_url(redis.url) as raw:
            for n in (1, 2):
                offset = await raw.hincrby("trio-rest:meta:news", "offset", 1)
                await raw.xadd(
                    "trio-rest:stream:news", {"b": b'"n"\n' + str(n).encode()}, identifier=f"{offset}-0"
                )
        await one.publish("news", "n", 3)  # ...then one that arrives: offset 4 after 1
        assert [await _next(news) for _ in range(3)] == [("n", 1, 2), ("n", 2, 3), ("n", 3, 4)]


async def test_serving_starts_without_redis_and_connects_when_it_comes(redis: RedisServer) -> None:
    redis.kill()
    one = _app(redis.url)
    async with _serving(one):
        assert not _broker(one).connected
        with pytest.raises(BrokerUnavailableError):
            await one.publish("news", "n", 0)
        redis.start()
        with trio.fail_after(10):
            while not _broker(one).connected:
                await trio.sleep(0.02)
        assert await one.publish("news", "n", 0) == 1


def test_a_url_that_is_not_redis_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a redis:// URL"):
        RedisBroker("http://127.0.0.1/")
    with pytest.raises(ConfigurationError, match="history_size"):
        RedisBroker("redis://127.0.0.1/", history_size=0)


async def test_a_message_that_is_not_trio_rests_does_not_stop_the_broker(redis: RedisServer) -> None:
    one = _app(redis.url)
    async with TestClient(one) as client, client.subscribe("/news") as news:
        await _members(one, 1)
        async with coredis.Redis.from_url(redis.url) as raw:
            for junk in (b"junk", b"1:e:1\n{}", b'x:e:"n"\n1', b'2:e:"n"\nnot json'):
                await raw.publish("trio-rest:ch:news", junk)
        await one.publish("news", "n", "fine")
        assert (await _next(news))[:2] == ("n", "fine")


async def test_presence_is_shared_and_dies_with_its_process(redis: RedisServer) -> None:
    one, two = _app(redis.url, presence_ttl=1.0), _app(redis.url)
    async with _serving(two):
        async with _serving(one):
            await one.broker.present("room", "c1", {"user": "ada"})
            await two.broker.present("room", "c2", {"user": "bob"})
            assert (
                await one.presence("room")
                == await two.presence("room")
                == {
                    "c1": {"user": "ada"},
                    "c2": {"user": "bob"},
                }
            )
            await trio.sleep(1.2)  # kept alive while its process runs
            assert "c1" in await two.presence("room")
        # `one` stopped without saying goodbye (as a killed process): its client expires.
        with trio.fail_after(5):
            while "c1" in await two.presence("room"):
                await trio.sleep(0.1)
        await two.broker.absent("room", "c2")
        assert await two.presence("room") == {}


async def test_a_revocation_reaches_every_process(redis: RedisServer) -> None:
    from trio_rest.auth import JWTAuth

    secret = "s" * 32

    def authenticated(url: str) -> App:
        app = _app(url)
        return App(app.router, broker=app.broker, auth=JWTAuth(secret))

    one, two = authenticated(redis.url), authenticated(redis.url)
    token = JWTAuth(secret).issue("ada")
    async with TestClient(two, path=f"/?token={token}") as ada, _serving(one):
        assert (await ada.ping()) >= 0
        assert [c.subject for s in two.servers for c in s.connections] == ["ada"]
        await trio.sleep(1.1)  # tokens are issued in whole seconds: the revocation comes after
        await one.revoke_everywhere("ada")
        with trio.fail_after(5):  # the other process closed her connection...
            while [c for s in two.servers for c in s.connections if c.subject == "ada"]:
                await trio.sleep(0.02)
    with pytest.raises(AuthenticationError, match="revoked"):
        await two.auth.authenticate(token)  # type: ignore[union-attr]  # ...and refuses her token
