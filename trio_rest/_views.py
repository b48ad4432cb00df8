"""Views: `MethodBasedView` classes and `@endpoint` functions, compiled into handlers.

A view is resolved to one `Handler` per (view, method) when the `App` is
built, so a request costs one dictionary lookup, never a `getattr` chain or
an `inspect` call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import trio

from ._errors import ConfigurationError

__all__ = ["Handler", "MethodBasedView", "compile_handler", "endpoint"]

_F = TypeVar("_F", bound=Callable[..., Any])

HandlerFn = Callable[..., Awaitable[Any]]


class MethodBasedView:
    """A view that dispatches on the request method, as aiorest-ws and DRF do.

    Define ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``,
    ``options`` or ``subscribe``; each receives the `Request` and the path
    parameters as keyword arguments. Handlers may be ``async def`` or plain
    ``def`` (run in a worker thread, so they may block). A fresh instance
    serves each request.

    Example:
        class UserView(MethodBasedView):
            async def get(self, request, id):
                return {"id": id}
    """


@attrs.frozen
class EndpointSpec:
    """What `endpoint` records on a function view."""

    body: type | None = None


def endpoint(fn: _F | None = None, *, body: type | None = None) -> Any:
    """Mark a function as a view; optionally structure the body into a type.

    Args:
        fn: an ``async def`` (or plain ``def``) taking the `Request` and the
            path parameters as keyword arguments.
        body: an attrs class (or any type the app's cattrs converter knows):
            the request's data is structured into it, extra keys forbidden,
            and passed as the ``body`` keyword argument; a mismatch is a 400
            with every failing field.

    Returns:
        The function, marked (or a decorator, when called with options).
    """

    def mark(func: _F) -> _F:
        func.__trio_rest_endpoint__ = EndpointSpec(body=body)  # type: ignore[attr-defined]
        return func

    return mark(fn) if fn is not None else mark


@attrs.frozen
class Handler:
    """A view compiled for one method: call ``fn(request, **params)``.

    Attributes:
        fn: an async callable.
        body: the type to structure the body into, if any.
        name: for logs, ``"UserView.get"``.
    """

    fn: HandlerFn
    body: type | None
    name: str


def _as_async(fn: Callable[..., Any]) -> HandlerFn:
    if inspect.iscoroutinefunction(fn):
        return fn

    async def in_thread(*args: Any, **kwargs: Any) -> Any:
        # A plain function may block (a database call, a file): it runs in a
        # worker thread. Cancellation waits for it to return, so nothing it
        # holds (a session, a connection) is ever abandoned half-used.
        return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return in_thread


def compile_handler(view: object, method: str) -> Handler:
    """Build the handler of `view` for `method`.

    Args:
        view: a `MethodBasedView` subclass or a function.
        method: the upper-case method.

    Returns:
        The handler.

    Raises:
        ConfigurationError: a view class without the method's handler, or
            something that is not a view.
    """
    if isinstance(view, type) and issubclass(view, MethodBasedView):
        func = getattr(view, method.lower(), None)
        if func is None:
            raise ConfigurationError(
                f"{view.__name__} is registered for {method} but has no {method.lower()}()"
            )
        call = _as_async(func)

        async def bound(request: Any, **params: Any) -> Any:
            return await call(view(), request, **params)

        return Handler(bound, None, f"{view.__name__}.{method.lower()}")
    if callable(view) and not isinstance(view, type):
        spec = getattr(view, "__trio_rest_endpoint__", EndpointSpec())
        name = getattr(view, "__qualname__", repr(view))
        return Handler(_as_async(view), spec.body, name)
    raise ConfigurationError(f"{view!r} is not a view: use a MethodBasedView subclass or a function")
