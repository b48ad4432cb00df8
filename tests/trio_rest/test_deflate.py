"""permessage-deflate's options, header grammar and negotiation (RFC 7692 section 7.1), without engines.

``test_engines.py`` checks that both engines agree with ``negotiate`` on the wire.
"""

from __future__ import annotations

import functools
import os
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import trio
import trio.testing
import wsproto
import wsproto.connection
import wsproto.extensions
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto import events as wse

from trio_rest import App, Request, Server, Settings, SimpleRouter, endpoint
from trio_rest._deflate import (
    DeflateOptions,
    DeflateParameters,
    ExtensionOffer,
    negotiate,
    parse_extensions,
)
from trio_rest._engine import ENGINE_NAMES, Closed, Engine, Handshake, Message, make_engine
from trio_rest._http import parse_request_head
from trio_rest.testing import serve_echo

from ._handshakes import HANDSHAKE, http_status


def test_default_options() -> None:
    options = DeflateOptions()
    assert (options.max_window_bits, options.context_takeover, options.min_size) == (12, False, 256)


@pytest.mark.parametrize(
    "options",
    [
        {"max_window_bits": 8},  # zlib cannot compress with a 256-byte window
        {"max_window_bits": 16},
        {"max_window_bits": 12.0},
        {"max_window_bits": True},
        {"min_size": 0},
        {"min_size": -1},
        {"context_takeover": "yes"},
    ],
)
def test_invalid_options(options: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        DeflateOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("permessage-deflate", [ExtensionOffer("permessage-deflate", ())]),
        (
            "permessage-deflate; client_max_window_bits, permessage-deflate",
            [
                ExtensionOffer("permessage-deflate", (("client_max_window_bits", None),)),
                ExtensionOffer("permessage-deflate", ()),
            ],
        ),
        (
            'foo;a=1 ; b="2";c , ,bar',
            [ExtensionOffer("foo", (("a", "1"), ("b", "2"), ("c", None))), ExtensionOffer("bar", ())],
        ),
        ("", []),
        (" , ", []),
    ],
)
def test_parse_extensions(value: str, expected: list[ExtensionOffer]) -> None:
    assert parse_extensions(value) == expected


@pytest.mark.parametrize(
    "value",
    ["permessage-deflate;", "permessage-deflate; a=", "per message", 'x; a="b c"', 'x; a="1', "x y", ";a"],
)
def test_malformed_extensions_header(value: str) -> None:
    with pytest.raises(ValueError, match="Sec-WebSocket-Extensions"):
        parse_extensions(value)


NO_TAKEOVER = {"server_no_context_takeover": True, "client_no_context_takeover": True}


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        # The server always names its window and asks both sides to reset (the default).
        ("permessage-deflate", DeflateParameters(**NO_TAKEOVER, server_max_window_bits=12)),
        # A bare client_max_window_bits lets the server choose the client's window.
        (
            "permessage-deflate; client_max_window_bits",
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=12, client_max_window_bits=12),
        ),
        # Smaller windows than ours are kept; larger ones shrink to ours.
        (
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=10, client_max_window_bits=9),
        ),
        (
            "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=12, client_max_window_bits=12),
        ),
        # The client may use a 256-byte window (inflating it is fine), the server may not.
        (
            "permessage-deflate; client_max_window_bits=8",
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=12, client_max_window_bits=8),
        ),
        ("permessage-deflate; server_max_window_bits=8", None),
        # Declined offers: the next acceptable one is taken.
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=12, client_max_window_bits=12),
        ),
        ("permessage-deflate; unknown_parameter", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; client_max_window_bits=010", None),
        ("x-webkit-deflate-frame", None),
        # Other extensions are skipped; a quoted value is unquoted (RFC 6455 section 9.1).
        (
            'x-other, permessage-deflate; server_max_window_bits="11"',
            DeflateParameters(**NO_TAKEOVER, server_max_window_bits=11),
        ),
    ],
)
def test_negotiate(offer: str, expected: DeflateParameters | None) -> None:
    assert negotiate(parse_extensions(offer), DeflateOptions()) == expected


