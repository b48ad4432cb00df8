"""The client side of the WebSocket wire, prebuilt: handshake bytes, masked frames, a frame splitter.

The load generator never frames a message while it measures: every request
it may send is built (and masked) once, up front, and a reply is found in the
byte stream with a few integer operations. Server frames are never masked and
never fragmented by the servers under test, which keeps the splitter small.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket

__all__ = [
    "CLOSE_FRAME",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "HandshakeError",
    "accept_key",
    "check_response_head",
    "masked_frame",
    "read_handshake",
    "request_frames",
    "request_payload",
    "split_frames",
    "upgrade_request",
]

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    """The server did not answer the upgrade with a valid 101."""


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """Frame `payload` as a client must: FIN set, a random mask applied.

    Args:
        opcode: the frame's opcode (`OP_TEXT`, `OP_CLOSE`, ...).
        payload: the unmasked payload.

    Returns:
        The frame's bytes.
    """
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    if not n:
        return head + mask
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


#: The client's close frame, code 1000 (normal closure).
CLOSE_FRAME = masked_frame(OP_CLOSE, (1000).to_bytes(2, "big"))


def request_payload(key: str, n: int) -> bytes:
    """The benchmark's request envelope, correlated by `key`.

    Args:
        key: ``"id"`` (trio-rest and most servers: an integer id, echoed) or
            ``"event_name"`` (aiorest-ws, which echoes only that, as a string).
        n: the correlation value.

    Returns:
        The JSON text, as bytes.
    """
    if key == "id":
        return b'{"method": "GET", "url": "/users/17", "id": %d}' % n
    if key == "event_name":
        return b'{"method": "GET", "url": "/users/17", "event_name": "%d"}' % n
    raise ValueError(f"unknown correlation key {key!r}")


def request_frames(key: str, slots: int) -> list[bytes]:
    """Masked text frames of the request envelope for correlation values ``0 .. slots-1``."""
    return [masked_frame(OP_TEXT, request_payload(key, n)) for n in range(slots)]


def upgrade_request(host: str, port: int, path: str = "/") -> tuple[bytes, bytes]:
    """An HTTP/1.1 upgrade request with a fresh key.

    Returns:
        The request bytes and the ``Sec-WebSocket-Accept`` value expected back.
    """
    key = base64.b64encode(os.urandom(16))
    request = (
        b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (path.encode(), host.encode(), port, key)
    )
    return request, accept_key(key)


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value RFC 6455 derives from a client key."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def check_response_head(head: bytes, expected_accept: bytes) -> None:
    """Validate an upgrade response head (everything before the blank line).

    Raises:
        HandshakeError: not a 101, or the accept key is wrong.
    """
    status, _, rest = head.partition(b"\r\n")
    if not status.startswith(b"HTTP/1.1 101"):
        raise HandshakeError(f"upgrade refused: {status.decode(errors='replace')}")
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-accept":
            if value.strip() != expected_accept:
                raise HandshakeError("wrong Sec-WebSocket-Accept")
            return
    raise HandshakeError("no Sec-WebSocket-Accept header")


def read_handshake(sock: socket.socket, host: str, port: int, path: str = "/") -> bytes:
    """Upgrade a connected blocking socket to a WebSocket.

    Args:
        sock: a connected socket, blocking or with a timeout.
        host: the Host header's host.
        port: the Host header's port.
        path: the request path.

    Returns:
        Bytes that arrived after the response head (the start of the frame stream).

    Raises:
        HandshakeError: the server refused, or closed before answering.
    """
    request, expected = upgrade_request(host, port, path)
    sock.sendall(request)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise HandshakeError("connection closed during the handshake")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    check_response_head(head, expected)
    return rest


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Cut complete unmasked frames off the front of `data`.

    Args:
        data: received bytes, possibly ending in a partial frame.

    Returns:
        ``(opcode, payload)`` pairs, and the bytes of the incomplete tail.
    """
    frames: list[tuple[int, bytes]] = []
    i, n = 0, len(data)
    while i + 2 <= n:
        length = data[i + 1] & 0x7F
        start = i + 2
        if length == 126:
            if i + 4 > n:
                break
            length = (data[i + 2] << 8) | data[i + 3]
            start = i + 4
        elif length == 127:
            if i + 10 > n:
                break
            length = int.from_bytes(data[i + 2 : i + 10], "big")
            start = i + 10
        end = start + length
        if end > n:
            break
        frames.append((data[i] & 0x0F, data[start:end]))
        i = end
    return frames, data[i:]
