"""A small app that exercises every path of the server, shared by the server tests."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio

from trio_rest import App, MethodBasedView, NotFound, Request, Response, Settings, SimpleRouter, endpoint
from trio_rest.testing import checking_invariants


@pytest.fixture(autouse=True)
def _connections_keep_their_rules() -> Iterator[None]:
    """Every connection of every test checks its rules between steps (trio_rest.testing)."""
    with checking_invariants():
        yield


class UserView(MethodBasedView):
    async def get(self, request: Request, id: int) -> Any:
        if id == 404:
            raise NotFound("No such user.")
        return {"id": id, "args": dict(request.args)}

    def put(self, request: Request, id: int) -> Any:  # a plain def: runs in a worker thread
        return Response({"id": id, **request.data}, status=200)


@attrs.frozen
class NewItem:
    name: str
    size: int = 1


@endpoint(body=NewItem)
async def create_item(request: Request, body: NewItem) -> Response:
    return Response({"name": body.name, "size": body.size}, status=201)


@endpoint
async def crash(request: Request) -> None:
    raise RuntimeError("secret internals")


@endpoint
async def sleep(request: Request) -> str:
    await trio.sleep(float(request.args.get("seconds", 3600)))
    return "woke"


@endpoint
async def echo_path(request: Request, rest: str) -> str:
    return rest


@endpoint
async def by_uuid(request: Request, key: uuid.UUID) -> str:
    return str(key)


@endpoint
async def not_json(request: Request) -> Any:
    return object()


@endpoint
async def nan(request: Request) -> Any:
    return {"x": math.inf}


@endpoint
async def hello(request: Request, name: str) -> dict[str, str]:
    return {"greeting": f"Hello, {name}", "user": request.app.router.reverse("user-detail", id=len(name))}


async def ticks(request: Request) -> str:
    count = int(request.args.get("count", 3))
    for i in range(count):
        await request.notify({"i": i}, event_name="tick")
    if request.args.get("forever"):
        await trio.sleep_forever()
    return "done"


async def refuse(request: Request) -> None:
    raise NotFound("Nothing to watch.")


async def broadcast(request: Request) -> str:
    await request.connection.send_notification({"hello": "all"}, event_name="hello", topic="lobby")
    return "sent"


def build_app(**settings: Any) -> App:
    router = SimpleRouter()
    router.register("/user/{id:int}", UserView, ["GET", "PUT"], name="user-detail")
    router.register("/item/", create_item, "POST")
    router.register("/hello/{name}", hello, "GET")
    router.register("/crash", crash, "GET")
    router.register("/sleep", sleep, "GET")
    router.register("/files/{rest:path}", echo_path, "GET")
    router.register("/keys/{key:uuid}", by_uuid, "GET")
    router.register("/not-json", not_json, "GET")
    router.register("/nan", nan, "GET")
    router.register("/ticks", ticks, "SUBSCRIBE")
    router.register("/refuse", refuse, "SUBSCRIBE")
    router.register("/broadcast", broadcast, "POST")
    return App(router, settings=Settings(**settings))


@pytest.fixture
def app() -> App:
    return build_app()
