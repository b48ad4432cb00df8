"""uvicorn + a FastAPI WebSocket endpoint, with the same hand-written dispatch as the Starlette row.

FastAPI's WebSocket route is Starlette's underneath, wrapped in FastAPI's
dependency-injection layer (which runs once, when the connection opens).
uvicorn runs with its defaults as a plain ``pip install uvicorn`` leaves them,
logging only warnings.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from ._common import parse_address
from ._dispatch import handle

app = FastAPI()


@app.websocket("/")
async def endpoint(websocket: WebSocket) -> None:
    """Answer each request as it arrives, in order."""
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(handle(await websocket.receive_text()))
    except WebSocketDisconnect:
        pass


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
