"""The apps `test_bodies` serves in a subprocess: a slow route that lets large requests pile up.

``POST /sleep?seconds=S`` ignores its body and answers ``"slept"`` after S seconds, so the
requests a client pipelines stay held by the server, body and all, while they wait or run.
``GET /ping`` answers ``"pong"`` at once. Each builder sets only the limits its test is
about; every other limit is the default one.
"""

from __future__ import annotations

import trio

from trio_rest import App, Request, Settings, SimpleRouter, endpoint

MiB = 2**20


@endpoint
async def ping(request: Request) -> str:
    return "pong"


@endpoint
async def sleep(request: Request) -> str:
    await trio.sleep(float(request.args["seconds"]))
    return "slept"


def _router() -> SimpleRouter:
    router = SimpleRouter()
    router.register("/ping", ping, "GET")
    router.register("/sleep", sleep, "POST")
    return router


def one_at_a_time() -> App:
    """One handler per connection at a time (``max_concurrency=1``): the others queue."""
    return App(_router(), settings=Settings(max_concurrency=1))


def small_budget() -> App:
    """A server that holds at most 8 MiB of requests in all, 4 MiB per connection."""
    return App(_router(), settings=Settings(max_server_buffered_bytes=8 * MiB, max_buffered_bytes=4 * MiB))
