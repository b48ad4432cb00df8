"""Protocol-only throughput: parse, validate and serialise envelopes, no network, no Trio.

    python -m benchmarks.protocol [--seconds 2] [--repeat 5]

Each measured operation is what a server does per request: one request message
in (`receive_data` + `next_event`), one success reply out (`Request.response` +
`send`). The floor is the bare codec on the same envelope: `orjson.loads` of the
request plus `orjson.dumps` of the reply dict (decoded to str, as a text frame
needs). Between the two sits the least any Python server can do for the same
request: the bare codec plus a handful of inline checks (a known method, a path,
a 64-bit id not already in flight), with no event objects and no state
machine. It shows how much of the protocol's cost is Python itself. Rounds of
the three alternate; the medians and the ratios to the floor are printed.
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


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def least_python_round() -> None:
    """One batch of the fewest checks a correct server makes, written inline."""
    loads, dumps = orjson.loads, orjson.dumps
    in_flight: dict[Any, bool] = {}
    for _ in range(BATCH):
        request = loads(ENVELOPE)
        if type(request) is not dict:
            raise ValueError("not an object")
        id_, url = request.get("id"), request.get("url")
        if (
            request.get("method") not in _METHODS
            or type(url) is not str
            or url[:1] != "/"
            or type(id_) is not int
            or not -(2**63) <= id_ < 2**63
            or id_ in in_flight
            or len(in_flight) >= 1024
        ):
            raise ValueError("not a plain request")
        in_flight[id_] = True
        dumps({"type": "response", "id": id_, "event_name": None, "status": 200, "data": BODY}).decode()
        del in_flight[id_]


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
    """Median rates of the protocol, the least Python and the floor, in alternating rounds."""
    conn = proto.Connection(proto.Role.SERVER)
    rounds: dict[str, Callable[[], None]] = {
        "protocol": lambda: protocol_round(conn),
        "least_python": least_python_round,
        "floor": floor_round,
    }
    for fn in rounds.values():
        fn()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in rounds}
    for _ in range(repeat):
        for name, fn in rounds.items():
            rates[name].append(rate(fn, seconds))
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each, alternating")
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.repeat)
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    print(f"{'':32}{'envelopes/s':>14}{'us/envelope':>14}{'cost / floor':>14}")
    for name, label in (
        ("protocol", "trio_rest_protocol"),
        ("least_python", "inline checks, no events"),
        ("floor", "orjson loads+dumps (floor)"),
    ):
        ratio = result["floor"] / result[name]
        print(f"{label:32}{result[name]:>14,.0f}{1e6 / result[name]:>14.2f}{ratio:>13.2f}x")
    print(f"protocol cost / floor: {result['floor'] / result['protocol']:.2f}x")
    return result


if __name__ == "__main__":
    main()
