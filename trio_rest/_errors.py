"""The framework's exceptions.

`TrioRestError` is the base of everything trio-rest raises on purpose. Two
families hang off it:

- `ConfigurationError`: the application was put together wrongly (a bad route
  template, a duplicate route name). It is raised while an `App` or a router is
  being built, never while a request is handled.
- `APIError`: a request failed in a way the client should hear about. The
  connection driver turns it into an error response carrying `status`,
  `code`, `detail` and, when set, `errors` (see docs/protocol.md, "Server to
  client"). Subclasses fix the status and code; details go in attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trio_rest_protocol import reason_phrase

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "MethodNotAllowedError",
    "NoReverseMatchError",
    "NotFound",
    "NotFoundError",
    "PermissionDenied",
    "PermissionDeniedError",
    "ServiceUnavailableError",
    "ThrottledError",
    "TrioRestError",
    "ValidationError",
    # The protocol's, re-exported: the default `detail` of an `APIError`.
    "reason_phrase",
]


class TrioRestError(Exception):
    """Base class of every exception trio-rest raises on purpose; never raised itself."""


class ConfigurationError(TrioRestError):
    """The application is put together wrongly.

    Raised while an `App` or a `SimpleRouter` is being built (a malformed route
    template, an unknown method, two routes claiming the same URL and method,
    a duplicate route name), never while a request is being handled.
    """


class NoReverseMatchError(TrioRestError, LookupError):
    """A URL could not be built from a route name and parameters.

    Raised by `SimpleRouter.reverse` when no route has the name, when the
    parameters given are not exactly the route's parameters, or when a value
    cannot be written in its converter's format (e.g. ``-1`` for ``int``).
    """


class APIError(TrioRestError):
    """A request failed; the client gets an error response built from this.

    Raise it (or a subclass) from a view. The connection driver answers with
    ``status``, ``code``, ``detail`` and ``errors``; pickling keeps all of
    them, so an error can cross a process boundary.

    Args:
        detail: a human-readable message; defaults to the subclass's
            ``default_detail`` or, when that is None, the reason phrase of
            the status (``"Not Found"``).
        status: overrides the class's HTTP status (400 to 599).
        code: overrides the class's machine-readable code.
        errors: structured details, any JSON-serialisable value (e.g. a
            mapping of field name to a list of messages).

    Raises:
        ValueError: if ``status`` is not a client or server error code.
    """

    status: int = 500
    code: str = "error"
    default_detail: str | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: Any = None,
    ) -> None:
        if status is not None:
            # An APIError always produces an error reply; a 2xx here would be a
            # success disguised as an exception.
            if not 400 <= status <= 599:
                raise ValueError(f"APIError status must be 400-599, not {status!r}")
            self.status = status
        if code is not None:
            self.code = code
        if detail is None:
            detail = self.default_detail or reason_phrase(self.status)
        self.detail: str = detail
        self.errors: Any = errors
        super().__init__(detail)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.detail!r}, status={self.status}, "
            f"code={self.code!r}, errors={self.errors!r})"
        )


class BadRequestError(APIError):
    """The request is malformed in a way no more specific error describes (400)."""

    status = 400
    code = "bad_request"


class ValidationError(APIError):
    """The request's data failed validation (400, code ``"invalid"``).

    ``errors`` maps each field to its list of messages, e.g.
    ``{"name": ["This field is required."]}``. As in Django REST framework,
    that mapping, or a list of messages about the object as a whole, may
    also be passed as the first argument.

    Args:
        detail: a message, the errors mapping, or a list of messages; defaults
            to ``"Invalid input."``.
        status: overrides the status.
        code: overrides the code.
        errors: the field-to-messages mapping.

    Raises:
        TypeError: if a mapping is given both as ``detail`` and as ``errors``.
    """

    status = 400
    code = "invalid"
    default_detail = "Invalid input."

    def __init__(
        self,
        detail: str | Mapping[str, Any] | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: Any = None,
    ) -> None:
        if isinstance(detail, Mapping | list | tuple):
            if errors is not None:
                raise TypeError("pass the errors as `detail` or `errors`, not both")
            errors, detail = (dict(detail) if isinstance(detail, Mapping) else list(detail)), None
        super().__init__(detail, status=status, code=code, errors=errors)


class AuthenticationError(APIError):
    """The request carries no valid credentials (401)."""

    status = 401
    code = "not_authenticated"


class PermissionDeniedError(APIError):
    """The authenticated user may not do this (403)."""

    status = 403
    code = "permission_denied"


class NotFoundError(APIError):
    """No route matches the URL, or the object it names does not exist (404)."""

    status = 404
    code = "not_found"


class MethodNotAllowedError(APIError):
    """A route matches the URL but does not accept the method (405).

    Args:
        detail: a message; by default it names the method and the allowed ones.
        allowed: the methods the URL accepts, kept in ``allowed``.
        method: the method that was refused, kept in ``method``.
        status: overrides the status.
        code: overrides the code.
        errors: defaults to ``{"allowed": [...]}``, the allowed methods.

    Raises:
        ValueError: as `APIError`.
    """

    status = 405
    code = "method_not_allowed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        allowed: Iterable[str] = (),
        method: str | None = None,
        status: int | None = None,
        code: str | None = None,
        errors: Any = None,
    ) -> None:
        self.allowed: tuple[str, ...] = tuple(allowed)
        self.method = method
        if detail is None:
            subject = f'Method "{method}"' if method else "Method"
            detail = f"{subject} not allowed."
            if self.allowed:
                detail += f" Allowed: {', '.join(self.allowed)}."
        if errors is None:
            errors = {"allowed": list(self.allowed)}
        super().__init__(detail, status=status, code=code, errors=errors)


class ConflictError(APIError):
    """The request conflicts with the current state, e.g. a duplicate in-flight id (409)."""

    status = 409
    code = "conflict"


class ThrottledError(APIError):
    """The client sent too many requests (429).

    Args:
        detail: a message; defaults to ``"Too Many Requests"``.
        retry_after: seconds after which a retry may succeed, kept in
            ``retry_after`` (None when unknown).
        status: overrides the status.
        code: overrides the code.
        errors: structured details.

    Raises:
        ValueError: as `APIError`.
    """

    status = 429
    code = "throttled"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        code: str | None = None,
        errors: Any = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(detail, status=status, code=code, errors=errors)


class ServiceUnavailableError(APIError):
    """The server cannot handle the request now, e.g. it is shutting down (503)."""

    status = 503
    code = "unavailable"


class BrokerUnavailableError(ServiceUnavailableError):
    """The message broker (Redis) cannot be reached: nothing was published (503)."""

    code = "broker_unavailable"
    default_detail = "The message broker is unavailable; try again later."


# The names DESIGN.md shows users (Django REST framework's spelling).
NotFound = NotFoundError
PermissionDenied = PermissionDeniedError
