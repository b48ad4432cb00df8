"""Model observers on SQLite and on a real PostgreSQL: what commits is published, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import pytest
import sqlalchemy
import trio
from sqlalchemy import ForeignKey, String, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from trio_rest import App, ConfigurationError, ModelViewSet, Request, SimpleRouter, ValidationError, endpoint
from trio_rest.auth import BasePermission
from trio_rest.client import Client, Subscription
from trio_rest.db import Database
from trio_rest.serializers import ModelSerializer
from trio_rest.testing import TestClient


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "team"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    players: Mapped[list[Player]] = relationship(back_populates="team")


class Player(Base):
    __tablename__ = "player"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    owner: Mapped[str] = mapped_column(String(40), default="anyone")
    score: Mapped[int] = mapped_column(default=0)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    team: Mapped[Team | None] = relationship(back_populates="players")


class PlayerSerializer(ModelSerializer):
    class Meta:
        model = Player
        fields = ("id", "name", "owner", "score", "team")


class OwnerOnly(BasePermission):
    """A subscriber sees the players of the owner its ``args.owner`` names (or every one without it)."""

    def has_object_permission(self, request: Request, obj: Any) -> bool:
        wanted = request.args.get("owner")
        return wanted is None or obj.owner == wanted


class PlayerViewSet(ModelViewSet):
    queryset = Player
    serializer_class = PlayerSerializer
    observe = True
    permission_classes: ClassVar = [OwnerOnly]


def _session(request: Request) -> Any:
    return request.session


@endpoint
def bulk_score(request: Request) -> int:
    """An ORM bulk UPDATE through the request's session."""
    statement = (
        update(Player).where(Player.owner == request.data["owner"]).values(score=request.data["score"])
    )
    return int(_session(request).execute(statement).rowcount)


@endpoint
def bulk_delete(request: Request) -> int:
    """An ORM bulk DELETE through the request's session."""
    result = _session(request).execute(delete(Player).where(Player.owner == request.data["owner"]))
    return int(result.rowcount)


@endpoint
def by_key(request: Request) -> None:
    """An ORM bulk UPDATE by primary key (a list of rows)."""
    _session(request).execute(update(Player), request.data)


@endpoint
def insert_rows(request: Request) -> None:
    """An ORM INSERT of a list of rows (executemany)."""
    _session(request).execute(insert(Player), request.data)


@endpoint
def insert_one(request: Request) -> int:
    """An ORM INSERT of one row; its reply is the row's key, from the caller's own result."""
    result = _session(request).execute(insert(Player).values(name=request.data["name"]))
    return int(result.inserted_primary_key[0])


@endpoint
def insert_values(request: Request) -> None:
    """One INSERT ... VALUES of several rows."""
    _session(request).execute(insert(Player).values(request.data))


@endpoint
def insert_from_select(request: Request) -> None:
    """INSERT ... SELECT: a copy of each player whose name is given, renamed."""
    session = _session(request)
    copies = select(Player.name + "2").where(Player.name.in_(request.data))
    session.execute(insert(Player).from_select(["name"], copies))


@endpoint
def insert_returning(request: Request) -> list[int]:
    """A list of rows with a RETURNING of the caller's own: the reply is what it returned."""
    return list(_session(request).execute(insert(Player).returning(Player.id), request.data).scalars())


@endpoint
def upsert(request: Request) -> None:
    """INSERT ... ON CONFLICT DO UPDATE, in the database's own dialect."""
    session = _session(request)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(Player).values(request.data)
    session.execute(statement.on_conflict_do_update(index_elements=[Player.id], set_={"name": "upserted"}))


@endpoint
def insert_as(request: Request) -> Any:
    """Other spellings of an INSERT; the reply is what the caller's own result tells."""
    session, form, rows = _session(request), request.data["form"], request.data["rows"]
    if form == "one set":  # a single parameter set, not in a list
        return type(session.execute(insert(Player), rows[0])).__name__
    if form == "tuple":
        return type(session.execute(insert(Player), tuple(rows))).__name__
    if form == "raw":  # a plain executemany: the caller keeps its cursor result (and rowcount)
        return type(session.execute(insert(Player), rows, execution_options={"dml_strategy": "raw"})).__name__
    if form == "defaults":  # no RETURNING can be added to it
        return type(session.execute(insert(Player).return_defaults(), rows)).__name__
    if form == "values twice":
        return session.execute(insert(Player).values(rows[:1]).values(rows[1:])).rowcount
    assert form == "upsert nothing"
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    return type(session.execute(dialect.insert(Player).on_conflict_do_nothing(), rows)).__name__


@endpoint
def insert_then_fail(request: Request) -> None:
    """Inserts a list of rows, then fails: the request's transaction rolls back."""
    _session(request).execute(insert(Player), request.data)
    raise ValidationError("no")


