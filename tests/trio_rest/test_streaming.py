"""Streaming views: an async generator registered for SUBSCRIBE sends one notification per item."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from trio_rest import App, MethodBasedView, NotFound, Request, Server, Settings, SimpleRouter, endpoint
from trio_rest.testing import TestClient

from ._raw import open_lockstep

#: What the generators saw, for the tests to check.
seen: dict[str, Any] = {}


@endpoint
async def count(request: Request) -> AsyncIterator[int]:
    for n in range(int(request.args.get("to", 3))):
        yield n


@endpoint
async def forever(request: Request) -> AsyncIterator[int]:
    seen["closed"] = False
    try:
        n = 0
        while True:
            yield n
            n += 1
            await trio.sleep(0.01)
    finally:
        seen["closed"] = True


@endpoint
async def fails_after_one(request: Request) -> AsyncIterator[int]:
    yield 1
    raise ValueError("broken halfway")


@endpoint
async def refuses_at_once(request: Request) -> AsyncIterator[int]:
    raise NotFound("Nothing to stream.")
    yield 0  # pragma: no cover - makes it a generator


@endpoint
async def empty(request: Request) -> AsyncIterator[int]:
    return
    yield 0  # pragma: no cover - makes it a generator


@endpoint
async def big(request: Request) -> AsyncIterator[dict[str, Any]]:
    """Yields as fast as it can; records the most bytes ever on their way to the client."""
    connection = request.connection
    seen["most"] = 0
    for n in range(int(request.args["n"])):
        seen["most"] = max(seen["most"], connection.stats().outbound_bytes)
        yield {"n": n, "pad": "x" * 1000}


class Ticker(MethodBasedView):
    async def subscribe(self, request: Request) -> AsyncIterator[str]:
        yield "tick"
        yield "tock"


def _app(**settings: Any) -> App:
    router = SimpleRouter()
    for view in (count, forever, fails_after_one, refuses_at_once, empty, big):
        router.register(f"/{view.__name__}", view, "SUBSCRIBE")
    router.register("/ticker", Ticker, "SUBSCRIBE")
    return App(router, settings=Settings(**settings))


async def _all(client: TestClient, url: str, **options: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    with trio.fail_after(10):
        async with client.subscribe(url, **options) as subscription:
            notes = [(note.seq, note.event_name, note.data, note.final) async for note in subscription]
    return subscription.response, notes


async def test_each_item_is_a_notification_then_a_final_one() -> None:
    async with TestClient(_app()) as client:
        response, notes = await _all(client, "/count")
        assert response.status == 200
        assert notes == [(1, None, 0, False), (2, None, 1, False), (3, None, 2, False), (4, None, None, True)]
        _, notes = await _all(client, "/ticker")
        assert [data for _, _, data, _ in notes] == ["tick", "tock", None]
        _, notes = await _all(client, "/empty")
        assert notes == [(1, None, None, True)]  # 200, then only the final notification


async def test_cancelling_stops_the_generator() -> None:
    async with TestClient(_app()) as client:
        async with client.subscribe("/forever") as subscription:
            assert [(await subscription.__anext__()).data for _ in range(2)] == [0, 1]
        with trio.fail_after(5):
            while not seen.get("closed"):
                await trio.sleep(0.01)
        assert (await client.get("/nowhere")).status == 404  # the connection lives on


async def test_an_error_after_the_first_item_ends_with_an_error_notification(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(_app()) as client:
        _, notes = await _all(client, "/fails_after_one")
        assert notes[0] == (1, None, 1, False)
        seq, event_name, data, final = notes[1]
        assert (seq, event_name, final) == (2, "error", True)
        assert (data["status"], data["code"]) == (500, "internal_error")
        assert "broken halfway" not in str(data)
    assert "broken halfway" in caplog.text


async def test_an_error_before_the_first_item_is_the_reply() -> None:
    async with TestClient(_app()) as client:
        response = await client.request("SUBSCRIBE", "/refuses_at_once")
        assert (response.status, response.code) == (404, "not_found")


async def test_a_slow_consumer_slows_the_stream_down_and_misses_nothing() -> None:
    limit, count = 16 * 1024, 200
    app = _app(max_outbound_bytes=limit, ping_interval=600)
    server = Server(app)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            client = await open_lockstep(server, nursery)
            # As a client on a slow network: a little at a time, with pauses.
            nursery.start_soon(functools.partial(client.read_forever, 2048, pause=0.001))
            await client.opened.wait()
            await client.send({"method": "SUBSCRIBE", "url": "/big", "args": {"n": count}, "id": "s"})
            while not any(m.get("final") for m in client.messages):
                client.arrived = trio.Event()
                await client.arrived.wait()
            nursery.cancel_scope.cancel()
    got = [m["data"]["n"] for m in client.messages if m.get("type") == "notification" and not m.get("final")]
    assert got == list(range(count))  # every item, in order, none dropped
    assert seen["most"] <= limit // 2 + 1100  # paced at half the limit (one item past it at most)
    assert client.close_code is None
