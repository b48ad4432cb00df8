"""The broadcast benchmark's python-socketio server (``AsyncRedisManager``), and its publisher.

    python -m benchmarks.servers.broadcast_socketio --serve --port P --redis URL --workers 2
    python -m benchmarks.servers.broadcast_socketio --publish --redis URL --rate 20 --duration 5

Every client joins the room ``feed`` when it connects (Engine.IO 4 WebSocket transport);
uvicorn runs the workers, and the `AsyncRedisManager` carries each emit to all of them. The
publisher is one external ``AsyncRedisManager(write_only=True)`` emitting ``note`` to the
room, as python-socketio documents for emitting from another process. JSON is orjson.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import socketio

from ._broadcast import paced, parse, serve
from .socketio_app import ORJSON


def build() -> Any:
    manager = socketio.AsyncRedisManager(os.environ["BROADCAST_REDIS"], json=ORJSON)
    sio = socketio.AsyncServer(async_mode="asgi", json=ORJSON, client_manager=manager)

    @sio.event
    async def connect(sid: str, environ: Any) -> None:
        await sio.enter_room(sid, "feed")

    return socketio.ASGIApp(sio)


app = build() if "BROADCAST_REDIS" in os.environ else None


async def _publish(redis: str, rate: float, duration: float) -> int:
    manager = socketio.AsyncRedisManager(redis, write_only=True, json=ORJSON)

    async def emit(body: dict[str, Any]) -> None:
        await manager.emit("note", body, room="feed")

    count = await paced(rate, duration, emit)
    await asyncio.sleep(0.1)  # the last emit leaves the process
    return count


def main() -> None:
    args = parse(__doc__)
    if args.publish:
        print(asyncio.run(_publish(args.redis, args.rate, args.duration)), flush=True)
        return
    os.environ["BROADCAST_REDIS"] = args.redis  # read by each worker process when it imports `app`
    serve("benchmarks.servers.broadcast_socketio:app", args)


if __name__ == "__main__":
    main()
