"""Protocol-only throughput: parse, validate and serialise envelopes, no network, no Trio.

    python -m benchmarks.protocol [--seconds 2] [--repeat 5]

Each measured operation is what a server does per request: one request message
in (`receive_data` + `next_event`), one success reply out (`Request.response` +
`send`). The floor is the bare codec on the same envelope: `orjson.loads` of the
request plus `orjson.dumps` of the reply dict (decoded to str, as a text frame
needs). Between the two sits the least any Python server can do for the same
request: the bare codec plus a handful of inline checks (a known method, a path,
a 64-bit id not already in flight), with no event objects and no state
machine. Next to it, the same checks behind the protocol's own API (a
connection object with `receive_data`, `next_event` and `send`; frozen attrs
events built the fast way; `Request.response`): what the API's shape costs
before the protocol validates anything more. Together they show how much of
the protocol's cost is Python itself. Rounds of the four alternate; the
medians and the ratios to the floor are printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs
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


@attrs.frozen(kw_only=True, slots=False)
class _Reply:
    id: Any
    event_name: str | None
    status: int
    data: Any


@attrs.frozen(kw_only=True, slots=False)
class _Request:
    method: str
    url: str
    id: Any
    event_name: str | None

    def response(self, *, status: int = 200, data: Any = None) -> _Reply:
        reply = _new(_Reply)
        reply.__dict__.update(id=self.id, event_name=self.event_name, status=status, data=data)
        return reply


_new = object.__new__


class _MinimalConnection:
    """The protocol's API with only `least_python_round`'s checks: the cost of the API's shape."""

    def __init__(self) -> None:
        self._incoming: list[str] = []
        self._in_flight: dict[Any, bool] = {}

    def receive_data(self, message: str) -> None:
        self._incoming.append(message)

    def next_event(self) -> _Request | None:
        if not self._incoming:
            return None
        envelope = orjson.loads(self._incoming.pop())
        if type(envelope) is not dict:
            raise ValueError("not an object")
        method, url, id_ = envelope.get("method"), envelope.get("url"), envelope.get("id")
        if (
            method not in _METHODS
            or type(url) is not str
            or url[:1] != "/"
            or type(id_) is not int
            or not -(2**63) <= id_ < 2**63
            or id_ in self._in_flight
            or len(self._in_flight) >= 1024
        ):
            raise ValueError("not a plain request")
        self._in_flight[id_] = True
        request = _new(_Request)
        request.__dict__.update(method=method, url=url, id=id_, event_name=envelope.get("event_name"))
        return request

    def send(self, reply: _Reply) -> str:
        if type(reply) is not _Reply or reply.id not in self._in_flight:
            raise ValueError("answers nothing in flight")
        wire = orjson.dumps(
            {
                "type": "response",
                "id": reply.id,
                "event_name": reply.event_name,
                "status": reply.status,
                "data": reply.data,
            }
        ).decode()
        del self._in_flight[reply.id]
        return wire


def least_api_round(conn: _MinimalConnection) -> None:
    """One batch through the protocol's API shape, with the fewest checks."""
    receive, next_event, send = conn.receive_data, conn.next_event, conn.send
    for _ in range(BATCH):
        receive(ENVELOPE)
        request: Any = next_event()
        send(request.response(data=BODY))


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
    """Median rates of the protocol, the two lower bounds and the floor, in alternating rounds."""
    conn = proto.Connection(proto.Role.SERVER)
    minimal = _MinimalConnection()
    rounds: dict[str, Callable[[], None]] = {
        "protocol": lambda: protocol_round(conn),
        "least_api": lambda: least_api_round(minimal),
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
        ("least_api", "same API, fewest checks"),
        ("least_python", "inline checks, no events"),
        ("floor", "orjson loads+dumps (floor)"),
    ):
        ratio = result["floor"] / result[name]
        print(f"{label:32}{result[name]:>14,.0f}{1e6 / result[name]:>14.2f}{ratio:>13.2f}x")
    print(f"protocol cost / floor: {result['floor'] / result['protocol']:.2f}x")
    return result


if __name__ == "__main__":
    main()
