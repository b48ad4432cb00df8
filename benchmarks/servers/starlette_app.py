"""uvicorn + a Starlette WebSocket endpoint, with the same hand-written dispatch.

uvicorn runs with its defaults as a plain ``pip install uvicorn`` leaves them
(asyncio loop, its `websockets`-based protocol), logging only warnings.
"""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._common import parse_address
from ._dispatch import handle


async def endpoint(websocket: WebSocket) -> None:
    """Answer each request as it arrives, in order."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(handle(await websocket.receive_text()))
    except WebSocketDisconnect:
        pass


app = Starlette(routes=[WebSocketRoute("/", endpoint)])


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