def test_negotiate_with_context_takeover() -> None:
    options = DeflateOptions(context_takeover=True, max_window_bits=15)
    offers = parse_extensions("permessage-deflate; client_max_window_bits")
    assert negotiate(offers, options) == DeflateParameters(
        server_max_window_bits=15, client_max_window_bits=15
    )
    # What the client asks of itself or of the server is still granted.
    offers = parse_extensions("permessage-deflate; client_no_context_takeover; server_no_context_takeover")
    assert negotiate(offers, options) == DeflateParameters(
        server_no_context_takeover=True, client_no_context_takeover=True, server_max_window_bits=15
    )


@pytest.mark.parametrize(
    "parameters",
    [
        DeflateParameters(),
        DeflateParameters(**NO_TAKEOVER, server_max_window_bits=9, client_max_window_bits=8),
        DeflateParameters(client_no_context_takeover=True, client_max_window_bits=15),
    ],
)
def test_header_round_trip(parameters: DeflateParameters) -> None:
    header = parameters.header()
    assert header.startswith("permessage-deflate")
    assert DeflateParameters.from_header(header) == parameters
    assert DeflateParameters.from_header(f"x-other, {header}") == parameters
    assert DeflateParameters.from_header("x-other") is None


def test_a_response_may_not_leave_client_max_window_bits_without_a_value() -> None:
    with pytest.raises(ValueError):
        DeflateParameters.from_header("permessage-deflate; client_max_window_bits")


# Through both engines, against real client protocol objects.

MiB = 2**20


