"""Fixtures shared by the whole suite: the two databases the data layer runs on, and Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from ._postgres import postgres_server
from ._redis import RedisServer


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 for the session, or a visible skip."""
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL half skipped: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each data-layer test runs twice: on a SQLite file and on the PostgreSQL server.

    The PostgreSQL database starts empty for every test (its public schema is
    dropped and made again).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE"))
        connection.execute(sqlalchemy.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def _redis(persistent: bool) -> Iterator[RedisServer]:
    server = RedisServer(persistent) if shutil.which("redis-server") else None
    if server is None:
        pytest.skip("Redis tests skipped: redis-server is not installed (apt-get install -y redis-server)")
    try:
        server.start()
    except RuntimeError as exc:
        server.remove()
        pytest.skip(f"Redis tests skipped: {exc}")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A real Redis server on 127.0.0.1 for one test (data kept on disk), or a visible skip."""
    yield from _redis(persistent=True)


@pytest.fixture
def volatile_redis() -> Iterator[RedisServer]:
    """A real Redis server that loses its data when killed, or a visible skip."""
    yield from _redis(persistent=False)
