"""A raw picows echo on asyncio: the practical ceiling of a Python WebSocket server."""

from __future__ import annotations

import asyncio

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

from ._common import parse_address


class Echo(WSListener):  # type: ignore[misc]
    """Send every data frame back; answer a close with a close."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


def listener(request: WSUpgradeRequest) -> WSListener:
    """One `Echo` per connection."""
    return Echo()


async def run(host: str, port: int) -> None:
    """Serve until killed."""
    server = await ws_create_server(listener, host, port)
    await server.serve_forever()


def main() -> None:
    """Serve until killed."""
    asyncio.run(run(*parse_address(__doc__)))


if __name__ == "__main__":
    main()
