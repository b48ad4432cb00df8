"""A flood from one client is throttled (429, then a pause), others keep their latency; abuse is closed."""

from __future__ import annotations

import statistics
from typing import Any

import orjson
import pytest
import trio
import trio_websocket
import wsproto
import wsproto.events

from tests.trio_rest._sockets import running
from tests.trio_rest.conftest import build_app
from trio_rest._ratelimit import Bucket, Throttle


class Flooder:
    """A raw client from 127.0.0.2 that pipelines requests as fast as TCP takes them."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.statuses: list[int] = []
        self.retry_after: list[float] = []
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, port: int, address: str = "127.0.0.2", token: str | None = None) -> Flooder:
        client = cls(await trio.open_tcp_stream("127.0.0.1", port, local_address=address))
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        request = wsproto.events.Request(host="127.0.0.1", target="/", extra_headers=headers)
        await client.stream.send_all(client.ws.send(request))
        while True:
            client.ws.receive_data(await client.stream.receive_some(65536))
            if any(isinstance(e, wsproto.events.AcceptConnection) for e in client.ws.events()):
                return client

    async def flood(self, count: int) -> None:
        frame = self.ws.send(wsproto.events.Message(data='{"method": "GET", "url": "/user/1", "id": null}'))
        with trio.move_on_after(10):
            for _ in range(count // 100):
                await self.stream.send_all(frame * 100)

    async def read(self) -> None:
        with trio.move_on_after(15):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, wsproto.events.TextMessage):
                        reply: dict[str, Any] = orjson.loads(event.data)
                        self.statuses.append(reply["status"])
                        if reply["status"] == 429:
                            self.retry_after.append(reply["errors"]["retry_after"])
                    elif isinstance(event, wsproto.events.CloseConnection):
                        self.close_code = event.code
                        return


async def _burst_then(first: Flooder, *others: Flooder) -> None:
    """100 requests from `first`, then (a moment later) 100 from each of `others`, all read."""
    async with trio.open_nursery() as nursery:
        for client in (first, *others):
            nursery.start_soon(client.read)
        await first.flood(100)
        await trio.sleep(0.3)
        for client in others:
            await client.flood(100)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()


async def _latencies(ws: trio_websocket.WebSocketConnection, count: int) -> list[float]:
    times = []
    for i in range(count):
        start = trio.current_time()
        await ws.send_message(orjson.dumps({"method": "GET", "url": "/user/2", "id": i}).decode())
        assert orjson.loads(await ws.get_message())["status"] == 200
        times.append(trio.current_time() - start)
        await trio.sleep(0.002)
    return times


async def test_a_flood_is_throttled_and_another_clients_latency_holds() -> None:
    app = build_app(rate_limit=1000.0, rate_burst=500, rate_limit_strikes=1000)
    with trio.fail_after(40):
        async with running(app) as server:
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as polite:
                idle = statistics.median(await _latencies(polite, 100))
                flooder = await Flooder.connect(server.port)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flooder.read)
                    nursery.start_soon(flooder.flood, 50_000)
                    await trio.sleep(0.2)  # the flood is under way
                    during = statistics.median(await _latencies(polite, 100))
                    nursery.cancel_scope.cancel()
            assert 200 in flooder.statuses and 429 in flooder.statuses
            assert all(0 < wait <= 1.0 for wait in flooder.retry_after)
            # The flooder is not read while throttled: it costs the server little.
            assert during <= 3 * idle + 0.0005, (idle, during)


async def test_sustained_abuse_is_closed_with_1008_and_others_are_served() -> None:
    app = build_app(rate_limit=200.0, rate_burst=100, rate_limit_strikes=3)
    with trio.fail_after(30):
        async with running(app) as server:
            flooder = await Flooder.connect(server.port)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(flooder.flood, 200_000)
                await flooder.read()
                nursery.cancel_scope.cancel()
            assert flooder.close_code == 1008
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                assert len(await _latencies(ws, 5)) == 5


async def test_connections_from_one_address_share_its_limit() -> None:
    app = build_app(rate_limit=None, rate_limit_per_address=100.0, rate_limit_strikes=1000)
    with trio.fail_after(30):
        async with running(app) as server:
            first = await Flooder.connect(server.port, "127.0.0.3")
            second = await Flooder.connect(server.port, "127.0.0.3")
            await _burst_then(first, second)  # the first takes the address's whole burst
            assert first.statuses.count(200) >= 99
            assert second.statuses.count(429) >= 1
            # Another address is not touched.
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                assert len(await _latencies(ws, 5)) == 5


async def test_connections_of_one_user_share_its_limit() -> None:
    from trio_rest.auth import JWTAuth

    auth = JWTAuth("u" * 32)
    app = build_app(rate_limit=None, rate_limit_per_address=None, rate_limit_per_user=100.0)
    app.auth = auth
    token = auth.issue("ada")
    with trio.fail_after(30):
        async with running(app) as server:
            first = await Flooder.connect(server.port, "127.0.0.4", token)
            second = await Flooder.connect(server.port, "127.0.0.5", token)  # another address
            other = await Flooder.connect(server.port, "127.0.0.5", auth.issue("bob"))
            await _burst_then(first, second, other)  # the first takes ada's whole burst
            assert first.statuses.count(200) >= 99
            assert second.statuses.count(429) >= 1
            assert other.statuses.count(200) >= 99  # bob has a bucket of his own


def test_the_bucket_and_the_throttle() -> None:
    bucket = Bucket(rate=10.0, burst=2.0, now=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.1)  # the third waits a tenth of a second
    assert bucket.take(0.1) == 0.0
    throttle = Throttle(Bucket(10.0, 2.0, 0.0), None, max_strikes=2)
    assert throttle.check(0.0) == 0.0 and throttle.check(0.0) == 0.0
    assert throttle.check(0.0) == pytest.approx(0.1)  # throttled until one token is back (burst/2)
    assert throttle.check(0.05) == pytest.approx(0.05) and throttle.strikes == 1  # the same episode
    assert throttle.check(0.1) == 0.0 and throttle.strikes == 1  # admitted, not yet forgiven
    assert throttle.check(0.1) > 0 and throttle.exhausted  # straight into a second throttle
    calm = Throttle(Bucket(10.0, 2.0, 0.0), None, max_strikes=2)
    calm.check(0.0), calm.check(0.0), calm.check(0.0)
    assert calm.strikes == 1 and calm.check(1.0) == 0.0 and calm.strikes == 0  # a calm spell forgives


def test_limits_keep_no_address_without_a_connection() -> None:
    from trio_rest import Settings
    from trio_rest._ratelimit import Limits

    async def scenario() -> None:
        limits = Limits(Settings(rate_limit_per_address=10.0))
        first = limits.attach("a", 10.0)
        assert limits.attach("a", 10.0) is first  # shared
        limits.detach("a")
        limits.check_invariants()
        limits.detach("a")
        limits.check_invariants()
        assert limits.attach("a", 10.0) is not first  # a fresh bucket after the last one left

    trio.run(scenario)
