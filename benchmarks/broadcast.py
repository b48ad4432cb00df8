"""Broadcast fan-out across processes: notifications delivered to 1,000 subscribers, and their delay.

    python -m benchmarks.broadcast [--subscribers 1000] [--rates 10,20,40] [--duration 5]
                                   [--rows trio-memory,trio-redis,socketio,channels]

Each row is a server of two processes (one for the in-memory broker, which cannot span
more) with a thousand WebSocket subscribers of one topic, room or group, and one publisher
sending ``{"n", "t", "pad"}`` at a steady rate for `duration` seconds: through Redis from a
process of its own for every Redis row (trio-rest's `RedisBroker`, python-socketio's
``AsyncRedisManager(write_only=True)``, Channels' ``group_send``), through ``POST
/publish`` for the in-memory broker. Every row shares one redis-server started for the run.
The subscribers are raw sockets on one epoll in this process; each notification's delay is
the time it was read minus the time in its body (one machine, one clock).

Reported per row and rate (publishes per second times subscribers: the deliveries asked
for): deliveries per second achieved over the publishing time, the share lost (never
delivered within a drain of a few seconds), and the p50 and p99 delay.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import attrs
import orjson

from ._redis import redis_server
from ._servers import REPO, free_port, project_env
from ._venv import ensure_venv
from ._wire import OP_PING, OP_PONG, OP_TEXT, masked_frame, read_handshake, split_frames

__all__ = ["ROWS", "Row", "main", "measure"]

_SOCKETIO_GREETING = ((b"0{", b"40"), (b"40", b""))


@attrs.frozen
class Row:
    """One server of the comparison.

    Attributes:
        name: its name on the command line.
        label: its title in the table.
        kind: how subscribers talk to it: ``"trio-rest"``, ``"socketio"`` or ``"channels"``.
        competitor: it runs in the competitors' virtual environment.
        redis: it needs the Redis server.
    """

    name: str
    label: str
    kind: str
    competitor: bool
    redis: bool


ROWS = {
    row.name: row
    for row in (
        Row("trio-memory", "trio-rest, in-memory broker (1 process)", "trio-rest", False, False),
        Row("trio-redis", "trio-rest, RedisBroker (2 workers)", "trio-rest", False, True),
        Row("socketio", "python-socketio, AsyncRedisManager (2 uvicorn workers)", "socketio", True, True),
        Row("channels", "Django Channels, channels_redis (2 uvicorn workers)", "channels", True, True),
    )
}


@contextmanager
def _server(row: Row, redis: str, python: str) -> Iterator[int]:
    """Start the row's server on a free port; yield the port; stop it and its workers."""
    port = free_port()
    env = {**project_env(None), "BROADCAST_REDIS": redis}
    if row.kind == "trio-rest":
        command = [sys.executable, "-m", "trio_rest", "run", "benchmarks.servers.broadcast_trio:app"]
        command += ["--port", str(port), "--log-level", "WARNING"]
        if row.redis:
            command += ["--workers", "2", "--broker", redis]
    else:
        module = f"benchmarks.servers.broadcast_{row.kind}"
        command = [python, "-m", module, "--serve", "--port", str(port), "--redis", redis, "--workers", "2"]
    with tempfile.TemporaryFile() as log:  # a file: a pipe nobody reads could block the server
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )
        try:
            _wait_listening(port, process, log)
            time.sleep(1.0)  # every worker up, not only the first
            yield port
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after 60 s")


def _subscribe(row: Row, port: int, count: int) -> list[tuple[socket.socket, bytes]]:
    """Open `count` subscribers; each socket with the bytes already read after its handshake."""
    subscribers = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if row.kind == "socketio":
            rest = read_handshake(
                sock, "127.0.0.1", port, "/socket.io/?EIO=4&transport=websocket", _SOCKETIO_GREETING
            )
        else:
            rest = read_handshake(sock, "127.0.0.1", port)
        if row.kind == "trio-rest":
            sock.sendall(masked_frame(OP_TEXT, b'{"method": "SUBSCRIBE", "url": "/feed", "id": 1}'))
        subscribers.append((sock, rest))
    return subscribers


def _note_body(kind: str, payload: bytes) -> Any:
    """The published body a text frame carries, or None for other messages."""
    if kind == "trio-rest":
        if b'"notification"' not in payload:
            return None
        return orjson.loads(payload)["data"]
    if kind == "socketio":
        if not payload.startswith(b'42["note",'):
            return None
        return orjson.loads(payload[2:])[1]
    return orjson.loads(payload)


