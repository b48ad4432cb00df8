"""The JavaScript client: served on the HTTP side of the port, and tested by Node (tests/js/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from examples import hello
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


def _node_flags(node: str) -> list[str]:
    """What this Node needs for a global WebSocket: nothing (22 and later) or a flag (20)."""
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    if subprocess.run([node, "-e", probe], check=False).returncode == 0:
        return []
    flagged = [node, "--experimental-websocket", "-e", probe]
    if subprocess.run(flagged, check=False, capture_output=True).returncode == 0:
        return ["--experimental-websocket"]
    pytest.skip("this Node has no WebSocket, even with --experimental-websocket (Node 18: use 20 or later)")


def test_the_node_tests_of_the_javascript_client_pass() -> None:
    """``node --test tests/js/client.test.mjs``, against a server started from this tree's sources."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript client's tests need Node 20 or later")
    pythonpath = os.pathsep.join([str(ROOT), str(ROOT / "protocol")])
    env = {**os.environ, "PYTHONPATH": pythonpath, "TRIO_REST_PYTHON": sys.executable}
    done = subprocess.run(
        [node, *_node_flags(node), "--test", "tests/js/client.test.mjs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "# fail 0" in report and "# pass 0" not in report, report
    assert "# skipped 1" in report, report  # only the test of a Node without WebSocket
