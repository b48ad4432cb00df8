"""uvicorn + a FastAPI WebSocket endpoint, with the same hand-written dispatch as the Starlette row.

FastAPI's WebSocket route is Starlette's underneath, wrapped in FastAPI's
dependency-injection layer (which runs once, when the connection opens).
uvicorn runs with its defaults as a plain ``pip install uvicorn`` leaves them,
logging only warnings.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from ._common import parse_address
from .starlette_app import endpoint

app = FastAPI()
# The Starlette row's endpoint, registered through FastAPI's decorator (and so its
# dependency-injection layer): the two rows differ only by the framework around it.
app.websocket("/")(endpoint)


def main() -> None:
    """Serve until killed."""
    host, port = parse_address(__doc__)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