@endpoint
def fail_after_write(request: Request) -> None:
    """Writes and flushes, then fails: the request's transaction rolls back."""
    _session(request).add(Player(name="ghost"))
    _session(request).flush()
    raise ValidationError("no")


@endpoint
def roll_back(request: Request) -> str:
    """Writes, flushes, rolls back itself, and succeeds."""
    session = _session(request)
    session.add(Player(name="ghost"))
    session.flush()
    session.rollback()
    return "rolled back"


@endpoint
def savepoints(request: Request) -> None:
    """A released savepoint and a rolled-back one: only the released one's write commits."""
    session = _session(request)
    with session.begin_nested():
        session.add(Player(name="kept"))
    savepoint = session.begin_nested()
    session.add(Player(name="dropped"))
    session.flush()
    savepoint.rollback()


@endpoint
def churn(request: Request) -> None:
    """Created then updated (one created), created then deleted (nothing), in one transaction."""
    session = _session(request)
    kept, gone = Player(name="first"), Player(name="brief")
    session.add_all([kept, gone])
    session.flush()
    kept.name = "final"
    session.delete(gone)
    session.flush()
    kept.score = 3


@endpoint
def with_team(request: Request) -> None:
    """A new team with a player: the player's data names the team it was flushed with."""
    session = _session(request)
    session.add(Player(name="p", team=Team(name="t")))


def _app(url: str, **observe: Any) -> App:
    router = SimpleRouter()
    router.register_viewset("/player", PlayerViewSet, basename="player")
    views = (bulk_score, bulk_delete, by_key, fail_after_write, roll_back, savepoints, churn, with_team)
    inserts = (
        insert_rows,
        insert_one,
        insert_values,
        insert_from_select,
        insert_returning,
        upsert,
        insert_then_fail,
        insert_as,
    )
    for view in (*views, *inserts):
        router.register(f"/{view.__name__}", view, "POST")
    database = Database(url)
    Base.metadata.create_all(database.engine)
    if observe:
        database.observe(Team, TeamSerializer, **observe)
    return App(router, database=database)


class TeamSerializer(ModelSerializer):
    class Meta:
        model = Team
        fields = ("id", "name")


@pytest.fixture
async def app(db_url: str) -> Any:
    app = _app(db_url)
    yield app
    assert app.database is not None
    app.database.dispose()


@asynccontextmanager
async def _watching(app: App) -> AsyncIterator[tuple[Client, Client, Subscription]]:
    """A writer, and a reader subscribed to every player's changes."""
    async with (
        TestClient(app) as writer,
        TestClient(app) as reader,
        reader.subscribe("/player") as everything,
    ):
        yield writer, reader, everything


async def _next(subscription: Subscription) -> tuple[str | None, str | None, Any]:
    with trio.fail_after(5):
        note = await subscription.__anext__()
    return note.event_name, note.topic, note.data


async def _nothing_more(client: Client, subscription: Subscription) -> None:
    """No notification is on its way: a round trip later, none arrived."""
    await client.get("/player/0")
    with trio.move_on_after(0.05):
        note = await subscription.__anext__()
        raise AssertionError(f"unexpected notification {note}")


async def test_create_update_delete_reach_the_list_and_the_object(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):
        created = (await writer.post("/player", {"name": "ada"})).data
        pid = created["id"]
        assert await _next(everything) == ("created", "/player", created)
        async with reader.subscribe(f"/player/{pid}") as one:
            assert one.response.data == created  # the 200 carries the object, as GET does
            patched = (await writer.patch(f"/player/{pid}", {"score": 5})).data
            assert patched["score"] == 5
            assert await _next(everything) == ("updated", "/player", patched)
            assert await _next(one) == ("updated", f"/player/{pid}", patched)
            assert (await writer.delete(f"/player/{pid}")).status == 204
            assert await _next(everything) == ("deleted", "/player", patched)
            assert await _next(one) == ("deleted", f"/player/{pid}", patched)
        await _nothing_more(reader, everything)
    assert (app.push_stats.published, app.push_stats.delivered) == (6, 5)  # each change to both topics


async def test_a_missing_object_cannot_be_subscribed(app: App) -> None:
    async with TestClient(app) as client:
        response = await client.request("SUBSCRIBE", "/player/404")
        assert (response.status, response.code) == (404, "not_found")


