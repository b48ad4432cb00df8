"""Views: `MethodBasedView` classes and `@endpoint` functions, compiled into handlers.

A view is resolved to one `Handler` per (view, method) when the `App` is
built, so a request costs one dictionary lookup, never a `getattr` chain or
an `inspect` call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

from ._errors import ConfigurationError
from .auth._permissions import compile_permissions

__all__ = ["Handler", "MethodBasedView", "compile_handler", "endpoint"]

_F = TypeVar("_F", bound=Callable[..., Any])


class MethodBasedView:
    """A view that dispatches on the request method, as aiorest-ws and DRF do.

    Define ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``,
    ``options`` or ``subscribe``; each receives the `Request` and the path
    parameters as keyword arguments. Handlers may be ``async def`` or plain
    ``def`` (run in a worker thread, so they may block). A fresh instance
    serves each request.

    ``permission_classes`` names who may call it (see `trio_rest.auth`): a list for
    every method, or a mapping from method to list (``"*"`` for the others); without
    it, the App's default applies.

    ``serializer_class`` may name the serializer of the objects the view reads and
    writes, as in Django REST framework. The framework does not call it for you; the
    AsyncAPI document (`trio_rest.asyncapi_document`) describes the view's data with it.

    Example:
        class UserView(MethodBasedView):
            permission_classes = [IsAuthenticated]

            async def get(self, request, id):
                return {"id": id}
    """

    permission_classes: ClassVar[Any] = None
    serializer_class: ClassVar[Any] = None


@attrs.frozen
class EndpointSpec:
    """What `endpoint` records on a function view (the route too, in aiorest-ws's form)."""

    body: type | None = None
    path: str | None = None
    methods: str | Sequence[str] = ()
    name: str | None = None
    permissions: Sequence[Any] | None = None


def endpoint(
    fn: _F | str | None = None,
    methods: str | Sequence[str] | None = None,
    name: str | None = None,
    *,
    body: type | None = None,
    permissions: Sequence[Any] | None = None,
) -> Any:
    """Mark a function as a view; optionally structure the body into a type.

    ``@endpoint`` and ``@endpoint(body=...)`` mark the function, which
    ``router.register(path, fn, methods)`` then routes. aiorest-ws's form,
    ``@endpoint("/path", ["GET", "post"], name=...)``, also records the route,
    and ``router.register_endpoint(fn)`` registers it.

    Args:
        fn: an ``async def`` (or plain ``def``) taking the `Request` and the
            path parameters as keyword arguments; or, in aiorest-ws's form,
            the route's path.
        methods: aiorest-ws's form: the route's method or methods,
            case-insensitive.
        name: aiorest-ws's form: the route's name, for `SimpleRouter.reverse`.
        body: an attrs class (or any type the app's cattrs converter knows):
            the request's data is structured into it, extra keys forbidden,
            and passed as the ``body`` keyword argument; a mismatch is a 400
            with every failing field.
        permissions: who may call it (see `trio_rest.auth`); without it, the
            App's default applies.

    Returns:
        The function, marked (or a decorator, when called with options).

    Raises:
        ConfigurationError: a path without methods, or methods without a path.
    """
    if isinstance(fn, str):
        if not methods:
            raise ConfigurationError(f"endpoint({fn!r}, methods): name the methods the route accepts")
        spec = EndpointSpec(body=body, path=fn, methods=methods, name=name, permissions=permissions)
    elif methods is not None or name is not None:
        raise ConfigurationError("endpoint(path, methods, name): the path comes first")
    else:
        spec = EndpointSpec(body=body, permissions=permissions)

    def mark(func: _F) -> _F:
        func.__trio_rest_endpoint__ = spec  # type: ignore[attr-defined]
        return func

    return mark(fn) if fn is not None and not isinstance(fn, str) else mark


@attrs.frozen
class Handler:
    """A view compiled for one method: call ``fn(request, **params)``.

    Attributes:
        fn: returns the view's coroutine, or (when `blocking`) is the plain function.
        blocking: the view is a plain ``def``: the server runs it in a worker
            thread (under the database's limiter when the app has one).
        body: the type to structure the body into, if any.
        name: for logs, ``"UserView.get"``.
    """

    fn: Callable[..., Any]
    blocking: bool
    body: type | None
    name: str
    #: The view's own permissions, compiled; None when it names none (the App's apply).
    permissions: tuple[Any, ...] | None = None


def _bind(view: type, func: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(request, **params)`` calling `func` on a fresh instance of `view`."""
    if inspect.iscoroutinefunction(func):
        # A plain function that returns the view's coroutine: one coroutine less per request.
        def call_async(request: Any, **params: Any) -> Any:
            return func(view(), request, **params)

        return call_async

    def call(request: Any, **params: Any) -> Any:
        return func(view(), request, **params)

    return call


def _refuse_generators(func: object, name: str, method: str) -> None:
    """A generator that cannot stream would be run as a function and sent as data: refuse it."""
    if inspect.isgeneratorfunction(func):
        raise ConfigurationError(
            f"{name} is a generator: a view returns its reply. To stream, make it an "
            "async generator (async def with yield) and register it for SUBSCRIBE"
        )
    if inspect.isasyncgenfunction(func) and method != "SUBSCRIBE":
        raise ConfigurationError(
            f"{name} is an async generator, which streams: register it for SUBSCRIBE, not {method}"
        )


def _streaming(gen: Callable[..., Any]) -> Callable[..., Any]:
    """The handler of an async-generator view: each item it yields is a notification.

    The subscription is accepted at the first item (an error raised before it is an
    error reply), or when the generator ends without one; the final notification follows
    its end, as for any subscription. Between items it waits while half of the client's
    `Settings.max_outbound_bytes` is queued: a slow client slows the generator down
    instead of filling the server's memory.
    """

    async def stream(request: Any, **params: Any) -> None:
        subscription = request.subscription
        items = gen(request, **params)
        try:
            async for item in items:
                await subscription.notify(item)
                await subscription.connection.wait_writable()
        finally:
            await items.aclose()
        await subscription.accept()

    return stream


def _permissions_of(declared: Any, method: str, name: str) -> tuple[Any, ...] | None:
    """A view's permissions for `method`, compiled; None when it names none."""
    if declared is None:
        return None
    if isinstance(declared, Mapping):
        declared = declared.get(method, declared.get("*"))
        if declared is None:
            return None
    return compile_permissions(declared, name)


def compile_handler(view: object, method: str) -> Handler:
    """Build the handler of `view` for `method`.

    Args:
        view: a `MethodBasedView` subclass or a function.
        method: the upper-case method.

    Returns:
        The handler.

    Raises:
        ConfigurationError: a view class without the method's handler, a plain
            generator, an async generator for another method than SUBSCRIBE, or
            something that is not a view.
    """
    if isinstance(view, type) and issubclass(view, MethodBasedView):
        func = getattr(view, method.lower(), None)
        if func is None:
            raise ConfigurationError(
                f"{view.__name__} is registered for {method} but has no {method.lower()}()"
            )
        name = f"{view.__name__}.{method.lower()}"
        _refuse_generators(func, name, method)
        permissions = _permissions_of(view.permission_classes, method, name)
        if inspect.isasyncgenfunction(func):
            return Handler(_streaming(_bind(view, func)), False, None, name, permissions)
        return Handler(_bind(view, func), not inspect.iscoroutinefunction(func), None, name, permissions)
    if callable(view) and not isinstance(view, type):
        spec = getattr(view, "__trio_rest_endpoint__", EndpointSpec())
        name = getattr(view, "__qualname__", repr(view))
        _refuse_generators(view, name, method)
        permissions = _permissions_of(spec.permissions, method, name)
        if inspect.isasyncgenfunction(view):
            return Handler(_streaming(view), False, spec.body, name, permissions)
        return Handler(view, not inspect.iscoroutinefunction(view), spec.body, name, permissions)
    raise ConfigurationError(f"{view!r} is not a view: use a MethodBasedView subclass or a function")
