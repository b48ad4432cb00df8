"""`Database`: SQLAlchemy 2.x on Trio, with synchronous sessions in worker threads.

SQLAlchemy's asyncio extension does not run on Trio, and its synchronous
Session is what most users know: each request gets one Session and one
transaction, and every call that touches the database runs in a worker
thread under a `trio.CapacityLimiter` sized to the connection pool, so a
burst of requests queues for a thread instead of queueing inside the pool.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy
import sqlalchemy.orm.exc
import trio
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ._errors import ConfigurationError, ConflictError
from ._observers import PUBLISHES
from ._threads import run_abandonable

if TYPE_CHECKING:
    from ._app import App
    from ._observers import Observer

__all__ = ["Database"]

# The key under which a session keeps the object that holds its limiter token.
_CLAIM = "trio_rest.db.claim"
# Set on a session whose request was answered while a worker thread still used it.
_LEFT = "trio_rest.db.left"

#: Seconds the changes of a commit may take to publish (they are published even when the
#: request is cancelled, since the commit happened).
PUBLISH_TIMEOUT = 10.0

log = logging.getLogger("trio_rest")

_T = TypeVar("_T")

# Pragmas a SQLite database needs behind a server: WAL lets readers and a
# writer work at once, busy_timeout waits for a lock instead of failing at
# once, and foreign keys are off unless asked for.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",  # first: switching to WAL waits for a lock another process may hold
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _set_sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class Database:
    """A database for an `App`: an engine, a session factory and a thread limiter.

    SQLite is the embedded default (``"sqlite:///app.db"``, or
    ``"sqlite://"`` in memory, shared by every thread); PostgreSQL works with
    the same code (``"postgresql+psycopg://user@host/db"``).

    Args:
        url: a SQLAlchemy database URL.
        pool_size: connections kept open (default 5; an in-memory SQLite
            database has exactly one).
        max_overflow: extra connections under load (default 5).
        echo: log every statement (SQLAlchemy's ``echo``).
        engine_options: more keyword arguments for ``create_engine``.

    Raises:
        ConfigurationError: the URL cannot be parsed or its driver is missing.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 5,
        echo: bool = False,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        options: dict[str, Any] = {"echo": echo, **(engine_options or {})}
        try:
            parsed = sqlalchemy.make_url(url)
        except sqlalchemy.exc.ArgumentError as exc:
            raise ConfigurationError(f"invalid database URL {url!r}: {exc}") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            # Sessions move between worker threads (never two at a time).
            options.setdefault("connect_args", {})["check_same_thread"] = False
            if parsed.database in (None, "", ":memory:"):
                options["poolclass"] = StaticPool  # one connection, or each thread sees its own database
                pool_size, max_overflow = 1, 0
            else:
                options.update(pool_size=pool_size, max_overflow=max_overflow)
        else:
            options.update(pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
        try:
            self.engine: Engine = sqlalchemy.create_engine(url, **options)
        except (ImportError, sqlalchemy.exc.ArgumentError) as exc:
            raise ConfigurationError(f"cannot use database {url!r}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _set_sqlite_pragmas)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        #: Transactions that may be open at once: one per pooled connection. A
        #: session takes a token at its first use and keeps it until its
        #: transaction ends, because it keeps its connection that long too:
        #: taking a token per call instead deadlocks once every connection is
        #: held by a session waiting for a token to commit.
        self.limiter = trio.CapacityLimiter(pool_size + max_overflow)
        # Threads only ever run for a token holder: a twin limiter keeps them
        # off trio's default pool without a second queue.
        self._threads = trio.CapacityLimiter(pool_size + max_overflow)
        self._observers: dict[type, Observer] = {}
        self._app: App | None = None

    def attach(self, app: App) -> None:
        """Serve `app`: what observed models' commits publish goes through its broker.

        `App` calls it when it is built with this database; a database serves one App.
        """
        self._app = app

    def observe(
        self,
        model: type,
        serializer_class: Any,
        *,
        topic: str,
        detail_topic: str | None = None,
        bulk_limit: int = 1000,
    ) -> None:
        """Publish every committed write to `model` made through this database's sessions.

        After a transaction commits, each object it created, updated or deleted is
        published with event name ``"created"``, ``"updated"`` or ``"deleted"`` and the
        serializer's output as data (the shape a GET returns), to `topic` and to
        `detail_topic` filled with the object's columns (``"/user/{id}"``). A transaction
        that rolls back publishes nothing; ORM bulk ``UPDATE`` and ``DELETE`` statements
        are observed too. See `trio_rest._observers` for the rules.

        Args:
            model: a mapped class.
            serializer_class: a `ModelSerializer` of it, built with the instance and
                ``context={"session", "app", "converter"}``.
            topic: where every change of the model goes (a list's subscribers).
            detail_topic: where one object's changes go, a template of its columns.
            bulk_limit: a bulk statement matching more rows publishes one ``"changed"``
                notification to `topic`, ``{"count": N}``, instead of one per row.

        Raises:
            ConfigurationError: `model` is not mapped, or is observed already.
        """
        from ._observers import Observer, install

        try:
            observer = Observer(model, serializer_class, topic, detail_topic, bulk_limit)
        except sqlalchemy.exc.NoInspectionAvailable:
            raise ConfigurationError(f"{model!r} is not a mapped class") from None
        if model in self._observers:
            raise ConfigurationError(f"{model.__name__} is observed already")
        if not self._observers:
            install(self.sessionmaker, self._observers, lambda: self._app)
        self._observers[model] = observer

    @property
    def observed(self) -> frozenset[type]:
        """The models `observe` was called for."""
        return frozenset(self._observers)

    async def _publish_committed(self, session: Session) -> None:
        """Publish what the session's commits made (observed models), within `PUBLISH_TIMEOUT`."""
        if not self._observers:
            return
        from ._observers import publish, take_committed

        changes = take_committed(session)
        if changes is not None and self._app is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(PUBLISH_TIMEOUT) as scope:
                await publish(self._app, changes)
            if scope.cancelled_caught:
                log.error(
                    "publishing a commit's changes took over %s s: the rest were dropped", PUBLISH_TIMEOUT
                )

    async def run_sync(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in a worker thread, holding a token for the call only.

        For work outside a request's session (creating tables, scripts).
        The thread is not abandoned on cancellation: a cancel waits for `fn`
        to return, so no connection is ever left half-used.

        Args:
            fn: a blocking function.
            *args: its arguments.

        Returns:
            What `fn` returned.
        """
        async with self.limiter:
            return await trio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._threads)

    async def run_in_session(self, session: Session, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in a worker thread on behalf of `session`'s transaction.

        The session's first call waits for a token, which it keeps until
        `session()` ends the transaction (see `limiter`). Cancelled while the
        thread runs (the request's deadline, its client's cancel), the call
        stops waiting at once, so the request is answered on time; the thread
        finishes alone, its result is discarded and logged, and it then rolls
        back and closes the session and gives the token back.

        Args:
            session: a session opened by `session()`.
            fn: a blocking function that uses it.
            *args: its arguments.

        Returns:
            What `fn` returned.
        """
        if session.info.get(_LEFT):
            raise RuntimeError("this session is still used by a worker thread a cancellation left behind")
        claim = session.info.get(_CLAIM)
        if claim is None:
            claim = session.info[_CLAIM] = object()
            try:
                await self.limiter.acquire_on_behalf_of(claim)
            except BaseException:
                del session.info[_CLAIM]
                raise

        def abandoned() -> None:
            session.info[_LEFT] = True  # the thread owns the session now: `session()` leaves it

        def late() -> None:  # in the thread, once it is done with the session
            try:
                _rollback_and_close(session)
            finally:
                with contextlib.suppress(trio.RunFinishedError):
                    trio.from_thread.run_sync(self.limiter.release_on_behalf_of, claim)

        return await run_abandonable(
            functools.partial(fn, *args),
            limiter=self._threads,
            abandoned=abandoned,
            late=late,
        )

    async def run_and_commit(self, session: Session, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` on behalf of `session`, then commit, in one worker thread.

        A plain ``def`` view and its request's commit share a thread hop this way: the
        commit that `session()` would make in a second hop finds nothing left to do.

        Args:
            session: a session opened by `session()`.
            fn: a blocking function that uses it (a view).
            *args: its arguments.

        Returns:
            What `fn` returned.

        Raises:
            ConflictError: the commit hit an integrity constraint, or a row it
                updates was deleted meanwhile (the transaction is
                then rolled back by `session()`).
        """
        try:
            return await self.run_in_session(session, _call_then_commit, session, fn, args)
        except _CONFLICTS as exc:
            raise conflict(exc) from None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Open one session and one transaction: commit on success, roll back otherwise.

        The commit runs in a worker thread; a session that never touched the
        database costs no thread at all. Cancellation rolls back and closes
        the session (shielded), so nothing stays checked out; if a worker
        thread was still using it, that thread does so when it ends.

        Yields:
            The `Session`: use it from worker threads only (plain ``def``
            views, `run_sync`).

        Raises:
            ConflictError: the commit hit an integrity constraint, or a row it
                updates was deleted meanwhile.
        """
        session = self.sessionmaker()
        session.info[PUBLISHES] = True  # what its commits change is published (observed models)
        try:
            yield session
            if session.info.get(_LEFT):  # the view caught its own timeout: nothing is committed
                raise RuntimeError("the request's session is still used by a cancelled worker thread")
            if session.in_transaction():
                try:
                    await self.run_in_session(session, session.commit)
                except _CONFLICTS as exc:
                    raise conflict(exc) from None
        finally:
            # A thread left running by a cancellation still uses the session: it rolls
            # back, closes and gives the token back itself when it ends (`run_in_session`).
            if not session.info.get(_LEFT):
                with trio.CancelScope(shield=True):
                    if session.in_transaction():
                        await self.run_in_session(session, _rollback_and_close, session)
                    else:
                        session.close()
                    claim = session.info.pop(_CLAIM, None)
                    if claim is not None:
                        self.limiter.release_on_behalf_of(claim)
                # What committed is published, with the database's token given back first,
                # even when the request failed after its view committed.
                await self._publish_committed(session)

    async def create_all(self, metadata: sqlalchemy.MetaData) -> None:
        """Create every table of `metadata` that does not exist yet (in a worker thread).

        Args:
            metadata: e.g. ``Base.metadata``.
        """
        await self.run_sync(metadata.create_all, self.engine)

    def dispose(self) -> None:
        """Close the pooled connections (the engine reopens them when used again)."""
        self.engine.dispose()


#: What a commit raises when the data changed under the request: a 409, not a 500.
_CONFLICTS = (sqlalchemy.exc.IntegrityError, sqlalchemy.orm.exc.StaleDataError)


def conflict(exc: Exception) -> ConflictError:
    """The 409 for a commit or flush that failed on the current state of the data.

    Args:
        exc: an ``IntegrityError`` (a constraint), or a ``StaleDataError`` (the row
            was deleted, or its version changed, since it was read).
    """
    if isinstance(exc, sqlalchemy.orm.exc.StaleDataError):
        return ConflictError("The object was changed or deleted since it was read.")
    return ConflictError(f"The change conflicts with existing data ({getattr(exc, 'orig', exc)}).")


def _call_then_commit(session: Session, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
    result = fn(*args)
    # A request answered meanwhile (its deadline, a cancel) is not committed: its thread
    # rolls back when it ends. Only a commit already under way then may still complete.
    if session.in_transaction() and not session.info.get(_LEFT):
        session.commit()
    return result


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()