@pytest.fixture(params=ENGINE_NAMES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def deflate_client(**offer: Any) -> ClientProtocol:
    """A websockets client that offers permessage-deflate (by default: a bare client_max_window_bits)."""
    return ClientProtocol(
        parse_uri("ws://example.com/chat"),
        extensions=[ClientPerMessageDeflateFactory(**offer)],
        max_size=None,
    )


def plain_client() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://example.com/chat"), max_size=None)


def open_connection(engine: Engine, client: ClientProtocol) -> Response:
    """Run the opening handshake between ``client`` and ``engine``; return the 101."""
    client.send_request(client.connect())
    parsed = parse_request_head(b"".join(client.data_to_send()))
    assert parsed is not None
    assert isinstance(engine.receive_handshake(*parsed), Handshake)
    engine.accept(None)
    client.receive_data(engine.data_to_send())
    [response] = client.events_received()
    assert isinstance(response, Response) and response.status_code == 101, response
    assert client.state is State.OPEN
    return response


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One masked client frame, built by hand (the mask is random; masking is one big XOR)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    masked = (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big") if n else b""
    return head + key + masked


def deflated(data: bytes, *, wbits: int = 15) -> bytes:
    """``data`` as one permessage-deflate message payload (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(wbits=-wbits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes as a permessage-deflate payload, compressed 1 MiB at a time (about 1:1000)."""
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(MiB)
    parts = [compressor.compress(chunk) for _ in range(size // MiB)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


# A JSON list reply, the kind of message worth compressing.
LISTING = orjson.dumps([{"id": i, "fullname": f"User {i}", "addresses": []} for i in range(200)])
# A notification of 1.5 KiB that compresses poorly on its own (random hex), but well after
# a copy of itself, when the context (a 4 KiB window) is kept.
NOTICE = orjson.dumps({"event_name": "user.updated", "data": {"token": os.urandom(600).hex()}})


def server_frames(client: ClientProtocol, wire: bytes) -> list[Frame]:
    client.receive_data(wire)
    return [event for event in client.events_received() if isinstance(event, Frame)]


def test_offered_and_allowed_is_agreed_and_compresses_both_ways(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions())
    client = deflate_client()
    response = open_connection(engine, client)
    agreed = DeflateParameters(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=12,
        client_max_window_bits=12,
    )
    assert engine.deflate == agreed
    assert DeflateParameters.from_header(response.headers["Sec-WebSocket-Extensions"]) == agreed
    [extension] = client.extensions
    assert isinstance(extension, PerMessageDeflate)
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (12, 12)

    # Client to server: a compressed message (RSV1 set) arrives inflated.
    client.send_text(LISTING)
    wire = b"".join(client.data_to_send())
    assert wire[0] & 0x40 and len(wire) < len(LISTING) // 4
    assert engine.receive_data(wire) == [Message(LISTING.decode())]

    # Server to client: long messages compressed, short ones (under min_size) as they are.
    engine.send_text_bytes(LISTING)
    engine.send_message(b"short")
    engine.send_message(LISTING)
    out = engine.data_to_send()
    assert out[0] == 0x80 | 0x40 | 0x1 and len(out) < 2 * len(LISTING) // 4
    assert b"\x82\x05short" in out  # FIN, no RSV1, binary
    frames = server_frames(client, out)
    assert [(frame.opcode, bytes(frame.data)) for frame in frames] == [
        (Opcode.TEXT, LISTING),
        (Opcode.BINARY, b"short"),
        (Opcode.BINARY, LISTING),
    ]


def test_fragmented_compressed_messages_are_reassembled(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions())
    client = deflate_client()
    open_connection(engine, client)
    client.send_text(LISTING[:1000], fin=False)
    client.send_ping(b"between")
    client.send_continuation(LISTING[1000:2000], fin=False)
    client.send_continuation(LISTING[2000:], fin=True)
    client.send_binary(b"\x00" * 5000)
    events = engine.receive_data(b"".join(client.data_to_send()))
    assert events == [Message(LISTING.decode()), Message(b"\x00" * 5000)]
    [pong] = server_frames(client, engine.data_to_send())
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"between")


def test_not_offered_is_not_agreed(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions())
    client = plain_client()
    response = open_connection(engine, client)
    assert engine.deflate is None and "Sec-WebSocket-Extensions" not in response.headers
    engine.send_message(LISTING)
    assert engine.data_to_send()[0] == 0x82  # never compressed
    # A compressed frame on a connection that agreed nothing is a protocol error.
    [closed] = engine.receive_data(client_frame(0x2, deflated(LISTING), rsv1=True))
    assert isinstance(closed, Closed) and closed.code == 1002


def test_offered_but_not_allowed_is_not_agreed(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB)  # Settings.permessage_deflate off
    client = deflate_client()
    response = open_connection(engine, client)
    assert engine.deflate is None and "Sec-WebSocket-Extensions" not in response.headers
    assert client.extensions == []
    [closed] = engine.receive_data(client_frame(0x1, deflated(LISTING), rsv1=True))
    assert isinstance(closed, Closed) and closed.code == 1002


OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; server_max_window_bits=11",
    "permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
    "permessage-deflate; client_max_window_bits=8",
    "permessage-deflate; server_max_window_bits=8",
    "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover",
    "permessage-deflate; bogus, permessage-deflate; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=1x",
    "x-webkit-deflate-frame, permessage-deflate",
    "x-webkit-deflate-frame",
]


@pytest.mark.parametrize("offer", OFFERS)
@pytest.mark.parametrize("context_takeover", [False, True])
def test_both_engines_answer_every_offer_as_negotiate_does(
    engine_name: str, offer: str, context_takeover: bool
) -> None:
    options = DeflateOptions(context_takeover=context_takeover)
    engine = make_engine(engine_name, max_message_size=MiB, deflate=options)
    head = HANDSHAKE.replace(b"\r\n\r\n", f"\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n".encode())
    parsed = parse_request_head(head)
    assert parsed is not None
    assert isinstance(engine.receive_handshake(*parsed), Handshake)
    expected = negotiate(parse_extensions(offer), options)
    assert engine.deflate == expected
    engine.accept(None)
    response = engine.data_to_send()
    assert http_status(response) == 101
    answered = [
        line.split(b":", 1)[1].strip().decode()
        for line in response.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-extensions:")
    ]
    if expected is None:
        assert answered == []
    else:
        [header] = answered
        assert DeflateParameters.from_header(header) == expected


@pytest.mark.parametrize("allowed", [True, False])
def test_a_malformed_extensions_header_is_400_only_when_deflate_is_allowed(
    engine_name: str, allowed: bool
) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions() if allowed else None)
    head = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate;;\r\n\r\n")
    parsed = parse_request_head(head)
    assert parsed is not None
    event = engine.receive_handshake(*parsed)
    if allowed:
        assert isinstance(event, Closed) and http_status(engine.data_to_send()) == 400
    else:
        assert isinstance(event, Handshake) and engine.deflate is None


def compressed_sizes(engine: Engine, count: int) -> list[int]:
    """Send NOTICE ``count`` times; return each compressed frame's size."""
    sizes = []
    for _ in range(count):
        engine.send_text_bytes(NOTICE)
        out = engine.data_to_send()
        assert out[0] & 0x40
        sizes.append(len(out))
    return sizes


@pytest.mark.parametrize("context_takeover", [False, True])
def test_context_takeover_follows_the_setting(engine_name: str, context_takeover: bool) -> None:
    options = DeflateOptions(context_takeover=context_takeover)
    engine = make_engine(engine_name, max_message_size=MiB, deflate=options)
    client = deflate_client()
    open_connection(engine, client)
    assert engine.deflate is not None
    assert engine.deflate.server_no_context_takeover is not context_takeover
    assert engine.deflate.client_no_context_takeover is not context_takeover
    first, second = compressed_sizes(engine, 2)
    assert first < len(NOTICE)
    if context_takeover:
        assert second < first // 10  # the second refers back to the first
    else:
        assert second == first
    # The client keeps its context across messages too (when allowed), and the engine
    # inflates each message with what came before.
    for _ in range(3):
        client.send_text(NOTICE)
    wire = b"".join(client.data_to_send())
    assert engine.receive_data(wire) == [Message(NOTICE.decode())] * 3


def test_min_size_sets_which_messages_are_compressed(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions(min_size=100))
    client = deflate_client()
    open_connection(engine, client)
    engine.send_message("a" * 99)
    assert engine.data_to_send()[:2] == b"\x81\x63"  # no RSV1
    engine.send_message("a" * 100)
    out = engine.data_to_send()
    assert out[0] == 0xC1 and len(out) < 20
    [frame] = server_frames(client, out)
    assert frame.data == b"a" * 100


def test_a_compressed_message_at_the_limit_is_accepted_and_one_byte_more_is_1009(engine_name: str) -> None:
    limit = 100_000
    engine = make_engine(engine_name, max_message_size=limit, deflate=DeflateOptions())
    client = deflate_client()
    open_connection(engine, client)
    assert engine.receive_data(client_frame(0x2, deflated(bytes(limit)), rsv1=True)) == [
        Message(bytes(limit))
    ]
    [closed] = engine.receive_data(client_frame(0x2, deflated(bytes(limit + 1)), rsv1=True))
    assert isinstance(closed, Closed) and closed.code == 1009
    [close] = server_frames(client, engine.data_to_send())
    assert Close.parse(close.data).code == 1009


def test_corrupt_compressed_data_closes_the_connection(engine_name: str) -> None:
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions())
    open_connection(engine, deflate_client())
    [closed] = engine.receive_data(client_frame(0x2, b"\xff\xff\xff\xff", rsv1=True))
    # websockets calls it a protocol error, wsproto invalid payload data.
    assert isinstance(closed, Closed) and closed.code in (1002, 1007)


