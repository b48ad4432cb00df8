"""The broadcast benchmark's Django Channels server (``channels_redis``), and its publisher.

    python -m benchmarks.servers.broadcast_channels --serve --port P --redis URL --workers 2
    python -m benchmarks.servers.broadcast_channels --publish --redis URL --rate 20 --duration 5

Every client's consumer joins the group ``feed`` when it connects; uvicorn runs the workers
and the ``channels_redis`` layer (``RedisChannelLayer``, its defaults) carries each group
message to all of them. The publisher is one external ``group_send``, as Channels documents
for sending from outside a consumer. JSON is orjson.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

from ._django import setup_django

setup_django(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ.get("BROADCAST_REDIS", "redis://127.0.0.1:6379/0")]},
        }
    }
)

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402 - after setup_django()
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from ._broadcast import paced, parse, serve  # noqa: E402


class FeedConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Joins ``feed``; each ``note`` message goes to the client as it is."""

    async def connect(self) -> None:
        await self.channel_layer.group_add("feed", self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("feed", self.channel_name)

    async def note(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter({"websocket": URLRouter([path("", FeedConsumer.as_asgi())])})


async def _publish(rate: float, duration: float) -> int:
    layer = get_channel_layer()

    async def send(body: dict[str, Any]) -> None:
        await layer.group_send("feed", {"type": "note", "text": orjson.dumps(body).decode()})

    return await paced(rate, duration, send)


def main() -> None:
    args = parse(__doc__)
    if args.publish:
        print(asyncio.run(_publish(args.rate, args.duration)), flush=True)
        return
    serve("benchmarks.servers.broadcast_channels:application", args)


if __name__ == "__main__":
    main()
