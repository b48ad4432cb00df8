"""Protocol-only throughput: parse, validate and serialise envelopes, no network, no Trio.

    python -m benchmarks.protocol [--seconds 2] [--repeat 5]

Each measured operation is what a server does per request: one request message
in (`receive_data` + `next_event`), one success reply out (`Request.response` +
`send`). The floor is the bare codec on the same envelope: `orjson.loads` of the
request plus `orjson.dumps` of the reply dict (decoded to str, as a text frame
needs). Rounds of the two alternate; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
import trio_rest_protocol as proto

ENVELOPE = '{"method": "GET", "url": "/users/17", "id": 17, "args": {}}'
BODY = {"id": 17, "name": "Ada Lovelace", "email": "ada@example.com"}
BATCH = 1000


def protocol_round(conn: proto.Connection) -> None:
    """One batch of requests through a server-role connection."""
    receive, next_event, send = conn.receive_data, conn.next_event, conn.send
    for _ in range(BATCH):
        receive(ENVELOPE)
        request: Any = next_event()
        send(request.response(data=BODY))


def floor_round() -> None:
    """One batch of the bare codec on the same envelope."""
    loads, dumps = orjson.loads, orjson.dumps
    for _ in range(BATCH):
        request = loads(ENVELOPE)
        dumps(
            {"type": "response", "id": request["id"], "event_name": None, "status": 200, "data": BODY}
        ).decode()


def rate(fn: Callable[[], None], seconds: float) -> float:
    """Envelopes per second of `fn` (one batch a call) over about `seconds`."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        done += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def measure(seconds: float, repeat: int) -> dict[str, float]:
    """Median rates of the protocol and the floor, measured in alternating rounds."""
    conn = proto.Connection(proto.Role.SERVER)
    protocol_round(conn)  # warm-up
    floor_round()
    ours: list[float] = []
    floor: list[float] = []
    for _ in range(repeat):
        ours.append(rate(lambda: protocol_round(conn), seconds))
        floor.append(rate(floor_round, seconds))
    return {"protocol": statistics.median(ours), "floor": statistics.median(floor)}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each, alternating")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.repeat)
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    print(f"{'':28}{'envelopes/s':>14}{'us/envelope':>14}")
    for name, label in (("protocol", "trio_rest_protocol"), ("floor", "orjson loads+dumps (floor)")):
        print(f"{label:28}{result[name]:>14,.0f}{1e6 / result[name]:>14.2f}")
    print(f"protocol cost / floor: {result['floor'] / result['protocol']:.2f}x")
    return result


if __name__ == "__main__":
    main()
