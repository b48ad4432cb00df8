"""The sans-IO WebSocket engine interface, its events, and the plumbing both engines share.

An engine is the RFC 6455 layer of one connection. The server parses the HTTP request head
once (``_http.parse_request_head``) and hands the parsed request to ``receive_handshake``;
from then on bytes from the socket go in through ``receive_data``, typed events come out,
and whatever must be written accumulates until ``data_to_send`` hands it over in one piece,
so the server issues a single ``send_all`` per batch (the biggest single win measured in
DESIGN.md section 5). Two engines implement it: ``"websockets"`` (the websockets library's
sans-IO ``ServerProtocol``, the default: its frame parser is about four times faster) and
``"wsproto"``. Neither does I/O, sleeps or reads a clock: timeouts (a peer that never
answers our close, dead-peer pings) are the server's job.

A fragmented message is reassembled into one ``bytearray`` (text is validated as its
fragments arrive, and decoded once at the end), so a flood of tiny continuation frames
costs about one byte of memory per payload byte, bounded by the message size limit.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import struct
from collections.abc import Sequence
from typing import Protocol, TypeAlias

import attrs

from ._http import (
    TOKEN,
    HTTPError,
    HTTPRequest,
    check_header,
    header_tokens,
    header_value,
    json_detail,
    render_response,
)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "BaseEngine",
    "Closed",
    "Engine",
    "Event",
    "Handshake",
    "Message",
    "Pong",
    "check_upgrade_request",
    "make_engine",
    "render_switching_protocols",
]

ENGINE_NAMES = ("websockets", "wsproto")

# websockets' parser (C masking, no per-fragment partial events) costs about a quarter of
# wsproto's per message, and both pass the conformance suite: see DESIGN.md section 5.
DEFAULT_ENGINE = "websockets"


@attrs.frozen
class Handshake:
    """A WebSocket upgrade request arrived; answer it with ``accept()`` or ``reject()``.

    Args:
        path: The request path, without the query string.
        query: The raw query string, without the ``?`` (empty when absent).
        headers: ``(name, value)`` pairs in arrival order, names lower-case.
        subprotocols: The subprotocols the client offered, in its order of preference.
    """

    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]

    def header(self, name: str) -> str | None:
        """Return the values of header ``name`` joined with ``", "``, or None when absent.

        Args:
            name: The header name, in any case.

        Returns:
            The combined value, or None when the client did not send the header.
        """
        return header_value(self.headers, name)


@attrs.frozen
class Message:
    """One complete WebSocket message; fragments are already reassembled.

    Args:
        data: ``str`` for a text message (already validated UTF-8), ``bytes`` for binary.
    """

    data: str | bytes


@attrs.frozen
class Pong:
    """A pong arrived (the answer to our ``send_ping``, or an unsolicited heartbeat).

    Args:
        payload: The pong's application data.
    """

    payload: bytes


@attrs.frozen
class Closed:
    """The WebSocket is over: flush ``data_to_send()``, then close the TCP connection.

    Exactly one ``Closed`` is produced per engine (unless the server ended it itself with
    ``reject()`` or ``close()`` before accepting the handshake), whatever the cause:

    - the peer's close frame (its code, or 1005 when it sent none); the reply is queued;
    - a protocol violation: the engine queued the close frame it names (1002 protocol
      error, 1007 invalid UTF-8, 1009 message too big);
    - a bad handshake: ``code`` is 1002 and an HTTP error response is queued instead;
    - the TCP stream ended without a close frame: ``code`` is 1006 and nothing is queued.

    Args:
        code: The close code, as above.
        reason: The close reason, or a description of the violation.
        clean: True when the closing handshake completed (either side started it) or the
            peer simply left; False when this side failed the connection and the peer may
            still be sending (the server then drains its input before closing TCP, lest
            the kernel answer the peer's last frames with a reset).
    """

    code: int
    reason: str
    clean: bool = True


Event: TypeAlias = Handshake | Message | Pong | Closed


class Engine(Protocol):
    """The server side of one WebSocket connection, from its parsed upgrade request on.

    Usage: hand the parsed request head to ``receive_handshake`` and answer the
    ``Handshake`` it returns with ``accept`` or ``reject`` (a ``Closed`` means the engine
    refused the upgrade and queued the HTTP error: write it and close); then feed every
    read to ``receive_data`` and handle the returned events in order; queue replies with
    the ``send_*`` methods; after each batch write ``data_to_send()`` with one
    ``send_all``; close the socket once ``closed`` is true.
    """

    def receive_handshake(self, request: HTTPRequest, rest: bytes = b"") -> Handshake | Closed:
        """Validate an upgrade request the server has already parsed (RFC 6455 section 4.2.1).

        The head is not parsed again: each engine checks the parsed request with its
        library's own rules. Never raises on bad input: a refused upgrade (a missing or
        malformed ``Sec-WebSocket-Key``, an unsupported version, a body...) returns a
        ``Closed`` with code 1002 and queues the HTTP error response (400, or 405 with
        ``Allow``, 426 with ``Upgrade`` or ``Sec-WebSocket-Version``...).

        Args:
            request: The request head, as ``_http.parse_request_head`` returns it.
            rest: The bytes that followed the head in the same reads: frames a client
                sent before our answer (forbidden by RFC 6455 section 4.1, but possible).
                They are kept, and parsed once ``accept()`` runs (see ``take_pending``).

        Returns:
            The ``Handshake`` to answer with ``accept`` or ``reject``, or ``Closed``.

        Raises:
            RuntimeError: When called twice.
        """
        ...

    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed bytes read from the socket and return the events they complete, in order.

        Never raises on bad input: a violation becomes a ``Closed`` event and the right
        close frame (or HTTP error response) is queued. Frames a client sends before our
        handshake response (forbidden by RFC 6455 section 4.1) are parsed once ``accept()``
        runs and their events come out of the next call.

        Args:
            data: The bytes read (``bytes`` or ``bytearray``, as trio's ``receive_some``
                may return); ``b""`` means the peer closed its end (EOF).

        Returns:
            The events produced, possibly empty; once ``closed`` is true, nothing new
            (only what ``accept()`` parsed, if it has not been returned yet).

        Raises:
            RuntimeError: When called before ``receive_handshake``.
        """
        ...

    @property
    def has_data_to_send(self) -> bool:
        """Whether ``data_to_send()`` would return something (a pong, a close reply...)."""
        ...

    def take_pending(self) -> list[Event]:
        """Return the events of frames the client sent before ``accept()`` answered it.

        RFC 6455 section 4.1 forbids such frames, but a client may pipeline them; the
        server handles them right after accepting, not at the next read (which might
        never come from a client that then waits for replies).

        Returns:
            The events, possibly empty; they are not returned again.
        """
        ...

    def accept(self, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        """Queue the ``101 Switching Protocols`` answer to the pending ``Handshake``.

        Does nothing when the engine is already closed (the peer left meanwhile).

        Args:
            subprotocol: One of ``Handshake.subprotocols``, or None for no subprotocol.
            extra_headers: More response headers, e.g. ``("Set-Cookie", ...)``.

        Raises:
            RuntimeError: When there is no pending handshake.
            ValueError: When ``subprotocol`` was not offered or a header is unsafe.
        """
        ...

    def reject(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Queue a complete HTTP response instead of the upgrade; the connection then ends.

        Does nothing when the engine is already closed.

        Args:
            status: The HTTP status (401, 403, 404, 503...).
            body: The response body.
            content_type: Its ``Content-Type``.

        Raises:
            RuntimeError: When there is no pending handshake.
        """
        ...

    def send_message(self, data: str | bytes) -> None:
        """Queue one message: ``str`` as a text frame, ``bytes`` as a binary frame.

        Messages sent once the close handshake has started are dropped: the peer would
        discard them anyway (RFC 6455 section 5.5.1).

        Args:
            data: The message.

        Raises:
            RuntimeError: When called before ``accept()``.
        """
        ...

    def send_text_bytes(self, data: bytes) -> None:
        """Queue a text frame whose payload is already UTF-8 (as orjson produces it).

        This skips a decode and re-encode on the hot path; the bytes are not validated.

        Args:
            data: Valid UTF-8.

        Raises:
            RuntimeError: When called before ``accept()``.
        """
        ...

    def send_ping(self, payload: bytes) -> None:
        """Queue a ping; the peer's answer arrives as a ``Pong`` event.

        Args:
            payload: At most 125 bytes (RFC 6455 section 5.5).

        Raises:
            RuntimeError: When called before ``accept()``.
            ValueError: When the payload is too long.
        """
        ...

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; ``Closed`` follows when the peer answers.

        Before the handshake is accepted there is no WebSocket to close: the engine simply
        becomes closed. Once closing has started, further calls do nothing.

        Args:
            code: A close code a peer may send (1000-1003, 1007-1014, 3000-4999).
            reason: A short reason; truncated to fit the 125-byte control frame.

        Raises:
            ValueError: When ``code`` may not be sent on the wire.
        """
        ...

    def data_to_send(self) -> bytes:
        """Return everything queued since the last call, as one bytes object.

        Returns:
            The bytes to write (``b""`` when nothing is queued).
        """
        ...

    @property
    def closed(self) -> bool:
        """True once the connection is over and the TCP socket should be closed."""
        ...


def make_engine(name: str, *, max_message_size: int) -> Engine:
    """Build a fresh engine for one incoming connection.

    Args:
        name: ``"websockets"`` or ``"wsproto"`` (see ``ENGINE_NAMES``).
        max_message_size: The largest incoming message in bytes; a bigger one ends the
            connection with close code 1009. A fragmented message being reassembled
            holds at most this many bytes.

    Returns:
        The engine, waiting for ``receive_handshake``.

    Raises:
        ValueError: For an unknown engine name or a non-positive size.
    """
    # Imported here so that only the chosen library is loaded.
    if name == "websockets":
        from ._engine_websockets import WebsocketsEngine

        return WebsocketsEngine(max_message_size=max_message_size)
    if name == "wsproto":
        from ._engine_wsproto import WsprotoEngine

        return WsprotoEngine(max_message_size=max_message_size)
    raise ValueError(f"unknown WebSocket engine {name!r}; expected one of {ENGINE_NAMES}")


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


# RFC 6455 section 1.3: the GUID appended to the client's key before hashing.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def check_upgrade_request(request: HTTPRequest) -> Handshake:
    """Check a parsed upgrade request against RFC 6455 section 4.2.1 and build its Handshake.

    This is for an engine whose library cannot validate a request that is already parsed
    (wsproto's only such path is private). The websockets engine does not use it:
    ``ServerProtocol.accept`` checks the parsed request itself. Extensions are not
    negotiated, so ``Sec-WebSocket-Extensions`` is ignored; ``Origin`` is the
    application's business.

    Args:
        request: The parsed request head.

    Returns:
        The ``Handshake`` to hand to the application.

    Raises:
        HTTPError: When the request is not a valid opening handshake, with the status and
            headers RFC 6455 section 4.2.2 and RFC 9110 call for: 405 with ``Allow`` for
            a method other than GET, 505 for HTTP/1.0, 426 with ``Upgrade`` when the
            request does not ask for the WebSocket protocol, 426 with
            ``Sec-WebSocket-Version`` for another version (section 4.4), 400 otherwise.
    """
    # Item 1: an HTTP/1.1 (or higher) GET.
    if request.method != "GET":
        raise HTTPError(405, f"method {request.method} is not GET", [("Allow", "GET")])
    if request.http_version != "1.1":
        raise HTTPError(505, f"HTTP/{request.http_version} is not HTTP/1.1")
    # Item 2: h11 already requires Host in HTTP/1.1; an empty one is no better.
    if not request.header("host"):
        raise HTTPError(400, "missing Host header")
    # Items 3 and 4: Upgrade names websocket and Connection names upgrade (both tokens
    # are case-insensitive).
    if "websocket" not in header_tokens(request.header("upgrade")):
        raise HTTPError(426, "Upgrade header does not name websocket", [("Upgrade", "websocket")])
    if "upgrade" not in header_tokens(request.header("connection")):
        raise HTTPError(426, "Connection header does not name upgrade", [("Upgrade", "websocket")])
    # Item 5: the key is the base64 encoding of 16 bytes.
    key = request.header("sec-websocket-key")
    if key is None or not _is_key(key):
        raise HTTPError(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    # Item 6: version 13; section 4.4 says which versions we speak.
    version = request.header("sec-websocket-version")
    if version is None:
        raise HTTPError(400, "missing Sec-WebSocket-Version header")
    if version != "13":
        raise HTTPError(426, f"unsupported WebSocket version {version}", [("Sec-WebSocket-Version", "13")])
    # Item 8: Sec-WebSocket-Protocol is a comma-separated list of tokens.
    offered = request.header("sec-websocket-protocol")
    # RFC 9110 section 5.6.1: empty list elements are allowed and ignored.
    subprotocols = [name for name in (part.strip() for part in (offered or "").split(",")) if name]
    if not all(TOKEN.fullmatch(name) for name in subprotocols):
        raise HTTPError(400, f"invalid Sec-WebSocket-Protocol {offered!r}")
    return Handshake(request.path, request.query, request.headers, tuple(subprotocols))


def _is_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.encode("latin-1"), validate=True)) == 16
    except binascii.Error:
        return False


def render_switching_protocols(
    key: str, subprotocol: str | None, extra_headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """Build the ``101 Switching Protocols`` answer to a valid opening handshake.

    Args:
        key: The client's ``Sec-WebSocket-Key``, as checked by ``check_upgrade_request``.
        subprotocol: The subprotocol chosen, or None.
        extra_headers: More headers, already checked with ``check_header``.

    Returns:
        The response head (RFC 6455 section 4.2.2, item 5), blank line included.
    """
    digest = hashlib.sha1(key.encode("latin-1") + _ACCEPT_GUID).digest()
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {base64.b64encode(digest).decode('ascii')}",
    ]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    lines += [f"{name}: {value}" for name, value in extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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
        max_message_size: The largest incoming message in bytes.

    Raises:
        ValueError: When the size is not positive.
    """

    def __init__(self, *, max_message_size: int) -> None:
        if max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        self._max_message_size = max_message_size
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
        early, self._buffer = self._buffer, bytearray()
        if early:
            self._pending.extend(self._receive_frames(early))

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
        if length < 126:
            out.append(_SHORT_HEADERS[opcode][length])
        elif length < 65536:
            out.append(_HEADER_16(0x80 | opcode, 126, length))
        else:
            out.append(_HEADER_64(0x80 | opcode, 127, length))
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

    def _receive_frames(self, data: bytes | bytearray) -> list[Event]:
        raise NotImplementedError

    def _ping(self, payload: bytes) -> None:
        raise NotImplementedError

    def _close(self, code: int, reason: str) -> None:
        raise NotImplementedError
