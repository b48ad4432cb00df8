"""Connection timers: call_later and every, cancellable, dying with the connection."""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

from trio_rest import App, Request, SimpleRouter, Timer
from trio_rest._timers import start_timer
from trio_rest.testing import TestClient


async def test_call_later_and_every(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    async def record() -> None:
        calls.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        once = start_timer(nursery, record, (), delay=1.0, interval=None)
        repeat = start_timer(nursery, calls.append, ("tick",), delay=0.5, interval=0.5)
        await trio.sleep(2.1)
        repeat.cancel()
    assert once.runs == 1 and repeat.runs == 4 and repeat.cancelled
    assert calls.count("tick") == 4


async def test_failing_timer_stops_and_is_logged(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise ValueError("bad tick")

    async with trio.open_nursery() as nursery:
        timer = start_timer(nursery, boom, (), delay=0, interval=1)
        await trio.sleep(5)
    assert timer.runs == 0 and "bad tick" in caplog.text


def test_invalid_timer_arguments() -> None:
    with pytest.raises(ValueError):
        start_timer(None, print, (), delay=-1, interval=None)  # type: ignore[arg-type]


async def test_view_timer_pushes_notifications(autojump_clock: trio.testing.MockClock) -> None:
    timers: list[Timer] = []

    async def start(request: Request) -> str:
        connection = request.connection
        push = functools.partial(connection.send_notification, event_name="clock")
        timers.append(connection.every(1.0, push, "tick"))
        return "started"

    router = SimpleRouter()
    router.register("/clock", start, "POST")
    async with TestClient(App(router)) as client:
        assert (await client.post("/clock")).data == "started"
        first = await client.notifications.receive()
        second = await client.notifications.receive()
        timers[0].cancel()
    assert (first.data, first.event_name, second.data) == ("tick", "clock", "tick")


async def test_every_does_not_drift_over_10000_ticks(autojump_clock: trio.testing.MockClock) -> None:
    ticks: list[float] = []

    async def tick() -> None:
        ticks.append(trio.current_time())
        await trio.sleep(0.1)  # each run takes a fifth of the interval: the schedule does not move

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        timer = start_timer(nursery, tick, (), delay=0.5, interval=0.5)
        while timer.runs < 10_000:
            await trio.sleep(50)
        timer.cancel()
    assert all(abs(t - (start + 0.5 * (k + 1))) < 1e-6 for k, t in enumerate(ticks[:10_000]))