async def test_bulk_update_and_delete_publish_each_row(app: App) -> None:
    async with TestClient(app) as writer, TestClient(app) as reader:
        ids = [
            (await writer.post("/player", {"name": f"p{i}", "owner": "a" if i < 2 else "b"})).data["id"]
            for i in range(3)
        ]
        async with reader.subscribe("/player") as everything:
            assert (await writer.post("/bulk_score", {"owner": "a", "score": 9})).data == 2
            got = sorted([await _next(everything) for _ in range(2)], key=lambda n: n[2]["id"])
            assert [(kind, data["id"], data["score"]) for kind, _, data in got] == [
                ("updated", ids[0], 9),
                ("updated", ids[1], 9),
            ]
            await writer.post("/by_key", [{"id": ids[2], "score": 4}])
            assert await _next(everything) == (
                "updated",
                "/player",
                {"id": ids[2], "name": "p2", "owner": "b", "score": 4, "team": None},
            )
            assert (await writer.post("/bulk_delete", {"owner": "a"})).data == 2
            got = sorted([await _next(everything) for _ in range(2)], key=lambda n: n[2]["id"])
            assert [(kind, data["id"], data["score"]) for kind, _, data in got] == [
                ("deleted", ids[0], 9),
                ("deleted", ids[1], 9),
            ]
            await _nothing_more(reader, everything)


async def test_rollbacks_and_failing_requests_publish_nothing(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):
        assert (await writer.post("/fail_after_write")).status == 400
        assert (await writer.post("/roll_back")).data == "rolled back"
        refused = await writer.post("/player", {"name": "x" * 41})  # invalid: nothing written
        assert refused.status == 400
        await _nothing_more(reader, everything)
        await writer.post("/savepoints")
        kind, _, data = await _next(everything)
        assert (kind, data["name"]) == ("created", "kept")
        await _nothing_more(reader, everything)
    assert app.database is not None
    names = await app.database.run_sync(_names, app.database)
    assert names == ["kept"]


def _names(database: Database) -> list[str]:
    with database.sessionmaker() as session:
        return list(session.scalars(select(Player.name).order_by(Player.id)))


async def test_one_change_per_object_per_transaction(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):
        await writer.post("/churn")
        kind, _, data = await _next(everything)
        assert (kind, data["name"], data["score"]) == ("created", "final", 3)
        await _nothing_more(reader, everything)


async def test_the_payload_reads_relationships_in_the_transaction(app: App) -> None:
    async with _watching(app) as (writer, _reader, everything):
        await writer.post("/with_team")
        kind, _, data = await _next(everything)
        assert kind == "created" and isinstance(data["team"], int)


async def test_each_subscriber_sees_only_the_objects_it_may(app: App) -> None:
    async with TestClient(app) as writer, TestClient(app) as reader:
        async with reader.subscribe("/player", args={"owner": "b"}) as mine:
            await writer.post("/player", {"name": "not mine", "owner": "a"})
            created = (await writer.post("/player", {"name": "mine", "owner": "b"})).data
            assert await _next(mine) == ("created", "/player", created)
            assert mine.response.status == 200
        refused = await reader.request("SUBSCRIBE", f"/player/{created['id'] - 1}", args={"owner": "b"})
        assert refused.status == 401  # the object's permission refuses it, as GET would


async def test_a_large_bulk_statement_publishes_one_changed_notification(db_url: str) -> None:
    app = _app(db_url)
    assert app.database is not None
    app.database._observers[Player].bulk_limit = 2  # the limit of the viewset's observer
    async with TestClient(app) as writer, TestClient(app) as reader:
        for i in range(3):
            await writer.post("/player", {"name": f"p{i}", "owner": "a"})
        async with reader.subscribe("/player") as everything:
            assert (await writer.post("/bulk_score", {"owner": "a", "score": 1})).data == 3
            assert await _next(everything) == ("changed", "/player", {"count": 3})
            await _nothing_more(reader, everything)
    app.database.dispose()


async def test_an_insert_publishes_each_row_it_created(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):
        assert (await writer.post("/insert_rows", [{"name": "a"}, {"name": "b", "score": 2}])).status == 200
        got = sorted([await _next(everything) for _ in range(2)], key=lambda n: n[2]["id"])
        assert [(kind, topic, data["name"], data["owner"], data["score"]) for kind, topic, data in got] == [
            ("created", "/player", "a", "anyone", 0),
            ("created", "/player", "b", "anyone", 2),
        ]
        pid = (await writer.post("/insert_one", {"name": "c"})).data
        assert await _next(everything) == (
            "created",
            "/player",
            {"id": pid, "name": "c", "owner": "anyone", "score": 0, "team": None},
        )
        assert (await writer.post("/insert_then_fail", [{"name": "ghost"}])).status == 400
        await _nothing_more(reader, everything)
    assert app.database is not None
    assert await app.database.run_sync(_names, app.database) == ["a", "b", "c"]


