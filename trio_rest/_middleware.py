"""Middleware: ``async def middleware(request, call_next)``, around every request of an App.

An App's middleware (``App(middleware=[...])``) wraps each request in order, the first
outermost, like an onion: each gets the `Request` and ``call_next``, awaits
``call_next(request)`` for what the rest (and finally the view) returns, and returns that or
something else; it may raise an `APIError` to answer instead, or catch one. Requests that
fail before a view runs (404, 405, a body that does not validate, a refused permission) go
through the middleware too: ``call_next`` raises their `APIError`. A SUBSCRIBE's
``call_next`` returns when the subscription ends.

`log_requests` is built in: one line per request, at INFO, with its method, path (no query
string), status, duration and user; never a body or a token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ._errors import APIError
from .auth._credentials import user_label

if TYPE_CHECKING:
    from ._request import Request

__all__ = ["CallNext", "Middleware", "log_requests", "run_middleware"]

log = logging.getLogger("trio_rest.requests")

CallNext = Callable[["Request"], Awaitable[Any]]
Middleware = Callable[["Request", CallNext], Awaitable[Any]]


async def run_middleware(middleware: Sequence[Middleware], request: Request, view: CallNext) -> Any:
    """Run `view` inside `middleware`, the first outermost."""

    async def call(index: int, request: Request) -> Any:
        if index == len(middleware):
            return await view(request)
        return await middleware[index](request, lambda request: call(index + 1, request))

    return await call(0, request)


async def log_requests(request: Request, call_next: CallNext) -> Any:
    """Log each request in one line: method, path, status, milliseconds, request id, user (built-in)."""
    start = trio.current_time()
    status = 500
    try:
        result = await call_next(request)
        status = getattr(result, "status", 200)
        return result
    except APIError as exc:
        status = exc.status
        raise
    finally:
        elapsed = (trio.current_time() - start) * 1000
        log.info(
            "%s %s %s %s %.1f ms id %r user %s",
            request.connection.peer,
            request.method,
            request.path,
            status,
            elapsed,
            request.id,
            user_label(request.user),
        )
