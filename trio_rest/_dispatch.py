"""`Dispatcher`: what a connection does with each message its client sends.

A message is handed to the protocol, and each event that comes out is acted on at once:
a request is routed (404, 405 and OPTIONS are answered here, without a task), checked
against the subscription limit and the server's byte budget, and queued in the worker
pool; a cancel goes to the pool; a ping is answered; a protocol error is answered with
the reply the protocol built. It holds no state of its own.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from trio_rest_protocol import NEED_DATA, Auth, Cancel, Connection, Ping, RemoteProtocolError
from trio_rest_protocol import Request as ProtocolRequest

from ._budget import ByteBudget
from ._errors import APIError, MethodNotAllowedError
from ._jobs import Job, error_reply
from ._keepalive import Liveness
from ._renderers import FORMATS
from ._request import Request
from ._subscription import Subscription
from ._views import Handler
from ._workers import WorkerPool

if TYPE_CHECKING:
    from ._connection import ServerConnection

__all__ = ["Dispatcher"]


def _is_format(value: object) -> bool:
    return isinstance(value, str) and value in FORMATS


log = logging.getLogger("trio_rest")


class Dispatcher:
    """Turns one connection's incoming messages into replies and jobs.

    Args:
        connection: the connection (its public `send_event`, `app`, `user`, `peer`).
        proto: its protocol state.
        pool: its worker pool.
        budget: the server's byte budget.
        liveness: the connection's `Liveness`, whose ``last_seen`` is when the message
            being handled was read.
    """

    __slots__ = ("_budget", "_connection", "_liveness", "_pool", "_proto")

    def __init__(
        self,
        connection: ServerConnection,
        proto: Connection,
        pool: WorkerPool,
        budget: ByteBudget,
        liveness: Liveness,
    ) -> None:
        self._connection = connection
        self._proto = proto
        self._pool = pool
        self._budget = budget
        self._liveness = liveness

    def handle(self, message: str | bytes) -> None:
        """Handle one complete WebSocket message: answer it, or queue its request.

        Args:
            message: the message, ``str`` for a text frame, ``bytes`` for binary.
        """
        proto = self._proto
        proto.receive_data(message)
        while True:
            try:
                event = proto.next_event()
            except RemoteProtocolError as exc:
                hint = exc.event_hint
                if hint is not None:
                    self._connection.send_event(hint)
                    if hint.status == 401:  # a request before the auth message: answered, then closed
                        self._connection.close_unauthenticated()
                continue
            if event is NEED_DATA:
                return
            cls = type(event)
            if cls is ProtocolRequest:
                self._dispatch(event, len(message))  # type: ignore[arg-type]
            elif cls is Cancel:
                self._pool.cancel(event.id)  # type: ignore[union-attr]
            elif cls is Ping:
                self._connection.send_event(event.pong())  # type: ignore[union-attr, arg-type]
            elif cls is Auth:
                if self._throttled():  # checking a token costs a signature check: it is rate-limited too
                    self._connection.send_event(
                        event.error(429, code="throttled", detail="Too many auth messages: slow down.")  # type: ignore[union-attr]
                    )
                elif self._connection.app.auth is not None:
                    self._connection.authenticate_soon(event)  # type: ignore[arg-type]
                else:
                    self._connection.send_event(
                        event.error(  # type: ignore[union-attr]
                            501, code="not_implemented", detail="This server takes no in-band credentials."
                        )
                    )
            else:  # ConnectionClosed cannot come from a message
                return

    def _throttled(self) -> float:
        """Seconds the message should have waited under the rate limits (0.0: admitted).

        Its time is when it was read (the reader's timestamp): no clock call per message.
        """
        throttle = self._connection.throttle
        return throttle.check(self._liveness.last_seen) if throttle is not None else 0.0

    def _answer(self, event: ProtocolRequest, size: int, reply: Any, error: APIError | None = None) -> None:
        """Answer a request that reaches no view (routing): at once, or through the middleware.

        With middleware, the request runs as a job whose view raises `error` (or returns
        the OPTIONS reply's data), so that every request passes through it.
        """
        connection = self._connection
        app = connection.app
        if not app.middleware or not self._budget.take(size):
            connection.send_event(reply)
            return
        data = reply.data

        async def outcome(request: Request) -> Any:
            if error is not None:
                raise error
            return data

        handler = Handler(outcome, False, None, "routing", ())
        job = Job(event, self._request(event, {}), handler, size, self._liveness.last_seen)
        self._submit(job)

    def _request(self, event: ProtocolRequest, params: Any, args: Any = None) -> Request:
        connection = self._connection
        return Request(
            method=event.method,
            url=event.url,
            path=event.path,
            args=event.merged_args() if args is None else args,
            data=event.data,
            id=event.id,
            event_name=event.event_name,
            params=params,
            extras=event.extras,
            connection=connection,
            app=connection.app,
            user=connection.user,
            subject=connection.subject if connection.user is not None else None,
        )

    def _dispatch(self, event: ProtocolRequest, size: int) -> None:
        connection, pool = self._connection, self._pool
        wait = self._throttled()
        if wait:
            connection.send_event(
                event.error(
                    429,
                    code="throttled",
                    detail="Too many requests: slow down.",
                    errors={"retry_after": round(wait, 3)},
                )
            )
            return
        app = connection.app
        settings = app.settings
        method = event.method
        try:
            match = app.router.resolve(method, event.path)
        except MethodNotAllowedError as exc:
            if method == "HEAD" and "GET" in exc.allowed:  # GET's view; the reply has no data
                method = "GET"
                match = app.router.resolve(method, event.path)
            elif method == "OPTIONS":  # docs/protocol.md: OPTIONS lists what a route accepts
                self._answer(event, size, event.response(data={"allow": list(exc.allowed)}))
                return
            else:
                self._answer(event, size, error_reply(event, exc), exc)
                return
        except APIError as exc:
            self._answer(event, size, error_reply(event, exc), exc)
            return
        args = event.merged_args()
        if args and not _is_format(args.get("format", "json")):
            connection.send_event(
                event.error(400, code="bad_format", detail=f"args.format must be one of {sorted(FORMATS)}.")
            )
            return
        subscribe = event.method == "SUBSCRIBE"
        if subscribe and pool.subscribing >= settings.max_subscriptions:
            self._connection.send_event(
                event.error(429, detail=f"At most {settings.max_subscriptions} subscriptions.")
            )
            return
        if not self._budget.take(size):
            log.warning("%s: the server holds too many request bytes; refusing one with 503", connection.peer)
            self._connection.send_event(
                event.error(503, code="busy", detail="The server is busy; try again later.")
            )
            return
        request = self._request(event, match.params, args)
        job = Job(event, request, app.handler(match.view, method), size, self._liveness.last_seen)
        self._submit(job)

    def _submit(self, job: Job) -> None:
        pool, request, event = self._pool, job.request, job.event
        if event.method == "SUBSCRIBE":
            accept = functools.partial(pool.accepted, job)
            request.subscription = Subscription(self._connection, event.id, event.path, accept, request)
        pool.submit(job)
