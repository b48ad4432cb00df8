"""python-socketio 5 (``AsyncServer``, ASGI mode) under uvicorn: a request is an event with an ack.

The client emits ``request`` with trio-rest's envelope as its argument and an
ack id; the handler's return value (the same reply the hand-written dispatch
gives) is the ack, which the load generator matches by that id. Socket.IO's
JSON goes through orjson (a module-like shim with ``dumps``/``loads``). The
load generator speaks Engine.IO 4's WebSocket transport directly
(``/socket.io/?EIO=4&transport=websocket``), joining the default namespace
before its first request and answering the server's pings.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import socketio
import uvicorn

from ._common import parse_address
from ._dispatch import answer


def _dumps(obj: Any, **kwargs: Any) -> str:
    # python-socketio passes separators=(",", ":"), which is what orjson writes anyway.
    return orjson.dumps(obj).decode()


def _loads(text: str | bytes, **kwargs: Any) -> Any:
    return orjson.loads(text)


#: The ``json`` module python-socketio and python-engineio use.
ORJSON = SimpleNamespace(dumps=_dumps, loads=_loads)

sio = socketio.AsyncServer(async_mode="asgi", json=ORJSON)


@sio.on("request")
async def request(sid: str, envelope: Any) -> dict[str, Any]:
    """Answer one request; the return value goes back as the event's ack."""
    return answer(envelope)


app = socketio.ASGIApp(sio)


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
