"""`App`: a router, settings, a converter and the rest, built once and passed around."""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import trio

from ._broker import Broker, InMemoryBroker, Published
from ._converter import make_converter
from ._errors import ConfigurationError
from ._idempotency import Idempotency
from ._middleware import Middleware
from ._routing import SimpleRouter
from ._settings import Settings
from ._stats import MetricsHook, PushStats
from ._views import Handler, compile_handler
from .auth._permissions import Permission, compile_permissions
from .auth._recent import RecentRevocations

if TYPE_CHECKING:
    from ._metrics import Metrics
    from ._server import Server
    from .auth._backend import AuthBackend

    # Only for the annotation: `trio_rest.db` imports SQLAlchemy, which an app
    # without a database never loads.
    from .db import Database

__all__ = ["App", "Lifespan"]

#: What `App(lifespan=...)` takes: called with the app, it returns an async context
#: manager (entered around serving), or it is a startup function (``async def`` awaited,
#: plain ``def`` run in a worker thread, e.g. to create tables).
Lifespan = Callable[["App"], Any]


class App:
    """Everything a server needs to answer requests, built explicitly.

    Routes are compiled into handlers here, so registering a view for a
    method it does not implement fails now, not on the first request.

    Args:
        router: the routes; register them before building the App.
        settings: limits and timings (`Settings()` by default).
        converter: the cattrs converter for request bodies
            (`make_converter()` by default).
        database: a `trio_rest.db.Database`; each request then gets a
            session (`Request.session`) and plain ``def`` views run under its
            thread limiter (None: no database).
        lifespan: what runs around serving (see `Lifespan` and `open_lifespan`):
            `serve` enters it before it accepts the first connection and leaves it
            after the last one closed; `trio_rest.testing.TestClient` does the same.
        auth: how credentials are checked (a `trio_rest.auth.JWTAuth`); None: the
            one `Settings.jwt_secret` describes, or no authentication (every
            ``request.user`` is None).
        permissions: the permissions of the views that name none of their own
            (see `trio_rest.auth`); None lets anyone through.
        require_auth: a connection without valid credentials in its handshake must
            send an ``auth`` message before anything else (needs `auth`).
        middleware: ``async def middleware(request, call_next)`` functions around
            every request, the first outermost (see `trio_rest.log_requests`).
        broker: carries what `publish` sends to the members of a topic
            (``connection.join(topic)``); an `InMemoryBroker` (one process) by default.
        metrics: called as ``metrics(name, amount)`` whenever a counter of
            `push_stats` grows (see `PushStats`), to feed a metrics system.

    Attributes:
        push_stats: what its notifications did: published, delivered, dropped, and
            slow clients disconnected (`PushStats`).

    Raises:
        ConfigurationError: a route names a view that cannot serve one of
            its methods; a permission that is none; `require_auth` without `auth`.
    """

    def __init__(
        self,
        router: SimpleRouter,
        *,
        settings: Settings | None = None,
        converter: cattrs.Converter | None = None,
        database: Database | None = None,
        lifespan: Lifespan | None = None,
        auth: AuthBackend | None = None,
        permissions: Sequence[Permission] | None = None,
        require_auth: bool = False,
        middleware: Sequence[Middleware] = (),
        broker: Broker | None = None,
        metrics: MetricsHook | None = None,
    ) -> None:
        self.router = router
        self.lifespan = lifespan
        self.converter = converter if converter is not None else make_converter()
        self.database = database
        if database is not None:
            database.attach(self)
        self._own_auth = auth  # given in code; else the one the settings describe
        self.auth: AuthBackend | None = auth
        self.require_auth = require_auth
        self.settings = settings if settings is not None else Settings()
        self.middleware = tuple(middleware)
        self.push_stats = PushStats(metrics)
        self.broker = broker if broker is not None else InMemoryBroker()
        self._metrics: Metrics | None = None
        #: The idempotent writes (requests with an ``idempotency_key``): see `_idempotency`.
        self.idempotency = Idempotency(self)
        #: The servers serving this App in this process (`revoke` closes connections on each).
        self.servers: weakref.WeakSet[Server] = weakref.WeakSet()
        #: What was revoked lately: for credentials checked while a revocation came.
        self.revocations = RecentRevocations()
        self.permissions = compile_permissions(permissions, "App") if permissions is not None else ()
        self._observe_viewsets()
        self._handlers: dict[tuple[object, str], Handler] = {}
        for route in router.routes:
            for method, view in route.views.items():
                if (view, method) not in self._handlers:
                    self._handlers[(view, method)] = self._compile(view, method)

    def _observe_viewsets(self) -> None:
        """Observe the models of the viewsets that ask for it (``ModelViewSet.observe``)."""
        for viewset, topic, detail_topic in self.router.viewsets:
            if not getattr(viewset, "observe", False):
                continue
            if self.database is None:
                raise ConfigurationError(f"{viewset.__name__}.observe needs an App with a database")
            from ._generics import model_of

            model = model_of(viewset)
            if model not in self.database.observed:
                self.database.observe(model, viewset.serializer_class, topic=topic, detail_topic=detail_topic)

    def _compile(self, view: object, method: str) -> Handler:
        handler = compile_handler(view, method)
        if handler.permissions is None:  # the view names none: the App's default
            handler = attrs.evolve(handler, permissions=self.permissions)
        return handler

    @asynccontextmanager
    async def open_lifespan(self) -> AsyncIterator[None]:
        """Run the app's lifespan around the block: startup before it, shutdown after it.

        The broker runs inside it too (`Broker.running`: a Redis broker's connection).

        An ``async def`` lifespan is awaited, a plain ``def`` runs in a worker thread
        (blocking work such as creating tables); when either returns an async context
        manager, the block runs inside it.

        Raises:
            Exception: whatever the startup raised; the block then does not run.
        """
        lifespan = self.lifespan
        if lifespan is None:
            result: Any = None
        elif inspect.iscoroutinefunction(lifespan):
            result = await lifespan(self)
        else:
            result = await trio.to_thread.run_sync(lifespan, self)
        revocations = _Revocations(self)
        async with self.broker.running():
            self.broker.join(REVOCATIONS, revocations)  # what another process revokes
            if hasattr(result, "__aenter__"):
                async with result:
                    yield
            else:
                yield

    @property
    def metrics(self) -> Metrics:
        """The App's Prometheus metrics (made on first use; served when `Settings.metrics` is on)."""
        if self._metrics is None:
            from ._metrics import Metrics

            self._metrics = Metrics(self)
        return self._metrics

    @property
    def broker(self) -> Broker:
        """What carries published notifications (replaced before serving by the CLI's ``--broker``)."""
        return self._broker

    @broker.setter
    def broker(self, broker: Broker) -> None:
        broker.stats = self.push_stats
        self._broker = broker

    @property
    def settings(self) -> Settings:
        """The limits and timings; setting them again (the CLI does, from the environment and
        its ``--set``) also rebuilds the authentication `Settings.jwt_secret` describes.

        Raises:
            ConfigurationError: a JWT secret or algorithm that `JWTAuth` refuses, or
                `require_auth` with no authentication at all.
        """
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        auth = self._own_auth
        previous = getattr(self, "_settings", None)
        if auth is None and previous is not None and _jwt_options(previous) == _jwt_options(settings):
            auth = self.auth  # the same JWT options: keep that auth, and what it revoked
        elif auth is None and settings.jwt_secret is not None:
            from .auth._jwt import JWTAuth

            auth = JWTAuth(
                settings.jwt_secret,
                algorithm=settings.jwt_algorithm,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                leeway=settings.jwt_leeway,
            )
        if self.require_auth and auth is None:
            raise ConfigurationError("App(require_auth=True) needs an auth= to check the credentials")
        self._settings = settings
        self.auth = auth

    async def publish(
        self, topic: str, event_name: str | None = None, data: Any = None, *, obj: Any = None
    ) -> int:
        """Send a notification to every member of `topic`, each once, in publish order.

        Members are the connections that joined it and the subscriptions that follow it.
        It never waits for a client: each member queues it, and a member that does not
        read meets `Settings.notification_overflow` once `Settings.max_outbound_bytes`
        are queued for it. The data is encoded once, here.

        Args:
            topic: the topic, e.g. ``"/user/6"`` or ``"chat"``.
            event_name: what kind of notification it is.
            data: its body.
            obj: what it is about, for the object permissions of the subscriptions that
                follow the topic (their views' ``has_object_permission(request, obj)``);
                by default, `data`.

        Returns:
            How many members it was delivered to, in this process (an `InMemoryBroker`);
            a broker across processes delivers from its own task, and returns how many
            processes received it (`trio_rest.brokers.RedisBroker`).

        Raises:
            LocalProtocolError: `data` cannot be encoded, or `topic` is not a string
                (nothing was delivered).
            BrokerUnavailableError: the broker cannot be reached (nothing was published).
        """
        message = Published(topic, event_name, data, obj)
        self.push_stats.count("published")
        return await self.broker.publish(message)

    async def presence(self, topic: str) -> dict[str, Any]:
        """Who is present in `topic` (``request.present``), in every process: client id -> info.

        Raises:
            BrokerUnavailableError: the broker cannot be reached.
        """
        return await self.broker.presence(topic)

    def revoke(self, subject: str) -> int:
        """Refuse `subject`'s tokens issued until now, and close its connections (1008).

        Args:
            subject: the ``sub`` of the user's tokens.

        Returns:
            How many connections were closed (in this process).

        Raises:
            ConfigurationError: the App has no `auth`.
        """
        if self.auth is None:
            raise ConfigurationError("App.revoke needs an auth= to revoke tokens of")
        return self._revoke_here(subject, None)

    async def revoke_everywhere(self, subject: str) -> None:
        """`revoke` in every process of the App, through its broker (across machines with Redis).

        Each process refuses `subject`'s tokens issued until now and closes its connections
        (1008), as `revoke` does in one.

        Raises:
            ConfigurationError: the App has no `auth`.
            BrokerUnavailableError: the broker cannot be reached (this process has revoked).
        """
        if self.auth is None:
            raise ConfigurationError("App.revoke_everywhere needs an auth= to revoke tokens of")
        at = time.time()
        self._revoke_here(subject, at)
        await self.publish(REVOCATIONS, "revoke", {"subject": subject, "at": at})

    def _revoke_here(self, subject: str, at: float | None) -> int:
        if self.auth is None:
            return 0
        self.auth.revoke(subject, at=at)
        self.revocations.add(subject)
        closed = 0
        for server in list(self.servers):
            for connection in list(server.connections):
                if connection.subject == subject:
                    connection.revoked()
                    closed += 1
                else:  # its requests made with the subject's own token end (401)
                    connection.revoke_requests(subject)
        return closed

    def handler(self, view: object, method: str) -> Handler:
        """Return the compiled handler of a routed view (compiling it if it was added late).

        Args:
            view: the view a `RouteMatch` names.
            method: the upper-case method.

        Returns:
            The handler.
        """
        handler = self._handlers.get((view, method))
        if handler is None:
            handler = self._handlers[(view, method)] = self._compile(view, method)
        return handler


#: The topic on which processes tell each other about revoked tokens (`revoke_everywhere`).
REVOCATIONS = "$trio-rest/revocations"


class _Revocations:
    """The App's member of `REVOCATIONS`: revokes here what another process revoked."""

    __slots__ = ("_app",)

    def __init__(self, app: App) -> None:
        self._app = app

    def deliver(self, message: Published) -> bool:
        data = message.data
        if message.event_name == "revoke" and isinstance(data, dict) and isinstance(data.get("subject"), str):
            at = data.get("at")
            self._app._revoke_here(data["subject"], at if isinstance(at, int | float) else None)
        return True


def _jwt_options(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.jwt_secret,
        settings.jwt_algorithm,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_leeway,
    )