# The deflate bomb: 64 KiB on the wire that would inflate to 64 MiB, against a 1 MiB limit.
BOMB_LIMIT = MiB
BOMB_SIZE = 64 * MiB

# The bound on what receiving the bomb may allocate at its peak (tracemalloc). websockets
# inflates at most what is left of the limit, once, but zlib's output buffer and the bytes
# made of it hold it twice for a moment; wsproto is fed slices that inflate to at most a
# quarter of the limit each, and copies each piece two or three times on its way. Measured
# with a 1 MiB limit: websockets 2.14 MiB, wsproto 1.74 MiB.
BOMB_PEAK = 5 * BOMB_LIMIT // 2


@pytest.mark.parametrize("fragmented", [False, True])
def test_a_deflate_bomb_is_1009_without_inflating_past_the_limit(
    engine_name: str, fragmented: bool, record_property: Callable[[str, object], None]
) -> None:
    engine = make_engine(engine_name, max_message_size=BOMB_LIMIT, deflate=DeflateOptions())
    client = deflate_client()
    open_connection(engine, client)
    bomb = deflated_zeros(BOMB_SIZE)
    assert len(bomb) < BOMB_SIZE // 1000
    if fragmented:
        half = len(bomb) // 2
        wire = client_frame(0x2, bomb[:half], fin=False, rsv1=True) + client_frame(0x0, bomb[half:])
    else:
        wire = client_frame(0x2, bomb, rsv1=True)
    events: list[object] = []
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(wire), 65536):  # as the server reads
            events += engine.receive_data(wire[start : start + 65536])
            if engine.closed:
                break
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    [closed] = events
    assert isinstance(closed, Closed) and closed.code == 1009
    [close] = server_frames(client, engine.data_to_send())
    assert Close.parse(close.data).code == 1009
    record_property("bomb_peak_bytes", peak)
    print(f"{engine_name}: a {len(bomb)}-byte bomb of {BOMB_SIZE} bytes, limit {BOMB_LIMIT}: peak +{peak}")
    assert peak < BOMB_PEAK, f"{engine_name}: inflating the bomb allocated {peak} bytes at its peak"


