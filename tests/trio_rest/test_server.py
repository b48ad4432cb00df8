"""The server over real sockets on 127.0.0.1: bursts, bad input, slow clients, shutdown, HTTP."""

from __future__ import annotations

import logging

import orjson
import pytest
import trio
import trio_websocket
import wsproto
import wsproto.events

from trio_rest import Request, endpoint
from trio_rest._engine import ENGINE_NAMES
from trio_rest._keepalive import keepalive

from ..protocol.test_readers import BAD_INPUTS
from ._sockets import RawClient, http_exchange, running
from .conftest import build_app
from .test_engines import masked_frame

pytestmark = pytest.mark.parametrize("engine", ENGINE_NAMES)


def _url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


async def test_pipelined_burst_of_1000_answered_exactly_once(engine: str) -> None:
    with trio.fail_after(30):
        async with (
            running(build_app(engine=engine)) as server,
            trio_websocket.open_websocket_url(_url(server.port)) as ws,
        ):
            for i in range(1000):
                await ws.send_message(
                    orjson.dumps({"method": "GET", "url": f"/user/{i + 1000}", "id": i}).decode()
                )
            replies = [orjson.loads(await ws.get_message()) for _ in range(1000)]
    ids = [reply["id"] for reply in replies]
    assert sorted(ids) == list(range(1000))
    assert all(reply["status"] == 200 and reply["data"]["id"] == reply["id"] + 1000 for reply in replies)


async def test_cancel_timeout_crash_and_routing_over_a_socket(engine: str) -> None:
    with trio.fail_after(20):
        async with (
            running(build_app(engine=engine)) as server,
            trio_websocket.open_websocket_url(_url(server.port)) as ws,
        ):
            requests = [
                {"method": "GET", "url": "/sleep", "id": "cancelled"},
                {"method": "GET", "url": "/sleep", "id": "late", "timeout": 0.2},
                {"method": "GET", "url": "/crash", "id": "crash"},
                {"method": "GET", "url": "/hello/ada/", "id": "hello"},
                {"method": "GET", "url": "/nowhere", "id": "404"},
                {"method": "PATCH", "url": "/user/1", "id": "405"},
                {"type": "cancel", "id": "cancelled"},
            ]
            for request in requests:
                await ws.send_message(orjson.dumps(request).decode())
            replies = {}
            for _ in range(6):
                reply = orjson.loads(await ws.get_message())
                replies[reply["id"]] = reply
    assert {key: (reply["status"], reply.get("code")) for key, reply in replies.items()} == {
        "cancelled": (499, "cancelled"),
        "late": (504, "timeout"),
        "crash": (500, "internal_error"),
        "hello": (200, None),
        "404": (404, "not_found"),
        "405": (405, "method_not_allowed"),
    }
    assert replies["hello"]["data"] == {"greeting": "Hello, ada", "user": "/user/3"}
    assert "secret" not in str(replies["crash"])


SENDABLE = [case for case in BAD_INPUTS if not (isinstance(case[1], str) and "\udc00" in case[1])]


async def test_bad_inputs_get_their_reply_and_the_connection_serves_on(engine: str) -> None:
    with trio.fail_after(30):
        async with (
            running(build_app(engine=engine)) as server,
            trio_websocket.open_websocket_url(_url(server.port), max_message_size=8 * 2**20) as ws,
        ):
            for name, message, status, code, echoed in SENDABLE:
                await ws.send_message(message)
                reply = orjson.loads(await ws.get_message())
                assert (reply["status"], reply["code"], reply["id"]) == (status, code, echoed), name
            await ws.send_message('{"method": "GET", "url": "/user/1", "id": "after"}')
            assert orjson.loads(await ws.get_message())["status"] == 200


async def test_invalid_utf8_text_frame_closes_with_1007(engine: str) -> None:
    with trio.fail_after(10):
        async with running(build_app(engine=engine, close_timeout=0.2)) as server:
            client = await RawClient.connect(server.port)
            frame = bytearray(client.frame("é"))
            # Corrupt the masked payload's first byte so the text is no longer UTF-8.
            frame[-2] ^= 0xFF
            await client.stream.send_all(bytes(frame))
            data = await client.stream.receive_some(1024)
            client.ws.receive_data(data)
            closes = [e for e in client.ws.events() if type(e).__name__ == "CloseConnection"]
    assert closes and closes[0].code == 1007


async def test_frame_beyond_the_transport_limit_closes_with_1009(engine: str) -> None:
    with trio.fail_after(10):
        async with (
            running(
                build_app(engine=engine, max_message_size=1000, max_frame_size=2000, close_timeout=0.2)
            ) as server,
            trio_websocket.open_websocket_url(_url(server.port)) as ws,
        ):
            await ws.send_message("x" * 1500)  # above the envelope limit: a 413 reply
            assert orjson.loads(await ws.get_message())["status"] == 413
            await ws.send_message("x" * 3000)  # above the frame limit: the socket closes
            with pytest.raises(trio_websocket.ConnectionClosed) as info:
                await ws.get_message()
    assert info.value.reason.code == 1009


