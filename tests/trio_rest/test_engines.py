"""Both WebSocket engines against real client protocol objects, without sockets.

Every engine test is parametrized over the two engines; the client side is websockets'
sans-IO ``ClientProtocol`` (and wsproto's client once, as a cross-check). Bytes that no
client library would produce are built by hand with ``masked_frame``.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto import events as wse

from trio_rest._engine import (
    DEFAULT_ENGINE,
    ENGINE_NAMES,
    Closed,
    Engine,
    Handshake,
    Message,
    Pong,
    make_engine,
)
from trio_rest._http import (
    DEFAULT_MAX_HEAD_SIZE,
    HTTPError,
    parse_request_head,
    render_response,
    split_request_head,
)

MAX_SIZE = 1000

HANDSHAKE = (
    b"GET /chat?token=abc HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


@pytest.fixture(params=ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return make_engine(request.param, max_message_size=MAX_SIZE)


def masked_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """Build one client frame by hand, valid or not."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    elif len(payload) < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if not masked:
        return head + payload
    key = b"\x12\x34\x56\x78"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def new_client(subprotocols: list[str] | None = None) -> ClientProtocol:
    return ClientProtocol(
        parse_uri("ws://example.com/chat?token=abc"),
        subprotocols=subprotocols,  # type: ignore[arg-type]
        max_size=None,
    )


def open_connection(engine: Engine, subprotocols: list[str] | None = None) -> ClientProtocol:
    """Run a complete opening handshake between a fresh client and ``engine``."""
    client = new_client(subprotocols)
    client.send_request(client.connect())
    events = engine.receive_data(b"".join(client.data_to_send()))
    assert len(events) == 1 and isinstance(events[0], Handshake)
    engine.accept(subprotocols[0] if subprotocols else None)
    client.receive_data(engine.data_to_send())
    [response] = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101
    assert client.state is State.OPEN
    return client


def send(engine: Engine, client: ClientProtocol) -> list[object]:
    """Deliver what the client queued to the engine; return the engine's events."""
    return list(engine.receive_data(b"".join(client.data_to_send())))


def replies(engine: Engine, client: ClientProtocol) -> list[Frame]:
    """Deliver what the engine queued to the client; return the frames it parsed."""
    client.receive_data(engine.data_to_send())
    return [event for event in client.events_received() if isinstance(event, Frame)]


def close_frame(frames: list[Frame]) -> Close:
    assert frames and frames[-1].opcode is Opcode.CLOSE, frames
    return Close.parse(frames[-1].data)


def http_status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data
    return int(data.split(b" ", 2)[1])


# The opening handshake.


def test_handshake_offers_subprotocols_and_accepts_one(engine: Engine) -> None:
    client = new_client(["trio-rest.json", "trio-rest.msgpack"])
    client.send_request(client.connect())
    [handshake] = engine.receive_data(b"".join(client.data_to_send()))
    assert isinstance(handshake, Handshake)
    assert (handshake.path, handshake.query) == ("/chat", "token=abc")
    assert handshake.subprotocols == ("trio-rest.json", "trio-rest.msgpack")
    assert handshake.header("HOST") == "example.com"
    assert all(name == name.lower() for name, _ in handshake.headers)

    engine.accept("trio-rest.msgpack", [("X-Server", "trio-rest")])
    client.receive_data(engine.data_to_send())
    [response] = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101
    assert response.headers["X-Server"] == "trio-rest"
    assert client.subprotocol == "trio-rest.msgpack"
    assert not engine.closed


def test_handshake_without_subprotocol(engine: Engine) -> None:
    client = open_connection(engine)
    assert client.subprotocol is None


def test_accept_refuses_a_subprotocol_not_offered(engine: Engine) -> None:
    [handshake] = engine.receive_data(HANDSHAKE)
    assert isinstance(handshake, Handshake)
    assert handshake == Handshake("/chat", "token=abc", handshake.headers, ())
    with pytest.raises(ValueError, match="not offered"):
        engine.accept("trio-rest.json")
    with pytest.raises(ValueError, match="unsafe"):
        engine.accept(None, [("X-Bad", "a\r\nInjected: 1")])


def test_handshake_arrives_in_pieces(engine: Engine) -> None:
    for byte in HANDSHAKE[:-1]:
        assert engine.receive_data(bytes([byte])) == []
    [handshake] = engine.receive_data(HANDSHAKE[-1:])
    assert isinstance(handshake, Handshake)


