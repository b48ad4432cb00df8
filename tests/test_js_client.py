"""The JavaScript client: served on the HTTP side of the port, and tested by Node (tests/js/)."""

from __future__ import annotations

from pathlib import Path

import trio

from examples import hello
from tests._node import run_node_tests
from tests.trio_rest._sockets import http_get
from trio_rest import Server

ROOT = Path(__file__).parents[1]
CLIENT = ROOT / "trio_rest" / "static" / "trio-rest.js"


async def test_get_trio_rest_js_serves_the_client_as_javascript() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(hello.app).serve, "127.0.0.1", 0)
            head, body = await http_get(server.port, "/trio-rest.js")
            missing, _ = await http_get(server.port, "/trio-rest.jsx")
            nursery.cancel_scope.cancel()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nContent-Type: text/javascript; charset=utf-8\r\n" in head
    assert f"\r\nContent-Length: {len(body)}\r\n".encode() in head
    assert body == CLIENT.read_bytes()
    assert b"export async function connect(" in body
    assert missing.startswith(b"HTTP/1.1 404 ")


def test_the_node_tests_of_the_javascript_client_pass() -> None:
    """``node --test tests/js/client.test.mjs``, against a server started from this tree's sources."""
    counts = run_node_tests("client.test.mjs")
    assert counts["skipped"] == 1, counts  # only the test of a Node without WebSocket


def test_the_node_tests_of_the_messagepack_codec_pass() -> None:
    """``node --test tests/js/msgpack.test.mjs``: the client's codec against this Python's ``msgpack``."""
    counts = run_node_tests("msgpack.test.mjs")
    assert counts["skipped"] == 0 and counts["pass"] == counts["tests"], counts
