"""The default WebSocket engine, on the websockets library's sans-IO ``ServerProtocol``.

``ServerProtocol`` validates the upgrade request (``accept``), parses frames (with a C
masking routine), answers pings, enforces the size limit across fragments and runs the
close handshake. The request head reaches it already parsed by the server, as a
``websockets.http11.Request``; the protocol object starts in the OPEN state, so its own
HTTP parser never runs. It hands back frames, not messages, so this module reassembles
fragments and validates the UTF-8 of text messages (RFC 6455 section 8.1), which the
library leaves to its I/O layers.

permessage-deflate is the library's too: ``ServerPerMessageDeflateFactory`` negotiates it
inside ``ServerProtocol.accept``, and the agreed ``PerMessageDeflate`` inflates each frame
as it is parsed, never past what is left of the message size limit (a deflate bomb is a
``PayloadTooBig``, so a 1009), and compresses what ``_compress`` hands it.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Sequence
from typing import cast

from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from ._deflate import DeflateOptions, DeflateParameters
from ._engine import Closed, Event, Handshake, Message, Pong
from ._engine_base import BaseEngine
from ._http import HTTPRequest

__all__ = ["WebsocketsEngine"]

# The library logs at INFO (a handshake failure, a closing connection); under its own name,
# so that an application can quieten it without touching trio-rest's logs.
_logger = logging.getLogger("websockets.server")

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_PING, _PONG, _CLOSE = Opcode.PING, Opcode.PONG, Opcode.CLOSE
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")

# Which close code the library sent (or, for EOF, did not send) for each parser failure.
_FAILURE_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (PayloadTooBig, 1009),
    (UnicodeDecodeError, 1007),
    (ProtocolError, 1002),
    (EOFError, 1006),
)

# Response headers worth keeping when the library rejects a handshake (RFC 9110 requires
# Allow on a 405 and Upgrade on a 426).
_HINT_HEADERS = frozenset({"allow", "upgrade", "sec-websocket-version"})

# zlib's memLevel for the compressor: 5 (the library's own recommendation) costs 16 KiB of
# hash tables instead of the default 8's 128 KiB, for a slightly worse ratio on the small
# messages an API sends.
_MEM_LEVEL = 5
_DATA_OPCODES = {0x1: _TEXT, 0x2: _BINARY}


def _deflate_factory(options: DeflateOptions) -> ServerPerMessageDeflateFactory:
    """The library's negotiator, configured with what the server allows (see ``_deflate``)."""
    return ServerPerMessageDeflateFactory(
        server_no_context_takeover=not options.context_takeover,
        client_no_context_takeover=not options.context_takeover,
        server_max_window_bits=options.max_window_bits,
        client_max_window_bits=options.max_window_bits,
        compress_settings={"memLevel": _MEM_LEVEL},
    )


