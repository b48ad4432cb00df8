"""trio-rest's wire protocol, sans-IO: no sockets, no event loop, no clock.

One `Connection` per WebSocket turns received messages into events and events
into messages, for the server or the client side. docs/protocol.md is the
specification.
"""

from __future__ import annotations

from ._codecs import Codec, msgpack_available, to_plain
from ._connection import NEED_DATA, Connection, NeedData
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import (
    METHODS,
    Auth,
    Cancel,
    ConnectionClosed,
    Event,
    Notification,
    Ping,
    Pong,
    Request,
    RequestId,
    Response,
    default_error_code,
    reason_phrase,
)
from ._state import ConnectionState, Role

__all__ = [
    "METHODS",
    "NEED_DATA",
    "Auth",
    "Cancel",
    "Codec",
    "Connection",
    "ConnectionClosed",
    "ConnectionState",
    "Event",
    "LocalProtocolError",
    "NeedData",
    "Notification",
    "Ping",
    "Pong",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "RequestId",
    "Response",
    "Role",
    "default_error_code",
    "msgpack_available",
    "reason_phrase",
    "to_plain",
]

__version__ = "0.1.0"
