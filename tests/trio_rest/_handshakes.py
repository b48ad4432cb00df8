"""A valid WebSocket upgrade request, and a reader of HTTP statuses, for the engine and handshake tests."""

from __future__ import annotations

#: The handshake of RFC 6455 section 1.2 (its key and accept value are the RFC's own).
HANDSHAKE = (
    b"GET /chat?token=abc HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


def http_status(data: bytes) -> int:
    """The status code of the HTTP response at the start of `data`."""
    assert data.startswith(b"HTTP/1.1 "), data
    return int(data.split(b" ", 2)[1])
