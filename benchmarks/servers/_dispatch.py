"""A hand-written dict dispatch: what a small asyncio server answers without a framework.

It speaks trio-rest's envelope (``type``, ``id``, ``event_name``, ``status``,
``data``) so the load generator treats its replies like trio-rest's. JSON is
orjson, as in trio-rest, so the comparison is about the server, not the codec.
`answer` takes a request its framework has already decoded (python-socketio
hands its handlers the event's argument) and returns the reply as a dict;
`handle` decodes and encodes around it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ._common import USERS

__all__ = ["answer", "handle"]


def _get_user(user_id: str) -> tuple[int, Any]:
    try:
        return 200, USERS[int(user_id)]
    except (KeyError, ValueError):
        return 404, None


ROUTES: dict[tuple[str, str], Callable[[str], tuple[int, Any]]] = {("GET", "users"): _get_user}

_BAD_REQUEST = {"type": "response", "id": None, "status": 400, "detail": "Bad request."}


def answer(request: Any) -> dict[str, Any]:
    """Answer one decoded request envelope with one reply envelope."""
    try:
        method, url = request["method"].upper(), request["url"]
        resource, _, param = url.strip("/").partition("/")
    except (KeyError, TypeError, AttributeError):
        return dict(_BAD_REQUEST)
    view = ROUTES.get((method, resource))
    status, data = view(param) if view is not None else (404, None)
    reply = {"type": "response", "id": request.get("id"), "event_name": request.get("event_name")}
    if status == 200:
        reply.update(status=200, data=data)
    else:
        reply.update(status=status, detail="Not found.")
    return reply


def handle(message: str | bytes) -> str:
    """Answer one request envelope with one reply envelope (JSON text)."""
    try:
        request = orjson.loads(message)
    except orjson.JSONDecodeError:
        return orjson.dumps(_BAD_REQUEST).decode()
    return orjson.dumps(answer(request)).decode()
