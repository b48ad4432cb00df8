"""The load generator: raw non-blocking sockets on one epoll, prebuilt masked frames.

It has to be faster than every server it drives, so its per-reply work is a
frame split, one `orjson.loads` (to find the correlation key and notice
errors), and list operations; every request frame is built before the clock
starts, and all the requests a read makes room for go out in one ``send``.

What is sent and how a reply is matched to its request is the server's
correlation mode (`_wire.Mode`, named by ``key``): the same loops drive every
server, whether it echoes an ``id``, an ``event_name`` or a ``request_id``, or
speaks Socket.IO (event packets with an ack id, a namespace to join first and
Engine.IO pings to answer).

Everything here is bounded: in time (a measurement window plus a drain
deadline, a stall timeout) and in count (`max_requests`).
"""

from __future__ import annotations

import collections
import errno
import gc
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import attrs
import orjson

from ._wire import (
    CLOSE_FRAME,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    HandshakeError,
    Mode,
    advance_greeting,
    check_response_head,
    get_mode,
    masked_frame,
    read_handshake,
    request_frames,
    socketio_ack,
    split_frames,
    upgrade_request,
)

__all__ = [
    "HandshakeResult",
    "LoadError",
    "LoadResult",
    "close_idle",
    "open_idle",
    "run_handshakes",
    "run_load",
]

_NS = 1_000_000_000
_DATA_OPCODES = frozenset((OP_TEXT, OP_BINARY))
_READ_SIZE = 64 * 1024


class LoadError(Exception):
    """The run could not be carried out (the server refused, stalled or vanished)."""


@attrs.frozen(kw_only=True)
class LoadResult:
    """What one request-rate run measured.

    Attributes:
        requests: replies received inside the measurement window.
        seconds: the window's length.
        rps: requests per second.
        p50_ms: median latency (send to reply), milliseconds.
        p99_ms: 99th percentile latency, milliseconds.
        errors: replies that were errors (a status other than 200, or a ``detail``;
            the status field is the mode's, e.g. DCRF's ``response_status``).
        loadgen_cpu_s: CPU seconds this process spent inside the window.
        probe: what the caller's probe returned at the start and at the end of the window.
    """

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    loadgen_cpu_s: float
    probe: tuple[Any, Any]


@attrs.frozen(kw_only=True)
class HandshakeResult:
    """What one connection-churn run measured.

    Attributes:
        handshakes: upgrades completed inside the window (each followed by a close).
        seconds: the window's length.
        rate: handshakes per second.
        errors: connections that failed (refused, reset, timed out).
        probe: the caller's probe at the window's start and end.
    """

    handshakes: int
    seconds: float
    rate: float
    errors: int
    probe: tuple[Any, Any]