def held_after_one_message_each_way(engine_name: str, options: DeflateOptions) -> int:
    """The memory an engine holds after its handshake and one compressed message each way."""
    client = deflate_client()
    client.send_request(client.connect())
    head = parse_request_head(b"".join(client.data_to_send()))
    assert head is not None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        engine = make_engine(engine_name, max_message_size=MiB, deflate=options)
        engine.receive_handshake(*head)
        engine.accept(None)
        engine.data_to_send()
        events = engine.receive_data(client_frame(0x1, deflated(NOTICE, wbits=12), rsv1=True))
        assert events == [Message(NOTICE.decode())]
        engine.send_text_bytes(NOTICE)
        engine.data_to_send()
        del events
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert not engine.closed
    return held


def test_the_zlib_memory_a_connection_keeps_is_bounded(
    engine_name: str, record_property: Callable[[str, object], None]
) -> None:
    without = held_after_one_message_each_way(engine_name, DeflateOptions())
    kept = held_after_one_message_each_way(engine_name, DeflateOptions(context_takeover=True))
    record_property("held_without_context_takeover", without)
    record_property("held_with_context_takeover", kept)
    print(f"{engine_name}: an open connection holds {without} bytes, {kept} with context takeover")
    # Without context takeover no zlib state (16 KiB and more) outlives its message: a
    # connection holds about what it holds without compression, plus the extension's objects.
    plain = held_plain(engine_name)
    assert without < plain + 8192, (without, plain)
    # With it, each direction keeps its context: 12-bit windows, the inflater's state, and
    # the compressor's hash tables (wsproto leaves them at zlib's default size, 128 KiB).
    contexts = kept - without
    assert 16_384 < contexts < (64_000 if engine_name == "websockets" else 200_000), contexts


