"""The load generator's correlation modes: what each sends, how replies are matched, the greetings.

The first tests are pure (packets in, values out). The last ones drive a small
fake server, a thread in this process on 127.0.0.1, that speaks each mode's
wire format and answers every batch of requests in reverse order, so only a
load generator that matches replies by their correlation value passes. No
competitor needs to be installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from benchmarks import _wire
from benchmarks._loadgen import close_idle, open_idle, run_handshakes, run_load

ENVELOPE = {"method": "GET", "url": "/users/17"}
USER = {"id": 17, "name": "Ada Lovelace", "email": "ada@example.com"}


def _server_frame(payload: bytes, opcode: int = _wire.OP_TEXT) -> bytes:
    """A frame as a server sends it (a text frame unless told)."""
    return _wire.server_frame(opcode, payload)


def _client_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Cut complete masked (client) frames off the front of `data`, unmasked."""
    frames = []
    i = 0
    while i + 2 <= len(data):
        length, start = data[i + 1] & 0x7F, i + 2
        if length == 126:
            length, start = int.from_bytes(data[i + 2 : i + 4], "big"), i + 4
        elif length == 127:
            length, start = int.from_bytes(data[i + 2 : i + 10], "big"), i + 10
        if start + 4 + length > len(data):
            break
        mask = data[start : start + 4]
        payload = bytes(b ^ mask[k % 4] for k, b in enumerate(data[start + 4 : start + 4 + length]))
        frames.append((data[i] & 0x0F, payload))
        i = start + 4 + length
    return frames, data[i:]


# -- what each mode sends ----------------------------------------------------------------------------


def test_every_mode_is_known_by_its_name() -> None:
    assert set(_wire.MODES) == {"id", "event_name", "dcrf", "socketio"}
    assert all(_wire.get_mode(name).name == name for name in _wire.MODES)
    assert _wire.get_mode(_wire.MODES["dcrf"]) is _wire.MODES["dcrf"]
    with pytest.raises(ValueError, match="unknown correlation mode"):
        _wire.get_mode("nope")


def test_dcrf_request_is_a_retrieve_action_with_the_request_id() -> None:
    assert json.loads(_wire.request_payload("dcrf", 9)) == {"action": "retrieve", "pk": 17, "request_id": 9}
    mode = _wire.MODES["dcrf"]
    assert (mode.field, mode.numeric, mode.status, mode.path) == ("request_id", True, "response_status", "/")


def test_socketio_request_is_an_event_whose_ack_id_is_the_correlation_value() -> None:
    payload = _wire.request_payload("socketio", 123)
    assert payload.startswith(b"42123[")
    assert json.loads(payload[len(b"42123") :]) == ["request", {**ENVELOPE, "id": 123}]
    mode = _wire.MODES["socketio"]
    assert mode.path == "/socket.io/?EIO=4&transport=websocket"
    assert mode.greeting == ((b"0{", b"40"), (b"40", b""))


def test_request_frames_unmask_to_each_correlation_value() -> None:
    frames = _wire.request_frames("socketio", 3)
    assert [_client_frames(f)[0] for f in frames] == [
        [(_wire.OP_TEXT, _wire.request_payload("socketio", n))] for n in range(3)
    ]


# -- reading Socket.IO acks ---------------------------------------------------------------------------


def test_socketio_ack_gives_the_ack_id_and_the_handlers_return_value() -> None:
    reply = {"id": 12, "status": 200, "data": USER}
    assert _wire.socketio_ack(b"4312" + orjson.dumps([reply])) == (12, reply)
    assert _wire.socketio_ack(b'430[{"status":404},"extra"]') == (0, {"status": 404})


@pytest.mark.parametrize(
    "packet",
    [b"2", b"3", b'42["request",{}]', b"41", b'44{"message":"refused"}', b'40{"sid":"x"}', b"6"],
)
def test_socketio_ack_ignores_what_is_not_an_ack(packet: bytes) -> None:
    assert _wire.socketio_ack(packet) is None


@pytest.mark.parametrize("packet", [b"43[{}]", b"4312", b"4312[]", b"4312[{]", b"43x[{}]"])
def test_socketio_ack_refuses_a_malformed_ack(packet: bytes) -> None:
    with pytest.raises(ValueError):
        _wire.socketio_ack(packet)


# -- greetings ------------------------------------------------------------------------------------------

OPEN = b'0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
JOINED = b'40{"sid":"s1"}'
GREETING = _wire.MODES["socketio"].greeting


def test_greeting_answers_the_open_packet_and_ends_with_the_namespace_connect() -> None:
    stream = _server_frame(OPEN) + _server_frame(JOINED) + _server_frame(b"430[{}]")
    done, answer, rest = _wire.advance_greeting(GREETING, 0, stream)
    assert done == 2
    assert _client_frames(answer) == ([(_wire.OP_TEXT, b"40")], b"")
    assert rest == _server_frame(b"430[{}]"), "what follows the greeting is left for the caller"


def test_greeting_resumes_where_a_partial_read_stopped() -> None:
    stream = _server_frame(OPEN) + _server_frame(JOINED)
    cut = len(_server_frame(OPEN)) + 3
    done, answer, rest = _wire.advance_greeting(GREETING, 0, stream[:cut])
    assert (done, _client_frames(answer)[0], rest) == (1, [(_wire.OP_TEXT, b"40")], stream[cut - 3 : cut])
    done, answer, rest = _wire.advance_greeting(GREETING, done, rest + stream[cut:])
    assert (done, answer, rest) == (2, b"", b"")


