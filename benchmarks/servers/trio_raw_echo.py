"""A bare Trio echo: the least a WebSocket server on Trio can do per message.

One task per connection, `trio.SocketStream` reads of up to 64 KiB, the
fewest lines of framing that serve the benchmark (whole frames, no
fragments, no extensions, close answered with close) and one `send_all` for
all the replies to one read. No JSON. What trio-rest costs above this row is
the framework; what this row costs above picows is Trio and pure-Python
framing. Not a general WebSocket server: it serves the benchmark's clients.
"""

from __future__ import annotations

import functools

import trio

from .._wire import OP_CLOSE, accept_key, server_frame
from ._common import parse_address


def _accept(head: bytes) -> bytes | None:
    """The 101 response to an upgrade request head, or None without a key."""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(value.strip()) + b"\r\n\r\n"
            )
    return None


def echo_frames(data: bytes) -> tuple[bytes, bytes, bool]:
    """Answer every complete masked frame at the front of `data`.

    Returns:
        The reply bytes, the incomplete tail, and whether a close was answered.
    """
    out: list[bytes] = []
    i, n = 0, len(data)
    while i + 6 <= n:
        opcode, length, start = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if length == 126:
            length, start = int.from_bytes(data[i + 2 : i + 4], "big"), i + 4
        elif length == 127:
            length, start = int.from_bytes(data[i + 2 : i + 10], "big"), i + 10
        end = start + 4 + length
        if start + 4 > n or end > n:
            break
        mask = data[start : start + 4]
        key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        payload = (int.from_bytes(data[start + 4 : end], "big") ^ key).to_bytes(length, "big")
        out.append(server_frame(opcode, payload))
        i = end
        if opcode == OP_CLOSE:
            return b"".join(out), b"", True
    return b"".join(out), data[i:], False


async def handle(stream: trio.SocketStream) -> None:
    """Upgrade, then echo until the client closes."""
    async with stream:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        response = _accept(head)
        if response is None:
            return
        await stream.send_all(response)
        while True:
            replies, buffer, closed = echo_frames(buffer)
            if replies:
                await stream.send_all(replies)
            if closed:
                return
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    trio.run(functools.partial(trio.serve_tcp, handle, port, host=host))


if __name__ == "__main__":
    main()
