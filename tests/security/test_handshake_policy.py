"""Who may open a WebSocket: the Origin allow-list, and caps that count half-open handshakes."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio_websocket

from tests.trio_rest._sockets import running
from tests.trio_rest.conftest import build_app
from trio_rest import ConfigurationError, Server, Settings
from trio_rest._admission import origin_key


async def _get_user(server: Server, **options: object) -> int:
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{server.port}/", **options) as ws:  # type: ignore[arg-type]
        await ws.send_message('{"method": "GET", "url": "/user/1", "id": 1}')
        return int(orjson.loads(await ws.get_message())["status"])


async def _handshake_status(server: Server, origin: str) -> int:
    with pytest.raises(trio_websocket.HandshakeError) as info:
        await _get_user(server, extra_headers=[("Origin", origin)])
    return int(getattr(info.value, "status_code", 0))


async def test_an_origin_outside_the_list_is_refused_before_the_upgrade() -> None:
    app = build_app(allowed_origins=["https://app.example", "http://localhost:3000"])
    with trio.fail_after(20):
        async with running(app) as server:
            for origin in ("https://evil.example", "http://app.example", "https://app.example:8443", "null"):
                assert await _handshake_status(server, origin) == 403, origin
            for origin in ("https://app.example", "https://APP.example:443", "http://localhost:3000"):
                assert await _get_user(server, extra_headers=[("Origin", origin)]) == 200, origin
            assert await _get_user(server) == 200  # no Origin: not a browser, let through
            server.admission.check_invariants()


def test_allowed_origins_are_checked_when_the_settings_are_made() -> None:
    assert (
        origin_key("https://a.example") == origin_key("https://A.example:443") == ("https", "a.example", 443)
    )
    for bad in ("app.example", "https://a.example/path", "ftp://a.example", "https://user@a.example"):
        with pytest.raises(ConfigurationError, match="allowed_origins"):
            Settings(allowed_origins=(bad,))


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_address"])
async def test_half_open_handshakes_count_against_the_caps(limit: str) -> None:
    app = build_app(**{limit: 3, "handshake_timeout": 30.0})
    with trio.fail_after(20):
        async with running(app) as server:
            # Three sockets that never send their handshake: they hold the whole cap.
            idle = [await trio.open_tcp_stream("127.0.0.1", server.port) for _ in range(3)]
            while server.admission.total < 3:
                await trio.sleep(0.01)
            refused = await trio.open_tcp_stream("127.0.0.1", server.port)
            answer = b""
            while chunk := await refused.receive_some(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 503 ")
            await refused.aclose()
            await idle.pop().aclose()  # one leaves: a well-behaved client gets its place
            while server.admission.total > 2:
                await trio.sleep(0.01)
            assert await _get_user(server) == 200
            for stream in idle:
                await stream.aclose()
            while server.admission.total:
                await trio.sleep(0.01)
            server.admission.check_invariants()