def test_a_mode_without_greeting_is_ready_at_once() -> None:
    assert _wire.advance_greeting((), 0, b"\x81\x02hi") == (0, b"", b"\x81\x02hi")


@pytest.mark.parametrize(
    "stream",
    [
        _server_frame(b'44{"message":"Unauthorized"}'),
        _server_frame(OPEN) + _server_frame(b'44{"message":"Unauthorized"}'),
        _server_frame((1008).to_bytes(2, "big") + b"policy", _wire.OP_CLOSE),
    ],
)
def test_greeting_fails_on_an_unexpected_message(stream: bytes) -> None:
    with pytest.raises(_wire.HandshakeError):
        _wire.advance_greeting(GREETING, 0, stream)


# -- a fake server for each mode --------------------------------------------------------------------


def _answer(mode: str, payload: bytes, status: int) -> bytes:
    """The fake server's reply to one request, in the mode's format."""
    if mode == "socketio":
        ack, _, args = payload[2:].partition(b"[")
        event, envelope = orjson.loads(b"[" + args)
        assert event == "request" and envelope["id"] == int(ack)
        return b"43" + ack + orjson.dumps([{"id": envelope["id"], "status": status, "data": USER}])
    request = orjson.loads(payload)
    if mode == "dcrf":
        assert (request["action"], request["pk"]) == ("retrieve", 17)
        reply = {
            "errors": [] if status == 200 else ["Not found"],
            "data": USER if status == 200 else None,
            "action": "retrieve",
            "response_status": status,
            "request_id": request["request_id"],
        }
        return orjson.dumps(reply)
    return orjson.dumps({"id": request["id"], "status": status, "data": USER})


class FakeServer:
    """A WebSocket server thread per connection, speaking one mode, answering batches in reverse order.

    In Socket.IO mode it greets like python-socketio (open packet, then the
    namespace connect once the client sends ``40``) and sends an Engine.IO
    ping before each batch of replies, counting the client's pongs.
    """

    def __init__(self, mode: str, status: int = 200) -> None:
        self.mode = mode
        self.status = status
        self.pongs = 0
        self.greeted = 0
        self._count = threading.Lock()  # one thread per connection counts the greetings
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def close(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with conn:
                buf = self._upgrade(conn)
                if buf is None:
                    return
                self._loop(conn, buf)
        except OSError:
            pass

    def _upgrade(self, conn: socket.socket) -> bytes | None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            head += chunk
        head, _, buf = head.partition(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        if self.mode == "socketio":
            assert head.startswith(b"GET /socket.io/?EIO=4&transport=websocket ")
            conn.sendall(_server_frame(OPEN))
        return buf

    def _loop(self, conn: socket.socket, buf: bytes) -> None:
        joined = self.mode != "socketio"
        while not self.stopped.is_set():
            frames, buf = _client_frames(buf)
            replies = []
            for opcode, payload in frames:
                if opcode == _wire.OP_CLOSE:
                    conn.sendall(_server_frame(payload[:2], _wire.OP_CLOSE))
                    return
                if not joined:
                    assert payload == b"40", payload
                    with self._count:  # counted before the reply: a client never sees it uncounted
                        self.greeted += 1
                    conn.sendall(_server_frame(JOINED))
                    joined = True
                elif payload == b"3":
                    self.pongs += 1
                else:
                    replies.append(_answer(self.mode, payload, self.status))
            if replies:
                ping = _server_frame(b"2") if self.mode == "socketio" else b""
                conn.sendall(ping + b"".join(_server_frame(r) for r in reversed(replies)))
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(mode: str, status: int = 200) -> FakeServer:
        servers.append(FakeServer(mode, status))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _drive(server: FakeServer, **kwargs: Any) -> Any:
    return run_load(
        "127.0.0.1",
        server.port,
        connections=2,
        window=4,
        warmup=0.05,
        duration=0.25,
        key=server.mode,
        **kwargs,
    )


@pytest.mark.parametrize("mode", ["id", "dcrf", "socketio"])
def test_load_generator_matches_replies_that_come_back_out_of_order(
    mode: str, fake_server: Callable[..., FakeServer]
) -> None:
    server = fake_server(mode)
    result = _drive(server)
    assert result.requests > 0 and result.errors == 0
    if mode == "socketio":
        assert server.greeted == 2, "each connection joined the namespace"
        assert server.pongs > 0, "the server's pings were answered"


@pytest.mark.parametrize("mode", ["id", "dcrf", "socketio"])
def test_load_generator_counts_replies_whose_status_is_not_200(
    mode: str, fake_server: Callable[..., FakeServer]
) -> None:
    result = _drive(fake_server(mode, status=404))
    assert result.requests > 0 and result.errors >= result.requests


def test_handshakes_and_idle_connections_include_the_socketio_greeting(
    fake_server: Callable[..., FakeServer],
) -> None:
    server = fake_server("socketio")
    churn = run_handshakes(
        "127.0.0.1", server.port, concurrency=2, warmup=0.02, duration=0.2, key="socketio", timeout=2.0
    )
    assert churn.handshakes > 0 and churn.errors == 0
    assert server.greeted >= churn.handshakes
    time.sleep(0.2)  # handshakes the churn left in flight finish their greeting
    before = server.greeted
    socks = open_idle("127.0.0.1", server.port, 3, key="socketio")
    try:
        assert len(socks) == 3
    finally:
        close_idle(socks)
    assert server.greeted == before + 3
