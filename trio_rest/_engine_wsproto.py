"""The alternative WebSocket engine, on wsproto (the h11 family's sans-IO WebSocket).

wsproto validates the handshake (through h11) and parses frames, including the UTF-8 of
text messages. It does less than websockets on its own: it delivers every fragment (even
part of a frame) as soon as bytes arrive, has no message size limit, does not answer pings
and does not send the close frame a parse error calls for. This module does those four.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.events import Ping as WsPing
from wsproto.events import Pong as WsPong
from wsproto.utilities import RemoteProtocolError

from ._engine import BaseEngine, Closed, Event, Handshake, Message, Pong
from ._http import DEFAULT_MAX_HEAD_SIZE, HTTPRequest

__all__ = ["WsprotoEngine"]

_OPEN = ConnectionState.OPEN
_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSED = ConnectionState.CLOSED


class WsprotoEngine(BaseEngine):
    """An ``Engine`` on ``wsproto``; see ``trio_rest._engine.Engine``.

    Args:
        max_message_size: The largest incoming message in bytes (a bigger one: 1009).
        max_head_size: The largest handshake request head in bytes (a bigger one: 431).

    Raises:
        ValueError: When a size is not positive.
    """

    def __init__(self, *, max_message_size: int, max_head_size: int = DEFAULT_MAX_HEAD_SIZE) -> None:
        super().__init__(max_message_size=max_message_size, max_head_size=max_head_size)
        self._ws = WSConnection(ConnectionType.SERVER)
        self._conn: Connection | None = None  # wsproto's frame layer, once accepted
        # The message being reassembled from wsproto's partial events, and its size in
        # bytes so far (wsproto enforces no limit of its own).
        self._text_parts: list[str] = []
        self._binary_parts: list[bytes] = []
        self._size = 0

    def _start_handshake(self, head: bytes, request: HTTPRequest) -> Handshake | Closed:
        try:
            self._ws.receive_data(head)
            parsed = list(self._ws.events())
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            status = hint.status_code if isinstance(hint, RejectConnection) else 400
            headers = hint.headers if isinstance(hint, RejectConnection) else []
            extra = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in headers]
            return self._fail_handshake(status, str(exc), extra)
        except ValueError as exc:  # a Host header that is not valid IDNA
            return self._fail_handshake(400, str(exc))
        if not parsed or not isinstance(parsed[0], Request):  # pragma: no cover - defensive
            return self._fail_handshake(400, "not a WebSocket handshake")
        if not _valid_key(request.header("sec-websocket-key")):
            # RFC 6455 section 4.2.1 item 5, which wsproto does not check: the key is
            # the base64 encoding of 16 bytes.
            return self._fail_handshake(400, "Sec-WebSocket-Key is not 16 bytes in base64")
        # The Handshake's headers come from our own parse: wsproto's request drops a few
        # (Host, Sec-WebSocket-Protocol, Sec-WebSocket-Extensions) from its header list.
        return Handshake(request.path, request.query, request.headers, tuple(parsed[0].subprotocols))

    def _accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]]) -> None:
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in extra_headers]
        self._out.append(self._ws.send(AcceptConnection(subprotocol=subprotocol, extra_headers=headers)))
        self._conn = self._ws.connection

    def _receive_frames(self, data: bytes | bytearray) -> list[Event]:
        conn = self._conn
        assert conn is not None
        if not data:
            self._can_send = False
            return [self._finish(1006, "connection closed without a close frame")]
        conn.receive_data(data)  # type: ignore[arg-type]  # a bytearray works as well
        events: list[Event] = []
        for event in conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                message = self._assemble(event.data, event.message_finished)
                if message is not None:
                    events.append(message)
                elif self._size > self._max_message_size:
                    events.append(self._fail(1009, "message too big"))
                    break
            elif isinstance(event, WsPing):
                # RFC 6455 section 5.5.2: answer with the same payload. wsproto only
                # allows a pong while fully open; after our close the peer expects none.
                if conn.state is _OPEN:
                    self._out.append(conn.send(event.response()))
            elif isinstance(event, WsPong):
                events.append(Pong(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                events.append(self._on_close(conn, event))
                break
        return events

    def _assemble(self, data: str | bytes | bytearray, finished: bool) -> Message | None:
        """Add a piece of the incoming message; return the message once it is complete.

        Returns None while the message is incomplete or once it is over the size limit
        (the caller tells the two apart by comparing ``_size`` with the limit).
        """
        if isinstance(data, str):
            # Counting exact bytes needs an encode, except for ASCII (len() is O(1)).
            size = self._size + (len(data) if data.isascii() else len(data.encode()))
        else:
            size = self._size + len(data)
        self._size = size
        if size > self._max_message_size:
            return None
        if isinstance(data, str):
            if finished and not self._text_parts:
                self._size = 0
                return Message(data)
            self._text_parts.append(data)
            if not finished:
                return None
            text, self._text_parts, self._size = "".join(self._text_parts), [], 0
            return Message(text)
        binary = data if isinstance(data, bytes) else bytes(data)
        if finished and not self._binary_parts:
            self._size = 0
            return Message(binary)
        self._binary_parts.append(binary)
        if not finished:
            return None
        joined, self._binary_parts, self._size = b"".join(self._binary_parts), [], 0
        return Message(joined)

    def _on_close(self, conn: Connection, event: CloseConnection) -> Closed:
        """Handle wsproto's CloseConnection: a peer's close frame or a parse failure."""
        reason = event.reason or ""
        if conn.state is _REMOTE_CLOSING:
            # The peer started the closing handshake: echo its code (RFC 6455 5.5.1).
            self._tail.append(conn.send(event.response()))
            return self._finish(event.code, reason)
        if conn.state is _CLOSED:
            return self._finish(event.code, reason)  # the peer answered our close
        # wsproto reports a parse failure as a CloseConnection without changing state
        # and without sending anything: failing the connection is up to us.
        return self._fail(event.code, reason)

    def _fail(self, code: int, reason: str) -> Closed:
        """Fail the WebSocket connection (RFC 6455 section 7.1.7): close frame, then TCP."""
        conn = self._conn
        if conn is not None and conn.state is _OPEN:
            self._tail.append(conn.send(CloseConnection(code=code, reason=reason)))
        return self._finish(code, reason, clean=False)

    def _ping(self, payload: bytes) -> None:
        assert self._conn is not None
        if self._conn.state is _OPEN:  # wsproto refuses a ping once closing
            self._out.append(self._conn.send(WsPing(payload=payload)))

    def _close(self, code: int, reason: str) -> None:
        assert self._conn is not None
        if self._conn.state is _OPEN:
            self._out.append(self._conn.send(CloseConnection(code=code, reason=reason)))


def _valid_key(key: str | None) -> bool:
    """Tell whether a ``Sec-WebSocket-Key`` value is the base64 encoding of 16 bytes."""
    if key is None:
        return False
    try:
        return len(base64.b64decode(key.encode("latin-1"), validate=True)) == 16
    except binascii.Error:
        return False
