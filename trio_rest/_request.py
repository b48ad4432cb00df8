"""`Request`, what a view receives, and `Response`, what it may return."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ._errors import TrioRestError
from ._threads import run_abandonable
from .auth._permissions import check_object_permissions

if TYPE_CHECKING:
    from ._app import App
    from ._connection import ServerConnection
    from ._subscription import Subscription

__all__ = ["Request", "Response"]

_T = TypeVar("_T")

log = logging.getLogger("trio_rest")

#: Seconds leaving a presence may take (it runs shielded from cancellation).
PRESENCE_LEAVE_TIMEOUT = 5.0


def _check_status(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 100 <= value < 400:
        raise ValueError(f"a Response is a success (100-399); raise an APIError for {value!r}")


@attrs.frozen
class Response:
    """A view's success reply with a status other than 200.

    Returning plain data means 200; return ``Response(data, status=201)`` for
    anything else, and raise an `APIError` for errors.

    Args:
        data: the reply's body, any JSON-shaped value.
        status: a success status, 100 to 399.

    Raises:
        ValueError: for an error status.
    """

    data: Any = None
    status: int = attrs.field(default=200, kw_only=True, validator=_check_status)


@attrs.define(eq=False, kw_only=True)
class Request:
    """One request, as a view sees it.

    Attributes:
        method: upper-case method.
        url: the url as sent, with its query string.
        path: the url without its query string.
        args: the query string merged with the envelope's ``args``.
        data: the body.
        id: the request's id (None when the client sent none).
        event_name: the client's event name, echoed on the reply.
        params: the path parameters, converted (also passed as keyword arguments).
        extras: unknown top-level envelope keys (aiorest-ws put ``token`` there).
        connection: the `ServerConnection` it arrived on.
        app: the `App`.
        user: whoever the credentials name, once authentication is configured.
        session: the request's SQLAlchemy session, when the app has a database:
            one transaction, committed when the view succeeds. Use it from a
            plain ``def`` view (which runs in a worker thread) or through
            `run_sync` from an ``async def`` view.
        subscription: the `Subscription` of a SUBSCRIBE request (None otherwise).
        auth_error: why the request's credentials were refused (None when they were
            accepted, or there were none); the 401's detail.
        subject: the ``sub`` of the credentials it runs with: its own token's
            (``args.token``), else the connection's (None without any).
        permissions: the view's permissions, for `check_object_permissions`.
    """

    method: str
    url: str
    path: str
    args: Mapping[str, Any]
    data: Any
    id: str | int | None
    event_name: str | None
    params: Mapping[str, Any]
    extras: Mapping[str, Any]
    connection: ServerConnection
    app: App
    user: Any = None
    session: Any = None
    subscription: Subscription | None = None
    auth_error: str | None = None
    subject: str | None = None
    permissions: tuple[Any, ...] = ()

    def check_object_permissions(self, obj: Any) -> None:
        """Raise 401 or 403 unless every permission of the view lets this request act on `obj`.

        Views call it once they hold the object (DRF's object-level permissions).

        Raises:
            AuthenticationError: refused, and the request has no user.
            PermissionDeniedError: refused, and the request has a user.
        """
        check_object_permissions(self, obj)

    @property
    def accepted(self) -> bool:
        """True once a SUBSCRIBE request was answered with 200."""
        return self.subscription is not None and self.subscription.accepted

    async def run_sync(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run blocking code (a database query) in a worker thread.

        Under the database's limiter when the app has a database: an
        ``async def`` view uses the request's session this way.

        Args:
            fn: a blocking function, e.g. ``lambda: request.session.get(User, 1)``.
            *args: its arguments.

        Returns:
            What `fn` returned.

        A cancellation (the request's deadline, its client's cancel) stops the
        wait at once, so the request is answered on time; the thread runs to
        its end alone and its result is discarded and logged.
        """
        database = self.app.database
        if database is not None and self.session is not None:
            return await database.run_in_session(self.session, fn, *args)
        return await run_abandonable(functools.partial(fn, *args))

    async def accept(self, data: Any = None) -> None:
        """Answer a SUBSCRIBE request with 200, starting the subscription.

        Notifying accepts implicitly; call this to send a body with the 200.
        Calling it again does nothing. See `Subscription.accept`.

        Args:
            data: the 200 reply's body.

        Raises:
            TrioRestError: the request is not a SUBSCRIBE.
        """
        await self._subscription().accept(data)

    async def notify(
        self, data: Any = None, *, event_name: str | None = None, topic: str | None = None
    ) -> int:
        """Send a notification on this subscription (accepting it first if needed).

        See `Subscription.notify`.

        Args:
            data: the notification's body.
            event_name: names the kind of notification (``"user.updated"``).
            topic: what it is about (defaults to the request's path).

        Returns:
            The notification's sequence number, from 1.

        Raises:
            TrioRestError: the request is not a SUBSCRIBE.
        """
        return await self._subscription().notify(data, event_name=event_name, topic=topic)

    @asynccontextmanager
    async def present(self, topic: str, info: Any = None) -> AsyncIterator[str]:
        """Be present in `topic` for the block: in ``app.presence(topic)``, with ``join``/``leave``.

        Entering records this client in the topic's presence (in every process, with a
        broker across processes) and publishes ``"join"`` there with ``{"client": id,
        "info": info}``; leaving (the handler returns, is cancelled, fails) removes it and
        publishes ``"leave"`` the same way, shielded and bounded to `PRESENCE_LEAVE_TIMEOUT`
        seconds. A SUBSCRIBE handler typically does::

            async with request.present("room", {"user": request.user["sub"]}):
                await request.follow("room")
                await trio.sleep_forever()

        Yields:
            The client's id in the presence (random, unique).
        """
        app, client = self.app, secrets.token_hex(8)
        await app.broker.present(topic, client, info)
        try:
            await app.publish(topic, "join", {"client": client, "info": info})
            yield client
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(PRESENCE_LEAVE_TIMEOUT):
                try:
                    await app.broker.absent(topic, client)
                    await app.publish(topic, "leave", {"client": client, "info": info})
                except Exception as exc:  # the broker is away: its entry expires by itself
                    log.warning("leaving the presence of %r failed: %s", topic, exc)

    async def follow(self, topic: str) -> None:
        """Make this subscription receive what the App publishes to `topic` (see `Subscription.follow`).

        Raises:
            TrioRestError: the request is not a SUBSCRIBE.
        """
        await self._subscription().follow(topic)

    def _subscription(self) -> Subscription:
        if self.subscription is None:
            raise TrioRestError("only a SUBSCRIBE request can be accepted or notified")
        return self.subscription
