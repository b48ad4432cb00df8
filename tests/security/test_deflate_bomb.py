"""A deflate bomb over a real socket, against a server in a subprocess: 1009, and bounded memory.

With ``permessage_deflate`` on, a client can send a message compressed about 1000 to 1: a
quarter of a MiB on the wire that inflates to 256 MiB. The server must inflate no further
than its message limit (``Settings.max_frame_size``, 4 MiB by default), close with 1009,
and keep serving. Its peak resident memory (``VmHWM``, reset before the bomb) is read from
/proc, so a growth that comes and goes between two samples still counts.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import zlib
from collections.abc import Callable

import pytest

from benchmarks._wire import OP_BINARY, OP_CLOSE, accept_key, check_response_head
from trio_rest._engine import ENGINE_NAMES

from ._server_process import ServerProcess, run_server
from .test_floods import (
    TIMEOUT,
    connect,
    health,
    wait_for_frame,
    wait_for_no_connections,
    well_behaved_request,
)

MiB = 2**20
LIMIT = 4 * MiB  # Settings.max_frame_size's default
BOMB_SIZE = 256 * MiB  # what the bomb inflates to: 64 times the limit

# The bound on the server's growth: what an honest message just under the limit costs
# (measured first, on the same server: about twice the limit, as its bytes are read, then
# copied into a message), plus a margin. The websockets engine inflates at most what is
# left of the limit, once, but zlib's output buffer and the bytes made of it hold it twice
# for a moment; the wsproto engine is fed slices that inflate to a quarter of it each.
# Measured on 2 cores: a message at the limit +7.9 MiB with either engine; the bomb +8.4
# MiB (websockets), +7.0 MiB (wsproto), where inflating it whole would take 256 MiB.
MARGIN = LIMIT // 2


def deflate_bomb(size: int) -> bytes:
    """``size`` zero bytes as one permessage-deflate payload (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(wbits=-15)
    chunk = bytes(MiB)
    parts = [compressor.compress(chunk) for _ in range(size // MiB)]
    parts.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]  # the empty block's trailer goes (section 7.2.1)


def binary_frame(payload: bytes, *, compressed: bool) -> bytes:
    """A binary client frame, RSV1 set when ``compressed``, masked with a zero key.

    A zero key leaves the payload as it is, so no Python loop masks megabytes; the server
    cannot tell (RFC 6455 section 5.3 asks clients for unpredictable keys).
    """
    first = 0x80 | (0x40 if compressed else 0) | OP_BINARY
    return bytes((first, 0x80 | 127)) + struct.pack("!Q", len(payload)) + b"\x00\x00\x00\x00" + payload


def growth_from_a_message_at_the_limit(server: ServerProcess) -> int:
    """How much an honest, uncompressed message just under the limit makes the server grow."""
    sock, received = connect(server.port)
    with sock:
        before = server.rss()
        reset_peak_rss(server)
        sock.sendall(binary_frame(bytes(LIMIT - 1024), compressed=False))
        payload, _ = wait_for_frame(sock, received, OP_BINARY)  # its 413 (binary, as it was): handled
        assert b"413" in payload
        return peak_rss(server) - before


def connect_with_deflate(port: int) -> tuple[socket.socket, bytes, bytes]:
    """Open a WebSocket that offers permessage-deflate; return it, the 101's head, and what followed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" % (port, key)
    )
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection during the handshake"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    check_response_head(head, accept_key(key))
    return sock, head, rest


def peak_rss(server: ServerProcess) -> int:
    """The server's peak resident memory since the last reset (``VmHWM``), in bytes."""
    with open(f"/proc/{server.pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM line in /proc status")  # pragma: no cover - Linux always has it


def reset_peak_rss(server: ServerProcess) -> None:
    """Make ``VmHWM`` start again from the current RSS (Linux 4.0 and later)."""
    with open(f"/proc/{server.pid}/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_a_deflate_bomb_is_closed_with_1009_and_memory_stays_near_the_limit(
    engine: str, record_property: Callable[[str, object], None]
) -> None:
    bomb = deflate_bomb(BOMB_SIZE)
    assert len(bomb) < BOMB_SIZE // 1000
    wire = binary_frame(bomb, compressed=True)
    args = ("--engine", engine, "--set", "permessage_deflate=true")
    with run_server("tests.security._app:build_app", *args) as server:
        # A first exchange loads what the server imports lazily (zlib's contexts included).
        assert well_behaved_request(server.port)["data"] == "pong"
        honest = growth_from_a_message_at_the_limit(server)
        wait_for_no_connections(server)
        sock, head, received = connect_with_deflate(server.port)
        assert b"permessage-deflate" in head.lower()
        with sock:
            before = server.rss()
            reset_peak_rss(server)
            # The server may close before it has read everything.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(wire)
            payload, _ = wait_for_frame(sock, received, OP_CLOSE)
            assert struct.unpack("!H", payload[:2])[0] == 1009
        peak = peak_rss(server)
        wait_for_no_connections(server)
        # The server still serves, over WebSocket and plain HTTP.
        reply = well_behaved_request(server.port)
        assert (reply["status"], reply["data"]) == (200, "pong")
        assert health(server.port)["status"] == "ok"
    growth = peak - before
    record_property("rss_before", before)
    record_property("rss_peak", peak)
    record_property("rss_growth_message_at_the_limit", honest)
    print(
        f"{engine}: a {len(bomb)}-byte frame inflating to {BOMB_SIZE // MiB} MiB, limit {LIMIT // MiB} MiB:"
        f" RSS {before / MiB:.1f} MiB before, peak {peak / MiB:.1f} MiB (+{growth / MiB:.1f});"
        f" an uncompressed message at the limit: +{honest / MiB:.1f} MiB"
    )
    assert growth < max(honest, 2 * LIMIT) + MARGIN, f"{engine}: the server grew by {growth / MiB:.1f} MiB"
