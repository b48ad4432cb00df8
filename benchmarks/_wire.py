"""The client side of the WebSocket wire, prebuilt: handshake bytes, masked frames, a frame splitter.

The load generator never frames a message while it measures: every request
it may send is built (and masked) once, up front, and a reply is found in the
byte stream with a few integer operations. Server frames are never masked and
never fragmented by the servers under test, which keeps the splitter small.

A `Mode` says what one kind of server is asked and how its replies are matched
to requests: trio-rest's envelope correlated by ``id``, aiorest-ws's by
``event_name``, djangochannelsrestframework's ``{"action": ..., "request_id": N}``
and Socket.IO's event packets with an ack id on Engine.IO's WebSocket transport.
A mode may also have a greeting: the messages that follow the upgrade before
the connection is ready (Socket.IO's open packet and namespace connect).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket

import attrs
import orjson

__all__ = [
    "MODES",
    "CLOSE_FRAME",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "HandshakeError",
    "Mode",
    "accept_key",
    "advance_greeting",
    "check_response_head",
    "get_mode",
    "masked_frame",
    "read_handshake",
    "request_frames",
    "request_payload",
    "socketio_ack",
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


def server_frame(opcode: int, payload: bytes) -> bytes:
    """Frame `payload` as a server does: FIN set, unmasked.

    Args:
        opcode: the frame's opcode (`OP_TEXT`, `OP_CLOSE`, ...).
        payload: the payload.

    Returns:
        The frame's bytes.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 1 << 16:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


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


@attrs.frozen(kw_only=True)
class Mode:
    """What one kind of server is asked, and how its replies are matched to the requests.

    Attributes:
        name: the mode's name (`ServerSpec.key`, ``drive --key``).
        request: the request's text, with ``%(n)d`` where the correlation value goes.
        field: the reply's field holding the correlation value (an integer, or its
            decimal text when `numeric` is False); unused when `socketio` is True.
        numeric: the correlation value comes back as an integer.
        status: the reply's field holding its status; a reply whose status is not
            200, or that has a ``detail``, counts as an error.
        path: the upgrade request's path.
        socketio: requests and replies are Socket.IO packets: the request a
            ``42N[...]`` event with ack id N, the reply its ``43N[reply]`` ack, and
            the server's Engine.IO ping ``2`` is answered with ``3``.
        greeting: after the upgrade and before the first request, in order: the
            start of a message the server must send, and what the client answers
            (``b""``: nothing). The connection is ready when all have arrived.
    """

    name: str
    request: bytes
    field: str = "id"
    numeric: bool = True
    status: str = "status"
    path: str = "/"
    socketio: bool = False
    greeting: tuple[tuple[bytes, bytes], ...] = ()


_ENVELOPE = b'{"method": "GET", "url": "/users/17", "id": %(n)d}'

#: Every correlation mode, by name.
MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        # trio-rest and the hand-written dispatches: the reply echoes the integer id.
        Mode(name="id", request=_ENVELOPE),
        # aiorest-ws: no id and no status in its replies; it echoes only event_name, as text.
        Mode(
            name="event_name",
            request=b'{"method": "GET", "url": "/users/17", "event_name": "%(n)d"}',
            field="event_name",
            numeric=False,
        ),
        # djangochannelsrestframework: an action, its arguments and a request_id, echoed in
        # a reply {"errors": [...], "data": ..., "action": ..., "response_status": ..., "request_id": N}.
        Mode(
            name="dcrf",
            request=b'{"action": "retrieve", "pk": 17, "request_id": %(n)d}',
            field="request_id",
            status="response_status",
        ),
        # python-socketio on Engine.IO 4's WebSocket transport: the server opens with
        # 0{...}; the client joins the default namespace (40) and waits for 40{...}.
        Mode(
            name="socketio",
            request=b'42%(n)d["request",' + _ENVELOPE + b"]",
            path="/socket.io/?EIO=4&transport=websocket",
            socketio=True,
            greeting=((b"0{", b"40"), (b"40", b"")),
        ),
    )
}


def get_mode(key: str | Mode) -> Mode:
    """The mode named `key` (a `Mode` is returned as it is).

    Raises:
        ValueError: no mode has that name.
    """
    if isinstance(key, Mode):
        return key
    try:
        return MODES[key]
    except KeyError:
        raise ValueError(f"unknown correlation mode {key!r}; known: {', '.join(MODES)}") from None


