"""trio-rest: a REST framework whose transport is the WebSocket, on Trio."""

from __future__ import annotations

__all__: list[str] = []
__version__ = "0.1.0"
