"""The run's one keepalive task: when it checks, when it stops, what survives a failing member."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_rest._keepalive import Keepalive, Liveness, Verdict, keepalive

from ._raw import memory_connection
from .conftest import build_app


class Member:
    def __init__(self, tick: float, *, fail: bool = False) -> None:
        self.keepalive_tick = tick
        self.checks: list[float] = []
        self.fail = fail

    def keepalive_check(self, now: float) -> None:
        self.checks.append(now)
        if self.fail:
            raise RuntimeError("broken member")


async def test_one_task_checks_every_member_each_tick(autojump_clock: trio.testing.MockClock) -> None:
    registry = Keepalive()
    members = [Member(1.0) for _ in range(100)]
    for member in members:
        registry.add(member)
    start = trio.current_time()
    await trio.sleep(3.5)
    for member in members:
        assert [round(t - start, 6) for t in member.checks] == [1.0, 2.0, 3.0]
    for member in members:
        registry.discard(member)
    assert len(registry) == 0


async def test_the_task_ends_with_its_last_member_and_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = Keepalive()
    first = Member(1.0)
    registry.add(first)
    await trio.sleep(1.5)
    registry.discard(first)
    await trio.sleep(1.0)  # the task wakes, finds no member and ends
    assert not registry._running
    second = Member(1.0)
    registry.add(second)
    start = trio.current_time()
    await trio.sleep(1.5)
    assert [round(t - start, 6) for t in second.checks] == [1.0]
    assert first.checks and len(first.checks) == 1


async def test_a_member_with_a_shorter_tick_is_not_kept_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = Keepalive()
    registry.add(Member(100.0))
    await trio.sleep(1.0)
    quick = Member(0.5)
    registry.add(quick)
    start = trio.current_time()
    await trio.sleep(1.1)
    assert [round(t - start, 6) for t in quick.checks] == [0.5, 1.0]


async def test_a_failing_member_is_logged_and_dropped(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Keepalive()
    broken, healthy = Member(1.0, fail=True), Member(1.0)
    registry.add(broken)
    registry.add(healthy)
    await trio.sleep(2.5)
    assert len(broken.checks) == 1 and len(healthy.checks) == 2
    assert len(registry) == 1
    assert "keepalive check failed" in caplog.text
    assert any(record.levelno == logging.ERROR for record in caplog.records)


async def test_each_run_has_its_own_registry() -> None:
    assert keepalive() is keepalive()
    seen: list[Keepalive] = []

    async def other_run() -> None:
        seen.append(keepalive())

    await trio.to_thread.run_sync(trio.run, other_run)
    assert seen[0] is not keepalive()


def test_liveness_pings_after_the_interval_and_gives_up_after_the_timeout() -> None:
    liveness = Liveness(interval=10, timeout=5, last_seen=0.0)
    assert liveness.tick == 1.25
    assert liveness.check(9.9) is Verdict.ALIVE
    assert liveness.check(10) is Verdict.PING and liveness.ping_sent == 10
    assert liveness.check(14.9) is Verdict.ALIVE  # one ping at a time
    assert liveness.check(15) is Verdict.DEAD
    liveness.last_seen = 15.5  # anything heard counts as the answer
    assert liveness.check(16) is Verdict.ALIVE and liveness.ping_sent is None
    assert liveness.check(25.5) is Verdict.PING


async def test_a_silent_client_is_pinged_then_closed_with_1011(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = build_app(ping_interval=2.0, ping_timeout=1.0)
    async with memory_connection(app) as (server, client, _):
        with trio.fail_after(10):
            await client.closed.wait()  # the client answers no ping
        while server.connections:
            await trio.sleep(0.1)
    assert client.pings == 1
    assert client.close_code == 1011
    assert 3.0 <= trio.current_time() < 4.0  # pinged at 2 s (+ a quarter tick), closed 1 s later
