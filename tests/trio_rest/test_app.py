"""The App's lifespan: what runs around serving, in each of its three forms."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from trio_rest import App, Server
from trio_rest.testing import TestClient

from ._sockets import RawClient
from .conftest import build_app


def _app_with(lifespan: object) -> App:
    app = build_app(close_timeout=0.2)  # the raw client below never answers a close frame
    app.lifespan = lifespan  # type: ignore[assignment]
    return app


async def test_serve_starts_up_before_it_listens_and_shuts_down_after_the_last_connection() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append(f"shutdown with {len(server.connections)} connections")

    server = Server(_app_with(lifespan))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, "127.0.0.1", 0)
            assert events == ["startup"]  # before the port was even open to the test
            client = await RawClient.connect(server.port)
            await client.send('{"method": "GET", "url": "/user/1", "id": 1}')
            assert [reply["status"] for reply in await client.replies(1)] == [200]
            await server.shutdown()
    assert events == ["startup", "shutdown with 0 connections"]


async def test_an_async_startup_is_awaited_and_a_plain_one_runs_in_a_thread() -> None:
    ran: list[str] = []

    async def startup(app: App) -> None:
        await trio.lowlevel.checkpoint()
        ran.append("async")

    def create_tables(app: App) -> None:
        ran.append("main thread" if threading.current_thread() is threading.main_thread() else "worker")

    for lifespan in (startup, create_tables):
        async with TestClient(_app_with(lifespan)) as client:
            assert (await client.get("/user/1")).status == 200
    assert ran == ["async", "worker"]


async def test_a_failing_startup_fails_serve_and_nothing_is_served() -> None:
    def broken(app: App) -> None:
        raise RuntimeError("no database")

    server = Server(_app_with(broken))
    with trio.fail_after(10), pytest.raises(RuntimeError, match="no database"):
        await server.serve("127.0.0.1", 0)
    assert server.port == 0  # it never listened
    with trio.fail_after(1):
        await server.shutdown()  # and a shutdown does not wait for it
