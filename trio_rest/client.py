"""The Python client: requests, subscriptions and pings over one WebSocket.

    async with connect("ws://127.0.0.1:8080/") as client:
        response = await client.get("/user/6")
        async with client.subscribe("/user/6") as subscription:
            async for notification in subscription:
                ...

Every request gets an id; many may be in flight at once; leaving a request's
cancel scope (a timeout, a cancelled nursery) sends a ``cancel`` for it. With
``reconnect=True`` a dropped connection is reopened with exponential backoff:
requests in flight at the drop fail with `ConnectionClosedError`, later ones
wait for the new connection, and subscriptions are renewed from the position
they reached in their topics (see `Subscription`).
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import ssl
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio
import trio_websocket
from trio_rest_protocol import (
    NEED_DATA,
    Cancel,
    Codec,
    Connection,
    LocalProtocolError,
    Notification,
    Ping,
    Pong,
    RemoteProtocolError,
    Request,
    RequestId,
    Response,
    Role,
)

from ._errors import APIError, TrioRestError
from ._groups import Block, alone
from ._idempotency import KEY as _KEY
from ._idempotency import WRITES as _WRITES
from ._subprotocols import SUBPROTOCOLS as _CODECS

__all__ = [
    "REPLY_MARGIN",
    "Client",
    "ConnectionClosedError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "Subscription",
    "SubscriptionOverflowError",
    "WRITE_ATTEMPTS",
    "connect",
]

Opener = Callable[[trio.Nursery], Awaitable[trio_websocket.WebSocketConnection]]


class ConnectionClosedError(TrioRestError):
    """The connection closed before the reply (or the subscription's end) arrived."""


class SubscriptionOverflowError(TrioRestError):
    """Notifications arrived faster than the subscription was read; it was ended."""


class RequestTimeoutError(TrioRestError):
    """No reply came in time (see `Client.request`); a ``cancel`` was sent for the request."""


class RequestTooLargeError(TrioRestError):
    """The request is larger than the server takes (``max_request_size``); it was not sent."""


#: Seconds a request waits for its reply beyond the deadline it gives the server.
REPLY_MARGIN = 5.0

#: Tries to renew a subscription after a reconnect while the server answers 503.
_RESUBSCRIBE_ATTEMPTS = 8

#: Times a write with an idempotency key is sent, at most, when connections drop before its reply.
WRITE_ATTEMPTS = 3


@attrs.define(eq=False)
class _Waiter:
    done: trio.Event = attrs.field(factory=trio.Event)
    response: Response | None = None
    error: BaseException | None = None


@attrs.define(eq=False)
class _Live:
    """What the client keeps of a subscription: where its notifications go, how to renew it."""

    send: trio.MemorySendChannel[Notification]
    errors: list[BaseException]
    url: str
    data: Any
    args: dict[str, Any]
    recover: bool
    #: The last offset and epoch seen per topic: what a resubscription recovers from.
    positions: dict[str, dict[str, Any]] = attrs.field(factory=dict)


@attrs.define(eq=False)
class Subscription:
    """An active subscription: iterate it for its notifications.

    With recovery (the default of a client that reconnects), it outlives a dropped
    connection: once the client is connected again, it subscribes again with the position
    it reached in each topic, and the server sends a ``"recovery"`` notification per topic
    (``data["recovered"]`` false: some messages could not be recovered; refetch), then what
    was missed, then the live notifications, none twice. `seq` starts again from 1 then.

    Attributes:
        id: the subscription's id.
        response: the server's 200 reply (the first one).
        positions: the last ``{"epoch", "offset"}`` seen in each topic (the one given in
            ``args.since`` until then).
    """

    id: RequestId
    response: Response
    _channel: trio.MemoryReceiveChannel[Notification]
    _error: list[BaseException] = attrs.field(factory=list)
    positions: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        try:
            return await self._channel.receive()
        except trio.EndOfChannel:
            if self._error:
                raise self._error[0] from None
            raise StopAsyncIteration from None


class Client:
    """A trio-rest client over one WebSocket (reopened on failure when asked).

    Build it with `connect` (a real socket) or `trio_rest.testing.TestClient`
    (in memory); the methods are the same.

    Attributes:
        notifications: a channel of the notifications that belong to no
            subscription (timers, broadcasts); when it is full, new ones are
            counted in `dropped_notifications` instead.
        connections: how many times the client has connected.
        request_timeout: seconds a request without its own ``timeout`` waits for
            its reply (None: forever); see `request`.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        opener: Opener,
        *,
        codec: Codec = Codec.JSON,
        reconnect: bool = False,
        max_backoff: float = 10.0,
        max_attempts: int | None = None,
        connect_timeout: float = 10.0,
        subscription_buffer: int = 256,
        request_timeout: float | None = 65.0,
        max_request_size: int = 2**20,
        max_message_size: int = 4 * 2**20,
    ) -> None:
        self._nursery = nursery
        self.request_timeout = request_timeout
        self._max_request_size = max_request_size
        self._max_message_size = max_message_size
        self._opener = opener
        self._codec = codec
        self._reconnect = reconnect
        self._max_backoff = max_backoff
        self._max_attempts = max_attempts
        self._connect_timeout = connect_timeout
        self._subscription_buffer = subscription_buffer
        self._ids = itertools.count(1)
        self._waiters: dict[RequestId, _Waiter] = {}
        self._pings: dict[RequestId, trio.Event] = {}
        self._subscriptions: dict[RequestId, _Live] = {}
        self._ws: trio_websocket.WebSocketConnection | None = None
        self._proto = self._new_protocol()
        self._connected = trio.Event()
        self._closing = False
        self.connections = 0
        # Notifications that belong to no subscription (a timer, a broadcast).
        self._topic_send, self.notifications = trio.open_memory_channel[Notification](subscription_buffer)
        #: Topic notifications dropped because `notifications` was not read.
        self.dropped_notifications = 0

    # -- requests ---------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        args: dict[str, Any] | None = None,
        event_name: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the server's deadline, sent in the envelope
        id: RequestId | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        """Send a request and wait for its reply.

        Args:
            method: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or SUBSCRIBE.
            url: the path, with an optional query string.
            data: the body.
            args: query-like parameters.
            event_name: echoed on the reply.
            timeout: seconds the server may take (it replies 504 past them).
                The client waits that long plus `REPLY_MARGIN` for the reply;
                without it, `request_timeout` seconds (65 by default: the
                server's default deadline, plus the margin; None waits forever).
            id: the request id (one is generated when None).
            idempotency_key: sent as the envelope's ``idempotency_key``: the server
                runs a write once per key, and answers a retry with the first reply.
                A client that reconnects gives each write one of its own, and
                re-sends a write whose connection dropped before its reply, with
                the same key, once connected again (up to `WRITE_ATTEMPTS` times).

        Returns:
            The reply, whatever its status (check ``response.status``).

        Raises:
            ConnectionClosedError: the connection closed before the reply (and the
                request could not be re-sent).
            RequestTimeoutError: no reply in time; a ``cancel`` was sent.
            RequestTooLargeError: the request is larger than ``max_request_size``
                (it was not sent: the server would refuse it without its id).
        """
        method = method.upper()
        if idempotency_key is None and self._reconnect and method in _WRITES:
            idempotency_key = uuid.uuid4().hex
        extras = {_KEY: idempotency_key} if idempotency_key is not None else {}
        attempts = WRITE_ATTEMPTS if idempotency_key is not None and self._reconnect else 1
        request_id = next(self._ids) if id is None else id
        wait = timeout + REPLY_MARGIN if timeout is not None else self.request_timeout
        with trio.move_on_after(wait if wait is not None else math.inf) as waiting:
            for attempt in range(attempts):
                waiter = _Waiter()
                self._waiters[request_id] = waiter
                try:
                    await self._send(
                        Request(
                            method=method,
                            url=url,
                            args=args or {},
                            data=data,
                            event_name=event_name,
                            id=request_id,
                            timeout=timeout,
                            extras=extras,
                        )
                    )
                    await waiter.done.wait()
                except ConnectionClosedError as exc:
                    waiter.error = exc
                except trio.Cancelled:
                    await self._cancel_quietly(request_id)
                    raise
                finally:
                    self._waiters.pop(request_id, None)
                retry = isinstance(waiter.error, ConnectionClosedError) and not self._closing
                if not retry or attempt == attempts - 1:
                    break  # else: re-sent, with the same key, once connected again
        if waiting.cancelled_caught:
            await self._cancel_quietly(request_id)
            raise RequestTimeoutError(f"no reply to {method} {url} within {wait} s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.response is not None
        return waiter.response

    async def get(self, url: str, **options: Any) -> Response:
        """``request("GET", url, ...)``."""
        return await self.request("GET", url, **options)

    async def post(self, url: str, data: Any = None, **options: Any) -> Response:
        """``request("POST", url, data=data, ...)``."""
        return await self.request("POST", url, data=data, **options)

    async def put(self, url: str, data: Any = None, **options: Any) -> Response:
        """``request("PUT", url, data=data, ...)``."""
        return await self.request("PUT", url, data=data, **options)

    async def patch(self, url: str, data: Any = None, **options: Any) -> Response:
        """``request("PATCH", url, data=data, ...)``."""
        return await self.request("PATCH", url, data=data, **options)

    async def delete(self, url: str, **options: Any) -> Response:
        """``request("DELETE", url, ...)``."""
        return await self.request("DELETE", url, **options)

    @asynccontextmanager
    async def subscribe(
        self,
        url: str,
        *,
        data: Any = None,
        args: dict[str, Any] | None = None,
        recover: bool | None = None,
    ) -> AsyncIterator[Subscription]:
        """Subscribe to `url`; the subscription ends when the block exits.

        Args:
            url: the resource to watch.
            data: the SUBSCRIBE request's body.
            args: query-like parameters.
            recover: ask the server for positions in the topics the subscription
                follows, and subscribe again from them after a reconnect, so that
                nothing published meanwhile is missed unknowingly (by default, when the
                client reconnects). It adds ``args.since``.

        Yields:
            The `Subscription`, an async iterator of notifications; it stops
            after the server's final notification.

        Raises:
            APIError: the server refused the subscription (its status, code,
                detail and errors).
            ConnectionClosedError: the connection closed (for good, with recovery).
        """
        sub_id = f"sub-{next(self._ids)}"
        recover = self._reconnect if recover is None else recover
        args = dict(args or {})
        if recover:
            args.setdefault("since", {})
        since = args.get("since")
        # Until a topic's first notification, a resubscription recovers from the caller's
        # position in it: a drop before then loses nothing published after that position.
        given = (
            {topic: dict(at) for topic, at in since.items() if isinstance(at, dict)}
            if isinstance(since, dict)
            else {}
        )
        send, receive = trio.open_memory_channel[Notification](self._subscription_buffer)
        live = _Live(send, [], url, data, args, recover, given)
        self._subscriptions[sub_id] = live
        try:
            response = await self.request("SUBSCRIBE", url, data=data, args=args, id=sub_id)
            if response.is_error:
                raise APIError(
                    response.detail, status=response.status, code=response.code, errors=response.errors
                )
            yield Subscription(sub_id, response, receive, live.errors, live.positions)
        finally:
            if self._subscriptions.pop(sub_id, None) is not None and self._proto.is_subscribed(sub_id):
                await self._cancel_quietly(sub_id)

    async def _resubscribe(self, sub_id: RequestId, live: _Live) -> None:
        """Subscribe again after a reconnect, from the positions reached (see `Subscription`).

        A 503 (the server, or its broker, is not ready) is retried with backoff, up to
        `_RESUBSCRIBE_ATTEMPTS` times; a subscription left meanwhile is not renewed (or is
        cancelled at once when its reply comes after).
        """
        error: BaseException | None = None
        for attempt in range(_RESUBSCRIBE_ATTEMPTS):
            if self._subscriptions.get(sub_id) is not live:
                return  # left meanwhile
            args = {**live.args, "since": dict(live.positions)}
            try:
                response = await self.request("SUBSCRIBE", live.url, data=live.data, args=args, id=sub_id)
            except TrioRestError as exc:
                if isinstance(exc, ConnectionClosedError) and self._reconnect and not self._closing:
                    return  # dropped again: the next connection tries again
                error = exc
                break
            if self._subscriptions.get(sub_id) is not live:
                if not response.is_error:
                    await self._cancel_quietly(sub_id)
                return
            if not response.is_error:
                return
            error = APIError(
                response.detail, status=response.status, code=response.code, errors=response.errors
            )
            if response.status != 503:
                break
            await trio.sleep(min(self._max_backoff, 0.2 * 2**attempt) * random.uniform(0.5, 1.0))
        if error is not None and self._subscriptions.get(sub_id) is live:
            live.errors.append(error)
            live.send.close()

    async def ping(self) -> float:
        """Send an application-level ping and wait for the pong.

        Returns:
            The round trip, in seconds.
        """
        ping_id = f"ping-{next(self._ids)}"
        event = self._pings[ping_id] = trio.Event()
        start = trio.current_time()
        try:
            await self._send(Ping(id=ping_id))
            await event.wait()
        finally:
            self._pings.pop(ping_id, None)
        return trio.current_time() - start

    async def send_raw(self, message: str | bytes) -> None:
        """Send a message as is, bypassing the protocol (to test a server's defences)."""
        ws = await self._ready()
        await ws.send_message(message)

    async def aclose(self) -> None:
        """Close the connection (with 1000) and stop reconnecting."""
        self._closing = True
        if self._ws is not None:
            with trio.move_on_after(5):
                await self._ws.aclose()

    # -- plumbing ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the first connection and start the reader; errors propagate."""
        await self._open()
        self._nursery.start_soon(self._supervise)

    async def _open(self) -> None:
        try:
            with trio.fail_after(self._connect_timeout):
                ws = await self._opener(self._nursery)
        except trio.TooSlowError:
            raise OSError(f"no WebSocket handshake within {self._connect_timeout} s") from None
        self._codec = _CODECS.get(ws.subprotocol or "", Codec.JSON)
        self._proto = self._new_protocol()
        self._ws = ws
        self.connections += 1
        self._connected.set()

    def _new_protocol(self) -> Connection:
        return Connection(
            Role.CLIENT,
            codec=self._codec,
            max_message_size=self._max_message_size,
            max_send_size=self._max_request_size,
        )

    async def _ready(self) -> trio_websocket.WebSocketConnection:
        await self._connected.wait()
        if self._ws is None:
            raise ConnectionClosedError("the client is closed")
        return self._ws

    async def _send(self, event: Any) -> None:
        ws = await self._ready()
        try:
            wire = self._proto.send(event)
        except LocalProtocolError as exc:
            if "max_send_size" in str(exc):
                raise RequestTooLargeError(
                    f"{exc}: the server refuses messages over {self._max_request_size} bytes"
                ) from None
            raise
        try:
            await ws.send_message(wire)
        except trio_websocket.ConnectionClosed as exc:
            raise ConnectionClosedError(f"connection closed: {exc.reason}") from None

    async def _cancel_quietly(self, request_id: RequestId) -> None:
        """Tell the server we gave up on a request; never blocks for long."""
        ws = self._ws
        if ws is None or ws.closed is not None:
            return
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(1),
            suppress(trio_websocket.ConnectionClosed, trio.BrokenResourceError),
        ):
            await ws.send_message(self._proto.send(Cancel(id=request_id)))

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            ws = self._ws
            assert ws is not None
            await self._read_until_closed(ws)
            self._connected = trio.Event()
            self._fail_everything(ConnectionClosedError(f"connection closed: {ws.closed}"))
            if self._closing or not self._reconnect:
                self._ws = None
                self._fail_subscriptions(ConnectionClosedError(f"connection closed: {ws.closed}"))
                self._connected.set()  # wake waiters so that they see the closed client
                return
            while True:
                attempt += 1
                if self._closing or (self._max_attempts is not None and attempt > self._max_attempts):
                    self._ws = None
                    self._fail_subscriptions(ConnectionClosedError("the connection could not be reopened"))
                    self._connected.set()
                    return
                # Exponential backoff with jitter, so that clients of a restarted
                # server do not all come back in the same instant.
                delay = min(self._max_backoff, 0.1 * 2 ** min(attempt - 1, 30)) * random.uniform(0.5, 1.0)
                await trio.sleep(delay)
                try:
                    await self._open()
                except (OSError, trio_websocket.HandshakeError):
                    continue
                attempt = 0
                for sub_id, live in list(self._subscriptions.items()):
                    if live.recover:
                        self._nursery.start_soon(self._resubscribe, sub_id, live)
                break

    async def _read_until_closed(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            try:
                message = await ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            self._proto.receive_data(message)
            self._dispatch_events()

    def _dispatch_events(self) -> None:
        while True:
            try:
                event = self._proto.next_event()
            except RemoteProtocolError:
                continue  # a malformed reply answers nothing we wait for
            if event is NEED_DATA:
                return
            if type(event) is Response:
                waiter = self._waiters.get(event.id) if event.id is not None else None
                if waiter is not None:
                    waiter.response = event
                    waiter.done.set()
            elif type(event) is Notification:
                self._deliver(event)
            elif type(event) is Pong and event.id in self._pings:
                self._pings[event.id].set()

    def _deliver(self, event: Notification) -> None:
        if event.id is None:
            try:
                self._topic_send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped_notifications += 1
            return
        live = self._subscriptions.get(event.id)
        if live is None:
            return  # a late notification of a subscription we already left
        if event.final and live.recover and self._reconnect and not self._closing and _closing(event.data):
            return  # the server is going away: the subscription is renewed after the reconnect
        try:
            live.send.send_nowait(event)
        except trio.WouldBlock:
            live.errors.append(
                SubscriptionOverflowError(f"more than {self._subscription_buffer} unread notifications")
            )
            live.send.close()
            # It is over: the server is told, and what it still sends is dropped.
            del self._subscriptions[event.id]
            self._nursery.start_soon(self._cancel_quietly, event.id)
            return
        if event.offset is not None and event.topic is not None:
            known = event.topic in live.positions
            recovering = event.event_name == "recovery" and isinstance(event.data, dict)
            # A recovery notice gives the topic's position now: where a subscriber that knew
            # none starts, or one that cannot recover starts again. One that recovers moves on
            # with the missed messages themselves, so that a drop meanwhile loses none.
            if not (recovering and known and event.data.get("recovered") is True):
                live.positions[event.topic] = {"epoch": event.epoch, "offset": event.offset}
        if event.final:
            live.send.close()

    def _fail_everything(self, error: ConnectionClosedError) -> None:
        """The connection dropped: what waited fails, and subscriptions without recovery end."""
        for waiter in self._waiters.values():
            waiter.error = error
            waiter.done.set()
        for live in self._subscriptions.values():
            if not (live.recover and self._reconnect and not self._closing):
                live.errors.append(error)
                live.send.close()
        for event in self._pings.values():
            event.set()

    def _fail_subscriptions(self, error: ConnectionClosedError) -> None:
        """No connection any more: the subscriptions that waited to be renewed end."""
        for live in self._subscriptions.values():
            if not live.errors:
                live.errors.append(error)
            live.send.close()


def _closing(data: Any) -> bool:
    """A final notification's error body saying the server closes (503 ``closing``)."""
    return isinstance(data, dict) and data.get("code") == "closing"


async def _hold_websocket(
    url: str,
    ssl_context: ssl.SSLContext | None,
    *,
    task_status: trio.TaskStatus[trio_websocket.WebSocketConnection] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Open a WebSocket, hand it over, and hold its reader task in a nursery of its own.

    trio-websocket raises a refused handshake (`trio_websocket.ConnectionRejected`, a 401
    or a 403) from the reader task, in the nursery it was given, and leaves the socket
    open: in the client's nursery, the refusal would end the client, wrapped in an
    exception group, even while it reconnects. Here it is raised, alone, to whoever opens
    the connection, like a refused TCP connection, and the socket is closed (a server
    waits for its peer's EOF before it lets go of a refused connection).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    if parts.scheme == "ws" and ssl_context is not None:
        raise ValueError("an ssl_context needs a wss:// URL")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    host = parts.hostname if port in (80, 443) else f"{parts.hostname}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
    if parts.scheme == "wss":
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        stream = await trio.open_ssl_over_tcp_stream(
            parts.hostname, port, ssl_context=context, https_compatible=True
        )
    else:
        stream = await trio.open_tcp_stream(parts.hostname, port)
    started = False
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(nursery, stream, host, resource, **options)
            started = True
            task_status.started(ws)
    except BaseExceptionGroup as group:
        failure = group.exceptions[0] if len(group.exceptions) == 1 else None
        if not started and isinstance(failure, OSError | trio_websocket.HandshakeError):
            raise failure from None
        raise
    finally:
        if not started:
            await trio.aclose_forcefully(stream)


@asynccontextmanager
async def _lend(client: Client, nursery: trio.Nursery, block: Block) -> AsyncIterator[None]:
    """The caller's block with `client`: what it raises noted in `block`; then all is closed."""
    try:
        yield
    except BaseException as exc:
        block.error = exc
        raise
    finally:
        await client.aclose()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def connect(
    url: str,
    *,
    subprotocol: str = "trio-rest.json",
    reconnect: bool = True,
    max_backoff: float = 10.0,
    max_attempts: int | None = None,
    connect_timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    max_message_size: int = 4 * 2**20,
    max_request_size: int = 2**20,
    request_timeout: float | None = 65.0,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Client]:
    """Open a client connection to a trio-rest server.

    Args:
        url: ``ws://host:port/path``.
        subprotocol: ``"trio-rest.json"`` or ``"trio-rest.msgpack"``.
        reconnect: reopen a dropped connection, with exponential backoff.
        max_backoff: the longest wait between two attempts, in seconds.
        max_attempts: attempts per outage before giving up (None: never).
        connect_timeout: seconds one attempt (TCP and handshake) may take.
        headers: extra handshake headers (``Authorization``, say).
        max_message_size: the largest message accepted from the server.
        max_request_size: the largest request sent: the server's
            ``max_message_size`` (1 MiB by default); a larger one fails with
            `RequestTooLargeError` without being sent.
        request_timeout: seconds a request without its own ``timeout`` waits
            for its reply (None: forever); see `Client.request`.
        ssl_context: for ``wss://`` URLs, the TLS context (default: the system's
            trusted certificates, with hostname checks).

    Yields:
        The `Client`; it is closed when the block exits.

    Raises:
        OSError, trio_websocket.HandshakeError: the first connection failed.

    What the block raises comes out as itself (not in an exception group), unless
    the client's own tasks failed too.
    """
    extra = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]

    async def opener(nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        ws: trio_websocket.WebSocketConnection = await nursery.start(
            functools.partial(
                _hold_websocket,
                url,
                ssl_context,
                subprotocols=[subprotocol],
                extra_headers=extra,
                max_message_size=max_message_size,
            )
        )
        return ws

    failure: BaseException | None = None  # the first connection's, raised alone
    with alone() as block:
        async with trio.open_nursery() as nursery:
            client = Client(
                nursery,
                opener,
                codec=_CODECS.get(subprotocol, Codec.JSON),
                reconnect=reconnect,
                max_backoff=max_backoff,
                max_attempts=max_attempts,
                connect_timeout=connect_timeout,
                request_timeout=request_timeout,
                max_request_size=max_request_size,
                max_message_size=max_message_size,
            )
            try:
                await client.start()
            except (OSError, trio_websocket.HandshakeError) as exc:
                # Raised after the nursery, so the caller sees the error itself
                # rather than an exception group around it.
                failure = exc
                nursery.cancel_scope.cancel()
            else:
                async with _lend(client, nursery, block):
                    yield client
    if failure is not None:
        raise failure
