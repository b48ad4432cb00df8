"""trio-rest: a REST framework whose transport is the WebSocket, on Trio.

Build an `App` from a `SimpleRouter` of views and `serve` it; see the README.
"""

from __future__ import annotations

from ._app import App
from ._connection import ServerConnection
from ._converter import configure_converter, make_converter
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
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
from ._generics import ModelViewSet
from ._pagination import CursorPagination, LimitOffsetPagination
from ._request import Request, Response
from ._routing import RouteMatch, SimpleRouter
from ._server import Server, serve
from ._settings import Settings
from ._timers import Timer
from ._views import MethodBasedView, endpoint

__all__ = [
    "APIError",
    "App",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "CursorPagination",
    "LimitOffsetPagination",
    "MethodBasedView",
    "MethodNotAllowedError",
    "ModelViewSet",
    "NoReverseMatchError",
    "NotFound",
    "NotFoundError",
    "PermissionDenied",
    "PermissionDeniedError",
    "Request",
    "Response",
    "RouteMatch",
    "Server",
    "ServerConnection",
    "ServiceUnavailableError",
    "Settings",
    "SimpleRouter",
    "ThrottledError",
    "Timer",
    "TrioRestError",
    "ValidationError",
    "configure_converter",
    "endpoint",
    "make_converter",
    "serve",
]

__version__ = "0.1.0"
