"""Notifications to N subscribers of one topic, in one process: deliveries per second, delay.

    python -m benchmarks.push [--subscribers 10,100,1000] [--notifications 200] [--repeat 3]

Each subscriber is a WebSocket connection over an in-memory stream to a real `Server`
(connection driver, engine, outbox), joined to one topic; a minimal wsproto client reads
it. `app.publish` sends notifications as fast as it returns, each carrying the time it was
published; the run ends when every subscriber has all of them. Reported per N (medians
over the repeats): notifications delivered per second (subscribers x notifications over
the whole run) and the p50 and p99 delay from publish to a client reading it. Server and
clients share one process and one core, so the rates include the clients' own parsing.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import orjson
import trio
import trio.testing
import wsproto
import wsproto.events

from trio_rest import App, Request, Server, Settings, SimpleRouter, endpoint

__all__ = ["main", "measure"]


@endpoint
async def join(request: Request) -> str:
    request.connection.join("bench")
    return "joined"


async def _subscriber(stream: Any, expected: int, delays: list[float], ready: trio.Event) -> None:
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    await stream.send_all(ws.send(wsproto.events.Request(host="bench", target="/")))
    got = 0
    while got < expected:
        data = await stream.receive_some(65536)
        if not data:
            return
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, wsproto.events.AcceptConnection):
                join_request = orjson.dumps({"method": "POST", "url": "/join", "id": 1}).decode()
                await stream.send_all(ws.send(wsproto.events.Message(data=join_request)))
            elif isinstance(event, wsproto.events.TextMessage):
                message = orjson.loads(event.data)
                if message.get("type") == "response":
                    ready.set()  # joined
                else:
                    delays.append(trio.current_time() - message["data"]["t"])
                    got += 1


async def measure(subscribers: int, notifications: int) -> dict[str, float]:
    """One run: `notifications` published to `subscribers` connections; rates and delays."""
    router = SimpleRouter()
    router.register("/join", join, "POST")
    settings = Settings(max_connections_per_address=subscribers + 10, max_outbound_bytes=64 * 2**20)
    app = App(router, settings=settings)
    server = Server(app)
    delays: list[float] = []
    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as clients:  # exits once every subscriber has them all
            events = []
            for _ in range(subscribers):
                client_stream, server_stream = trio.testing.memory_stream_pair()
                ready = trio.Event()
                events.append(ready)
                nursery.start_soon(server.handle_stream, server_stream)
                clients.start_soon(_subscriber, client_stream, notifications, delays, ready)
            for ready in events:
                await ready.wait()
            start = trio.current_time()
            for n in range(notifications):
                await app.publish("bench", "tick", {"n": n, "t": trio.current_time()})
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    ordered = sorted(delays)
    return {
        "delivered_per_s": subscribers * notifications / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    """Run every N the command line asks for and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="10,100,1000", help="comma-separated N")
    parser.add_argument("--notifications", type=int, default=200, help="notifications per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per N (medians reported)")
    args = parser.parse_args(argv)
    results: dict[int, dict[str, float]] = {}
    print("| subscribers | notifications delivered/s | p50 delay ms | p99 delay ms |")
    print("|---:|---:|---:|---:|")
    for count in (int(part) for part in args.subscribers.split(",")):
        runs = [trio.run(measure, count, args.notifications) for _ in range(args.repeat)]
        results[count] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        row = results[count]
        print(f"| {count} | {row['delivered_per_s']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    return results


if __name__ == "__main__":
    main()