class _ServerProtocol(ServerProtocol):
    """``ServerProtocol`` that accepts a close frame in the middle of a fragmented message.

    The library answers such a close with 1002 ("incomplete fragmented message"), but RFC
    6455 section 5.4 lets control frames, close included, arrive between fragments
    (Autobahn case 7.1.5 expects the peer's 1000 echoed). The partial message is dropped.
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _CLOSE:
            self.current_size = None
        super().recv_frame(frame)


class WebsocketsEngine(BaseEngine):
    """An ``Engine`` on ``websockets.server.ServerProtocol``; see ``trio_rest._engine.Engine``.

    Args:
        max_message_size: The largest incoming message in bytes (a bigger one: 1009),
            inflated bytes when compressed.
        deflate: What the server allows of permessage-deflate, or None.

    Raises:
        ValueError: When the size is not positive.
    """

    def __init__(self, *, max_message_size: int, deflate: DeflateOptions | None = None) -> None:
        super().__init__(max_message_size=max_message_size, deflate=deflate)
        # OPEN from the start: the library's HTTP parser (which only runs while CONNECTING)
        # is skipped, since the request arrives parsed; accept() works in any state.
        self._proto = _ServerProtocol(
            state=_OPEN,
            max_size=max_message_size,
            logger=_logger,
            extensions=None if deflate is None else [_deflate_factory(deflate)],
        )
        self._compressor: PerMessageDeflate | None = None  # the agreed extension, once accepted
        # Never log frames or handshakes at DEBUG, whatever the logging level: they carry
        # message bodies, and the handshake's headers carry credentials and cookies.
        self._proto.debug = False
        self._response: Response | None = None  # the prepared 101, sent by accept()
        # For a fragmented text message: the incremental decoder that validates each
        # fragment as it arrives (the bytes themselves go to _fragments).
        self._decoder: codecs.IncrementalDecoder | None = None
        self._utf8_error: str | None = None

    def _start_handshake(self, request: HTTPRequest) -> Handshake | Closed:
        proto = self._proto
        ws_request = Request(
            request.target, Headers(request.headers), request.method, f"HTTP/{request.http_version}"
        )
        # The library's own checks decide (method, version, Upgrade, Connection, key...),
        # and its status (405, 426, 505, 400) is the one answered.
        response = proto.accept(ws_request)
        if response.status_code != 101:
            hints = [(k, v) for k, v in response.headers.raw_items() if k.lower() in _HINT_HEADERS]
            return self._fail_handshake(response.status_code, _describe(proto.handshake_exc), hints)
        self._response = response
        agreed = response.headers.get("Sec-WebSocket-Extensions")
        if agreed is not None:
            # What the client will read; the library wrote it, from our DeflateOptions.
            self._deflate = DeflateParameters.from_header(agreed)
        # accept() already parsed these headers successfully, so this cannot raise.
        offered = [
            subprotocol
            for value in ws_request.headers.get_all("Sec-WebSocket-Protocol")
            for subprotocol in parse_subprotocol(value)
        ]
        return Handshake(request.path, request.query, request.headers, tuple(offered))

    def _accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]]) -> None:
        response = self._response
        assert response is not None
        if subprotocol is not None:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
            self._proto.subprotocol = Subprotocol(subprotocol)
        for name, value in extra_headers:
            response.headers[name] = value
        # What ServerProtocol.send_response() would write; it cannot be called here, as it
        # expects the CONNECTING state the protocol skipped.
        self._out.append(response.serialize())
        self._response = None
        if self._deflate is not None:
            [extension] = self._proto.extensions
            assert isinstance(extension, PerMessageDeflate)
            self._compressor = extension

    def _receive_frames(self, data: bytes | bytearray | memoryview) -> list[Event]:
        proto = self._proto
        if data:
            proto.receive_data(data)  # type: ignore[arg-type]  # a memoryview works too (appended to a bytearray)
        else:
            proto.receive_eof()
            self._can_send = False
        events: list[Event] = []
        try:
            # Past the handshake the protocol produces nothing but frames.
            for frame in cast("list[Frame]", proto.events_received()):
                opcode = frame.opcode
                # The common case first: a whole message in one frame.
                if frame.fin and opcode is _TEXT:
                    events.append(Message(str(frame.data, "utf-8")))
                elif frame.fin and opcode is _BINARY:
                    events.append(Message(bytes(frame.data)))
                elif opcode is _PONG:
                    events.append(Pong(bytes(frame.data)))
                elif opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                    message = self._assemble(frame)
                    if message is not None:
                        events.append(message)
                # PING: the library queued the pong. CLOSE: handled below from its state.
        except UnicodeDecodeError as exc:
            # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection
            # with 1007. Frames after it in this batch are dropped; the library may already
            # have queued pongs for pings among them (a harmless compromise: parsing and
            # validation happen in two passes).
            self._utf8_error = f"invalid UTF-8: {exc.reason} at position {exc.start}"
            proto.fail(1007, self._utf8_error)
        if proto.state is _OPEN:
            self._out += proto.data_to_send()
            return events
        # The library queued a close frame (or is closing): it goes out last.
        self._tail += proto.data_to_send()
        # A server sends EOF (closes TCP) once the close handshake is done or failed.
        if proto.eof_sent or proto.state is _CLOSED:
            events.append(self._closed_event())
        return events

    def _assemble(self, frame: Frame) -> Message | None:
        """Add one fragment to the message being reassembled; return it when complete.

        The library already rejected out-of-order fragments (1002) and oversized messages
        (1009), so only the payloads need handling here. Every fragment's bytes go into one
        bytearray: at most ``max_message_size`` bytes, however many fragments.
        """
        opcode, data, fin = frame.opcode, frame.data, frame.fin
        fragments = self._fragments
        if opcode is not _CONT:
            fragments = self._fragments = bytearray()
            self._decoder = _Utf8Decoder() if opcode is _TEXT else None
        assert fragments is not None  # the library refuses a continuation of nothing (1002)
        decoder = self._decoder
        if decoder is not None:
            # Decoding each fragment as it arrives fails fast on invalid UTF-8; the text
            # is thrown away (the incremental decoder keeps at most 3 bytes) and decoded
            # once, whole, at the end.
            decoder.decode(data, fin)
        fragments += data
        if not fin:
            return None
        self._fragments = self._decoder = None
        return Message(fragments.decode() if decoder is not None else bytes(fragments))

    def _closed_event(self) -> Closed:
        proto = self._proto
        if self._utf8_error is not None:
            return self._finish(1007, self._utf8_error, clean=False)
        exc = proto.parser_exc
        if exc is not None:
            code = next((c for kind, c in _FAILURE_CODES if isinstance(exc, kind)), 1011)
            return self._finish(code, str(exc), clean=isinstance(exc, EOFError))
        if proto.close_rcvd is not None:
            return self._finish(proto.close_rcvd.code, proto.close_rcvd.reason)
        return self._finish(1006, "connection closed without a close frame")

    def _ping(self, payload: bytes) -> None:
        if self._proto.state is _OPEN:  # once closing, no answer would be read
            self._proto.send_ping(payload)
            self._out += self._proto.data_to_send()

    def _close(self, code: int, reason: str) -> None:
        if self._proto.state is _OPEN:
            self._proto.send_close(code, reason)
            self._out += self._proto.data_to_send()

    def _compress(self, opcode: int, data: bytes) -> bytes:
        assert self._compressor is not None
        payload = self._compressor.encode(Frame(_DATA_OPCODES[opcode], data)).data
        # The library returns a memoryview for large payloads; the batch joins bytes.
        return payload if type(payload) is bytes else bytes(payload)


def _describe(exc: BaseException | None) -> str:
    """Describe a handshake failure, following the chain of causes."""
    parts = []
    while exc is not None:
        parts.append(str(exc) or type(exc).__name__)
        exc = exc.__cause__
    return "; ".join(parts) or "invalid handshake"