def _publisher(
    row: Row, redis: str, port: int, python: str, rate: float, duration: float
) -> subprocess.Popen[bytes]:
    common = ["--publish", "--rate", str(rate), "--duration", str(duration)]
    env = {**project_env(None), "BROADCAST_REDIS": redis}
    if row.kind == "trio-rest":
        where = ["--redis", redis] if row.redis else ["--url", f"ws://127.0.0.1:{port}/"]
        command = [sys.executable, "-m", "benchmarks.servers.broadcast_trio", *common, *where]
    else:
        command = [python, "-m", f"benchmarks.servers.broadcast_{row.kind}", *common, "--redis", redis]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def measure(
    row: Row, redis: str, python: str, subscribers: int, rate: float, duration: float
) -> dict[str, float]:
    """One point: `subscribers` sockets, `rate` publishes per second for `duration` seconds."""
    with _server(row, redis, python) as port:
        socks = _subscribe(row, port, subscribers)
        time.sleep(1.0)  # the last subscriptions settle
        delays: list[float] = []
        try:
            publisher = _publisher(row, redis, port, python, rate, duration)
            published = _read_until(row, socks, delays, publisher, drain=3.0)
        finally:
            for sock, _ in socks:
                sock.close()
    expected = published * subscribers
    delays.sort()

    def percentile(q: float) -> float:
        return 1000 * delays[min(len(delays) - 1, int(q * len(delays)))] if delays else float("nan")

    return {
        "asked_per_s": rate * subscribers,
        "delivered_per_s": len(delays) / duration,
        "lost_share": 1 - len(delays) / expected if expected else 1.0,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
    }


def _read_until(
    row: Row,
    socks: list[tuple[socket.socket, bytes]],
    delays: list[float],
    publisher: subprocess.Popen[bytes],
    drain: float,
) -> int:
    """Read every subscriber until the publisher is done and `drain` seconds pass; how many it published."""
    poller = select.epoll()
    buffers: dict[int, bytes] = {}
    by_fd: dict[int, socket.socket] = {}
    for sock, rest in socks:
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
        buffers[sock.fileno()] = rest
        by_fd[sock.fileno()] = sock
    kind, append, now = row.kind, delays.append, time.time
    deadline = None
    try:
        while deadline is None or time.monotonic() < deadline:
            if deadline is None and publisher.poll() is not None:
                deadline = time.monotonic() + drain
            for fd, _ in poller.poll(0.05):
                try:
                    data = by_fd[fd].recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    poller.unregister(fd)
                    continue
                frames, buffers[fd] = split_frames(buffers[fd] + data)
                for opcode, payload in frames:
                    if opcode == OP_TEXT:
                        if kind == "socketio" and payload == b"2":
                            by_fd[fd].send(masked_frame(OP_TEXT, b"3"))
                            continue
                        body = _note_body(kind, payload)
                        if body is not None:
                            append(now() - body["t"])
                    elif opcode == OP_PING:
                        by_fd[fd].send(masked_frame(OP_PONG, payload))
    finally:
        poller.close()
    out, err = publisher.communicate(timeout=30)
    if publisher.returncode != 0:
        raise RuntimeError(f"the publisher failed: {err.decode(errors='replace')[-2000:]}")
    return int(out.split()[-1])


def main(argv: list[str] | None = None) -> dict[str, dict[float, dict[str, float]]]:
    """Run the rows and rates the command line asks for; print a Markdown table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rates", default="10,20,40", help="publishes per second, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of publishing per point")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    args = parser.parse_args(argv)
    rows = [ROWS[name] for name in args.rows.split(",")]
    python = str(ensure_venv()) if any(row.competitor for row in rows) else sys.executable
    rates = [float(rate) for rate in args.rates.split(",")]
    results: dict[str, dict[float, dict[str, float]]] = {}
    print(f"{args.subscribers} subscribers, {args.duration:g} s of publishing per point\n")
    print("| server | asked/s | delivered/s | lost | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    with redis_server() as redis:
        for row in rows:
            results[row.name] = {}
            for rate in rates:
                point = measure(row, redis.url, python, args.subscribers, rate, args.duration)
                results[row.name][rate] = point
                print(
                    f"| {row.label} | {point['asked_per_s']:,.0f} | {point['delivered_per_s']:,.0f} | "
                    f"{100 * point['lost_share']:.1f}% | {point['p50_ms']:.1f} | {point['p99_ms']:.1f} |",
                    flush=True,
                )
    return results


if __name__ == "__main__":
    main()
