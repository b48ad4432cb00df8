"""trio-rest: a REST framework whose transport is the WebSocket, on Trio.

Build an `App` from a `SimpleRouter` of views and `serve` it; see the README.
"""

from __future__ import annotations

import importlib
import typing

from ._app import App
from ._asyncapi import asyncapi_document
from ._broker import Broker, InMemoryBroker, Published
from ._connection import ServerConnection
from ._converter import configure_converter, make_converter
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BrokerUnavailableError,
    ConfigurationError,
    ConflictError,
    MethodNotAllowedError,
    NoReverseMatchError,
    NotFound,
    NotFoundError,
    PermissionDenied,
    PermissionDeniedError,
    ServiceUnavailableError,
    ThrottledError,
    TrioRestError,
    ValidationError,
)
from ._middleware import log_requests
from ._request import Request, Response
from ._routing import RouteMatch, SimpleRouter
from ._server import Server, serve
from ._settings import Settings
from ._stats import ConnectionStats, PushStats
from ._subscription import Subscription
from ._timers import Timer
from ._views import MethodBasedView, endpoint

if typing.TYPE_CHECKING:
    from ._generics import ModelViewSet
    from ._pagination import CursorPagination, LimitOffsetPagination

__all__ = [
    "APIError",
    "App",
    "AuthenticationError",
    "BadRequestError",
    "BrokerUnavailableError",
    "Broker",
    "ConfigurationError",
    "ConflictError",
    "ConnectionStats",
    "CursorPagination",
    "InMemoryBroker",
    "LimitOffsetPagination",
    "MethodBasedView",
    "MethodNotAllowedError",
    "ModelViewSet",
    "NoReverseMatchError",
    "NotFound",
    "NotFoundError",
    "PermissionDenied",
    "PermissionDeniedError",
    "Published",
    "PushStats",
    "Request",
    "Response",
    "RouteMatch",
    "Server",
    "ServerConnection",
    "ServiceUnavailableError",
    "Settings",
    "SimpleRouter",
    "Subscription",
    "ThrottledError",
    "Timer",
    "TrioRestError",
    "ValidationError",
    "asyncapi_document",
    "configure_converter",
    "endpoint",
    "log_requests",
    "make_converter",
    "serve",
]

__version__ = "0.1.0"

# The generic views and pagination need SQLAlchemy, which an app without a
# database should not pay for: it more than doubled the time of `import
# trio_rest` (about 0.3 s against 0.14 s). They are imported on first use
# (PEP 562); `dir()` still lists them.
_LAZY = {
    "CursorPagination": "._pagination",
    "LimitOffsetPagination": "._pagination",
    "ModelViewSet": "._generics",
}


if not typing.TYPE_CHECKING:
    # Hidden from type checkers, which read the imports above instead: a
    # module __getattr__ would make them accept any name as an attribute.

    def __getattr__(name: str) -> typing.Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups no longer reach __getattr__
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
