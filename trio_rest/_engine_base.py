"""The plumbing both WebSocket engines share: handshake phases, output batching, data frames.

``BaseEngine`` implements the ``_engine.Engine`` interface around a few library hooks, so
that each engine module only adapts its library's parser and control frames. Data frames
are written here, bypassing the libraries: an unmasked server frame is only a header.

A fragmented message is reassembled into one ``bytearray`` (text is validated as its
fragments arrive, and decoded once at the end), so a flood of tiny continuation frames
costs about one byte of memory per payload byte, bounded by the message size limit.

With permessage-deflate agreed, a data frame of at least ``DeflateOptions.min_size`` bytes
is compressed by the library's extension (``_compress``) and sent with RSV1 set (RFC 7692
section 6); shorter ones go out as they are. Without it, the path is the plain one.

Inflating is bounded twice while compression is in use. Deflate expands at most about
1032 to 1, so input reaches the library in slices that cannot inflate past a quarter of the
message size limit: a message that would pass the limit (a deflate bomb) fails with 1009
before it grows further, even in wsproto, which inflates each piece it is given whole. And
one read may carry many small compressed messages, each within the limit but together far
beyond it: once the messages of one call pass the limit, the rest of the input is held
(``input_pending``) until the server has handled them and calls ``receive_pending``.
"""

from __future__ import annotations

import enum
import struct
import sys
from collections.abc import Sequence

from ._deflate import DeflateOptions, DeflateParameters
from ._engine import Closed, Event, Handshake, Message
from ._http import HTTPRequest, check_header, json_detail, render_response

__all__ = ["OP_BINARY", "OP_TEXT", "BaseEngine", "close_reason"]

# Close codes an endpoint may put on the wire (RFC 6455 section 7.4.1 and the IANA
# registry); 1004-1006 and 1015 are reserved for local use.
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})
_MAX_REASON_BYTES = 123  # a control frame carries 125 bytes, 2 of them the code

OP_TEXT = 0x1
OP_BINARY = 0x2

# Server frames are never masked (RFC 6455 section 5.1), so a data frame is a 2, 4 or 10
# byte header followed by the payload as is. The 2-byte headers of short frames (the common
# case: small JSON envelopes) are precomputed.
_SHORT_HEADERS = {op: tuple(bytes((0x80 | op, n)) for n in range(126)) for op in (OP_TEXT, OP_BINARY)}
_HEADER_16 = struct.Struct("!BBH").pack
_HEADER_64 = struct.Struct("!BBQ").pack
_RSV1 = 0x40  # RFC 7692 section 6: the "Per-Message Compressed" bit, on a message's first frame
_NEVER = sys.maxsize  # the compression threshold when nothing is compressed
# Deflate's largest expansion: RFC 1951's longest match (258 bytes) costs at best a
# quarter of a byte, so a slice of compressed input inflates to at most this many times
# its size.
_DEFLATE_RATIO = 1032


def _frame_header(first: int, length: int) -> bytes:
    """An unmasked frame's header: its first byte, then the payload length as RFC 6455 encodes it."""
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _HEADER_16(first, 126, length)
    return _HEADER_64(first, 127, length)


def close_reason(code: int, reason: str) -> str:
    """Check that ``code`` may be sent and cut ``reason`` to fit in a close frame.

    Args:
        code: The close code.
        reason: The reason text.

    Returns:
        ``reason``, truncated on a character boundary to 123 UTF-8 bytes.

    Raises:
        ValueError: When ``code`` may not be sent.
    """
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise ValueError(f"close code {code} may not be sent")
    encoded = reason.encode()
    if len(encoded) > _MAX_REASON_BYTES:
        reason = encoded[:_MAX_REASON_BYTES].decode("utf-8", "ignore")
    return reason


class _Phase(enum.Enum):
    NEW = "new"  # waiting for receive_handshake()
    ACCEPTING = "accepting"  # Handshake delivered, waiting for accept() or reject()
    OPEN = "open"  # frames flow (including while closing)
    DONE = "done"  # nothing more to read: close TCP once data_to_send() is written


