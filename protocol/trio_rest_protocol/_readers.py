"""Turn a decoded envelope (a dict) into an event, or say exactly what is wrong.

Each reader checks its fields itself, collecting every failing field at once,
and then builds the event through `trusted`, which skips the constructor's
checks: they were just made, and running them twice would double the cost of
every request (docs/protocol.md §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._events import (
    INT_MAX,
    INT_MIN,
    METHODS,
    REQUEST_KEYS,
    Auth,
    Cancel,
    Notification,
    Ping,
    Pong,
    Request,
    RequestId,
    Response,
    is_valid_id,
    trusted,
)

__all__ = ["Rejection", "echo", "read_client_envelope", "read_server_envelope"]

_REQUIRED = "This field is required."


class Rejection(Exception):
    """An envelope that cannot become an event, with what the reply must say.

    Attributes:
        status, code, detail, errors: the error reply's fields.
        id, event_name: echoed when they could be read.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: str = "invalid_envelope",
        status: int = 400,
        errors: dict[str, list[str]] | None = None,
        id: RequestId | None = None,
        event_name: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status
        self.errors = errors
        self.id = id
        self.event_name = event_name


def _writable(text: str) -> bool:
    # A lone surrogate (only the lenient parser of a refused JSON text lets one
    # through) cannot be written as UTF-8: echoing it would make the error
    # reply itself unsendable.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _echo(envelope: dict[str, Any]) -> tuple[RequestId | None, str | None]:
    """The id and event name to echo in an error reply, when they are valid."""
    id_ = envelope.get("id")
    name = envelope.get("event_name")
    if not is_valid_id(id_) or (type(id_) is str and not _writable(id_)):
        id_ = None
    if type(name) is not str or not _writable(name):
        name = None
    return id_, name


def echo(value: Any) -> tuple[RequestId | None, str | None]:
    """Read the id and event name an error reply to a refused message echoes.

    docs/protocol.md §3: they are echoed whenever they could be read, which
    is when `value` (what the message decoded to, if anything) is an object
    whose top-level ``id`` is a string or a 64-bit integer, and whose
    ``event_name`` is a string.

    Args:
        value: the decoded message, or None when nothing could be decoded.

    Returns:
        ``(id, event_name)``, each None when it could not be read.
    """
    if type(value) is not dict:
        return None, None
    return _echo(value)


def _invalid(envelope: dict[str, Any], errors: dict[str, list[str]]) -> Rejection:
    id_, name = _echo(envelope)
    return Rejection("Invalid envelope.", errors=errors, id=id_, event_name=name)


def _read_id(envelope: dict[str, Any], errors: dict[str, list[str]], *, required: bool) -> Any:
    if "id" not in envelope or envelope["id"] is None:
        if required:
            errors["id"] = [_REQUIRED]
        return None
    value = envelope["id"]
    if not is_valid_id(value):
        errors["id"] = ["Must be a string or a 64-bit integer."]
    return value


def _read_request(envelope: dict[str, Any]) -> Request:
    get = envelope.get
    method = get("method")
    url = get("url")
    args = get("args")
    event_name = get("event_name")
    id_ = get("id")
    # The common, well-formed request is checked in one expression; anything
    # unusual (a timeout, a lower-case method, an error) takes the full path.
    if (
        type(url) is str
        and url[:1] == "/"
        and type(method) is str
        and method in METHODS
        and method != "SUBSCRIBE"
        and (args is None or type(args) is dict)
        and (event_name is None or type(event_name) is str)
        and (id_ is None or type(id_) is str or (type(id_) is int and INT_MIN <= id_ <= INT_MAX))
        and get("timeout") is None
    ):
        return trusted(
            Request,
            {
                "method": method,
                "url": url,
                "args": {} if args is None else args,
                "data": get("data"),
                "event_name": event_name,
                "id": id_,
                "timeout": None,
                "extras": _extras(envelope),
            },
        )
    return _read_request_fully(envelope)


def _extras(envelope: dict[str, Any]) -> dict[str, Any]:
    if REQUEST_KEYS.issuperset(envelope):
        return {}
    return {key: value for key, value in envelope.items() if key not in REQUEST_KEYS}


def _read_request_fully(envelope: dict[str, Any]) -> Request:
    errors: dict[str, list[str]] = {}
    get = envelope.get
    method = get("method")
    if method is None:
        errors["method"] = [_REQUIRED]
    elif type(method) is not str or (method := method.upper()) not in METHODS:
        errors["method"] = [f"Must be one of {', '.join(sorted(METHODS))}."]
    url = get("url")
    if url is None:
        errors["url"] = [_REQUIRED]
    elif type(url) is not str or not url.startswith("/"):
        errors["url"] = ["Must be an absolute path starting with '/'."]
    args = get("args")
    if args is None:
        args = {}
    elif type(args) is not dict:
        errors["args"] = ["Must be an object."]
    event_name = get("event_name")
    if event_name is not None and type(event_name) is not str:
        errors["event_name"] = ["Must be a string."]
    id_ = _read_id(envelope, errors, required=method == "SUBSCRIBE")
    timeout = get("timeout")
    if timeout is not None and (
        type(timeout) not in (int, float) or not math.isfinite(timeout) or timeout <= 0
    ):
        errors["timeout"] = ["Must be a positive number of seconds."]
    if errors:
        raise _invalid(envelope, errors)
    return trusted(
        Request,
        {
            "method": method,
            "url": url,
            "args": args,
            "data": get("data"),
            "event_name": event_name,
            "id": id_,
            "timeout": timeout,
            "extras": _extras(envelope),
        },
    )


