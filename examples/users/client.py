"""Replay the article's client session against a running server and print each reply.

python -m examples.users.client [ws://127.0.0.1:8080/]

It can be run again and again against the same database: the new user takes the
article's name, "Neyton", or the first of "Neyton2", "Neyton3"... still free.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import trio
import trio_websocket

from trio_rest.client import connect


async def main(url: str = "ws://127.0.0.1:8080/") -> list[tuple[str, int, Any]]:
    replies: list[tuple[str, int, Any]] = []

    async with connect(url, reconnect=False) as client:

        async def send(event_name: str, method: str, path: str, data: Any = None) -> Any:
            response = await client.request(method, path, data=data, event_name=event_name)
            body = (
                response.data
                if response.status < 400
                else {"detail": response.detail, "errors": response.errors}
            )
            replies.append((event_name, response.status, body))
            print(f"{event_name}: {response.status} {body}")
            return response.data

        address = await send(
            "create-address", "POST", "/address/", {"email_address": "some_address@google.com"}
        )
        users = await send("get-user-list", "GET", "/user/list")
        taken = {user["name"] for user in users}
        names = itertools.chain(["Neyton"], (f"Neyton{i}" for i in itertools.count(2)))
        new_user = {
            "name": next(name for name in names if name not in taken),
            "fullname": "Neyton Drake",
            "password": "password",
            "addresses": [{"id": address["id"]}],
        }
        user = await send("create-user", "POST", "/user/", new_user)
        await send("create-user-again", "POST", "/user/", new_user)
        await send("create-user-with-at", "POST", "/user/", {**new_user, "name": "neyton@drake"})
        await send(
            "partial-update-user", "PUT", f"/user/{user['id']}/", {"fullname": "Definitely not Neyton Drake"}
        )
        await send("get-user", "GET", f"/user/{user['id']}")
        # Not in the article: log in, then read the logged-in user with the token.
        token = await send("login", "POST", "/login", {"name": new_user["name"], "password": "password"})
        response = await client.get("/me", args={"token": token["token"]}, event_name="get-me")
        replies.append(("get-me", response.status, response.data))
        print(f"get-me: {response.status} {response.data}")
    return replies


def run(url: str) -> int:
    """Replay the session against `url`; one line, not a traceback, when there is no server."""
    try:
        trio.run(main, url)
    except (OSError, trio_websocket.HandshakeError) as exc:
        print(f"cannot talk to {url}: {exc} (is the server running? `make demo` starts it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/"))
