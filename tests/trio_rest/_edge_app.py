"""An app of small views that reach the corners of the connection core (closing, encoding, limits)."""

from __future__ import annotations

import contextlib
from typing import Any

import trio
import trio.lowlevel
import wsproto.events
from trio_rest_protocol import LocalProtocolError

from trio_rest import App, NotFound, Request, Settings, SimpleRouter, endpoint

from ._raw import MemoryClient

#: The cancel scope a test hands to `last`, which cancels it from inside a handler.
shutdown_scope: list[trio.CancelScope] = []


@endpoint
async def quick(request: Request) -> str:
    return "quick"


@endpoint
async def nap(request: Request) -> str:
    await trio.sleep(float(request.args.get("s", 1)))
    return "woke"


@endpoint
async def hang(request: Request) -> str:
    await trio.sleep_forever()
    return "never"  # pragma: no cover


@endpoint
async def bye(request: Request) -> str:
    await request.connection.close(4000, "bye", grace=1)
    return "closing"  # pragma: no cover


@endpoint
async def missing(request: Request, id: int) -> None:
    raise NotFound(id)  # type: ignore[arg-type]  # a detail that is not a str


@endpoint
async def last(request: Request) -> str:
    await trio.sleep(1)
    shutdown_scope[0].cancel()  # the server is cancelled in the very step this reply is written
    return "done"


@endpoint
async def big(request: Request) -> str:
    return "x" * 200_000  # never waits; its reply passes max_outbound_bytes below


@endpoint
async def yields(request: Request) -> str:
    await trio.lowlevel.checkpoint()
    return "y"


async def forever(request: Request) -> None:
    await request.notify({"i": 0})
    await trio.sleep_forever()


async def odd(request: Request) -> Any:
    await request.notify({"i": 0})
    with contextlib.suppress(LocalProtocolError):  # cannot be encoded: raises, nothing sent
        await request.notify({"bad": object()})
    await request.notify({"i": 2})
    return object()  # nor can the final notification's body


def edge_app(**settings: Any) -> App:
    router = SimpleRouter()
    for path, view in [
        ("/quick", quick),
        ("/nap", nap),
        ("/hang", hang),
        ("/missing/{id:int}", missing),
        ("/last", last),
        ("/big", big),
        ("/yields", yields),
    ]:
        router.register(path, view, "GET")
    router.register("/bye", bye, "POST")
    router.register("/forever", forever, "SUBSCRIBE")
    router.register("/odd", odd, "SUBSCRIBE")
    return App(router, settings=Settings(**settings))


def batch(client: MemoryClient, envelopes: list[str]) -> bytes:
    """Frame several messages for one write, so that the server reads them at once."""
    return b"".join(client.ws.send(wsproto.events.Message(data=e)) for e in envelopes)