def held_plain(engine_name: str) -> int:
    """The memory an engine without compression holds after its handshake and a message each way."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        engine = make_engine(engine_name, max_message_size=MiB)
        head = parse_request_head(HANDSHAKE)
        assert head is not None
        engine.receive_handshake(*head)
        engine.accept(None)
        engine.data_to_send()
        assert engine.receive_data(client_frame(0x1, NOTICE)) == [Message(NOTICE.decode())]
        engine.send_text_bytes(NOTICE)
        engine.data_to_send()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held


# Through the whole server: the settings reach the engines.


@endpoint
async def listing(request: Request) -> Any:
    return orjson.loads(LISTING)


async def exchange_over_a_server(settings: Settings) -> tuple[list[Any], bool, Any]:
    """Connect a wsproto client offering permessage-deflate, GET /listing.

    Returns:
        The extensions the server accepted, whether the reply's frame was compressed (RSV1),
        and the reply.
    """
    router = SimpleRouter()
    router.register("/listing", listing, "GET")
    server = Server(App(router, settings=settings))
    client_stream, server_stream = trio.testing.memory_stream_pair()
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    accepted: list[Any] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.handle_stream, server_stream)
            offer = wsproto.extensions.PerMessageDeflate()
            await client_stream.send_all(ws.send(wse.Request(host="test", target="/", extensions=[offer])))
            while not accepted and ws.state is not wsproto.connection.ConnectionState.OPEN:
                ws.receive_data(await client_stream.receive_some(65536))
                for event in ws.events():
                    assert isinstance(event, wse.AcceptConnection)
                    accepted = list(event.extensions)
            get = wse.TextMessage('{"method": "GET", "url": "/listing", "id": 1}')
            await client_stream.send_all(ws.send(get))
            received = b""
            reply: list[str] = []
            while not reply:
                data = await client_stream.receive_some(65536)
                received += data
                ws.receive_data(data)
                reply += [event.data for event in ws.events() if isinstance(event, wse.TextMessage)]
            nursery.cancel_scope.cancel()
    return accepted, bool(received[0] & 0x40), orjson.loads("".join(reply))


@pytest.mark.parametrize("engine", ENGINE_NAMES)
async def test_the_setting_turns_compression_on_for_the_server(engine: str) -> None:
    on = Settings(engine=engine, permessage_deflate=True)
    accepted, compressed, reply = await exchange_over_a_server(on)
    assert [extension.name for extension in accepted] == ["permessage-deflate"]
    assert compressed and reply["status"] == 200 and reply["data"] == orjson.loads(LISTING)
    # Off by default: the offer is ignored.
    accepted, compressed, reply = await exchange_over_a_server(Settings(engine=engine))
    assert accepted == [] and not compressed and reply["data"] == orjson.loads(LISTING)


def test_a_read_of_many_compressed_messages_is_inflated_a_limit_at_a_time(engine_name: str) -> None:
    # 64 messages just under the limit, 1 KiB each on the wire: one read would hold 64 MiB.
    engine = make_engine(engine_name, max_message_size=MiB, deflate=DeflateOptions())
    open_connection(engine, deflate_client())
    message = bytes(MiB - 1)
    wire = client_frame(0x2, deflated(message), rsv1=True) * 64
    assert len(wire) < 128 * 1024
    calls = [engine.receive_data(wire)]
    while engine.input_pending:
        calls.append(engine.receive_pending())
    assert [event for events in calls for event in events] == [Message(message)] * 64
    # Each call stops once its messages reach the limit: at most one slice's worth more.
    assert max(len(events) for events in calls) == 2 and len(calls) >= 32
    assert engine.receive_pending() == [] and not engine.input_pending


async def test_the_server_reads_what_a_read_held_back_without_waiting_for_more(engine_name: str) -> None:
    # The client sends 100 compressed messages at once, then only waits for their echoes:
    # what the engine held back must be handled without another read.
    count, size = 100, 200_000
    async with trio.open_nursery() as nursery:
        echo = functools.partial(
            serve_echo, engine=engine_name, max_message_size=MiB, permessage_deflate=True
        )
        server: Server = await nursery.start(echo)
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            offer = wsproto.extensions.PerMessageDeflate()
            await stream.send_all(ws.send(wse.Request(host="x", target="/", extensions=[offer])))
            opened = False
            while not opened:
                ws.receive_data(await stream.receive_some(65536))
                opened = any(isinstance(event, wse.AcceptConnection) for event in ws.events())
            # Control bytes: the connection reads a binary message that looks like base64 as
            # base64 (aiorest-ws clients send that), even when echoing.
            messages = [bytes([i % 32]) * size for i in range(count)]
            data = b"".join(ws.send(wse.BytesMessage(message)) for message in messages)
            assert len(data) < count * 1000  # all of it fits in one or two reads
            await stream.send_all(data)
            echoed: list[bytes] = []
            pieces = b""
            while len(echoed) < count:
                ws.receive_data(await stream.receive_some(65536))
                for event in ws.events():
                    if isinstance(event, wse.BytesMessage):
                        pieces += event.data
                        if event.message_finished:
                            echoed.append(pieces)
                            pieces = b""
            assert echoed == messages
            await stream.aclose()
        nursery.cancel_scope.cancel()
