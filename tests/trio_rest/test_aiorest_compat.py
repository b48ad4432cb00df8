"""Old aiorest-ws clients and code: binary frames, errors in `detail`, XML, `@endpoint(path, methods)`."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio_websocket
import xmltodict

from examples.users.app import build_app
from trio_rest import ConfigurationError, Request, Server, SimpleRouter, endpoint
from trio_rest.testing import TestClient

from ._sockets import running


@pytest.fixture
async def users_server(tmp_path: Path) -> AsyncIterator[Server]:
    app = build_app(f"sqlite:///{tmp_path / 'users.db'}")
    app.settings = attrs.evolve(app.settings, aiorest_ws_errors=True)
    with trio.fail_after(30):
        async with running(app) as server:
            yield server
    app.database.dispose()


class OldClient:
    """What an aiorest-ws client does: envelopes without ids, in binary frames, matched by event name."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, *, base64: bool = False) -> None:
        self.ws = ws
        self.base64 = base64

    async def send(self, event_name: str, method: str, url: str, data: Any = None) -> dict[str, Any]:
        envelope = {"method": method, "url": url, "event_name": event_name, "data": data}
        payload = orjson.dumps(envelope)
        await self.ws.send_message(base64.b64encode(payload) if self.base64 else payload)
        reply = await self.ws.get_message()
        assert isinstance(reply, bytes), "the reply comes in the frame type the client used"
        decoded: dict[str, Any] = orjson.loads(base64.b64decode(reply) if self.base64 else reply)
        assert decoded["event_name"] == event_name
        return decoded


@pytest.mark.parametrize("encoding", ["utf-8", "base64"])
async def test_an_aiorest_ws_client_runs_the_articles_session_unchanged(
    users_server: Server, encoding: str
) -> None:
    url = f"ws://127.0.0.1:{users_server.port}/"
    async with trio_websocket.open_websocket_url(url) as ws:
        client = OldClient(ws, base64=encoding == "base64")
        name = f"Neyton-{encoding}"
        address = await client.send("create-address", "POST", "/address/", {"email_address": "a@b.c"})
        assert address["data"]["email_address"] == "a@b.c"
        users = await client.send("get-user-list", "GET", "/user/list")
        assert isinstance(users["data"], list)
        new_user = {"name": name, "fullname": "Neyton Drake", "password": "x", "addresses": [{"id": 1}]}
        user = await client.send("create-user", "POST", "/user/", new_user)
        assert user["data"]["addresses"] == [1]
        again = await client.send("create-user-again", "POST", "/user/", new_user)
        assert again["detail"] == {"name": ["user with this name already exists."]}
        at = await client.send("create-user-with-at", "POST", "/user/", {**new_user, "name": "n@d"})
        assert list(at["detail"]) == ["name"]
        user_id = user["data"]["id"]
        update = {"fullname": "Definitely not Neyton Drake"}
        updated = await client.send("partial-update-user", "PUT", f"/user/{user_id}/", update)
        assert updated["data"]["fullname"] == "Definitely not Neyton Drake"
        got = await client.send("get-user", "GET", f"/user/{user_id}")
        assert got["data"]["name"] == name and "password" not in got["data"]


async def test_new_clients_keep_the_sentence_in_detail(users_server: Server) -> None:
    url = f"ws://127.0.0.1:{users_server.port}/"
    duplicate = {"name": "dup", "fullname": "D", "password": "x"}
    for subprotocols, request_id in (([], 1), (["trio-rest.json"], None)):
        async with trio_websocket.open_websocket_url(url, subprotocols=subprotocols) as ws:
            for _ in range(2):
                envelope = {"method": "POST", "url": "/user/", "data": duplicate, "id": request_id}
                await ws.send_message(orjson.dumps(envelope).decode())
                reply = orjson.loads(await ws.get_message())
            assert reply["status"] == 400
            assert isinstance(reply["detail"], str)
            assert reply["errors"] == {"name": ["user with this name already exists."]}


async def test_xml_on_request(users_server: Server) -> None:
    url = f"ws://127.0.0.1:{users_server.port}/"
    async with trio_websocket.open_websocket_url(url) as ws:
        envelope = {"method": "POST", "url": "/address/", "data": {"email_address": "x@y.z"}, "id": 1}
        await ws.send_message(orjson.dumps({**envelope, "args": {"format": "xml"}}).decode())
        reply = await ws.get_message()
        assert isinstance(reply, str) and reply.startswith("<?xml")
        root = xmltodict.parse(reply)["root"]
        assert root["status"] == "201" and root["id"] == "1"
        assert root["data"]["email_address"] == "x@y.z"
        await ws.send_message(orjson.dumps({**envelope, "id": 2, "args": {"format": "yaml"}}).decode())
        refused = orjson.loads(await ws.get_message())
        assert (refused["status"], refused["code"]) == (400, "bad_format")


@endpoint("/hello/{name}", ["GET", "post"], name="hello")
async def hello(request: Request, name: str) -> str:
    return f"Hello, {name}!"


async def test_aiorest_ws_function_views_register_as_they_did() -> None:
    router = SimpleRouter()
    router.register_endpoint(hello)
    assert router.reverse("hello", name="ada") == "/hello/ada"
    from trio_rest import App

    async with TestClient(App(router)) as client:
        assert (await client.get("/hello/ada")).data == "Hello, ada!"
        assert (await client.post("/hello/bob")).data == "Hello, bob!"


def test_a_function_view_without_a_route_names_the_way_to_register_it() -> None:
    @endpoint
    async def plain(request: Request) -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"router.register\("):
        SimpleRouter().register_endpoint(plain)
    with pytest.raises(ConfigurationError, match="name the methods"):
        endpoint("/path")


async def test_a_format_that_is_not_a_string_is_a_400_and_the_connection_lives() -> None:
    from trio_rest import App
    from trio_rest.testing import TestClient

    router = SimpleRouter()
    router.register("/hello/{name}", hello, "GET")
    async with TestClient(App(router)) as client:
        for bad in (["xml"], {"x": 1}, 7):
            reply = await client.get("/hello/ada", args={"format": bad})
            assert (reply.status, reply.code) == (400, "bad_format")
        assert (await client.get("/hello/ada")).data == "Hello, ada!"