def _percentile(ordered: list[int], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@contextmanager
def _no_gc() -> Iterator[None]:
    """Keep the collector out of the measurement (it would add pauses to the latencies)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Client:
    """One pipelining connection: its socket, free correlation slots and send times."""

    __slots__ = ("buf", "free", "out", "sent_at", "sock")

    def __init__(self, sock: socket.socket, slots: int, early: bytes) -> None:
        self.sock = sock
        self.buf = early
        self.out = b""
        self.free: collections.deque[int] = collections.deque(range(slots))
        self.sent_at = [0] * slots


def _nothing() -> None:
    return None


def run_load(
    host: str,
    port: int,
    *,
    connections: int,
    window: int,
    warmup: float,
    duration: float,
    key: str = "id",
    path: str | None = None,
    max_requests: int = 20_000_000,
    drain: float = 2.0,
    stall: float = 5.0,
    probe: Callable[[], Any] = _nothing,
) -> LoadResult:
    """Drive a server with `connections` sockets, each keeping `window` requests in flight.

    Replies are matched to requests by the correlation mode `key` (one of
    `_wire.MODES`: ``"id"``, ``"event_name"``, ``"dcrf"``, ``"socketio"``), so
    a server may answer out of order. After `warmup` seconds the window
    opens: replies received during the next `duration` seconds are counted
    and their latencies kept. Then no more requests are sent, and those
    still in flight get `drain` seconds to arrive (not counted).

    Args:
        host: the server's address.
        port: its port.
        connections: sockets to open.
        window: requests in flight per socket.
        warmup: seconds of load before the window opens.
        duration: the window's length in seconds.
        key: the correlation mode.
        path: the upgrade request's path (None: the mode's).
        max_requests: stop sending after this many requests, whatever the time.
        drain: seconds to wait for the replies still in flight at the end.
        stall: fail when no reply arrives for this many seconds.
        probe: called when the window opens and when it closes (e.g. to read
            the server's CPU time); both results are returned.

    Returns:
        The `LoadResult`.

    Raises:
        LoadError: the handshake failed, a socket closed, the server stalled, or
            a reply could not be read.
        ValueError: `key` is not a known mode.
    """
    mode = get_mode(key)
    slots = max(2 * window, 2)
    frames = request_frames(mode, slots)
    clients: list[_Client] = []
    poller = select.epoll()
    try:
        for _ in range(connections):
            sock = _connect(host, port, stall)
            early = read_handshake(sock, host, port, path or mode.path, mode.greeting)
            sock.setblocking(False)
            clients.append(_Client(sock, slots, early))
        by_fd = {c.sock.fileno(): c for c in clients}
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        with _no_gc():
            return _drive(
                poller,
                by_fd,
                frames,
                mode=mode,
                window=window,
                warmup=warmup,
                duration=duration,
                max_requests=max_requests,
                drain=drain,
                stall=stall,
                probe=probe,
            )
    except (OSError, HandshakeError) as exc:
        raise LoadError(f"{type(exc).__name__}: {exc}") from exc
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise LoadError(f"unreadable reply ({type(exc).__name__}: {exc})") from exc
    finally:
        poller.close()
        _goodbye([(client.sock, client.buf) for client in clients])


def _send(poller: select.epoll, client: _Client, data: bytes) -> None:
    """Send what the socket takes now; keep the rest and ask to be woken when it can take more."""
    if client.out:
        client.out += data
        return
    try:
        sent = client.sock.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        client.out = data[sent:]
        poller.modify(client.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)


def _flush(poller: select.epoll, client: _Client) -> None:
    try:
        sent = client.sock.send(client.out)
    except BlockingIOError:
        return
    client.out = client.out[sent:]
    if not client.out:
        poller.modify(client.sock.fileno(), select.EPOLLIN)


def _drive(
    poller: select.epoll,
    by_fd: dict[int, _Client],
    frames: list[bytes],
    *,
    mode: Mode,
    window: int,
    warmup: float,
    duration: float,
    max_requests: int,
    drain: float,
    stall: float,
    probe: Callable[[], Any],
) -> LoadResult:
    # One hot loop, kept flat on purpose: every call here is paid once per reply.
    clock = time.perf_counter_ns
    loads = orjson.loads
    field, numeric, status, socketio = mode.field, mode.numeric, mode.status, mode.socketio
    engineio_pong = masked_frame(OP_TEXT, b"3")
    t0 = clock()
    opens = t0 + int(warmup * _NS)
    closes = opens + int(duration * _NS)
    window_start = window_end = 0
    probe_start: Any = None
    probe_end: Any = None
    cpu_start = cpu_end = 0.0
    measuring = False
    sending = True
    latencies: list[int] = []
    record = latencies.append
    errors = 0
    sent = 0
    in_flight = 0
    last_progress = t0
    drain_until = 0

    for client in by_fd.values():
        batch = []
        for _ in range(window):
            slot = client.free.popleft()
            client.sent_at[slot] = t0
            batch.append(frames[slot])
        _send(poller, client, b"".join(batch))
        sent += window
        in_flight += window

    while True:
        now = clock()
        if not measuring and window_start == 0 and now >= opens:
            probe_start, cpu_start = probe(), time.process_time()
            window_start = clock()
            measuring = True
        if measuring and now >= closes:
            probe_end, cpu_end = probe(), time.process_time()
            window_end = clock()
            measuring = False
            sending = False
            drain_until = window_end + int(drain * _NS)
        if not sending and (in_flight == 0 or now >= drain_until):
            break
        if now - last_progress > stall * _NS:
            raise LoadError(f"no reply for {stall:.0f} s ({in_flight} requests in flight)")
        for fd, events in poller.poll(0.05):
            client = by_fd[fd]
            if events & select.EPOLLOUT and client.out:
                _flush(poller, client)
            if not events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                continue
            try:
                data = client.sock.recv(_READ_SIZE)
            except BlockingIOError:
                continue
            if not data:
                raise LoadError("the server closed a connection during the run")
            now = clock()
            last_progress = now
            if client.buf:
                data = client.buf + data
            done = 0
            free, sent_at = client.free, client.sent_at
            # The frame splitter of `_wire.split_frames`, inlined: this runs once per reply.
            i, n = 0, len(data)
            while i + 2 <= n:
                length = data[i + 1] & 0x7F
                start = i + 2
                if length >= 126:
                    width = 2 if length == 126 else 8
                    if start + width > n:
                        break
                    length = int.from_bytes(data[start : start + width], "big")
                    start += width
                end = start + length
                if end > n:
                    break
                opcode = data[i] & 0x0F
                payload = data[start:end]
                i = end
                if opcode in _DATA_OPCODES:
                    if socketio:
                        if payload == b"2":  # Engine.IO's ping
                            _send(poller, client, engineio_pong)
                            continue
                        ack = socketio_ack(payload)
                        if ack is None:
                            raise LoadError(f"unexpected Socket.IO packet {payload[:80]!r}")
                        slot, reply = ack
                    else:
                        reply = loads(payload)
                        slot = reply[field] if numeric else int(reply[field])
                    free.append(slot)
                    done += 1
                    if measuring:
                        record(now - sent_at[slot])
                    if "detail" in reply or reply.get(status, 200) != 200:
                        errors += 1
                elif opcode == OP_PING:
                    _send(poller, client, masked_frame(OP_PONG, payload))
                elif opcode == OP_CLOSE:
                    raise LoadError(f"the server closed a connection: {payload[2:]!r}")
            client.buf = data[i:]
            in_flight -= done
            if sending and done:
                room = min(done, max_requests - sent)
                if room > 0:
                    batch = []
                    for _ in range(room):
                        slot = free.popleft()
                        sent_at[slot] = now
                        batch.append(frames[slot])
                    _send(poller, client, b"".join(batch))
                    sent += room
                    in_flight += room
        if sending and sent >= max_requests and in_flight == 0:
            sending = False
            drain_until = clock()

    if window_end == 0:  # max_requests ran out before the window closed
        probe_end, cpu_end = probe(), time.process_time()
        window_end = clock()
    seconds = max(window_end - window_start, 1) / _NS
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        seconds=seconds,
        rps=len(latencies) / seconds,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        errors=errors,
        loadgen_cpu_s=cpu_end - cpu_start,
        probe=(probe_start, probe_end),
    )


def _goodbye(conns: list[tuple[socket.socket, bytes]], timeout: float = 2.0) -> None:
    """Close WebSockets politely: a close frame each, then wait (bounded) for each server's reply.

    Closing abruptly would make some servers log every connection as an
    error, and logging is not what is being measured.

    Args:
        conns: each socket, with the bytes already received but not parsed.
        timeout: seconds for the whole goodbye.
    """
    deadline = time.monotonic() + timeout
    for sock, _ in conns:
        try:
            sock.setblocking(True)
            sock.sendall(CLOSE_FRAME)
        except OSError:
            pass
    for sock, buf in conns:
        try:
            while not _has_close(buf):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(remaining)
                data = sock.recv(_READ_SIZE)
                if not data:
                    break
                buf = _drop_complete(buf + data)
        except OSError:
            pass
        _close_quietly(sock)


def _drop_complete(data: bytes) -> bytes:
    """Keep a close frame if there is one, else only the incomplete tail."""
    frames, tail = split_frames(data)
    if any(opcode == OP_CLOSE for opcode, _ in frames):
        return _CLOSE_SEEN
    return tail


#: A stand-in buffer meaning "the close frame has arrived" (an unmasked close frame).
_CLOSE_SEEN = bytes((0x80 | OP_CLOSE, 0))


def _close_quietly(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


# -- connection churn -----------------------------------------------------------------------------

_CONNECTING, _UPGRADING, _GREETING, _CLOSING = range(4)


class _Churn:
    """One connection of the handshake loop, and where it is in its life."""

    __slots__ = ("buf", "expected", "greeted", "greeting", "request", "since", "sock", "state")

    def __init__(self, host: str, port: int, mode: Mode, now: int) -> None:
        self.request, self.expected = upgrade_request(host, port, mode.path)
        self.greeting = mode.greeting
        self.greeted = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.state = _CONNECTING
        self.buf = b""
        self.since = now
        err = self.sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(err, errno.errorcode.get(err, "connect failed"))


def run_handshakes(
    host: str,
    port: int,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    key: str = "id",
    timeout: float = 5.0,
    probe: Callable[[], Any] = _nothing,
) -> HandshakeResult:
    """Open, upgrade and close connections in a loop, `concurrency` at a time.

    Each cycle connects, sends the upgrade request, reads the 101, goes
    through the mode's greeting (Socket.IO: the open packet and the namespace
    connect), sends a close frame and reads until the server's close frame (or
    EOF), then closes the socket. Handshakes whose greeting ends (for most
    modes: whose 101 arrives) inside the window count.

    Args:
        host: the server's address.
        port: its port.
        concurrency: connections in progress at once.
        warmup: seconds before the window opens.
        duration: the window's length.
        key: the correlation mode, whose path and greeting are used.
        timeout: a connection stuck this long in one step counts as an error.
        probe: called when the window opens and closes.

    Returns:
        The `HandshakeResult`.

    Raises:
        ValueError: `key` is not a known mode.
    """
    mode = get_mode(key)
    clock = time.perf_counter_ns
    poller = select.epoll()
    live: dict[int, _Churn] = {}
    errors = 0
    count = 0
    t0 = clock()
    opens = t0 + int(warmup * _NS)
    closes = opens + int(duration * _NS)
    window_start = window_end = 0
    probe_start: Any = None
    probe_end: Any = None
    limit = int(timeout * _NS)

    def start(now: int) -> None:
        nonlocal errors
        try:
            conn = _Churn(host, port, mode, now)
        except OSError:
            errors += 1
            return
        live[conn.sock.fileno()] = conn
        poller.register(conn.sock.fileno(), select.EPOLLOUT)

    def finish(conn: _Churn, failed: bool) -> None:
        nonlocal errors
        fd = conn.sock.fileno()
        poller.unregister(fd)
        del live[fd]
        _close_quietly(conn.sock)
        errors += failed

    try:
        with _no_gc():
            for _ in range(concurrency):
                start(t0)
            while True:
                now = clock()
                if window_start == 0 and now >= opens:
                    probe_start = probe()
                    window_start = clock()
                if window_start and now >= closes:
                    probe_end = probe()
                    window_end = clock()
                    break
                for fd, events in poller.poll(0.05):
                    conn = live[fd]
                    now = clock()
                    outcome = _step(conn, events, poller)
                    if outcome == "upgraded":
                        if window_start:
                            count += 1
                        conn.since = now
                    elif outcome in ("done", "failed"):
                        finish(conn, outcome == "failed")
                        start(now)
                    elif outcome == "progress":
                        conn.since = now
                now = clock()
                for conn in [c for c in live.values() if now - c.since > limit]:
                    finish(conn, True)
                    start(now)
    finally:
        for conn in list(live.values()):
            _close_quietly(conn.sock)
        poller.close()
    seconds = max(window_end - window_start, 1) / _NS
    return HandshakeResult(
        handshakes=count, seconds=seconds, rate=count / seconds, errors=errors, probe=(probe_start, probe_end)
    )


def _step(conn: _Churn, events: int, poller: select.epoll) -> str:
    """Advance one churn connection on an epoll event; say what happened."""
    sock = conn.sock
    try:
        if conn.state == _CONNECTING:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return "failed"
            sock.send(conn.request)
            conn.state = _UPGRADING
            poller.modify(sock.fileno(), select.EPOLLIN)
            return "progress"
        data = sock.recv(65536)
    except BlockingIOError:
        return "waiting"
    except OSError:
        return "failed"
    if conn.state == _UPGRADING:
        if not data:
            return "failed"
        conn.buf += data
        if b"\r\n\r\n" not in conn.buf:
            return "progress"
        head, _, rest = conn.buf.partition(b"\r\n\r\n")
        try:
            check_response_head(head, conn.expected)
        except HandshakeError:
            return "failed"
        conn.state = _GREETING
        conn.buf = rest
        return _greet(conn)
    if conn.state == _GREETING:
        if not data:
            return "failed"
        conn.buf += data
        return _greet(conn)
    if not data:
        return "done"  # EOF: the server closed after the close handshake
    conn.buf += data
    return "done" if _has_close(conn.buf) else "progress"


def _greet(conn: _Churn) -> str:
    """Take the greeting's messages received so far; once it is over, start closing."""
    try:
        conn.greeted, answer, conn.buf = advance_greeting(conn.greeting, conn.greeted, conn.buf)
        if conn.greeted < len(conn.greeting):
            if answer:
                conn.sock.send(answer)
            return "progress"
        conn.sock.send(answer + CLOSE_FRAME)
    except (HandshakeError, OSError):
        return "failed"
    conn.state = _CLOSING
    return "upgraded"


