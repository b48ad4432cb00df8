"""The events: what a `Connection` reads from the peer and what it sends.

Events are frozen, keyword-only attrs classes validated on construction, so an
invalid event cannot exist. Payloads (`data`, `args`, `errors`) are checked by
the codec when the event is sent, not walked here: walking every body twice
would double the cost of the hot path (docs/protocol.md, "Payloads").
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import attrs

__all__ = [
    "METHODS",
    "REQUEST_KEYS",
    "Auth",
    "Cancel",
    "ConnectionClosed",
    "Event",
    "Notification",
    "Ping",
    "Pong",
    "Request",
    "RequestId",
    "Response",
    "default_error_code",
    "reason_phrase",
]

#: The request methods of docs/protocol.md §2, upper case.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "SUBSCRIBE"})

#: The keys of a request envelope; any other top-level key lands in `extras`.
REQUEST_KEYS = frozenset({"type", "method", "url", "args", "data", "event_name", "id", "timeout"})

RequestId = str | int
_T = TypeVar("_T")

# Integers travel as 64-bit values: JSON peers in other languages and
# MessagePack cannot carry more (docs/protocol.md, "Numbers").
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

_DEFAULT_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    499: "cancelled",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
    504: "timeout",
}


def default_error_code(status: int) -> str:
    """Return the error code used when an error reply names none.

    Args:
        status: an HTTP-style status code.

    Returns:
        A snake_case code such as ``"not_found"``; ``"error"`` for statuses
        without a specific one.
    """
    return _DEFAULT_CODES.get(status, "error")


def reason_phrase(status: int) -> str:
    """Return the HTTP reason phrase for a status, used as the default `detail`.

    Args:
        status: an HTTP-style status code.

    Returns:
        The phrase, e.g. ``"Not Found"``. 499 is nginx's ``"Client Closed
        Request"``, which docs/protocol.md uses for a cancelled request; any
        other code unknown to `http.HTTPStatus` gives ``"Client Error"``
        (4xx), ``"Server Error"`` (5xx) or ``"Unknown Status"``.
    """
    if status == 499:
        return "Client Closed Request"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        if 400 <= status <= 499:
            return "Client Error"
        if 500 <= status <= 599:
            return "Server Error"
        return "Unknown Status"


_new = object.__new__


def trusted(cls: type[_T], fields: dict[str, Any]) -> _T:
    """Build a non-slotted event from fields that were already validated.

    Only for `Request` and `Response`, from code that has just checked every
    field (the readers, the reply helpers): it skips `__attrs_post_init__`.
    """
    event = _new(cls)
    event.__dict__.update(fields)
    return event


def is_valid_id(value: object) -> bool:
    """Tell whether `value` may be a request id: a str, or a 64-bit int (never a bool)."""
    cls = type(value)
    if cls is str:
        return True
    return cls is int and INT_MIN <= value <= INT_MAX  # type: ignore[operator]


def _check_optional_id(value: object) -> None:
    if value is not None and not is_valid_id(value):
        raise TypeError(f"id must be a str, a 64-bit int or None, not {value!r}")


def _check_optional_str(name: str, value: object) -> None:
    if value is not None and type(value) is not str:
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")


# Request and Response are built once per request each: without __slots__ a
# frozen attrs instance is filled through its __dict__, which halves the cost
# of building it (docs/performance.md). The other events keep slots.
@attrs.frozen(kw_only=True, slots=False)
class Request:
    """A client's request: the envelope of docs/protocol.md §2.

    Attributes:
        method: upper-case method, one of `METHODS`.
        url: absolute path, optionally with a query string.
        args: query-like parameters as sent (see `merged_args` for the query
            string merged in).
        data: the body, any JSON value.
        event_name: echoed on every reply.
        id: echoed on every reply; required for SUBSCRIBE.
        timeout: seconds the handler may run before the reply is 504.
        extras: unknown top-level keys, kept (aiorest-ws sent `token` there).

    Raises:
        ValueError, TypeError: on construction, for any invalid field.
    """

    method: str
    url: str
    args: dict[str, Any] = attrs.field(factory=dict)
    data: Any = None
    event_name: str | None = None
    id: RequestId | None = None
    timeout: float | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, not {self.method!r}")
        if type(self.url) is not str or not self.url.startswith("/"):
            raise ValueError(f"url must be a str starting with '/', not {self.url!r}")
        if type(self.args) is not dict:
            raise TypeError("args must be a dict")
        _check_optional_str("event_name", self.event_name)
        _check_optional_id(self.id)
        if self.method == "SUBSCRIBE" and self.id is None:
            raise ValueError("a SUBSCRIBE request needs an id")
        if self.timeout is not None and (
            type(self.timeout) not in (int, float) or not math.isfinite(self.timeout) or self.timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive finite number, not {self.timeout!r}")
        if type(self.extras) is not dict:
            raise TypeError("extras must be a dict")
        if not REQUEST_KEYS.isdisjoint(self.extras):
            raise ValueError(f"extras may not use the envelope's own keys {sorted(REQUEST_KEYS)}")

    @property
    def path(self) -> str:
        """The url without its query string."""
        return self.url.partition("?")[0]

    def merged_args(self) -> dict[str, Any]:
        """Return `args` with the url's query string merged in (`args` wins).

        Returns:
            A new dict; a repeated query key keeps its last value.
        """
        query = self.url.partition("?")[2]
        if not query:
            return self.args
        merged: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        merged.update(self.args)
        return merged

    def response(self, *, status: int = 200, data: Any = None) -> Response:
        """Build the success reply to this request, echoing its id and event name.

        Args:
            status: a status below 400.
            data: the reply body.

        Returns:
            The `Response` to send.

        Raises:
            ValueError: if `status` is an error status (use `error`).
        """
        if type(status) is not int or not 100 <= status < 400:
            raise ValueError(f"response() builds success replies; use error() for status {status!r}")
        # This request's id and event name were validated when it was built.
        return trusted(
            Response,
            {
                "id": self.id,
                "event_name": self.event_name,
                "status": status,
                "data": data,
                "code": None,
                "detail": None,
                "errors": None,
            },
        )

    def error(
        self,
        status: int,
        *,
        code: str | None = None,
        detail: str | None = None,
        errors: Any = None,
    ) -> Response:
        """Build an error reply to this request, echoing its id and event name.

        Args:
            status: a status of 400 or more.
            code: machine-readable code; defaults by status (`default_error_code`).
            detail: human-readable message; defaults to the reason phrase.
            errors: optional details, e.g. ``{"name": ["This field is required."]}``.

        Returns:
            The `Response` to send.

        Raises:
            ValueError: if `status` is below 400.
        """
        return error_response(self.id, self.event_name, status, code=code, detail=detail, errors=errors)


def error_response(
    id: RequestId | None,
    event_name: str | None,
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: Any = None,
) -> Response:
    """Build an error `Response` with the defaults of `Request.error`."""
    if status < 400:
        raise ValueError(f"error() builds error replies; status {status} is not one")
    return Response(
        id=id,
        event_name=event_name,
        status=status,
        code=code if code is not None else default_error_code(status),
        detail=detail if detail is not None else reason_phrase(status),
        errors=errors,
    )


@attrs.frozen(kw_only=True, slots=False)
class Response:
    """The server's one reply to a request (or to an `Auth`).

    Success replies (status below 400) carry `data`; error replies carry
    `code` and `detail` (aiorest-ws clients look for `detail`) and optionally
    `errors`.

    Raises:
        ValueError, TypeError: on construction, for any invalid field.
    """

    id: RequestId | None = None
    event_name: str | None = None
    status: int = 200
    data: Any = None
    code: str | None = None
    detail: str | None = None
    errors: Any = None

    def __attrs_post_init__(self) -> None:
        if type(self.status) is not int or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an int from 100 to 599, not {self.status!r}")
        _check_optional_id(self.id)
        _check_optional_str("event_name", self.event_name)
        _check_optional_str("code", self.code)
        _check_optional_str("detail", self.detail)
        if self.status >= 400 and (self.code is None or self.detail is None):
            raise ValueError("an error response needs a code and a detail")

    @property
    def is_error(self) -> bool:
        """True for a status of 400 or more."""
        return self.status >= 400


@attrs.frozen(kw_only=True)
class Notification:
    """A message the server pushes without being asked.

    With an `id` it belongs to the subscription (SUBSCRIBE request) of that
    id; without one it names its `topic` or group. `final` marks the last
    notification of a subscription that the server ends itself. One published
    to a topic with history carries its `offset` there and the history's
    `epoch`, which a client sends back to recover what it missed.

    Raises:
        ValueError, TypeError: on construction, for any invalid field.
    """

    id: RequestId | None = None
    event_name: str | None = None
    topic: str | None = None
    seq: int | None = None
    data: Any = None
    final: bool = False
    #: Its position in its topic's history, within `epoch` (docs/protocol.md: recovery).
    offset: int | None = None
    epoch: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_optional_id(self.id)
        _check_optional_str("event_name", self.event_name)
        _check_optional_str("topic", self.topic)
        _check_optional_str("epoch", self.epoch)
        if self.seq is not None and (type(self.seq) is not int or not 0 <= self.seq <= INT_MAX):
            raise ValueError(f"seq must be a non-negative 64-bit int or None, not {self.seq!r}")
        if self.offset is not None and (type(self.offset) is not int or not 0 <= self.offset <= INT_MAX):
            raise ValueError(f"offset must be a non-negative 64-bit int or None, not {self.offset!r}")
        if type(self.final) is not bool:
            raise TypeError("final must be a bool")
        if self.final and self.id is None:
            raise ValueError("only a subscription's notification (with an id) can be final")


@attrs.frozen(kw_only=True)
class Cancel:
    """The client abandons a request, or ends a subscription, by its id."""

    id: RequestId

    def __attrs_post_init__(self) -> None:
        if not is_valid_id(self.id):
            raise TypeError(f"id must be a str or a 64-bit int, not {self.id!r}")


@attrs.frozen(kw_only=True)
class Ping:
    """An application-level ping; the server answers with a `Pong` echoing the id."""

    id: RequestId | None = None

    def __attrs_post_init__(self) -> None:
        _check_optional_id(self.id)

    def pong(self) -> Pong:
        """Build the reply to this ping."""
        return Pong(id=self.id)


@attrs.frozen(kw_only=True)
class Pong:
    """The reply to a `Ping`."""

    id: RequestId | None = None

    def __attrs_post_init__(self) -> None:
        _check_optional_id(self.id)


@attrs.frozen(kw_only=True)
class Auth:
    """In-band credentials (browsers cannot set an Authorization header).

    The server answers it with a `Response`: 200 accepts, 401 refuses.
    """

    token: str
    id: RequestId | None = None

    def __attrs_post_init__(self) -> None:
        if type(self.token) is not str or not self.token:
            raise ValueError("token must be a non-empty str")
        _check_optional_id(self.id)

    def response(self, *, status: int = 200, data: Any = None) -> Response:
        """Build the acceptance reply (a status below 400)."""
        if not 100 <= status < 400:
            raise ValueError(f"response() builds success replies; use error() for status {status}")
        return Response(id=self.id, status=status, data=data)

    def error(self, status: int = 401, *, code: str | None = None, detail: str | None = None) -> Response:
        """Build the refusal reply (401 by default)."""
        return error_response(self.id, None, status, code=code, detail=detail)


@attrs.frozen(kw_only=True)
class ConnectionClosed:
    """The transport is gone (received), or this side starts closing (sent).

    Sending it moves the connection to CLOSING: no new request is accepted,
    in-flight requests may still be answered. It puts nothing on the wire;
    the WebSocket layer sends the close frame with `code` and `reason`.
    """

    code: int = 1000
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if type(self.code) is not int or not 1000 <= self.code <= 4999:
            raise ValueError(f"code must be a WebSocket close code (1000-4999), not {self.code!r}")
        if type(self.reason) is not str:
            raise TypeError("reason must be a str")


Event = Request | Response | Notification | Cancel | Ping | Pong | Auth | ConnectionClosed
