"""`Job`: one request on its way through a connection's worker pool, and the replies it can end with."""

from __future__ import annotations

import contextvars
import enum
import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio
from trio_rest_protocol import Request as ProtocolRequest
from trio_rest_protocol import Response as ProtocolResponse

from ._converter import structure_body
from ._errors import APIError, AuthenticationError
from ._idempotency import KEY, WRITES
from ._middleware import run_middleware
from ._request import Request, Response
from .auth._credentials import request_token
from .auth._permissions import check_permissions

if TYPE_CHECKING:
    from ._views import Handler
    from .auth._backend import AuthBackend

__all__ = [
    "CancelledBy",
    "Job",
    "call_handler",
    "cancelled_reply",
    "closing_reply",
    "error_reply",
    "revoked_reply",
    "success_reply",
]

log = logging.getLogger("trio_rest")


class CancelledBy(enum.Enum):
    """Who cancelled a job, which decides its reply."""

    CLIENT = 499  # a cancel message, or the client left the request's scope
    CLOSING = 503  # the connection is closing
    REVOKED = 401  # the credentials it ran with were revoked (`App.revoke`)


@attrs.define(eq=False)
class Job:
    """One request on its way through the pool: waiting, running, or (SUBSCRIBE) streaming.

    Attributes:
        event: the protocol's request.
        request: what the view sees.
        handler: the view, compiled for the request's method.
        size: bytes of the message it came in (counted against the buffer limits).
        arrived: when the bytes it came in were read (Trio's clock): its timeout
            counts from then, time spent waiting for a worker included.
    """

    event: ProtocolRequest
    request: Request
    handler: Handler
    size: int = 0
    arrived: float = 0.0
    #: The worker's cancel scope, from the moment the job starts.
    scope: trio.CancelScope = attrs.field(init=False)
    #: When the request times out; given to `scope` only once the handler waits.
    deadline: float = math.inf
    cancelled: CancelledBy | None = None
    blocked: bool = False  # the handler has waited, and has not returned yet
    detached: bool = False  # an accepted subscription
    answered: bool = False

    @property
    def carries_token(self) -> bool:
        """Whether the request brings its own credentials (``args.token``)."""
        return request_token(self.request.args, self.request.extras) is not None

    @property
    def key(self) -> object:
        """How the pool finds the job: its id, or itself when it has none."""
        return self.event.id if self.event.id is not None else self


def closing_reply(job: Job) -> ProtocolResponse:
    """The reply to a job the closing connection could not let finish."""
    return job.event.error(503, code="closing", detail="The server is closing.")


def revoked_reply(job: Job) -> ProtocolResponse:
    """The reply to a job whose credentials were revoked while it ran."""
    return job.event.error(401, code="not_authenticated", detail="The token was revoked.")


def cancelled_reply(job: Job) -> ProtocolResponse:
    """The reply to a job cancelled before it could answer: who cancelled it decides."""
    if job.cancelled is CancelledBy.CLIENT:
        return job.event.error(499)
    if job.cancelled is CancelledBy.CLOSING:
        return closing_reply(job)
    if job.cancelled is CancelledBy.REVOKED:
        return revoked_reply(job)
    return job.event.error(504)  # the worker's own scope: the deadline


def error_reply(event: ProtocolRequest, exc: APIError) -> ProtocolResponse:
    """The reply to a request whose handler raised `exc` (a 500 when `exc` cannot make one)."""
    try:
        return event.error(exc.status, code=exc.code, detail=exc.detail, errors=exc.errors)
    except (TypeError, ValueError):  # e.g. NotFound(some_int): the protocol wants text
        log.exception("%r cannot be sent as an error reply", exc)
        return event.error(500, detail="The server failed to handle the request.")


def success_reply(event: ProtocolRequest, result: Any) -> ProtocolResponse:
    """The reply to a request whose handler returned `result` (data, or a `Response`).

    A HEAD request (answered by the GET view) gets the status without the data.
    """
    if type(result) is Response:
        data = result.data if event.method != "HEAD" else None
        return event.response(status=result.status, data=data)
    return event.response(data=result if event.method != "HEAD" else None)


#: The job whose view runs in this task (a revocation it makes does not cancel it).
current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar("trio_rest.job", default=None)


async def call_handler(job: Job) -> Any:
    """Run a job's view, inside the App's middleware when it has some.

    A write that carries an idempotency key runs once per key (`_idempotency.py`).

    Returns:
        What the view returned (or what the middleware made of it).
    """
    running = current_job.set(job)
    try:
        extras = job.event.extras
        if extras and KEY in extras and job.event.method in WRITES:
            return await job.request.app.idempotency.run(job, extras[KEY], _call_handler)
        return await _call_handler(job)
    finally:
        current_job.reset(running)


async def _call_handler(job: Job) -> Any:
    middleware = job.request.app.middleware
    if not middleware:
        return await _call_view(job)
    return await run_middleware(middleware, job.request, functools.partial(_view_of, job))


async def _view_of(job: Job, request: Request) -> Any:
    return await _call_view(job)


async def _call_view(job: Job) -> Any:
    """Run a job's view: its body structured, in a database session when the app has one."""
    handler, request = job.handler, job.request
    app = request.app
    if app.auth is not None:
        await _authenticate(request, app.auth)
    permissions = handler.permissions
    if permissions:
        request.permissions = permissions
        check_permissions(request, permissions)
    params = request.params
    if handler.body is not None:
        params = {**params, "body": structure_body(app.converter, request.data, handler.body)}
    database = app.database
    if database is None:
        if handler.blocking:  # a plain def: a worker thread
            return await request.run_sync(functools.partial(handler.fn, request, **params))
        return await handler.fn(request, **params)
    # One session and one transaction per request, committed before the
    # reply is sent (so a 201 means the row is there), rolled back otherwise.
    async with database.session() as session:
        request.session = session
        if handler.blocking:  # the view and the commit share one thread hop
            return await database.run_and_commit(session, functools.partial(handler.fn, request, **params))
        return await handler.fn(request, **params)


async def _authenticate(request: Request, auth: AuthBackend) -> None:
    """Settle `request.user`: its own token if it carries one, else the connection's, while valid.

    Raises:
        AuthenticationError: the request's own token is refused, or the connection's
            credentials were revoked (a 401, whatever the view).
    """
    token = request_token(request.args, request.extras)
    if token is None and request.connection.credentials_revoked:
        # Read before the revocation, it runs after: it is not served, as anyone.
        request.user = request.subject = None
        raise AuthenticationError("The connection's credentials were revoked.")
    if token is not None:
        if not isinstance(token, str):
            raise AuthenticationError("The token must be a string.")
        credentials = await request.app.revocations.authenticate(auth, token)
        request.user, request.subject = credentials.user, credentials.subject
        return
    expires = request.connection.auth_expires
    if request.user is not None and expires is not None and time.time() > expires + auth.leeway:
        request.user = request.subject = None  # the connection's token expired: it authorises nothing
        request.auth_error = "The connection's token has expired: send a new one in an auth message."
