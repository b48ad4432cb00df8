"""The alternative WebSocket engine, on wsproto (the h11 family's sans-IO WebSocket).

wsproto parses frames, including the UTF-8 of text messages. Its handshake layer parses
raw bytes with h11, and its only way to take a request that is already parsed is private,
so the upgrade is checked by ``_handshake.check_upgrade_request`` and the 101 written by
``_handshake.render_switching_protocols``; the frame layer, ``wsproto.connection.Connection``,
is then built directly. wsproto also does less than websockets on its own: it delivers
every fragment (even part of a frame) as soon as bytes arrive, has no message size limit,
does not answer pings and does not send the close frame a parse error calls for. This
module does those four.

permessage-deflate is wsproto's ``PerMessageDeflate``, set up with the parameters
``_deflate.negotiate`` agreed (wsproto's own server negotiation lives in its handshake
layer, which this engine does not use, and accepts whatever window a client names). The
extension inflates each piece of payload whole, with no limit: fed a whole read at once, a
64 KiB read could inflate to 64 MiB before any size check. ``BaseEngine`` feeds it slices
that inflate to at most a quarter of the limit, and the size check that follows each one
ends a deflate bomb with 1009 before it grows further.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.events import Ping as WsPing
from wsproto.events import Pong as WsPong
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

from ._deflate import DeflateOptions, DeflateParameters, negotiate, parse_extensions
from ._engine import Closed, Event, Handshake, Message, Pong
from ._engine_base import BaseEngine
from ._handshake import check_upgrade_request, render_switching_protocols
from ._http import HTTPError, HTTPRequest

__all__ = ["WsprotoEngine"]

_OPEN = ConnectionState.OPEN
_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSED = ConnectionState.CLOSED

_NO_RSV = RsvBits(False, False, False)
_DATA_OPCODES = {0x1: Opcode.TEXT, 0x2: Opcode.BINARY}


class WsprotoEngine(BaseEngine):
    """An ``Engine`` on ``wsproto``; see ``trio_rest._engine.Engine``.

    Args:
        max_message_size: The largest incoming message in bytes (a bigger one: 1009),
            inflated bytes when compressed.
        deflate: What the server allows of permessage-deflate, or None.

    Raises:
        ValueError: When the size is not positive.
    """

    def __init__(self, *, max_message_size: int, deflate: DeflateOptions | None = None) -> None:
        super().__init__(max_message_size=max_message_size, deflate=deflate)
        self._key = ""  # the client's Sec-WebSocket-Key, for the 101
        self._conn: Connection | None = None  # wsproto's frame layer, once accepted
        self._extension: PerMessageDeflate | None = None  # once agreed and accepted
        self._framer: FrameProtocol | None = None  # what the extension's sender is given

    def _start_handshake(self, request: HTTPRequest) -> Handshake | Closed:
        try:
            handshake = check_upgrade_request(request)
        except HTTPError as exc:
            return self._fail_handshake(exc.status, exc.detail, exc.headers)
        self._key = handshake.header("sec-websocket-key") or ""
        offered = handshake.header("sec-websocket-extensions")
        if self._deflate_options is not None and offered is not None:
            try:
                offers = parse_extensions(offered)
            except ValueError as exc:
                return self._fail_handshake(400, str(exc))
            self._deflate = negotiate(offers, self._deflate_options)
        return handshake

    def _accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]]) -> None:
        agreed = self._deflate
        if agreed is None:
            self._out.append(render_switching_protocols(self._key, subprotocol, extra_headers))
            self._conn = Connection(ConnectionType.SERVER)
            return
        extension = _deflate_extension(agreed)
        headers = [*extra_headers, ("Sec-WebSocket-Extensions", agreed.header())]
        self._out.append(render_switching_protocols(self._key, subprotocol, headers))
        self._conn = Connection(ConnectionType.SERVER, extensions=[extension])
        self._extension = extension
        self._framer = FrameProtocol(client=False, extensions=[])

    def _receive_frames(self, data: bytes | bytearray | memoryview) -> list[Event]:
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
                    if type(message) is Closed:
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

    def _assemble(self, data: str | bytes | bytearray, finished: bool) -> Message | Closed | None:
        """Add a piece of the incoming message; return the message once it is complete.

        wsproto enforces no size limit, so this does: a message over ``max_message_size``
        fails the connection with 1009 (the returned ``Closed``). Returns None while the
        message is incomplete.
        """
        fragments = self._fragments
        if fragments is None and finished:
            # The common case: a whole message in one piece, delivered as is. Counting
            # the bytes of a text needs an encode, except for ASCII (len() is O(1)).
            if isinstance(data, str):
                size = len(data) if data.isascii() else len(data.encode())
            else:
                size = len(data)
            if size > self._max_message_size:
                return self._fail(1009, "message too big")
            return Message(bytes(data) if isinstance(data, bytearray) else data)
        # wsproto hands text over already validated and decoded, a str per piece; only
        # the bytes are kept, in one bytearray, and the text is decoded once at the end.
        piece = data.encode() if isinstance(data, str) else data
        if fragments is None:
            fragments = self._fragments = bytearray()
        if len(fragments) + len(piece) > self._max_message_size:
            return self._fail(1009, "message too big")
        fragments += piece
        if not finished:
            return None
        self._fragments = None
        return Message(fragments.decode() if isinstance(data, str) else bytes(fragments))

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

    def _compress(self, opcode: int, data: bytes) -> bytes:
        # The extension's own sender hook: it compresses, flushes and strips the trailer
        # (RFC 7692 section 7.2.1), and keeps or drops its context as agreed. It only
        # reads the framer's side; the frame header is written by the caller.
        assert self._extension is not None and self._framer is not None
        _, payload = self._extension.frame_outbound(self._framer, _DATA_OPCODES[opcode], _NO_RSV, data, True)
        return payload


class _PerMessageDeflate(PerMessageDeflate):
    """wsproto's ``PerMessageDeflate``, minding control frames between compressed fragments.

    wsproto's extension forgets, at the end of any control frame, that the message it
    interrupts is compressed: a ping between two fragments of a compressed message (allowed
    by RFC 6455 section 5.4) makes it read the next fragments as plain bytes. So the end of
    a control frame inside a compressed message leaves the message's state alone.
    """

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self._inbound_compressed and not self._inbound_is_compressible:  # a control frame
            return None
        return super().frame_inbound_complete(proto, fin)


def _deflate_extension(agreed: DeflateParameters) -> PerMessageDeflate:
    """wsproto's extension, enabled with the agreed parameters.

    ``accept()`` is wsproto's server-side entry: handed the agreed parameters as the offer,
    it takes them as they are and enables itself. wsproto cannot inflate with a 256-byte
    window setting (it accepts 9 to 15 bits), but a larger window inflates what a smaller
    one compressed, so a client limited to 8 bits is inflated with 9.
    """
    client_bits = agreed.client_max_window_bits
    offer = attrs.evolve(agreed, client_max_window_bits=None if client_bits is None else max(client_bits, 9))
    extension = _PerMessageDeflate()
    accepted = extension.accept(offer.header())
    assert accepted is not None and extension.enabled()
    return extension
