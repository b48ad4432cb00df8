"""Both WebSocket engines against real client protocol objects, without sockets.

Every engine test is parametrized over the two engines; the client side is websockets'
sans-IO ``ClientProtocol`` (and wsproto's client once, as a cross-check). Bytes that no
client library would produce are built by hand with ``masked_frame``. As in the server, the
request head is parsed once by ``parse_request_head`` and handed to ``receive_handshake``.
"""

from __future__ import annotations

import random
import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_rest_protocol import reason_phrase
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
    HTTPRequest,
    header_value,
    parse_request_head,
    render_response,
    split_request_head,
)

from ._handshakes import HANDSHAKE, http_status

MAX_SIZE = 1000


@pytest.fixture(params=ENGINE_NAMES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def engine(engine_name: str) -> Engine:
    return make_engine(engine_name, max_message_size=MAX_SIZE)


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


def start(engine: Engine, data: bytes = HANDSHAKE) -> Handshake | Closed:
    """Do what the server does with a connection's first bytes: parse the head, hand it over."""
    parsed = parse_request_head(data)
    assert parsed is not None, "incomplete head"
    request, rest = parsed
    return engine.receive_handshake(request, rest)


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
    assert isinstance(start(engine, b"".join(client.data_to_send())), Handshake)
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


# The opening handshake.


def test_handshake_offers_subprotocols_and_accepts_one(engine: Engine) -> None:
    client = new_client(["trio-rest.json", "trio-rest.msgpack"])
    client.send_request(client.connect())
    handshake = start(engine, b"".join(client.data_to_send()))
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


def test_accept_answers_with_the_rfc_accept_token(engine: Engine) -> None:
    # RFC 6455 section 1.3's own example key and answer.
    start(engine)
    engine.accept(None)
    out = engine.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and out.endswith(b"\r\n\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out


def test_accept_refuses_a_subprotocol_not_offered(engine: Engine) -> None:
    handshake = start(engine)
    assert isinstance(handshake, Handshake)
    assert handshake == Handshake("/chat", "token=abc", handshake.headers, ())
    with pytest.raises(ValueError, match="not offered"):
        engine.accept("trio-rest.json")
    with pytest.raises(ValueError, match="unsafe"):
        engine.accept(None, [("X-Bad", "a\r\nInjected: 1")])


def test_reject_sends_a_plain_http_response(engine: Engine) -> None:
    start(engine)
    engine.reject(401, b'{"detail": "no"}')
    out = engine.data_to_send()
    assert http_status(out) == 401
    assert b"Connection: close\r\n" in out and out.endswith(b'{"detail": "no"}')
    assert engine.closed
    assert engine.receive_data(b"more") == []


KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="


@pytest.mark.parametrize(
    ("head", "statuses", "header"),
    [
        (HANDSHAKE.replace(KEY + b"\r\n", b""), {400}, None),
        (HANDSHAKE.replace(KEY, b"Sec-WebSocket-Key: short"), {400}, None),
        (HANDSHAKE.replace(KEY, KEY + b"\r\n" + KEY), {400}, None),  # two keys
        (HANDSHAKE.replace(b"Sec-WebSocket-Version: 13\r\n", b""), {400}, None),
        # RFC 6455 section 4.4: say which version we speak (wsproto's check does; websockets
        # answers a plain 400).
        (HANDSHAKE.replace(b"Version: 13", b"Version: 8"), {400, 426}, None),
        (HANDSHAKE.replace(b"GET", b"POST"), {405}, b"Allow: GET"),
        (HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0"), {505}, None),
        (HANDSHAKE.replace(b"Upgrade: websocket", b"Upgrade: h2c"), {426}, b"Upgrade: websocket"),
        (HANDSHAKE.replace(b"Connection: Upgrade", b"Connection: keep-alive"), {426}, b"Upgrade: websocket"),
        (HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: a b\r\n\r\n"), {400}, None),
        (HANDSHAKE.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabc"), {400}, None),
        (HANDSHAKE.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), {400}, None),
    ],
)
def test_bad_handshake_is_answered_with_an_http_error(
    engine: Engine, head: bytes, statuses: set[int], header: bytes | None
) -> None:
    closed = start(engine, head)
    assert isinstance(closed, Closed) and closed.code == 1002
    out = engine.data_to_send()
    assert http_status(out) in statuses
    if header is not None:
        assert b"\r\n" + header + b"\r\n" in out.partition(b"\r\n\r\n")[0] + b"\r\n"
    assert b"invalid WebSocket handshake" in out
    assert engine.closed
    assert engine.receive_data(masked_frame(0x1, b"too late")) == []


def test_valid_variants_of_the_upgrade_are_accepted(engine: Engine) -> None:
    head = (
        HANDSHAKE.replace(b"Upgrade: websocket", b"Upgrade: WebSocket")
        .replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade")
        .replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\nSec-WebSocket-Protocol: a, , b\r\n\r\n")
    )
    handshake = start(engine, head)
    assert isinstance(handshake, Handshake) and handshake.subprotocols == ("a", "b")


def test_eof_during_handshake(engine: Engine) -> None:
    start(engine)
    assert engine.receive_data(b"") == [Closed(1006, "connection closed during the handshake")]
    assert engine.closed


def test_frames_sent_before_the_handshake_response_wait_for_accept(engine: Engine) -> None:
    # Frames behind the head in the same read, and more in a later read, before accept().
    handshake = start(engine, HANDSHAKE + masked_frame(0x1, b"eager") + masked_frame(0x9, b"p"))
    assert isinstance(handshake, Handshake)
    assert engine.receive_data(masked_frame(0x2, b"more")) == []
    engine.accept(None)
    out = engine.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 ") and out.endswith(b"\x8a\x01p")  # the 101, then the pong
    assert engine.take_pending() == [Message("eager"), Message(b"more")]
    assert engine.receive_data(masked_frame(0x1, b"next")) == [Message("next")]


def test_early_frames_not_taken_come_out_of_the_next_read(engine: Engine) -> None:
    start(engine, HANDSHAKE + masked_frame(0x1, b"eager"))
    engine.accept(None)
    assert engine.receive_data(masked_frame(0x1, b"next")) == [Message("eager"), Message("next")]


@pytest.mark.parametrize("in_rest", [True, False])
def test_too_much_data_before_the_handshake_response_is_400(engine: Engine, in_rest: bool) -> None:
    early = masked_frame(0x2, b"x" * MAX_SIZE)  # more than one message's worth, with its header
    if in_rest:
        closed = start(engine, HANDSHAKE + early)
    else:
        assert isinstance(start(engine), Handshake)
        [closed] = engine.receive_data(early)
    assert isinstance(closed, Closed) and closed.code == 1002
    assert http_status(engine.data_to_send()) == 400
    assert engine.closed


def test_calls_out_of_order_are_programming_errors(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        engine.receive_data(HANDSHAKE)  # the head goes to receive_handshake(), parsed
    start(engine)
    with pytest.raises(RuntimeError):
        start(engine)
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


def one_byte_fragments(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A message as one frame per payload byte: ``opcode`` first, then continuations."""
    pieces = [payload[i : i + 1] for i in range(len(payload))] or [b""]
    frames = [masked_frame(opcode if i == 0 else 0x0, piece, fin=False) for i, piece in enumerate(pieces)]
    if fin:
        frames.append(masked_frame(0x0, b"", fin=True))
    return b"".join(frames)


@pytest.mark.parametrize(
    "data",
    ["h\u00e9llo \u2603 \U0001f600 \u20ac", "", b"\x00\xff\x80" * 10, b""],
)
def test_one_byte_fragments_are_reassembled(engine: Engine, data: str | bytes) -> None:
    # Every multi-byte character is split across fragments.
    open_connection(engine)
    payload = data.encode() if isinstance(data, str) else data
    opcode = 0x1 if isinstance(data, str) else 0x2
    events: list[object] = []
    for cut in (1, 7, 64):  # one read, and reads that split frames
        wire = one_byte_fragments(opcode, payload)
        for i in range(0, len(wire), cut):
            events += engine.receive_data(wire[i : i + cut])
    assert events == [Message(data)] * 3
    [message] = events[:1]
    assert isinstance(message, Message) and type(message.data) is type(data)


def test_invalid_utf8_in_a_middle_fragment_is_1007_before_the_end(engine: Engine) -> None:
    client = open_connection(engine)
    wire = one_byte_fragments(0x1, "ok \u2603".encode() + b"\xc0\xaf" + b"never read", fin=False)
    events: list[object] = []
    for i in range(0, len(wire), 6):
        events += engine.receive_data(wire[i : i + 6])
        if events:
            break
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1007
    assert close_frame(replies(engine, client)).code == 1007
    assert engine.closed


def test_size_limit_counts_every_fragment(engine: Engine) -> None:
    client = open_connection(engine)
    # MAX_SIZE bytes in 1-byte fragments are fine; one more byte is 1009.
    assert engine.receive_data(one_byte_fragments(0x1, "\u20ac".encode() * (MAX_SIZE // 3) + b"a")) == [
        Message("\u20ac" * (MAX_SIZE // 3) + "a")
    ]
    events = engine.receive_data(one_byte_fragments(0x2, b"b" * (MAX_SIZE + 1), fin=False))
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1009
    assert close_frame(replies(engine, client)).code == 1009
    assert engine.closed


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_a_flood_of_tiny_fragments_holds_about_one_byte_per_payload_byte(
    engine_name: str, opcode: int
) -> None:
    # Each 1-byte fragment kept as an object of its own cost ~40-60 bytes of memory; the
    # engines keep one bytearray, so what a partial message holds is about its size.
    engine = make_engine(engine_name, max_message_size=2**20)
    open_connection(engine)
    payload = "\u20ac".encode() * 10_000  # 30,000 fragments, splitting every character
    wire = one_byte_fragments(opcode, payload, fin=False)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, len(wire), 65536):
            assert engine.receive_data(wire[i : i + 65536]) == []
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * len(payload) + 16_384, held
    assert engine.receive_data(masked_frame(0x0, b"", fin=True)) == [
        Message(payload.decode() if opcode == 0x1 else payload)
    ]


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
    start(engine)
    engine.close()
    assert engine.closed and engine.data_to_send() == b""
    engine.accept(None)  # the peer is gone: a no-op rather than an error
    assert engine.data_to_send() == b""


@settings(max_examples=150, deadline=None)
@given(head=st.binary(max_size=300), body=st.binary(max_size=300), cut=st.integers(1, 64))
def test_garbage_never_raises(head: bytes, body: bytes, cut: int) -> None:
    for name in ENGINE_NAMES:
        for prefix in (head, HANDSHAKE[: len(head) % len(HANDSHAKE)] + head, HANDSHAKE + head):
            engine = make_engine(name, max_message_size=MAX_SIZE)
            try:
                parsed = parse_request_head(prefix)
            except HTTPError:
                continue  # the server answers it: no engine is made
            if parsed is None:
                continue
            if isinstance(engine.receive_handshake(*parsed), Handshake):
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
            start(engine)
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
    handshake = start(engine, request)
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
    parsed = parse_request_head(b"GET /health?full=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\ntrailing")
    assert parsed is not None
    request, rest = parsed
    assert rest == b"trailing"
    assert (request.method, request.target, request.http_version) == ("GET", "/health?full=1", "1.1")
    assert (request.path, request.query) == ("/health", "full=1")
    assert request.headers == (("host", "x"), ("x-a", "1"), ("x-a", "2"))
    assert request.header("X-A") == "1, 2" and request.header("missing") is None
    assert not request.is_websocket_upgrade
    upgrade = parse_request_head(HANDSHAKE.replace(b"Upgrade\r\n", b"keep-alive, Upgrade\r\n"))
    assert upgrade is not None and upgrade[0].is_websocket_upgrade and upgrade[1] == b""
    post = parse_request_head(HANDSHAKE.replace(b"GET", b"POST"))
    assert post is not None and not post[0].is_websocket_upgrade
    old = parse_request_head(b"GET / HTTP/1.0\r\n\r\n")
    assert old is not None and old[0].http_version == "1.0"


def test_head_arrives_in_pieces() -> None:
    for end in range(len(HANDSHAKE)):
        assert parse_request_head(HANDSHAKE[:end]) is None
    parsed = parse_request_head(HANDSHAKE + b"\x81")
    assert parsed is not None and parsed[1] == b"\x81"


def test_header_value_is_the_one_lookup() -> None:
    headers = (("a", "1"), ("b", "2"), ("a", "3"))
    assert header_value(headers, "A") == "1, 3"
    assert header_value(headers, "c") is None
    request = HTTPRequest("GET", "/", headers)
    assert request.header("a") == Handshake("/", "", headers, ()).header("a") == "1, 3"


@pytest.mark.parametrize(
    "head",
    [
        b"nonsense\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        HANDSHAKE.replace(b"Host: example.com\r\n", b""),
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",  # a target that is not ASCII
    ],
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


def test_oversized_and_endless_heads_are_431() -> None:
    big = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * DEFAULT_MAX_HEAD_SIZE + b"\r\n\r\n")
    endless = b"GET / HTTP/1.1\r\nX-Endless: " + b"a" * DEFAULT_MAX_HEAD_SIZE  # no end in sight
    for head in (big, endless):
        with pytest.raises(HTTPError) as info:
            parse_request_head(head)
        assert http_status(info.value.response) == 431


def test_render_response() -> None:
    out = render_response(200, b'{"status":"ok"}', extra_headers=[("Cache-Control", "no-store")])
    assert out == (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
        b'Connection: close\r\nCache-Control: no-store\r\n\r\n{"status":"ok"}'
    )
    # One reason phrase for the whole project: the protocol's.
    assert render_response(499, b"", "text/plain").startswith(b"HTTP/1.1 499 Client Closed Request\r\n")
    assert render_response(599, b"").startswith(f"HTTP/1.1 599 {reason_phrase(599)}\r\n".encode())
    with pytest.raises(ValueError):
        render_response(200, b"", extra_headers=[("X-Evil", "a\r\nSet-Cookie: b")])
    with pytest.raises(ValueError):
        render_response(200, b"", extra_headers=[("Bad Name", "a")])
    with pytest.raises(ValueError):
        render_response(99, b"")