def _has_close(data: bytes) -> bool:
    frames, _ = split_frames(data)
    return any(opcode == OP_CLOSE for opcode, _ in frames)


# -- idle connections --------------------------------------------------------------------------------


def open_idle(
    host: str, port: int, count: int, *, key: str = "id", timeout: float = 5.0
) -> list[socket.socket]:
    """Open `count` upgraded WebSocket connections that then say nothing.

    Each goes through its mode's greeting first (Socket.IO: it has joined the
    namespace), so the server holds all it holds for a connected client.

    Args:
        host: the server's address.
        port: its port.
        count: connections to open.
        key: the correlation mode, whose path and greeting are used.
        timeout: seconds for each connect and handshake.

    Returns:
        The sockets; pass them to `close_idle`.

    Raises:
        LoadError: a connection or handshake failed.
        ValueError: `key` is not a known mode.
    """
    mode = get_mode(key)
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _connect(host, port, timeout)
            socks.append(sock)
            read_handshake(sock, host, port, mode.path, mode.greeting)
    except (OSError, HandshakeError) as exc:
        close_idle(socks)
        raise LoadError(f"idle connection {len(socks)} failed: {exc}") from exc
    return socks


def close_idle(socks: list[socket.socket]) -> None:
    """Close idle connections politely (a close frame each, a bounded wait for the replies)."""
    _goodbye([(sock, b"") for sock in socks])
