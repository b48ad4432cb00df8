"""The broadcast benchmark's trio-rest app, and its publisher.

Served by the CLI (``python -m trio_rest run benchmarks.servers.broadcast_trio:app
[--workers 2 --broker redis://...]``): ``SUBSCRIBE /feed`` follows the topic ``feed``,
``POST /publish`` publishes its body there. Rate limits are off and the per-address cap is
raised, as the benchmark's thousand subscribers all come from 127.0.0.1.

    python -m benchmarks.servers.broadcast_trio --publish --rate 20 --duration 5 \\
        (--redis redis://127.0.0.1:6379/0 | --url ws://127.0.0.1:8080/)

publishes ``{"n": i, "t": <time.time()>, "pad": ...}`` at the rate, through Redis with a
`RedisBroker` of its own (one external publisher), or through ``POST /publish`` (the
in-memory broker has no other way in), and prints how many it published.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio

from trio_rest import App, Request, Settings, SimpleRouter, endpoint
from trio_rest.brokers import Published, RedisBroker
from trio_rest.client import connect

PAD = "x" * 64


async def feed(request: Request) -> None:
    await request.follow("feed")
    await trio.sleep_forever()


@endpoint
async def publish(request: Request) -> int:
    return await request.app.publish("feed", "note", request.data)


def build() -> App:
    router = SimpleRouter()
    router.register("/feed", feed, "SUBSCRIBE")
    router.register("/publish", publish, "POST")
    settings = Settings(
        rate_limit=None,
        rate_limit_per_address=None,
        max_connections_per_address=100_000,
        max_outbound_bytes=16 * 2**20,
    )
    return App(router, settings=settings)


app = build()


async def _paced(rate: float, duration: float, send: Any) -> int:
    """Call ``send(n)`` at `rate` per second for `duration` seconds; how many were sent."""
    count = int(rate * duration)
    start = trio.current_time()
    for n in range(count):
        await trio.sleep_until(start + n / rate)
        await send({"n": n, "t": time.time(), "pad": PAD})
    return count


async def _publish(rate: float, duration: float, redis: str | None, url: str | None) -> int:
    if redis is not None:
        broker = RedisBroker(redis, receive=False)
        async with broker.running():

            async def send(data: dict[str, Any]) -> None:
                await broker.publish(Published("feed", "note", data))

            return await _paced(rate, duration, send)
    assert url is not None
    async with connect(url, reconnect=False) as client:

        async def post(data: dict[str, Any]) -> None:
            response = await client.post("/publish", data)
            assert response.status == 200, response

        return await _paced(rate, duration, post)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--publish", action="store_true", required=True)
    parser.add_argument("--rate", type=float, required=True, help="publishes per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--redis", help="publish through Redis")
    parser.add_argument("--url", help="publish through POST /publish on this server")
    args = parser.parse_args()
    print(trio.run(_publish, args.rate, args.duration, args.redis, args.url), flush=True)


if __name__ == "__main__":
    main()