def test_reject_sends_a_plain_http_response(engine: Engine) -> None:
    engine.receive_data(HANDSHAKE)
    engine.reject(401, b'{"detail": "no"}')
    out = engine.data_to_send()
    assert http_status(out) == 401
    assert b"Connection: close\r\n" in out and out.endswith(b'{"detail": "no"}')
    assert engine.closed
    assert engine.receive_data(b"more") == []


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (HANDSHAKE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""), 400),
        (HANDSHAKE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Key: short"), 400),
        (HANDSHAKE.replace(b"Host: example.com\r\n", b""), 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello
        (b"HELLO\r\n\r\n", 400),
        (HANDSHAKE.replace(b"Version: 13", b"Version: 8"), None),  # 400 or 426
        (HANDSHAKE.replace(b"GET", b"POST"), None),  # 400 or 405
        (HANDSHAKE.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabc"), 400),
    ],
)
def test_bad_handshake_is_answered_with_an_http_error(
    engine: Engine, head: bytes, status: int | None
) -> None:
    [closed] = engine.receive_data(head)
    assert isinstance(closed, Closed) and closed.code == 1002
    out = engine.data_to_send()
    if status is None:
        assert 400 <= http_status(out) < 500
    else:
        assert http_status(out) == status
    assert b"invalid WebSocket handshake" in out
    assert engine.closed


def test_oversized_head_is_431(engine: Engine) -> None:
    big = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * DEFAULT_MAX_HEAD_SIZE + b"\r\n\r\n")
    [closed] = engine.receive_data(big)
    assert isinstance(closed, Closed)
    assert http_status(engine.data_to_send()) == 431


def test_endless_head_is_431_before_its_end(engine: Engine) -> None:
    engine.receive_data(b"GET / HTTP/1.1\r\nX-Endless: ")
    events: list[object] = []
    while not events:
        events = list(engine.receive_data(b"a" * 4096))
    assert isinstance(events[0], Closed)
    assert http_status(engine.data_to_send()) == 431


def test_eof_during_handshake(engine: Engine) -> None:
    engine.receive_data(HANDSHAKE[:20])
    assert engine.receive_data(b"") == [Closed(1006, "connection closed during the handshake")]
    assert engine.closed


def test_frames_sent_before_the_handshake_response_wait_for_accept(engine: Engine) -> None:
    events = engine.receive_data(HANDSHAKE + masked_frame(0x1, b"eager") + masked_frame(0x9, b"p"))
    assert [type(event) for event in events] == [Handshake]
    engine.accept(None)
    out = engine.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 ") and out.endswith(b"\x8a\x01p")  # the 101, then the pong
    assert engine.receive_data(masked_frame(0x1, b"next")) == [Message("eager"), Message("next")]


def test_send_before_accept_is_a_programming_error(engine: Engine) -> None:
    engine.receive_data(HANDSHAKE)
    with pytest.raises(RuntimeError):
        engine.send_message("too early")
    with pytest.raises(RuntimeError):
        engine.send_ping(b"")
    with pytest.raises(RuntimeError):
        make_engine("websockets", max_message_size=10).accept(None)


# Messages.


@pytest.mark.parametrize(
    "data",
    ["", "hello", "h\u00e9llo \u2603 \U0001f600", "x" * 125, "y" * 126, "z" * 999, b"", b"\x00\xff" * 50],
)
def test_round_trip(engine: Engine, data: str | bytes) -> None:
    client = open_connection(engine)
    if isinstance(data, str):
        client.send_text(data.encode())
    else:
        client.send_binary(data)
    assert send(engine, client) == [Message(data)]
    engine.send_message(data)
    [frame] = replies(engine, client)
    assert frame.opcode is (Opcode.TEXT if isinstance(data, str) else Opcode.BINARY)
    assert frame.data == (data.encode() if isinstance(data, str) else data)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_outgoing_frame_lengths(engine: Engine, size: int) -> None:
    client = open_connection(engine)
    engine.send_text_bytes(b"a" * size)
    engine.send_message(b"b" * size)
    text, binary = replies(engine, client)
    assert (text.opcode, len(text.data), text.fin) == (Opcode.TEXT, size, True)
    assert (binary.opcode, bytes(binary.data)) == (Opcode.BINARY, b"b" * size)


