"""asyncio + the `websockets` library, with a hand-written dict dispatch (no framework)."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, serve

from ._common import parse_address
from ._dispatch import handle


async def answer(ws: ServerConnection) -> None:
    """Answer each request as it arrives, in order."""
    async for message in ws:
        await ws.send(handle(message))


async def run(host: str, port: int) -> None:
    """Serve until killed."""
    async with serve(answer, host, port) as server:
        await server.serve_forever()


def main() -> None:
    """Serve until killed."""
    asyncio.run(run(*parse_address(__doc__)))


if __name__ == "__main__":
    main()