def _read_cancel(envelope: dict[str, Any]) -> Cancel:
    errors: dict[str, list[str]] = {}
    id_ = _read_id(envelope, errors, required=True)
    if errors:
        raise _invalid(envelope, errors)
    return Cancel(id=id_)


def _read_ping(envelope: dict[str, Any]) -> Ping:
    errors: dict[str, list[str]] = {}
    id_ = _read_id(envelope, errors, required=False)
    if errors:
        raise _invalid(envelope, errors)
    return Ping(id=id_)


def _read_auth(envelope: dict[str, Any]) -> Auth:
    errors: dict[str, list[str]] = {}
    id_ = _read_id(envelope, errors, required=False)
    token = envelope.get("token")
    if token is None:
        errors["token"] = [_REQUIRED]
    elif type(token) is not str or not token:
        errors["token"] = ["Must be a non-empty string."]
    if errors:
        raise _invalid(envelope, errors)
    return Auth(token=str(token), id=id_)


def _read_response(envelope: dict[str, Any]) -> Response:
    try:
        return Response(
            id=envelope.get("id"),
            event_name=envelope.get("event_name"),
            status=envelope.get("status"),  # type: ignore[arg-type]
            data=envelope.get("data"),
            code=envelope.get("code"),
            detail=envelope.get("detail"),
            errors=envelope.get("errors"),
        )
    except (TypeError, ValueError) as exc:
        raise Rejection(f"Invalid response: {exc}") from None


def _read_notification(envelope: dict[str, Any]) -> Notification:
    try:
        return Notification(
            id=envelope.get("id"),
            event_name=envelope.get("event_name"),
            topic=envelope.get("topic"),
            seq=envelope.get("seq"),
            data=envelope.get("data"),
            final=envelope.get("final", False),
            offset=envelope.get("offset"),
            epoch=envelope.get("epoch"),
        )
    except (TypeError, ValueError) as exc:
        raise Rejection(f"Invalid notification: {exc}") from None


def _read_pong(envelope: dict[str, Any]) -> Pong:
    try:
        return Pong(id=envelope.get("id"))
    except (TypeError, ValueError) as exc:
        raise Rejection(f"Invalid pong: {exc}") from None


_CLIENT_READERS: dict[Any, Callable[[dict[str, Any]], Any]] = {
    "request": _read_request,
    "cancel": _read_cancel,
    "ping": _read_ping,
    "auth": _read_auth,
}
_SERVER_READERS: dict[Any, Callable[[dict[str, Any]], Any]] = {
    "response": _read_response,
    "notification": _read_notification,
    "pong": _read_pong,
}


def _dispatch(value: Any, readers: dict[Any, Callable[[dict[str, Any]], Any]], default: str | None) -> Any:
    if type(value) is not dict:
        raise Rejection("The message must be a JSON object.")
    kind = value.get("type", default)
    if kind == "request" and readers is _CLIENT_READERS:
        return _read_request(value)
    reader = readers.get(kind) if type(kind) is str else None
    if reader is None:
        id_, name = _echo(value)
        known = ", ".join(sorted(readers))
        raise Rejection(
            f"Unknown message type {kind!r}." if kind is not None else "The message has no type.",
            errors={"type": [f"Must be one of {known}."]},
            id=id_,
            event_name=name,
        )
    return reader(value)


def read_client_envelope(value: Any) -> Request | Cancel | Ping | Auth:
    """Read what a client sent (the server's side).

    Args:
        value: a decoded message.

    Returns:
        The event; `type` defaults to ``"request"`` (aiorest-ws sent none).

    Raises:
        Rejection: the value is not a valid client envelope.
    """
    if type(value) is dict and "type" not in value:
        return _read_request(value)  # the common case, without the dispatch
    return _dispatch(value, _CLIENT_READERS, "request")  # type: ignore[no-any-return]


def read_server_envelope(value: Any) -> Response | Notification | Pong:
    """Read what a server sent (the client's side).

    Args:
        value: a decoded message.

    Returns:
        The event; unknown keys are ignored so newer servers stay readable.

    Raises:
        Rejection: the value is not a valid server envelope.
    """
    return _dispatch(value, _SERVER_READERS, None)  # type: ignore[no-any-return]