async def test_client_that_never_reads_is_disconnected_and_others_are_not(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_rest")
    app = build_app(engine=engine, max_outbound_bytes=256 * 1024)
    with trio.fail_after(60):
        async with running(app) as server:
            hog = await RawClient.connect(server.port)
            big = orjson.dumps({"method": "PUT", "url": "/user/1", "data": {"pad": "x" * 60_000}}).decode()
            frame = hog.frame(big)
            async with trio_websocket.open_websocket_url(_url(server.port)) as polite:
                # The hog sends requests whose replies it never reads, until the server gives up on it.
                for _ in range(400):
                    if not server.connections or len(server.connections) < 2:
                        break
                    try:
                        await hog.stream.send_all(frame)
                    except trio.BrokenResourceError:
                        break
                    await trio.sleep(0.01)
                    await polite.send_message('{"method": "GET", "url": "/user/2", "id": 1}')
                    assert orjson.loads(await polite.get_message())["status"] == 200
                while len(server.connections) > 1:
                    await trio.sleep(0.05)
                for conn in server.connections:
                    assert conn.stats().outbound_bytes <= app.settings.max_outbound_bytes
    assert "not read, disconnecting" in caplog.text
    assert "closed with 1008" in caplog.text


@endpoint
async def _many(request: Request, n: int) -> str:
    return "x" * n  # never waits: the reader runs it and writes its reply itself


async def test_a_reply_bigger_than_the_socket_takes_arrives_whole_and_in_order(engine: str) -> None:
    # 16 MB: more than a loopback socket takes in one write. The reader writes what it
    # takes and reads on; the writer task sends the rest, then the next reply.
    size = 16 * 1024 * 1024
    app = build_app(engine=engine, max_outbound_bytes=4 * size)
    app.router.register("/many/{n:int}", _many, "GET")
    with trio.fail_after(20):
        async with running(app) as server:
            client = await RawClient.connect(server.port)
            await client.stream.send_all(
                client.frame(f'{{"method": "GET", "url": "/many/{size}", "id": 1}}')
                + client.frame('{"method": "GET", "url": "/user/2", "id": 2}')
            )
            await trio.sleep(0.2)
            await client.send('{"method": "GET", "url": "/user/3", "id": 3}')
            replies = await client.replies(3, seconds=15)
            assert [(r["id"], r["status"]) for r in replies] == [(1, 200), (2, 200), (3, 200)]
            assert replies[0]["data"] == "x" * size
            await client.stream.aclose()


async def test_graceful_shutdown_closes_every_client_with_1001(engine: str) -> None:
    codes: list[int] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            from trio_rest import Server

            server = await nursery.start(Server(build_app(engine=engine)).serve, "127.0.0.1", 0)

            async def client(ready: trio.Event) -> None:
                async with trio_websocket.open_websocket_url(_url(server.port)) as ws:
                    ready.set()
                    with pytest.raises(trio_websocket.ConnectionClosed) as info:
                        await ws.get_message()
                    codes.append(info.value.reason.code)

            for _ in range(3):
                ready = trio.Event()
                nursery.start_soon(client, ready)
                await ready.wait()
            await server.shutdown()
    assert codes == [1001, 1001, 1001]


async def test_graceful_shutdown_lets_requests_in_flight_finish(engine: str) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            from trio_rest import Server

            server = await nursery.start(Server(build_app(engine=engine)).serve, "127.0.0.1", 0)
            async with trio_websocket.open_websocket_url(_url(server.port)) as ws:
                await ws.send_message('{"method": "GET", "url": "/sleep?seconds=0.3", "id": 1}')
                await trio.sleep(0.1)
                nursery.start_soon(server.shutdown)
                assert orjson.loads(await ws.get_message())["data"] == "woke"
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
    assert info.value.reason.code == 1001


async def test_cancelling_serve_still_closes_clients_with_1001(engine: str) -> None:
    from trio_rest import Server

    with trio.fail_after(20):
        async with trio.open_nursery() as outer:
            serve_scope = trio.CancelScope()

            async def serve_until_cancelled(
                task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED,
            ) -> None:
                with serve_scope:
                    await Server(build_app(engine=engine)).serve("127.0.0.1", 0, task_status=task_status)

            server = await outer.start(serve_until_cancelled)
            async with trio_websocket.open_websocket_url(_url(server.port)) as ws:
                serve_scope.cancel()
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
    assert info.value.reason.code == 1001


async def test_dead_peer_is_closed_after_ping_timeout(engine: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_rest")
    app = build_app(engine=engine, ping_interval=0.2, ping_timeout=0.2)
    with trio.fail_after(10):
        async with running(app) as server:
            client = await RawClient.connect(server.port)  # never reads, never answers a ping
            while not server.connections:
                await trio.sleep(0.01)
            while server.connections:
                await trio.sleep(0.05)
            await client.stream.aclose()
    assert "no answer to a ping" in caplog.text


async def test_a_client_that_answers_pings_stays(engine: str) -> None:
    app = build_app(engine=engine, ping_interval=0.1, ping_timeout=0.1)
    with trio.fail_after(10):
        async with running(app) as server, trio_websocket.open_websocket_url(_url(server.port)) as ws:
            await trio.sleep(0.6)  # trio-websocket answers the server's pings while we wait
            await ws.send_message('{"method": "GET", "url": "/user/1", "id": 1}')
            assert orjson.loads(await ws.get_message())["status"] == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", b"200"),
        (b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
        (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"404"),
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
    ],
)
async def test_plain_http_is_answered(engine: str, request_bytes: bytes, status: bytes) -> None:
    with trio.fail_after(10):
        async with running(build_app(engine=engine)) as server:
            reply = await http_exchange(server.port, request_bytes)
    assert reply.split(b" ")[1] == status
    if status == b"200":
        assert orjson.loads(reply.partition(b"\r\n\r\n")[2]) == {"status": "ok", "connections": 0}


async def test_silent_connection_is_dropped_after_the_handshake_timeout(engine: str) -> None:
    with trio.fail_after(10):
        async with running(build_app(engine=engine, handshake_timeout=0.2)) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                assert await stream.receive_some(100) == b""


async def test_connection_limit_is_http_503(engine: str) -> None:
    with trio.fail_after(10):
        async with (
            running(build_app(engine=engine, max_connections=1, close_timeout=0.2)) as server,
            trio_websocket.open_websocket_url(_url(server.port)),
        ):
            while not server.connections:
                await trio.sleep(0.01)
            with pytest.raises(trio_websocket.ConnectionRejected) as info:
                async with trio_websocket.open_websocket_url(_url(server.port)):
                    pass  # pragma: no cover
    assert info.value.status_code == 503


async def test_msgpack_over_a_real_socket(engine: str) -> None:
    import msgpack

    with trio.fail_after(10):
        async with (
            running(build_app(engine=engine)) as server,
            trio_websocket.open_websocket_url(_url(server.port), subprotocols=["trio-rest.msgpack"]) as ws,
        ):
            assert ws.subprotocol == "trio-rest.msgpack"
            await ws.send_message(msgpack.packb({"method": "GET", "url": "/user/5", "id": 1}))
            reply = msgpack.unpackb(await ws.get_message())
    assert reply["data"] == {"id": 5, "args": {}}


async def test_an_idle_connection_holds_no_task_but_its_own(engine: str) -> None:
    """Memory per idle connection: no writer and no keepalive task of its own (one keepalive per run)."""
    app = build_app(engine=engine)
    with trio.fail_after(10):
        async with running(app) as server:
            clients = [await RawClient.connect(server.port) for _ in range(3)]
            while len(server.connections) < 3:
                await trio.sleep(0.01)
            await trio.sleep(0.05)
            for conn in server.connections:
                assert conn.stats().tasks == 0
            assert len(keepalive()) == 3
            # A request and its reply: the reader runs a view that never waits and writes
            # the reply itself, with no worker and no writer.
            async with trio_websocket.open_websocket_url(_url(server.port)) as ws:
                await ws.send_message('{"method": "GET", "url": "/user/1", "id": 1}')
                assert orjson.loads(await ws.get_message())["status"] == 200
                for conn in server.connections:
                    assert conn.stats().tasks == 0
            for client in clients:
                await client.stream.aclose()


async def test_frames_sent_with_the_handshake_are_answered(engine: str) -> None:
    # One write: the upgrade request and a request frame the client did not wait to send
    # (RFC 6455 section 4.1 forbids it, but the server answers it rather than lose it).
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    head = ws.send(wsproto.events.Request(host="127.0.0.1", target="/"))
    frame = masked_frame(0x1, orjson.dumps({"method": "GET", "url": "/user/7", "id": 1}))
    replies: list[dict[str, object]] = []
    with trio.fail_after(10):
        async with running(build_app(engine=engine)) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(head + frame)
                while not replies:
                    data = await stream.receive_some(65536)
                    assert data, "the server closed the connection"
                    ws.receive_data(data)
                    replies += [
                        orjson.loads(event.data)
                        for event in ws.events()
                        if isinstance(event, wsproto.events.TextMessage)
                    ]
    assert replies[0]["status"] == 200 and replies[0]["data"] == {"id": 7, "args": {}}


@pytest.mark.parametrize(
    ("change", "statuses"),
    [
        ((b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Key: short"), {b"400"}),
        ((b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"), {b"400", b"426"}),
        ((b"Connection: Upgrade", b"Connection: Upgrade\r\nContent-Length: 2"), {b"400"}),
    ],
)
async def test_a_refused_upgrade_gets_the_engines_http_error(
    engine: str, change: tuple[bytes, bytes], statuses: set[bytes]
) -> None:
    head = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with trio.fail_after(10):
        async with running(build_app(engine=engine, close_timeout=0.2)) as server:
            reply = await http_exchange(server.port, head.replace(*change))
    assert reply.split(b" ")[1] in statuses
    assert b"Connection: close\r\n" in reply and b"invalid WebSocket handshake" in reply
