"""Middleware wraps every request of its App, in order, the routing errors included."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from trio_rest import App, NotFoundError, Request, SimpleRouter, endpoint, log_requests
from trio_rest.auth import IsAuthenticated, JWTAuth
from trio_rest.testing import TestClient


@endpoint
async def hello(request: Request) -> str:
    return "hello"


@endpoint(permissions=[IsAuthenticated])
async def private(request: Request) -> str:
    return "private"


def _app(*middleware: Any) -> App:
    router = SimpleRouter()
    router.register("/hello", hello, ["GET", "POST"])
    router.register("/private", private, "GET")
    return App(router, middleware=middleware, auth=JWTAuth("m" * 32))


async def test_middleware_runs_in_order_around_views_and_routing_errors() -> None:
    seen: list[str] = []

    def named(name: str) -> Any:
        async def middleware(request: Request, call_next: Any) -> Any:
            seen.append(f"{name}>{request.path}")
            try:
                return await call_next(request)
            finally:
                seen.append(f"<{name}")

        return middleware

    async def soft_404(request: Request, call_next: Any) -> Any:
        try:
            return await call_next(request)
        except NotFoundError:
            return {"missing": request.path}

    async with TestClient(_app(named("outer"), named("inner"), soft_404)) as client:
        assert (await client.get("/hello")).data == "hello"
        assert seen == ["outer>/hello", "inner>/hello", "<inner", "<outer"]
        seen.clear()
        assert (await client.get("/nowhere")).data == {"missing": "/nowhere"}  # 404 through middleware
        assert seen == ["outer>/nowhere", "inner>/nowhere", "<inner", "<outer"]
        assert (await client.delete("/hello")).status == 405
        assert (await client.request("OPTIONS", "/hello")).data == {"allow": ["GET", "HEAD", "POST"]}


async def test_log_requests_logs_one_line_without_query_or_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_rest.requests")
    async with TestClient(_app(log_requests)) as client:
        await client.post("/hello?q=secret-in-query", data={"password": "secret-in-body"})
        await client.get("/private")
        await client.get("/nowhere")
    lines = [record.getMessage() for record in caplog.records if record.name == "trio_rest.requests"]
    assert len(lines) == 3
    assert " POST /hello 200 " in lines[0] and lines[0].endswith("user none")
    assert " GET /private 401 " in lines[1] and " GET /nowhere 404 " in lines[2]
    assert "secret" not in caplog.text