async def test_an_insert_whose_rows_are_not_known_one_by_one_publishes_their_count(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):
        assert (await writer.post("/insert_values", [{"name": "a"}, {"name": "b"}])).status == 200
        assert await _next(everything) == ("changed", "/player", {"count": 2})
        assert (await writer.post("/insert_from_select", ["a", "b", "nobody"])).status == 200
        assert await _next(everything) == ("changed", "/player", {"count": 2})
        ids = (await writer.post("/insert_returning", [{"name": "c"}, {"name": "d"}])).data
        assert len(ids) == 2 and all(isinstance(i, int) for i in ids)  # the caller's own RETURNING
        assert await _next(everything) == ("changed", "/player", {"count": 2})
        assert (await writer.post("/upsert", {"id": ids[0], "name": "c"})).status == 200
        assert await _next(everything) == ("changed", "/player", {"count": 1})
        await _nothing_more(reader, everything)
    assert app.database is not None
    assert await app.database.run_sync(_names, app.database) == ["a", "b", "a2", "b2", "upserted", "d"]


async def test_each_spelling_of_an_insert_leaves_the_callers_result_and_is_published(app: App) -> None:
    async with _watching(app) as (writer, reader, everything):

        async def insert_as(form: str, *names: str) -> Any:
            reply = await writer.post("/insert_as", {"form": form, "rows": [{"name": n} for n in names]})
            assert reply.status == 200, reply
            return reply.data

        assert await insert_as("one set", "a") == "IteratorResult"  # as SQLAlchemy's own
        assert [(kind, data["name"]) for kind, _, data in [await _next(everything)]] == [("created", "a")]
        assert await insert_as("tuple", "b", "c") == "IteratorResult"
        got = [await _next(everything) for _ in range(2)]
        assert sorted((kind, data["name"]) for kind, _, data in got) == [("created", "b"), ("created", "c")]
        assert await insert_as("raw", "d", "e") == "CursorResult"
        assert await _next(everything) == ("changed", "/player", {"count": 2})
        assert await insert_as("defaults", "f", "g") == "IteratorResult"
        assert await _next(everything) == ("changed", "/player", {"count": 2})
        await insert_as("values twice", "h", "i", "j")
        assert await _next(everything) == ("changed", "/player", {"count": 3})
        assert await insert_as("upsert nothing", "k") == "IteratorResult"  # a new row, created
        assert await _next(everything) == ("changed", "/player", {"count": 1})
        await _nothing_more(reader, everything)
    assert app.database is not None
    names = await app.database.run_sync(_names, app.database)
    assert names == ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


async def test_a_large_insert_or_one_without_returning_publishes_its_count(db_url: str) -> None:
    app = _app(db_url)
    assert app.database is not None
    app.database._observers[Player].bulk_limit = 2
    async with _watching(app) as (writer, reader, everything):
        await writer.post("/insert_rows", [{"name": f"p{i}"} for i in range(3)])
        assert await _next(everything) == ("changed", "/player", {"count": 3})
        # A database that cannot return the keys of a list of rows: their count, whatever their number.
        app.database.engine.dialect.insert_executemany_returning = False
        await writer.post("/insert_rows", [{"name": "q"}])
        assert await _next(everything) == ("changed", "/player", {"count": 1})
        await _nothing_more(reader, everything)
    app.database.dispose()


async def test_observe_refuses_what_it_cannot_observe(tmp_path: Any) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ConfigurationError, match="not a mapped class"):
        database.observe(int, PlayerSerializer, topic="/x")
    database.observe(Team, TeamSerializer, topic="/team")
    with pytest.raises(ConfigurationError, match="observed already"):
        database.observe(Team, TeamSerializer, topic="/team")
    router = SimpleRouter()
    router.register_viewset("/player", PlayerViewSet, basename="player")
    with pytest.raises(ConfigurationError, match="needs an App with a database"):
        App(router)
    assert {route.template: route.methods for route in router.routes}["/player"] == (
        "GET",
        "POST",
        "SUBSCRIBE",
    )


async def test_a_plain_observer_publishes_to_its_topics(db_url: str) -> None:
    app = _app(db_url, topic="/teams", detail_topic="/teams/{id}")
    assert app.database is not None
    async with TestClient(app) as client:
        assert Team in app.database.observed
        await client.post("/with_team")
    assert app.push_stats.published == 4  # the team (list and detail) and the player (list and detail)
    app.database.dispose()


async def test_writes_outside_a_request_publish_through_database_session(app: App) -> None:
    assert app.database is not None
    database = app.database
    async with TestClient(app) as reader, reader.subscribe("/player") as everything:
        async with database.session() as session:
            await database.run_in_session(session, lambda: session.add(Player(name="script")))
        kind, _, data = await _next(everything)
        assert (kind, data["name"]) == ("created", "script")
    assert sqlalchemy.inspect(Player).primary_key  # the module's models are mapped