class BaseEngine:
    """The handshake plumbing, output batching and data-frame writer both engines share.

    Subclasses plug in the library: ``_start_handshake`` validates the upgrade,
    ``_accept`` queues the 101, ``_receive_frames`` parses frames into events, ``_ping``
    and ``_close`` queue control frames. A close frame the engine sends on its own (the
    echo of the peer's close, or a failure's code) goes to ``_tail``, not ``_out``: see
    ``data_to_send``. A fragmented message is reassembled in ``_fragments``, one
    ``bytearray`` (never a list of pieces: a 1-byte fragment kept as its own object costs
    about 50 bytes), dropped as soon as the connection ends.

    Args:
        max_message_size: The largest incoming message in bytes (inflated, when compressed).
        deflate: What the server allows of permessage-deflate, or None.

    Raises:
        ValueError: When the size is not positive.
    """

    def __init__(self, *, max_message_size: int, deflate: DeflateOptions | None = None) -> None:
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        self._max_message_size = max_message_size
        self._deflate_options = deflate
        self._deflate: DeflateParameters | None = None  # what the handshake agreed
        # Outgoing messages at least this long are compressed: _NEVER until the extension
        # is in use, so the plain path pays one comparison.
        self._compress_from = _NEVER
        # While compression is in use: how much input is parsed at once (a quarter of the
        # limit once inflated, within sane bounds), and the input held back (see above).
        self._inflate_slice = 0
        self._held = bytearray()
        self._phase = _Phase.NEW
        self._buffer = bytearray()  # bytes received before accept()
        self._handshake: Handshake | None = None
        self._fragments: bytearray | None = None  # the fragmented message being reassembled
        self._pending: list[Event] = []  # events parsed during accept(), for the next call
        self._out: list[bytes] = []
        self._tail: list[bytes] = []  # the engine's own close frame: always written last
        self._can_send = False  # true while data frames may be queued

    @property
    def closed(self) -> bool:
        """True once the connection is over and the TCP socket should be closed."""
        return self._phase is _Phase.DONE

    @property
    def deflate(self) -> DeflateParameters | None:
        """The permessage-deflate parameters agreed; see ``Engine.deflate``."""
        return self._deflate

    def receive_handshake(self, request: HTTPRequest, rest: bytes = b"") -> Handshake | Closed:
        """Validate the parsed upgrade request; see ``Engine.receive_handshake``."""
        if self._phase is not _Phase.NEW:
            raise RuntimeError("receive_handshake() was already called")
        has_body = request.header("content-length") not in (None, "0")
        if has_body or request.header("transfer-encoding") is not None:
            # RFC 6455 section 4.1: the handshake is a GET without a body; accepting one
            # would make us read its bytes as frames.
            return self._fail_handshake(400, "a WebSocket handshake has no body")
        event = self._start_handshake(request)
        if isinstance(event, Handshake):
            self._handshake = event
            self._phase = _Phase.ACCEPTING
            if rest:
                closed = self._receive_early(rest)
                if closed is not None:
                    return closed
        return event

    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed bytes read from the socket; see ``Engine.receive_data``."""
        phase = self._phase
        if phase is _Phase.OPEN:
            if self._inflate_slice:
                if self._held:  # only when the caller did not take it first
                    data, self._held = self._held + data, bytearray()
                events = self._receive_bounded(data)
            else:
                events = self._receive_frames(data)
        elif phase is _Phase.DONE:
            events = []
        elif phase is _Phase.ACCEPTING:
            closed = self._receive_early(data)
            events = [] if closed is None else [closed]
        else:
            raise RuntimeError("receive_data() needs receive_handshake() first")
        if self._pending:
            events[:0] = self._pending
            self._pending = []
        return events

    @property
    def has_data_to_send(self) -> bool:
        """Whether anything is queued; see ``Engine.has_data_to_send``."""
        return bool(self._out or self._tail)

    @property
    def input_pending(self) -> bool:
        """Whether input was held back; see ``Engine.input_pending``."""
        return bool(self._held)

    def receive_pending(self) -> list[Event]:
        """Parse input held back by the last call; see ``Engine.receive_pending``."""
        if not self._held or self._phase is not _Phase.OPEN:
            self._held = bytearray()
            return []
        data, self._held = self._held, bytearray()
        return self._receive_bounded(data)

    def _receive_bounded(self, data: bytes | bytearray) -> list[Event]:
        """Parse ``data`` slice by slice, holding the rest back once the messages pass the limit."""
        if not data:
            return self._receive_frames(data)  # EOF
        step, limit = self._inflate_slice, self._max_message_size
        view = memoryview(data)
        events: list[Event] = []
        produced = 0
        for start in range(0, len(data), step):
            new = self._receive_frames(view[start : start + step])
            events += new
            if self._phase is _Phase.DONE:
                break
            produced += sum(len(event.data) for event in new if type(event) is Message)
            if produced >= limit and start + step < len(data):
                self._held = bytearray(view[start + step :])
                break
        return events

    def take_pending(self) -> list[Event]:
        """Return the events of frames that arrived before ``accept()``; see ``Engine.take_pending``."""
        events, self._pending = self._pending, []
        return events

    def data_to_send(self) -> bytes:
        """Return everything queued since the last call; see ``Engine.data_to_send``."""
        out = self._out
        if self._tail:
            # When a batch ends the WebSocket (the peer's close, or a violation after some
            # valid messages), the events before Closed are still handled and their
            # replies queued: they go out before our close frame, after which nothing
            # more may be sent (RFC 6455 section 5.5.1).
            out += self._tail
            self._tail = []
            self._can_send = False
        if not out:
            return b""
        self._out = []
        # join() returns a lone bytes item as is, and turns a lone bytearray into bytes.
        return b"".join(out)

    def accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        """Queue the 101 answer to the pending handshake; see ``Engine.accept``."""
        if self._phase is _Phase.DONE:
            return
        if self._phase is not _Phase.ACCEPTING or self._handshake is None:
            raise RuntimeError("accept() needs a pending Handshake")
        if subprotocol is not None and subprotocol not in self._handshake.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        for name, value in extra_headers:
            check_header(name, value)
        self._accept(subprotocol, extra_headers)
        self._phase = _Phase.OPEN
        self._can_send = True
        if self._deflate is not None:
            assert self._deflate_options is not None
            self._compress_from = self._deflate_options.min_size
            slice_size = self._max_message_size // (4 * _DEFLATE_RATIO)
            self._inflate_slice = min(max(slice_size, 64), 65536)
        early, self._buffer = self._buffer, bytearray()
        if early:
            self._pending.extend(self.receive_data(early))

    def reject(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Answer the pending handshake with plain HTTP; see ``Engine.reject``."""
        if self._phase is _Phase.DONE:
            return
        if self._phase is not _Phase.ACCEPTING:
            raise RuntimeError("reject() needs a pending Handshake")
        self._out.append(render_response(status, body, content_type))
        self._phase = _Phase.DONE

    def send_message(self, data: str | bytes) -> None:
        """Queue a text (``str``) or binary (``bytes``) message; see ``Engine.send_message``."""
        if isinstance(data, str):
            self._send_data(OP_TEXT, data.encode())
        else:
            self._send_data(OP_BINARY, data)

    def send_text_bytes(self, data: bytes) -> None:
        """Queue a text frame from UTF-8 bytes; see ``Engine.send_text_bytes``."""
        self._send_data(OP_TEXT, data)

    def send_ping(self, payload: bytes) -> None:
        """Queue a ping; see ``Engine.send_ping``."""
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        self._check_started()
        if self._can_send:
            self._ping(payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; see ``Engine.close``."""
        reason = close_reason(code, reason)
        if self._phase is _Phase.OPEN:
            if self._can_send:
                self._can_send = False
                self._close(code, reason)
        else:
            # No WebSocket yet (or already over): nothing to say on the wire.
            self._phase = _Phase.DONE

    def _send_data(self, opcode: int, data: bytes) -> None:
        # The libraries' own senders are bypassed for data frames: an unmasked server
        # frame is only a header, and this saves the libraries' per-frame object churn
        # (and lets wsproto send a text frame from bytes). Control frames still go
        # through the libraries so their close state machines stay in charge.
        if not self._can_send:
            self._check_started()
            return
        length = len(data)
        out = self._out
        if length >= self._compress_from:
            # The library's extension compresses (and keeps or resets its context as
            # agreed); the header is ours, with RSV1 marking the compression.
            data = self._compress(opcode, data)
            out.append(_frame_header(0x80 | _RSV1 | opcode, len(data)))
        elif length < 126:
            out.append(_SHORT_HEADERS[opcode][length])
        else:
            out.append(_frame_header(0x80 | opcode, length))
        out.append(data)

    def _check_started(self) -> None:
        if self._phase is _Phase.NEW or self._phase is _Phase.ACCEPTING:
            raise RuntimeError("the WebSocket handshake has not been accepted yet")

    def _receive_early(self, data: bytes | bytearray) -> Closed | None:
        """Keep bytes that arrive between the Handshake and accept(), for accept() to parse."""
        if not data:
            return self._finish(1006, "connection closed during the handshake")
        self._buffer += data
        # Early frames are kept until accept(), but only up to one message's worth: a
        # client may not send before our answer at all (RFC 6455 section 4.1).
        if len(self._buffer) > self._max_message_size:
            self._buffer = bytearray()
            return self._fail_handshake(400, "too much data before the handshake response")
        return None

    def _fail_handshake(
        self, status: int, detail: str, extra_headers: Sequence[tuple[str, str]] = ()
    ) -> Closed:
        body = json_detail(f"invalid WebSocket handshake: {detail}")
        self._out.append(render_response(status, body, extra_headers=extra_headers))
        return self._finish(1002, detail, clean=False)

    def _finish(self, code: int, reason: str, *, clean: bool = True) -> Closed:
        # Sending stays allowed until data_to_send() flushes the tail (see there); the
        # engines turn it off themselves on EOF, where no one is left to read.
        self._phase = _Phase.DONE
        self._fragments = None  # a partial message is never delivered: free it now
        return Closed(int(code), reason, clean)  # int(): the libraries use IntEnum codes

    # Library hooks.

    def _start_handshake(self, request: HTTPRequest) -> Handshake | Closed:
        raise NotImplementedError

    def _accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]]) -> None:
        raise NotImplementedError

    def _receive_frames(self, data: bytes | bytearray | memoryview) -> list[Event]:
        raise NotImplementedError

    def _ping(self, payload: bytes) -> None:
        raise NotImplementedError

    def _compress(self, opcode: int, data: bytes) -> bytes:
        """Compress one whole message with the agreed extension; only called once agreed."""
        raise NotImplementedError

    def _close(self, code: int, reason: str) -> None:
        raise NotImplementedError
