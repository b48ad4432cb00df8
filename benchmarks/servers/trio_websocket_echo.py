"""A bare trio-websocket echo loop: what Trio's stock WebSocket library costs, with no framework."""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from ._common import parse_address


async def echo(request: WebSocketRequest) -> None:
    """Send every message back as it came."""
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message)
        except ConnectionClosed:
            return


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    trio.run(serve_websocket, echo, host, port, None)


if __name__ == "__main__":
    main()