def test_batched_messages_and_one_write(engine: Engine) -> None:
    client = open_connection(engine)
    for i in range(50):
        client.send_text(f"message {i}".encode())
    events = engine.receive_data(bytearray(b"".join(client.data_to_send())))  # as trio may return
    assert events == [Message(f"message {i}") for i in range(50)]
    for event in events:
        assert isinstance(event, Message) and isinstance(event.data, str)
        engine.send_text_bytes(event.data.encode())
    frames = replies(engine, client)
    assert [bytes(frame.data) for frame in frames] == [f"message {i}".encode() for i in range(50)]
    assert engine.data_to_send() == b""


def test_fragmented_messages_are_reassembled(engine: Engine) -> None:
    client = open_connection(engine)
    client.send_text("\u2603 sn".encode()[:2], fin=False)  # splits the snowman's UTF-8
    client.send_ping(b"between")
    client.send_continuation("\u2603 sn".encode()[2:], fin=False)
    client.send_continuation(b"ow", fin=True)
    client.send_binary(b"\x01", fin=False)
    client.send_continuation(b"", fin=False)
    client.send_continuation(b"\x02", fin=True)
    # Byte by byte: frames split across reads must work too.
    events: list[object] = []
    for byte in b"".join(client.data_to_send()):
        events += engine.receive_data(bytes([byte]))
    assert events == [Message("\u2603 snow"), Message(b"\x01\x02")]
    [pong] = replies(engine, client)
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"between")


