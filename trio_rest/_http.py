"""The plain-HTTP side of the port: parse one request head, render one response.

The same port answers WebSocket upgrades and a few plain HTTP endpoints (``/health``,
``/asyncapi.json``, the explorer page). Every plain request is answered with one complete
response and ``Connection: close``, so there is no keep-alive, pipelining or request body
handling here: a head in, a response out. Parsing is delegated to h11, which is strict
about the grammar (request line, header names and values, a mandatory ``Host`` in
HTTP/1.1). Every head is parsed here once, WebSocket upgrades included: the engine is
handed the parsed ``HTTPRequest``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import attrs
import h11
from trio_rest_protocol import reason_phrase

__all__ = [
    "DEFAULT_MAX_HEAD_SIZE",
    "TOKEN",
    "HTTPError",
    "HTTPRequest",
    "check_header",
    "header_tokens",
    "header_value",
    "json_detail",
    "parse_request_head",
    "render_response",
    "split_request_head",
]

# 16 KiB holds any real browser or client handshake (a long JWT cookie and a dozen headers
# are a few KiB) while bounding what one idle socket can make us buffer; it sits between
# nginx's 8 KiB per header line and h11's own 16 KiB default for an incomplete event.
DEFAULT_MAX_HEAD_SIZE = 16 * 1024

# The head ends at the first empty line. h11 accepts a bare LF as well as CRLF, so the
# split uses the same rule: both parsers must agree on where the head stops.
_BLANK_LINE = re.compile(rb"\n\r?\n")

# A header name is an RFC 9110 token and a value is RFC 9110 field-value characters: nothing
# that could end the line and smuggle a second header (or a body) into the response.
TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


@attrs.frozen
class HTTPRequest:
    """One parsed HTTP request head.

    Args:
        method: The request method, upper-case as sent (``"GET"``).
        target: The request target: the path and an optional ``?query``.
        headers: ``(name, value)`` pairs in arrival order; names are lower-case, values
            are decoded as ISO-8859-1 (the HTTP convention for raw octets).
        http_version: The protocol version from the request line (``"1.1"`` or ``"1.0"``).
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    http_version: str = "1.1"

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The query string without the ``?`` (empty when there is none)."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """Return the values of header ``name`` joined with ``", "``, or None when absent.

        Args:
            name: The header name, in any case.

        Returns:
            The combined value (see ``header_value``), or None when the header was not sent.
        """
        return header_value(self.headers, name)

    @property
    def is_websocket_upgrade(self) -> bool:
        """True when this is a ``GET`` asking to switch to the WebSocket protocol.

        This is the routing decision only (RFC 6455 section 4.2.1 items 1, 3 and 4); the
        engine validates the rest of the handshake (key, version) and answers 400 itself.
        """
        if self.method != "GET":
            return False
        connection = header_tokens(self.header("connection"))
        upgrade = header_tokens(self.header("upgrade"))
        return "upgrade" in connection and "websocket" in upgrade


def header_value(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """Look a header up in ``(name, value)`` pairs whose names are lower-case.

    Args:
        headers: The pairs, as ``HTTPRequest.headers`` holds them.
        name: The header name, in any case.

    Returns:
        The values of every field called ``name`` joined with ``", "`` (RFC 9110 section
        5.3 allows joining repeated fields with commas), or None when there is none.
    """
    name = name.lower()
    values = [value for key, value in headers if key == name]
    return ", ".join(values) if values else None


def header_tokens(value: str | None) -> set[str]:
    """Split a comma-separated header value into lower-case tokens.

    Args:
        value: The header value (as ``header_value`` returns it), or None.

    Returns:
        The tokens, stripped and lower-cased; empty when ``value`` is None.
    """
    if value is None:
        return set()
    return {token.strip().lower() for token in value.split(",")}


class HTTPError(Exception):
    """A request head that cannot be served, carrying the complete response to send.

    Args:
        status: The HTTP status (400 for a malformed head, 431 for one that is too big).
        detail: A short human-readable explanation, also put in the JSON body.
        headers: Response headers the status calls for (``Allow`` on a 405, ``Upgrade``
            on a 426...).

    Attributes:
        response: The rendered HTTP/1.1 response bytes (``Connection: close``).
    """

    def __init__(self, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = tuple(headers)
        self.response = render_response(status, json_detail(detail), extra_headers=self.headers)


def json_detail(detail: str) -> bytes:
    """Encode an error body the way the API's error replies look: ``{"detail": ...}``.

    Args:
        detail: The human-readable explanation.

    Returns:
        The UTF-8 JSON bytes.
    """
    return json.dumps({"detail": detail}).encode()


def split_request_head(
    data: bytes | bytearray, *, max_head_size: int = DEFAULT_MAX_HEAD_SIZE
) -> tuple[bytes, bytes] | None:
    """Split buffered bytes into the request head and whatever follows it.

    Args:
        data: Everything received so far on the connection.
        max_head_size: The largest head accepted, blank line included.

    Returns:
        ``(head, rest)`` once the blank line ending the head has arrived, else None.

    Raises:
        HTTPError: With status 431 when the head is, or can only become, larger than
            ``max_head_size``.
    """
    match = _BLANK_LINE.search(data)
    if match is None:
        if len(data) > max_head_size:
            raise HTTPError(431, "request head too large")
        return None
    end = match.end()
    if end > max_head_size:
        raise HTTPError(431, "request head too large")
    return bytes(data[:end]), bytes(data[end:])


def parse_request_head(
    data: bytes | bytearray, *, max_head_size: int = DEFAULT_MAX_HEAD_SIZE
) -> tuple[HTTPRequest, bytes] | None:
    """Parse the request head at the start of ``data``, once, for whoever needs it.

    The server calls this as bytes arrive; a WebSocket engine then gets the parsed request
    (``Engine.receive_handshake``) instead of parsing the head again.

    Args:
        data: Everything received so far on the connection.
        max_head_size: The largest head accepted (see ``DEFAULT_MAX_HEAD_SIZE``).

    Returns:
        ``(request, rest)``, where ``rest`` is whatever followed the head (a client may
        send WebSocket frames right behind its handshake), or None when the head is not
        complete yet (read more and call again with everything received).

    Raises:
        HTTPError: 431 when the head is too large, 400 when it is malformed.
    """
    split = split_request_head(data, max_head_size=max_head_size)
    if split is None:
        return None
    head, rest = split
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_size)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise HTTPError(400, f"malformed request head: {exc}") from None
    if not isinstance(event, h11.Request):  # pragma: no cover - the head is complete
        raise HTTPError(400, "malformed request head")
    # h11 lets only tokens through as the method and header names, and only ASCII
    # (printable, no spaces) as the target, so these decodes cannot fail.
    request = HTTPRequest(
        method=event.method.decode("ascii"),
        target=event.target.decode("ascii"),
        headers=tuple((name.decode("ascii"), value.decode("latin-1")) for name, value in event.headers),
        http_version=event.http_version.decode("ascii"),
    )
    return request, rest


def check_header(name: str, value: str) -> None:
    """Check that a response header cannot break the response's framing.

    Args:
        name: The header name.
        value: The header value.

    Raises:
        ValueError: When the name is not an HTTP token or the value holds a character
            outside RFC 9110's field-value (CR, LF, NUL, other controls, non-Latin-1).
    """
    if not TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"unsafe response header {name!r}: {value!r}")


def render_response(
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """Build one complete HTTP/1.1 response that ends the connection.

    Written by hand rather than through h11, whose writer needs a connection that has
    received a request first; a response with a fixed set of headers needs no state.

    Args:
        status: The HTTP status code (any integer 100-599; the reason phrase is the
            protocol's ``reason_phrase``, generic for unknown codes).
        body: The body, sent as is.
        content_type: The ``Content-Type`` header value.
        extra_headers: More ``(name, value)`` pairs, sent after the standard ones.

    Returns:
        The status line, the headers (``Content-Type``, ``Content-Length``,
        ``Connection: close`` and ``extra_headers``), a blank line and the body.

    Raises:
        ValueError: When ``status`` is out of range or a header is unsafe (see
            ``check_header``).
    """
    if not 100 <= status <= 599:
        raise ValueError(f"invalid HTTP status {status}")
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *extra_headers,
    ]
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    for name, value in headers:
        check_header(name, value)
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
