"""Django Channels 4 + djangochannelsrestframework: the ASGI application both Channels rows serve.

Django is configured in code (no settings module, no database, no channel
layer), and set up before the consumer is imported, as Channels requires. The
consumer is a DCRF ``AsyncAPIConsumer`` with one async ``@action`` named
``retrieve``: it takes DCRF's ``{"action": "retrieve", "pk": 17, "request_id": N}``
and returns the user record and status 200, which DCRF sends back as
``{"errors": [], "data": {...}, "action": "retrieve", "response_status": 200,
"request_id": N}``. It does not use DCRF's model mixin, whose ``retrieve``
needs a model, a serializer and a database query in a worker thread; the
message handling around the action (action lookup, permission check, reply
envelope) is DCRF's own. JSON is orjson (``encode_json``/``decode_json``
overridden).
"""

from __future__ import annotations

from typing import Any

import orjson

from ._django import setup_django

setup_django()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - after setup_django()
from django.urls import path  # noqa: E402
from djangochannelsrestframework.consumers import AsyncAPIConsumer  # noqa: E402
from djangochannelsrestframework.decorators import action  # noqa: E402
from rest_framework.exceptions import NotFound  # noqa: E402

from ._common import USERS  # noqa: E402

__all__ = ["UserConsumer", "application"]


class UserConsumer(AsyncAPIConsumer):  # type: ignore[misc]
    """``retrieve`` a user by primary key, from memory."""

    @action()
    async def retrieve(self, pk: Any = None, **kwargs: Any) -> tuple[Any, int]:
        try:
            return USERS[int(pk)], 200
        except (KeyError, TypeError, ValueError):
            raise NotFound(f"No user {pk}.") from None

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return orjson.loads(text_data)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()


application = ProtocolTypeRouter({"websocket": URLRouter([path("", UserConsumer.as_asgi())])})
