"""The database handle on SQLite and on a real PostgreSQL: one session and one transaction per request."""

from __future__ import annotations

import functools
import time
from typing import Any

import attrs
import pytest
import sqlalchemy
import trio
import trio.testing
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trio_rest import (
    App,
    ConfigurationError,
    MethodBasedView,
    NotFound,
    Request,
    Response,
    SimpleRouter,
    endpoint,
)
from trio_rest.db import Database
from trio_rest.testing import TestClient


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(40), unique=True)


class NoteView(MethodBasedView):
    def get(self, request: Request, id: int) -> Any:  # a plain def: a worker thread, request.session
        note = request.session.get(Note, id)
        if note is None:
            raise NotFound()
        return {"id": note.id, "text": note.text}

    def post(self, request: Request, id: int) -> Response:
        request.session.add(Note(id=id, text=request.data["text"]))
        if request.data.get("fail"):
            raise RuntimeError("after the insert")  # must roll it back
        return Response({"id": id}, status=201)


@endpoint
async def count(request: Request) -> int:  # an async view: run_sync
    return await request.run_sync(lambda: request.session.scalar(select(sqlalchemy.func.count(Note.id))))


@endpoint
async def slow_insert(request: Request) -> None:
    await request.run_sync(lambda: request.session.add(Note(text="never")) or request.session.flush())
    await trio.sleep(3600)


@endpoint
def overrun(request: Request) -> None:  # a plain def that writes, then outlives its deadline
    request.session.add(Note(text="too late"))
    request.session.flush()
    time.sleep(0.5)


@endpoint
def duplicate(request: Request) -> None:
    request.session.add(Note(text="same"))
    request.session.add(Note(text="same"))


def _app(url: str) -> App:
    router = SimpleRouter()
    router.register("/note/{id:int}", NoteView, ["GET", "POST"])
    router.register("/count", count, "GET")
    router.register("/slow", slow_insert, "POST")
    router.register("/duplicate", duplicate, "POST")
    router.register("/overrun", overrun, "POST")
    database = Database(url)
    Base.metadata.create_all(database.engine)
    return App(router, database=database)


async def test_commit_on_success_rollback_on_error(db_url: str) -> None:
    app = _app(db_url)
    async with TestClient(app) as client:
        assert (await client.post("/note/1", {"text": "kept"})).status == 201
        assert (await client.post("/note/2", {"text": "lost", "fail": True})).status == 500
        assert (await client.get("/note/1")).data == {"id": 1, "text": "kept"}
        assert (await client.get("/note/2")).status == 404
        assert (await client.get("/count")).data == 1
    app.database.dispose()


async def test_cancel_rolls_back_and_returns_the_connection(db_url: str) -> None:
    app = _app(db_url)
    async with TestClient(app) as client:
        with trio.move_on_after(0.5):
            await client.post("/slow")
        await trio.sleep(0.2)
        assert (await client.get("/count")).data == 0
    pool = app.database.engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    app.database.dispose()


async def test_a_plain_def_view_past_its_deadline_is_504_on_time_and_rolled_back(db_url: str) -> None:
    app = _app(db_url)
    database = app.database
    async with TestClient(app) as client:
        start = trio.current_time()
        response = await client.post("/overrun", timeout=0.1)
        assert response.status == 504 and trio.current_time() - start < 0.4
        # The thread runs on with the session; when it ends, it rolls back, closes the
        # session and gives its token back: nothing is committed, nothing is held.
        with trio.fail_after(5):
            while database.limiter.borrowed_tokens or database.engine.pool.checkedout():  # type: ignore[attr-defined]
                await trio.sleep(0.05)
        assert (await client.get("/count")).data == 0
    database.dispose()


async def test_integrity_error_at_commit_is_409(db_url: str) -> None:
    app = _app(db_url)
    async with TestClient(app) as client:
        response = await client.post("/duplicate")
    assert (response.status, response.code) == (409, "conflict")
    app.database.dispose()


