"""What the broadcast benchmark's asyncio peers share: the command line, and a paced publisher."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Padding in each published body, so that it weighs what a small record does.
PAD = "x" * 64


def parse(description: str | None) -> argparse.Namespace:
    """``--serve --port P`` or ``--publish --rate R --duration D``, with ``--redis URL`` and ``--workers``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--duration", type=float)
    return parser.parse_args()


def serve(target: str, args: argparse.Namespace) -> None:
    """Serve the ASGI app `target` (``module:attr``) under uvicorn with ``--workers`` processes."""
    import uvicorn

    uvicorn.run(
        target,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


async def paced(rate: float, duration: float, send: Callable[[dict[str, Any]], Awaitable[None]]) -> int:
    """Call ``send(body)`` `rate` times a second for `duration` seconds; how many it sent."""
    count = int(rate * duration)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for n in range(count):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await send({"n": n, "t": time.time(), "pad": PAD})
    return count
