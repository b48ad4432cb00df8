"""The RFC 6455 handshake helpers of ``_handshake``, on parsed request heads.

The engines' handling of good and bad upgrades, through ``receive_handshake``, is tested
in ``test_engines.py``; these are the helpers the wsproto engine builds on.
"""

from __future__ import annotations

import pytest

from trio_rest._handshake import check_upgrade_request, render_switching_protocols
from trio_rest._http import HTTPError, HTTPRequest, parse_request_head

from ._handshakes import HANDSHAKE, http_status


def test_check_upgrade_request_builds_the_handshake() -> None:
    parsed = parse_request_head(HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: x,y\r\n\r\n"))
    assert parsed is not None
    handshake = check_upgrade_request(parsed[0])
    assert (handshake.path, handshake.query, handshake.subprotocols) == ("/chat", "token=abc", ("x", "y"))
    assert handshake.headers == parsed[0].headers
    with pytest.raises(HTTPError) as info:
        check_upgrade_request(HTTPRequest("GET", "/", (("host", "x"),), "1.1"))
    assert info.value.status == 426 and info.value.headers == (("Upgrade", "websocket"),)
    assert http_status(info.value.response) == 426


def test_render_switching_protocols() -> None:
    out = render_switching_protocols("dGhlIHNhbXBsZSBub25jZQ==", "trio-rest.json", [("X-A", "1")])
    assert out == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: trio-rest.json\r\n"
        b"X-A: 1\r\n\r\n"
    )