def request_payload(key: str | Mode, n: int) -> bytes:
    """The benchmark's request for correlation value `n`, as mode `key` sends it.

    Args:
        key: the mode, or its name: ``"id"`` (trio-rest and most servers: an
            integer id, echoed), ``"event_name"`` (aiorest-ws, which echoes only
            that, as a string), ``"dcrf"`` (djangochannelsrestframework's
            ``retrieve`` action, correlated by ``request_id``) or ``"socketio"``
            (an event packet whose ack id is `n`, carrying the id envelope).
        n: the correlation value.

    Returns:
        The message's text, as bytes.
    """
    return get_mode(key).request % {b"n": n}


def request_frames(key: str | Mode, slots: int) -> list[bytes]:
    """Masked text frames of the request for correlation values ``0 .. slots-1``."""
    return [masked_frame(OP_TEXT, request_payload(key, n)) for n in range(slots)]


def socketio_ack(payload: bytes) -> tuple[int, object] | None:
    """Read a Socket.IO ack packet of the default namespace: ``43N[reply, ...]``.

    Args:
        payload: one Engine.IO packet (one WebSocket text frame's payload).

    Returns:
        The ack id and the first value returned by the handler, or None when
        the packet is not an ack (a ping ``2``, an event, a disconnect, ...).

    Raises:
        ValueError: an ack packet without an id or with malformed arguments.
    """
    if not payload.startswith(b"43"):
        return None
    bracket = payload.find(b"[", 2)
    if bracket < 0:
        raise ValueError(f"ack packet without arguments: {payload[:60]!r}")
    args = orjson.loads(payload[bracket:])
    if not isinstance(args, list) or not args:
        raise ValueError(f"ack packet with no value: {payload[:60]!r}")
    return int(payload[2:bracket]), args[0]


def advance_greeting(
    greeting: tuple[tuple[bytes, bytes], ...], done: int, data: bytes
) -> tuple[int, bytes, bytes]:
    """Consume the greeting's messages at the front of `data`.

    Args:
        greeting: the mode's greeting (`Mode.greeting`).
        done: how many of its steps have already happened.
        data: received bytes, from the start of a frame.

    Returns:
        The number of steps done now, the masked frames to send in answer, and
        the bytes not consumed (an incomplete frame, or what follows the greeting).

    Raises:
        HandshakeError: a message that is not the one expected, or a close.
    """
    answers = []
    while done < len(greeting):
        frames, _ = split_frames(data)
        if not frames:
            break
        opcode, payload = frames[0]
        data = data[_frame_length(data) :]
        if opcode == OP_CLOSE:
            raise HandshakeError(f"closed during the greeting: {payload[2:]!r}")
        if opcode not in (OP_TEXT, OP_BINARY):
            continue  # a ping: no server under test sends one this early, and it needs no answer yet
        expected, answer = greeting[done]
        if not payload.startswith(expected):
            raise HandshakeError(f"expected a message starting {expected!r}, got {payload[:60]!r}")
        if answer:
            answers.append(masked_frame(OP_TEXT, answer))
        done += 1
    return done, b"".join(answers), data


def _frame_length(data: bytes) -> int:
    """The length in bytes of the complete unmasked frame at the front of `data`."""
    length = data[1] & 0x7F
    if length == 126:
        return 4 + ((data[2] << 8) | data[3])
    if length == 127:
        return 10 + int.from_bytes(data[2:10], "big")
    return 2 + length


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


def read_handshake(
    sock: socket.socket,
    host: str,
    port: int,
    path: str = "/",
    greeting: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """Upgrade a connected blocking socket to a WebSocket, and go through the greeting.

    Args:
        sock: a connected socket, blocking or with a timeout.
        host: the Host header's host.
        port: the Host header's port.
        path: the request path.
        greeting: the mode's greeting (`Mode.greeting`), after the upgrade.

    Returns:
        Bytes that arrived after the response head and the greeting (the start
        of the frame stream).

    Raises:
        HandshakeError: the server refused, closed before answering, or greeted
            unexpectedly.
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
    done = 0
    while True:
        done, answer, rest = advance_greeting(greeting, done, rest)
        if answer:
            sock.sendall(answer)
        if done == len(greeting):
            return rest
        chunk = sock.recv(65536)
        if not chunk:
            raise HandshakeError("connection closed during the greeting")
        rest += chunk


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