async def test_a_plain_def_view_and_its_commit_share_one_thread_hop(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(db_url)
    hops: list[str] = []
    real_run_sync = trio.to_thread.run_sync

    async def counting_run_sync(fn: Any, *args: Any, **options: Any) -> Any:
        hops.append(repr(fn))
        return await real_run_sync(fn, *args, **options)

    monkeypatch.setattr(trio.to_thread, "run_sync", counting_run_sync)
    async with TestClient(app) as client:
        assert (await client.post("/note/1", {"text": "one hop"})).status == 201
        assert len(hops) == 1  # the view, then the commit, in the same thread
        hops.clear()
        assert (await client.get("/note/1")).data == {"id": 1, "text": "one hop"}
        assert (await client.get("/count")).data == 1  # an async view: its own hop, then the commit
        assert len(hops) == 3  # the plain view; the async view's own hop, then its commit
    app.database.dispose()


async def test_concurrent_requests_share_the_pool_within_its_limit(db_url: str) -> None:
    app = _app(db_url)
    async with TestClient(app) as client:
        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(client.post, f"/note/{i + 10}", {"text": f"n{i}"})
        assert (await client.get("/count")).data == 30
    assert app.database.limiter.total_tokens == 10
    app.database.dispose()


async def test_in_memory_sqlite_is_shared_by_every_thread() -> None:
    app = _app("sqlite://")
    async with TestClient(app) as client:
        assert (await client.post("/note/1", {"text": "memory"})).status == 201
        assert (await client.get("/note/1")).data == {"id": 1, "text": "memory"}
    assert app.database.limiter.total_tokens == 1


def test_sqlite_pragmas(tmp_path: Any) -> None:
    database = Database(f"sqlite:///{tmp_path / 'p.db'}")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    database.dispose()


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://x"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Database(url)


async def test_create_all(tmp_path: Any) -> None:
    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    await database.create_all(Base.metadata)
    assert sqlalchemy.inspect(database.engine).has_table("notes")
    database.dispose()


async def test_sessions_never_deadlock_on_a_small_pool(db_url: str) -> None:
    """Each request keeps its connection until it commits: it must keep its token that long too."""

    def insert(request: Request, id: int) -> Response:
        request.session.add(Note(id=id, text=request.data["text"]))
        request.session.flush()  # the connection is taken here and kept until the commit
        return Response({"id": id}, status=201)

    router = SimpleRouter()
    router.register("/note/{id:int}", insert, ["POST"])
    database = Database(db_url, pool_size=1, max_overflow=0, engine_options={"pool_timeout": 2})
    Base.metadata.create_all(database.engine)
    app = App(router, database=database)
    statuses: list[int] = []
    with trio.fail_after(30):
        async with TestClient(app) as client:

            async def one(i: int) -> None:
                statuses.append((await client.post(f"/note/{i}", {"text": f"t{i}"})).status)

            async with trio.open_nursery() as nursery:
                for i in range(12):
                    nursery.start_soon(one, i)
    assert statuses == [201] * 12
    database.dispose()


@endpoint
def slow_write(request: Request) -> None:  # a plain def that writes slowly
    request.session.add(Note(text=f"slow-{request.args.get('n')}"))
    request.session.flush()
    time.sleep(0.3)


@endpoint
async def impatient(request: Request) -> str:  # catches its own timeout, then returns
    with trio.move_on_after(0.05):
        await request.run_sync(lambda: request.session.add(Note(text="half")) or time.sleep(0.3))
    return "done"


async def test_timed_out_requests_give_every_database_token_back(db_url: str) -> None:
    # One handler at a time: the queued requests are past their deadline before their
    # thread even starts; none of them may keep a token or a connection.
    app = _app(db_url)
    app.router.register("/slow-write", slow_write, "POST")
    app.router.register("/impatient", impatient, "POST")
    app.settings = attrs.evolve(app.settings, max_concurrency=1, request_timeout=0.2)
    database = app.database
    async with TestClient(app) as client:
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(functools.partial(client.post, "/slow-write", args={"n": n}))
        with trio.fail_after(5):
            while database.limiter.borrowed_tokens or database.engine.pool.checkedout():  # type: ignore[attr-defined]
                await trio.sleep(0.05)
        refused = await client.post("/impatient")  # its session is still in a thread's hands
        assert refused.status == 500
        with trio.fail_after(5):
            while database.limiter.borrowed_tokens:
                await trio.sleep(0.05)
        assert (await client.get("/count")).data == 0  # nothing committed
    database.dispose()
