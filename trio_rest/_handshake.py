"""The RFC 6455 opening handshake on an already parsed request: its checks and the 101.

``check_upgrade_request`` applies RFC 6455 section 4.2.1 to the head ``_http`` parsed, and
``render_switching_protocols`` writes the answer of section 4.2.2; the wsproto engine is
built on them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from ._engine import Handshake
from ._http import TOKEN, HTTPError, HTTPRequest, header_tokens

__all__ = ["check_upgrade_request", "render_switching_protocols"]


# RFC 6455 section 1.3: the GUID appended to the client's key before hashing.
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def check_upgrade_request(request: HTTPRequest) -> Handshake:
    """Check a parsed upgrade request against RFC 6455 section 4.2.1 and build its Handshake.

    This is for an engine whose library cannot validate a request that is already parsed
    (wsproto's only such path is private). The websockets engine does not use it:
    ``ServerProtocol.accept`` checks the parsed request itself. ``Sec-WebSocket-Extensions``
    is left to the engine (``_deflate`` negotiates permessage-deflate when it is
    allowed); ``Origin`` is the application's business.

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