def test_message_at_the_limit_is_accepted(engine: Engine) -> None:
    client = open_connection(engine)
    client.send_binary(b"a" * MAX_SIZE)
    client.send_text(b"b" * (MAX_SIZE // 2), fin=False)
    client.send_continuation(b"b" * (MAX_SIZE // 2), fin=True)
    assert send(engine, client) == [Message(b"a" * MAX_SIZE), Message("b" * MAX_SIZE)]


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_over_the_limit_is_1009(engine: Engine, fragmented: bool) -> None:
    client = open_connection(engine)
    if fragmented:
        client.send_text(b"a" * (MAX_SIZE // 2), fin=False)
        client.send_continuation(b"a" * (MAX_SIZE // 2), fin=False)
        client.send_continuation(b"a", fin=True)
    else:
        client.send_binary(b"a" * (MAX_SIZE + 1))
    events = send(engine, client)
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1009
    assert close_frame(replies(engine, client)).code == 1009
    assert engine.closed


@pytest.mark.parametrize(
    "frames",
    [
        [masked_frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")],
        [masked_frame(0x1, b"ok", fin=False), masked_frame(0x0, b"\xff", fin=False)],  # fails fast
        [masked_frame(0x1, b"\xe2\x98", fin=False), masked_frame(0x0, b"", fin=True)],  # truncated
    ],
)
def test_invalid_utf8_is_1007(engine: Engine, frames: list[bytes]) -> None:
    client = open_connection(engine)
    events = engine.receive_data(b"".join(frames))
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1007
    assert close_frame(replies(engine, client)).code == 1007


@pytest.mark.parametrize(
    "frame",
    [
        masked_frame(0x1, b"unmasked", masked=False),
        masked_frame(0x1, b"rsv", rsv=0b100),
        masked_frame(0x3, b"reserved opcode"),
        masked_frame(0x0, b"continuation of nothing"),
        masked_frame(0x9, b"fragmented ping", fin=False),
        masked_frame(0x9, b"p" * 126),
        masked_frame(0x8, b"\x03"),  # a one-byte close payload
        masked_frame(0x8, struct.pack("!H", 1005)),  # a code only for local use
        masked_frame(0x8, struct.pack("!H", 1000) + b"\xff"),  # a reason that is not UTF-8
    ],
)
def test_protocol_violations_close_the_connection(engine: Engine, frame: bytes) -> None:
    client = open_connection(engine)
    [closed] = engine.receive_data(frame)
    assert isinstance(closed, Closed) and closed.code in (1002, 1007)
    assert close_frame(replies(engine, client)).code == closed.code
    assert engine.closed


def test_valid_messages_before_a_violation_are_delivered_and_answered_first(engine: Engine) -> None:
    client = open_connection(engine)
    events = engine.receive_data(masked_frame(0x1, b"first") + masked_frame(0x3, b""))
    assert events[0] == Message("first") and isinstance(events[1], Closed)
    engine.send_message("reply")
    frames = replies(engine, client)
    assert [frame.opcode for frame in frames] == [Opcode.TEXT, Opcode.CLOSE]
    engine.send_message("too late")
    assert engine.data_to_send() == b""


# Control frames and closing.


def test_ping_is_answered_by_the_engine(engine: Engine) -> None:
    client = open_connection(engine)
    assert not engine.has_data_to_send
    client.send_binary(b"data")
    send(engine, client)
    assert not engine.has_data_to_send  # a message alone queues nothing to write
    client.send_ping(b"are you there")
    assert send(engine, client) == []
    assert engine.has_data_to_send
    [pong] = replies(engine, client)
    assert not engine.has_data_to_send
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"are you there")


def test_send_ping_and_receive_pong(engine: Engine) -> None:
    client = open_connection(engine)
    engine.send_ping(b"heartbeat")
    [ping] = replies(engine, client)
    assert (ping.opcode, ping.data) == (Opcode.PING, b"heartbeat")
    assert send(engine, client) == [Pong(b"heartbeat")]  # the client answered by itself
    with pytest.raises(ValueError):
        engine.send_ping(b"x" * 126)


def test_client_initiated_close(engine: Engine) -> None:
    client = open_connection(engine)
    client.send_text(b"last words")
    client.send_close(1000, "bye")
    assert send(engine, client) == [Message("last words"), Closed(1000, "bye")]
    assert engine.closed
    engine.send_message("answer to last words")  # still allowed: it precedes our close
    frames = replies(engine, client)
    assert frames[0].data == b"answer to last words"
    assert close_frame(frames) == Close(1000, "bye")
    assert client.state is State.CLOSED or client.close_expected()


def test_close_without_status_code(engine: Engine) -> None:
    client = open_connection(engine)
    client.send_close()
    assert send(engine, client) == [Closed(1005, "")]
    frames = replies(engine, client)
    assert frames[-1].opcode is Opcode.CLOSE and frames[-1].data == b""


def test_server_initiated_close(engine: Engine) -> None:
    client = open_connection(engine)
    engine.close(1001, "going away")
    assert not engine.closed  # waiting for the peer's answer
    engine.send_message("dropped: after our close")
    frames = replies(engine, client)
    assert [frame.opcode for frame in frames] == [Opcode.CLOSE]
    assert close_frame(frames) == Close(1001, "going away")
    # A message the client sent before it saw our close still arrives.
    assert engine.receive_data(masked_frame(0x1, b"in flight")) == [Message("in flight")]
    assert send(engine, client) == [Closed(1001, "going away")]  # the client's echo
    assert engine.closed
    engine.close()  # idempotent


def test_close_validates_the_code_and_truncates_the_reason(engine: Engine) -> None:
    client = open_connection(engine)
    for code in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(ValueError):
            engine.close(code)
    engine.close(4000, "\u00e9" * 100)
    reason = close_frame(replies(engine, client)).reason
    assert reason == "\u00e9" * 61  # 122 bytes: the 62nd character would not fit


def test_eof_without_close_frame_is_1006(engine: Engine) -> None:
    open_connection(engine)
    [closed] = engine.receive_data(b"")
    assert isinstance(closed, Closed) and closed.code == 1006
    assert engine.closed and engine.receive_data(b"") == []
    engine.send_message("nobody is listening")
    assert engine.data_to_send() == b""


def test_close_before_accept_just_ends(engine: Engine) -> None:
    engine.receive_data(HANDSHAKE)
    engine.close()
    assert engine.closed and engine.data_to_send() == b""
    engine.accept(None)  # the peer is gone: a no-op rather than an error
    assert engine.data_to_send() == b""


@settings(max_examples=150, deadline=None)
@given(head=st.binary(max_size=300), body=st.binary(max_size=300), cut=st.integers(1, 64))
def test_garbage_never_raises(head: bytes, body: bytes, cut: int) -> None:
    for name in ENGINE_NAMES:
        for prefix in (head, HANDSHAKE[: len(head) % len(HANDSHAKE)] + head):
            engine = make_engine(name, max_message_size=MAX_SIZE)
            data = prefix
            for event in engine.receive_data(data):
                if isinstance(event, Handshake):
                    engine.accept(None)
            for i in range(0, len(body), cut):
                for event in engine.receive_data(body[i : i + cut]):
                    if isinstance(event, Message):
                        engine.send_message(event.data)
            engine.data_to_send()
            engine.receive_data(b"")
            assert engine.closed


def test_random_frames_after_handshake_never_raise() -> None:
    rng = random.Random(6455)
    for name in ENGINE_NAMES:
        for _ in range(300):
            engine = make_engine(name, max_message_size=MAX_SIZE)
            engine.receive_data(HANDSHAKE)
            engine.accept(None)
            opcode = rng.choice([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB])
            payload = rng.randbytes(rng.choice([0, 1, 2, 5, 125, 126, 130]))
            frame = masked_frame(opcode, payload, fin=rng.random() < 0.8, rsv=rng.choice([0, 0, 0, 1, 4]))
            engine.receive_data(frame + rng.randbytes(rng.randrange(20)))
            engine.data_to_send()
            engine.receive_data(b"")
            assert engine.closed


def test_wsproto_client_round_trip(engine: Engine) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(wse.Request(host="example.com", target="/ws", subprotocols=["trio-rest.json"]))
    [handshake] = engine.receive_data(request)
    assert isinstance(handshake, Handshake) and handshake.subprotocols == ("trio-rest.json",)
    engine.accept("trio-rest.json")
    client.receive_data(engine.data_to_send())
    [accepted] = client.events()
    assert isinstance(accepted, wse.AcceptConnection) and accepted.subprotocol == "trio-rest.json"
    data = client.send(wse.TextMessage("hello")) + client.send(wse.BytesMessage(b"\x00"))
    assert engine.receive_data(data) == [Message("hello"), Message(b"\x00")]
    engine.send_message("hi")
    engine.close(1000)
    client.receive_data(engine.data_to_send())
    received = list(client.events())
    assert isinstance(received[0], wse.TextMessage) and received[0].data == "hi"
    assert isinstance(received[1], wse.CloseConnection) and received[1].code == 1000
    assert engine.receive_data(client.send(received[1].response())) == [Closed(1000, "")]


def test_make_engine() -> None:
    assert DEFAULT_ENGINE in ENGINE_NAMES
    with pytest.raises(ValueError, match="unknown"):
        make_engine("autobahn", max_message_size=1)
    with pytest.raises(ValueError):
        make_engine(DEFAULT_ENGINE, max_message_size=0)


# The plain HTTP side.


def test_parse_request_head() -> None:
    assert parse_request_head(b"GET /health HTTP/1.1\r\nHost: x\r\n") is None
    request = parse_request_head(
        b"GET /health?full=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\ntrailing"
    )
    assert request is not None
    assert (request.method, request.target) == ("GET", "/health?full=1")
    assert (request.path, request.query) == ("/health", "full=1")
    assert request.headers == (("host", "x"), ("x-a", "1"), ("x-a", "2"))
    assert request.header("X-A") == "1, 2" and request.header("missing") is None
    assert not request.is_websocket_upgrade
    upgrade = parse_request_head(HANDSHAKE.replace(b"Upgrade\r\n", b"keep-alive, Upgrade\r\n"))
    assert upgrade is not None and upgrade.is_websocket_upgrade
    post = parse_request_head(HANDSHAKE.replace(b"GET", b"POST"))
    assert post is not None and not post.is_websocket_upgrade


@pytest.mark.parametrize(
    "head",
    [b"nonsense\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"],
)
def test_malformed_head_is_400(head: bytes) -> None:
    with pytest.raises(HTTPError) as info:
        parse_request_head(head)
    assert info.value.status == 400
    assert http_status(info.value.response) == 400


def test_head_size_limit_is_431() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n"
    assert parse_request_head(head, max_head_size=len(head)) is not None
    for data in (head, head[:-4]):  # complete, and still incomplete
        with pytest.raises(HTTPError) as info:
            parse_request_head(data, max_head_size=len(head) - 5)
        assert info.value.status == 431
        assert http_status(info.value.response) == 431
    assert split_request_head(b"GET / HTTP/1.1\nHost: x\n\nrest") == (b"GET / HTTP/1.1\nHost: x\n\n", b"rest")


def test_render_response() -> None:
    out = render_response(200, b'{"status":"ok"}', extra_headers=[("Cache-Control", "no-store")])
    assert out == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
        b'Connection: close\r\nCache-Control: no-store\r\n\r\n{"status":"ok"}'
    )
    assert render_response(499, b"", "text/plain").startswith(b"HTTP/1.1 499 Unknown\r\n")
    with pytest.raises(ValueError):
        render_response(200, b"", extra_headers=[("X-Evil", "a\r\nSet-Cookie: b")])
    with pytest.raises(ValueError):
        render_response(200, b"", extra_headers=[("Bad Name", "a")])
    with pytest.raises(ValueError):
        render_response(99, b"")
