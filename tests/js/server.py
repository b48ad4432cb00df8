"""The server the JavaScript tests talk to: the users example with its explorer, plus three test routes.

``python tests/js/server.py DIRECTORY`` serves on 127.0.0.1, a free port, the users app on a
SQLite file in DIRECTORY, and prints ``port N`` once it listens. ``GET /slow`` never replies
(a client's timeout must cancel it); ``GET /slow/cancelled`` counts the slow requests the
server saw cancelled; ``GET /big`` answers ``args.n`` (1000) lines of 100 characters. With
``--require-auth`` the app is ``App(require_auth=True)``: a connection without a token is
closed (1008) after half a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio

from examples.users.app import build_router, create_tables
from examples.users.models import User
from examples.users.serializers import UserSerializer
from trio_rest import App, Request, Server, Settings, endpoint
from trio_rest.auth import JWTAuth
from trio_rest.db import Database

SECRET = "the secret of the JavaScript client tests"


def build_app(directory: Path, *, require_auth: bool = False) -> App:
    cancelled = 0

    @endpoint
    async def slow(request: Request) -> Any:
        nonlocal cancelled
        try:
            await trio.sleep_forever()
        finally:
            cancelled += 1

    @endpoint
    def count(request: Request) -> Any:
        return {"cancelled": cancelled}

    @endpoint
    def big(request: Request) -> Any:
        return [f"{line:>6} " + "x" * 93 for line in range(int(request.args.get("n", 1000)))]

    router = build_router()
    router.register("/slow", slow, "GET")
    router.register("/slow/cancelled", count, "GET")
    router.register("/big", big, "GET")
    database = Database(f"sqlite:///{directory / 'users.db'}")
    database.observe(User, UserSerializer, topic="/user/list", detail_topic="/user/{id}")
    settings = Settings(explorer=True, auth_timeout=0.5)  # the browser test opens the explorer
    return App(
        router,
        database=database,
        lifespan=create_tables,
        auth=JWTAuth(SECRET),
        settings=settings,
        require_auth=require_auth,
    )


async def main(directory: Path, require_auth: bool) -> None:
    app = build_app(directory, require_auth=require_auth)
    async with trio.open_nursery() as nursery:
        server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
        print(f"port {server.port}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), "--require-auth" in sys.argv[2:])
