"""Subscriptions: the 200 first, gapless sequence numbers, and Trio's checkpoint rule."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_rest import App, Request, SimpleRouter
from trio_rest.testing import TestClient

from ._edge_app import edge_app
from ._raw import memory_connection


async def cancelled_before_anything(request: Request) -> dict[str, bool]:
    """Each push is an async call: cancelled, it raises before it sends anything."""
    caught = []
    for push in (request.accept, request.notify, request.connection.send_notification):
        with trio.CancelScope() as scope:
            scope.cancel()
            await push()
        caught.append(scope.cancelled_caught)
    return {"accepted": request.accepted, "all_cancelled": all(caught)}


async def counts(request: Request) -> str:
    await request.accept({"hello": True})
    await request.accept({"ignored": True})  # a second accept does nothing
    for i in range(3):
        assert await request.notify(i) == i + 1
    return "end"


async def not_a_subscription(request: Request) -> str:
    await request.accept()
    return "unreachable"  # pragma: no cover


def _app() -> App:
    router = SimpleRouter()
    router.register("/careful", cancelled_before_anything, "SUBSCRIBE")
    router.register("/counts", counts, "SUBSCRIBE")
    router.register("/plain", not_a_subscription, "GET")
    return App(router)


async def test_accept_notify_and_send_notification_checkpoint() -> None:
    async with TestClient(_app()) as client:
        response = await client.request("SUBSCRIBE", "/careful")
        await trio.sleep(0.01)
        assert (response.status, response.data) == (200, {"accepted": False, "all_cancelled": True})
        with pytest.raises(trio.WouldBlock):
            client.notifications.receive_nowait()  # nothing was pushed


async def test_the_200_comes_first_and_the_sequence_has_no_gaps() -> None:
    async with TestClient(_app()) as client, client.subscribe("/counts") as subscription:
        notes = [note async for note in subscription]
    assert subscription.response.data == {"hello": True}
    assert [(note.seq, note.data, note.final) for note in notes] == [
        (1, 0, False),
        (2, 1, False),
        (3, 2, False),
        (4, "end", True),
    ]


async def test_only_a_subscribe_request_can_accept(caplog: pytest.LogCaptureFixture) -> None:
    async with TestClient(_app()) as client:
        response = await client.get("/plain")
    assert response.status == 500
    assert "TrioRestError: only a SUBSCRIBE request can be accepted" in caplog.text


async def test_an_unencodable_notification_raises_in_the_view_and_leaves_no_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_connection(edge_app()) as (_server, client, _):
        await client.send({"method": "SUBSCRIBE", "url": "/odd", "id": "s"})
        await client.wait_for(1)
        await trio.sleep(1)
    notes = [m for m in client.messages if m["type"] == "notification"]
    assert [n["seq"] for n in notes] == [1, 2, 3]
    assert [n["data"] for n in notes[:2]] == [{"i": 0}, {"i": 2}]
    assert notes[-1]["final"] and notes[-1]["event_name"] == "error" and notes[-1]["data"]["status"] == 500
