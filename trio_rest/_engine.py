"""The sans-IO WebSocket engine interface and its events.

An engine is the RFC 6455 layer of one connection. The server parses the HTTP request head
once (``_http.parse_request_head``) and hands the parsed request to ``receive_handshake``;
from then on bytes from the socket go in through ``receive_data``, typed events come out,
and whatever must be written accumulates until ``data_to_send`` hands it over in one piece,
so the server issues a single ``send_all`` per batch (the biggest single win measured in
DESIGN.md section 5). Two engines implement it: ``"websockets"`` (the websockets library's
sans-IO ``ServerProtocol``, the default: its frame parser is about four times faster) and
``"wsproto"``. Neither does I/O, sleeps or reads a clock: timeouts (a peer that never
answers our close, dead-peer pings) are the server's job.

The plumbing both engines share is ``_engine_base.BaseEngine``; the RFC 6455 handshake
checks that an engine's library cannot do itself are in ``_handshake``. permessage-deflate
(RFC 7692) is negotiated when ``make_engine`` is given ``DeflateOptions`` and the client
offers it (``_deflate``); the libraries compress and inflate, and the message size limit
counts inflated bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

import attrs

from ._deflate import DeflateOptions, DeflateParameters
from ._http import HTTPRequest, header_value

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "Closed",
    "Engine",
    "Event",
    "Handshake",
    "Message",
    "Pong",
    "make_engine",
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
    read to ``receive_data`` and handle the returned events in order (and while
    ``input_pending``, call ``receive_pending`` instead of reading); queue replies with
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

    @property
    def input_pending(self) -> bool:
        """Whether the last call held input back: call ``receive_pending`` before reading more.

        Only with permessage-deflate: one read of small compressed messages can inflate to
        many times the message size limit, so once the messages a call returns pass the
        limit, the rest of its input waits until the server has handled them.
        """
        ...

    def receive_pending(self) -> list[Event]:
        """Parse the input the last call held back (see ``input_pending``).

        Returns:
            The events, as ``receive_data`` returns them; it may hold input back again.
        """
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

    @property
    def deflate(self) -> DeflateParameters | None:
        """The permessage-deflate parameters agreed with the client, or None.

        Set by ``receive_handshake`` (the ``accept()`` that follows answers with them),
        None when the engine was given no ``DeflateOptions`` or the client offered nothing
        acceptable.
        """
        ...


def make_engine(name: str, *, max_message_size: int, deflate: DeflateOptions | None = None) -> Engine:
    """Build a fresh engine for one incoming connection.

    Args:
        name: ``"websockets"`` or ``"wsproto"`` (see ``ENGINE_NAMES``).
        max_message_size: The largest incoming message in bytes; a bigger one ends the
            connection with close code 1009. A fragmented message being reassembled
            holds at most this many bytes. A compressed message counts its inflated
            bytes, and inflating stops at the limit: a small frame that would inflate
            past it (a deflate bomb) is a 1009 too.
        deflate: What the server allows of permessage-deflate; None (the default): the
            extension is never negotiated.

    Returns:
        The engine, waiting for ``receive_handshake``.

    Raises:
        ValueError: For an unknown engine name or a non-positive size.
    """
    # Imported here so that only the chosen library is loaded.
    if name == "websockets":
        from ._engine_websockets import WebsocketsEngine

        return WebsocketsEngine(max_message_size=max_message_size, deflate=deflate)
    if name == "wsproto":
        from ._engine_wsproto import WsprotoEngine

        return WsprotoEngine(max_message_size=max_message_size, deflate=deflate)
    raise ValueError(f"unknown WebSocket engine {name!r}; expected one of {ENGINE_NAMES}")
