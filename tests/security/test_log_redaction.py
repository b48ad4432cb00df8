"""At DEBUG, in every logger, no token, cookie, Authorization header or message body appears.

A raw wsproto client (no client library logging of its own) sends credentials by every route
and secrets in bodies, query strings and a crashing view's request, on both engines.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import trio
import wsproto
import wsproto.events

from tests.trio_rest._sockets import running
from trio_rest import App, Request, SimpleRouter, endpoint
from trio_rest.auth import JWTAuth

AUTH = JWTAuth("r" * 32)
TOKEN = AUTH.issue("ada")  # its signature is the part that must never show
COOKIE = "session-cookie-0f3b9c"
BODY = "body-secret-7d1e42"


@endpoint
async def echo(request: Request) -> Any:
    return {"user": request.user is not None, "data": request.data}


@endpoint
async def crash(request: Request) -> None:
    raise RuntimeError("the view failed")  # logged with its traceback: no request data in it


def _app(engine: str) -> App:
    router = SimpleRouter()
    router.register("/echo", echo, ["GET", "POST"])
    router.register("/crash", crash, "GET")
    app = App(router, auth=AUTH)
    app.settings = type(app.settings)(engine=engine)
    return app


async def _session(port: int) -> list[dict[str, Any]]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    headers = [(b"authorization", f"Bearer {TOKEN}".encode()), (b"cookie", f"s={COOKIE}".encode())]
    request = wsproto.events.Request(host="127.0.0.1", target=f"/?token={TOKEN}", extra_headers=headers)
    await stream.send_all(ws.send(request))
    envelopes = [
        {"method": "POST", "url": "/echo", "data": {"secret": BODY}, "id": 1},
        {"method": "GET", "url": f"/echo?token={TOKEN}&q={BODY}", "id": 2},
        {"method": "GET", "url": "/echo", "args": {"token": TOKEN}, "id": 3},
        {"type": "auth", "token": TOKEN, "id": 4},
        {"type": "auth", "token": BODY, "id": 5},
        {"method": "GET", "url": f"/crash?token={TOKEN}", "data": BODY, "id": 6},
        {"method": "GET", "url": "/nowhere", "data": BODY, "id": 7},
        {"method": "POST", "url": "/echo", "data": BODY, "id": 8, "bogus": {"x": BODY}},
    ]
    replies: list[dict[str, Any]] = []
    accepted = False
    while len(replies) < len(envelopes):
        data = await stream.receive_some(65536)
        assert data, "the server closed the connection"
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, wsproto.events.AcceptConnection):
                accepted = True
                out = b"".join(
                    ws.send(wsproto.events.Message(data=orjson.dumps(e).decode())) for e in envelopes
                )
                await stream.send_all(out + ws.send(wsproto.events.Message(data="not json " + BODY)))
            elif isinstance(event, wsproto.events.TextMessage):
                replies.append(orjson.loads(event.data))
    assert accepted
    await stream.send_all(ws.send(wsproto.events.CloseConnection(code=1000)))
    await stream.aclose()
    return replies


@pytest.mark.parametrize("engine", ["websockets", "wsproto"])
async def test_no_secret_reaches_any_log_at_debug(engine: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: trio_rest's, websockets', anyone's
    with trio.fail_after(20):
        async with running(_app(engine)) as server:
            replies = await _session(server.port)
            while server.connections:
                await trio.sleep(0.01)
    statuses = {reply.get("id"): reply["status"] for reply in replies}
    assert statuses[1] == 200 and statuses[4] == 200 and statuses[5] == 401 and statuses[6] == 500
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "the view failed" in logged  # the logs are there...
    signature = TOKEN.rsplit(".", 1)[1]
    for secret in (signature, COOKIE, BODY):
        assert secret not in logged, secret  # ...without a secret in them
