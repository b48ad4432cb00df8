"""The protocol's exceptions.

`ProtocolError` is never raised itself. `LocalProtocolError` means our own side
misused the protocol (a bug in the code driving the `Connection`);
`RemoteProtocolError` means the peer sent something invalid, and carries the
reply that the server should send back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import Response

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Base class of the protocol's errors; never raised directly."""


class LocalProtocolError(ProtocolError):
    """Our own side broke a protocol rule.

    Raised by `Connection.send` (an event that may not be sent in the current
    state or by this role, a response for an id that is not in flight) and by
    `Connection.receive_data` (data after the transport was declared gone).
    """


class RemoteProtocolError(ProtocolError):
    """The peer sent a message that breaks the protocol.

    The message is consumed and the connection stays usable: the server sends
    `event_hint` (a complete error `Response`, with the request's id and
    event name echoed when they could be read) and goes on reading.

    Attributes:
        event_hint: the error `Response` to send back (server role), or None
            on the client role, which has nothing to reply with.
        error_status_hint: the status of that response (400, 401, 409, 413,
            429 or 503), or 400 when there is no hint.
        code: the machine-readable error code, e.g. ``"parse_error"``.
    """

    def __init__(self, detail: str, *, code: str, status: int, hint: Response | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.error_status_hint = status
        self.event_hint = hint
