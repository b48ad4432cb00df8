"""Bytes of requests held: bounded per connection (the reader stops) and per server (503)."""

from __future__ import annotations

import trio
import trio.testing

from trio_rest._budget import ByteBudget

from ._raw import memory_connection
from .conftest import build_app

PAD = "x" * 1000  # with its envelope, a message of about 1,060 bytes


def test_the_budget_takes_only_what_fits_and_gets_it_back() -> None:
    budget = ByteBudget(100)
    assert budget.take(60) and not budget.take(41) and budget.take(40)
    budget.check_invariants()
    budget.give(100)
    assert budget.used == 0


async def test_a_connection_stops_reading_past_its_buffered_bytes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = build_app(max_buffered_bytes=3000, max_concurrency=1)
    async with memory_connection(app) as (server, client, _):
        for i in range(10):
            await client.send({"method": "GET", "url": "/sleep?seconds=1", "id": i, "args": {"pad": PAD}})
        await trio.sleep(0.5)
        (conn,) = server.connections
        stats = conn.stats()
        # Three requests reach the limit, three more are held (a cancel would still be
        # heard), and the rest stay unread: the client is slowed down by TCP.
        assert (stats.running, stats.waiting, stats.held) == (1, 2, 3)
        assert 6000 <= stats.buffered_bytes < 7000 and server.budget.used == stats.buffered_bytes
        await client.wait_for(10)  # as they finish, the reader reads on: every request is answered
        assert sorted(m["id"] for m in client.responses()) == list(range(10))
        assert all(m["status"] == 200 for m in client.responses())
        assert 10 <= trio.current_time() < 11  # one at a time
        assert server.budget.used == 0


async def test_the_server_refuses_what_would_pass_its_budget(autojump_clock: trio.testing.MockClock) -> None:
    app = build_app(max_server_buffered_bytes=2500)
    async with memory_connection(app) as (server, client, _):
        for i in range(3):
            await client.send({"method": "GET", "url": "/sleep?seconds=1", "id": i, "args": {"pad": PAD}})
        await client.send({"method": "GET", "url": "/user/1", "id": "small"})  # fits: it is small
        await client.wait_for(4)
        assert server.budget.used == 0
    replies = {m["id"]: (m["status"], m.get("code")) for m in client.responses()}
    assert replies == {0: (200, None), 1: (200, None), 2: (503, "busy"), "small": (200, None)}
