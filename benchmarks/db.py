"""The data layer end to end: the users example against a hand-written Trio loop, same queries.

    python -m benchmarks.db [--seconds 3] [--repeat 3] [--connections 4] [--window 8]

Both servers run as their own process on 127.0.0.1 over the same SQLite file
(WAL, 100 seeded users): trio-rest serving `examples.users` (router, plain
``def`` views in worker threads, the session per request, ModelSerializer),
and a minimal loop on trio-websocket that parses the envelope with orjson and
runs the same SQLAlchemy query in a worker thread. One client process drives
both in turn with the same pipelined load; the table reports medians and the
framework's cost as a ratio.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import trio
import trio_websocket

ROOT = Path(__file__).resolve().parents[1]
SEEDED_USERS = 100


# -- the hand-written server ----------------------------------------------------------


def _user_dict(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "fullname": user.fullname,
        "addresses": [address.id for address in user.addresses],
    }


async def serve_hand_written(port: int, url: str) -> None:
    """The floor: envelope in, the same query in a worker thread, envelope out."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from examples.users.models import User

    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_size=5, max_overflow=5)
    make_session = sessionmaker(engine, expire_on_commit=False)
    limiter = trio.CapacityLimiter(10)

    def get_user(user_id: int) -> Any:
        with make_session() as session:
            user = session.get(User, user_id)
            return None if user is None else _user_dict(user)

    def create_user(data: dict[str, Any]) -> Any:
        with make_session() as session, session.begin():
            user = User(name=data["name"], fullname=data.get("fullname", ""), password=data.get("password"))
            session.add(user)
            session.flush()
            return _user_dict(user)

    async def answer(ws: trio_websocket.WebSocketConnection, message: str | bytes) -> None:
        envelope = orjson.loads(message)
        url_path = envelope["url"]
        if envelope["method"] == "GET":
            data = await trio.to_thread.run_sync(get_user, int(url_path.rsplit("/", 1)[1]), limiter=limiter)
            status = 200
        else:
            data = await trio.to_thread.run_sync(create_user, envelope["data"], limiter=limiter)
            status = 201
        reply = {"type": "response", "id": envelope["id"], "event_name": None, "status": status, "data": data}
        await ws.send_message(orjson.dumps(reply).decode())

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    message = await ws.get_message()
                except trio_websocket.ConnectionClosed:
                    return
                nursery.start_soon(answer, ws, message)

    await trio_websocket.serve_websocket(handler, "127.0.0.1", port, ssl_context=None)


async def serve_trio_rest(port: int, url: str) -> None:
    """The framework: the users example, as `make demo` serves it."""
    from examples.users.app import build_app
    from trio_rest import serve

    await serve(build_app(url), "127.0.0.1", port)


# -- the load ---------------------------------------------------------------------------


def _seed(path: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from examples.users.models import Address, Base, User

    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        for i in range(SEEDED_USERS):
            user = User(name=f"seed-{i}", fullname=f"Seed {i}")
            user.addresses.append(Address(email_address=f"seed-{i}@example.com"))
            session.add(user)
    engine.dispose()


async def _drive(port: int, operation: str, seconds: float, connections: int, window: int) -> float:
    """Requests per second over `connections` sockets with `window` requests in flight each."""
    done = 0
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]  # names stay unique across runs on the same database
    deadline = trio.current_time() + seconds

    def envelope(request_id: int) -> str:
        if operation == "GET":
            url = f"/user/{request_id % SEEDED_USERS + 1}"
            return orjson.dumps({"method": "GET", "url": url, "id": request_id}).decode()
        # No password: the example stores an scrypt hash of it, which would measure scrypt.
        data = {"name": f"bench-{run}-{request_id}", "fullname": "Bench"}
        return orjson.dumps({"method": "POST", "url": "/user/", "id": request_id, "data": data}).decode()

    async def one_socket() -> None:
        nonlocal done
        async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
            for _ in range(window):
                await ws.send_message(envelope(next(counter)))
            in_flight = window
            while in_flight:
                reply = orjson.loads(await ws.get_message())
                if reply["status"] >= 400:
                    raise RuntimeError(f"benchmark request failed: {reply}")
                done += 1
                in_flight -= 1
                if trio.current_time() < deadline:
                    await ws.send_message(envelope(next(counter)))
                    in_flight += 1

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(one_socket)
    return done / (trio.current_time() - start)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the server did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(kind: str, operation: str, args: argparse.Namespace, db_path: str) -> float:
    """Start server `kind` in its own process, drive it, stop it; return req/s."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "protocol")])}
    command = [sys.executable, "-m", "benchmarks.db", "serve", kind, str(port), f"sqlite:///{db_path}"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process)
        drive = functools.partial(_drive, port, operation, args.seconds, args.connections, args.window)
        return trio.run(drive)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description="trio-rest's data layer against a hand-written Trio loop")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, alternating the servers")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=8, help="requests in flight per connection")
    args = parser.parse_args(argv)
    rates: dict[str, dict[str, list[float]]] = {
        op: {"trio-rest": [], "hand-written": []} for op in ("GET", "POST")
    }
    with tempfile.TemporaryDirectory() as tmp:
        db_path = os.path.join(tmp, "bench.db")
        _seed(db_path)
        for _ in range(args.repeat):
            for operation in ("GET", "POST"):
                for kind in ("trio-rest", "hand-written"):
                    rates[operation][kind].append(measure(kind, operation, args, db_path))
    medians = {
        op: {kind: statistics.median(values) for kind, values in by_kind.items()}
        for op, by_kind in rates.items()
    }
    load = f"{args.connections} connections x {args.window} in flight"
    print(f"SQLite (WAL), {load}, median of {args.repeat} x {args.seconds:g} s")
    print("| operation | trio-rest req/s | hand-written req/s | trio-rest / hand-written |")
    print("|---|---:|---:|---:|")
    for operation, label in (("GET", "GET /user/{id}"), ("POST", "POST /user/")):
        ours, floor = medians[operation]["trio-rest"], medians[operation]["hand-written"]
        print(f"| {label} | {ours:,.0f} | {floor:,.0f} | {ours / floor:.2f} |")
    return medians


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        server = serve_trio_rest if sys.argv[2] == "trio-rest" else serve_hand_written
        trio.run(server, int(sys.argv[3]), sys.argv[4])
    else:
        main()
