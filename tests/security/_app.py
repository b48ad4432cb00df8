"""The tiny app the security tests serve in a subprocess: one route, default settings."""

from __future__ import annotations

from trio_rest import App, Request, SimpleRouter, endpoint


@endpoint
async def ping(request: Request) -> str:
    return "pong"


def build_app() -> App:
    """Build the app: ``GET /ping`` answers ``"pong"``; every limit is the default one."""
    router = SimpleRouter()
    router.register("/ping", ping, "GET")
    return App(router)
