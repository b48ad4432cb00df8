"""The files served on the HTTP side of the port: the JavaScript client always, the explorer on demand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import trio

from examples import hello
from trio_rest import App, Settings
from trio_rest.client import connect

from ._sockets import http_get, running

STATIC = Path(__file__).parents[2] / "trio_rest" / "static"


def _app(explorer: bool) -> App:
    return App(hello.router, settings=Settings(explorer=explorer))


def _header(head: bytes, name: str) -> str | None:
    found = re.search(rb"\r\n" + name.encode() + rb": ([^\r]*)", head, re.I)
    return found.group(1).decode() if found else None


async def test_the_explorer_is_off_by_default() -> None:
    assert Settings().explorer is False
    with trio.fail_after(10):
        async with running(_app(explorer=False)) as server:
            replies = [await http_get(server.port, path) for path in ("/", "/explorer.js", "/explorer.css")]
            client, _ = await http_get(server.port, "/trio-rest.js")
    assert [head.split(b"\r\n")[0] for head, _ in replies] == [b"HTTP/1.1 404 Not Found"] * 3
    assert client.startswith(b"HTTP/1.1 200 ")


async def test_the_explorer_page_its_script_and_its_style() -> None:
    with trio.fail_after(10):
        async with running(_app(explorer=True)) as server:
            page = await http_get(server.port, "/?from=a-link")
            script = await http_get(server.port, "/explorer.js")
            style = await http_get(server.port, "/explorer.css")
    for (head, body), name, kind in [
        (page, "explorer.html", "text/html; charset=utf-8"),
        (script, "explorer.js", "text/javascript; charset=utf-8"),
        (style, "explorer.css", "text/css; charset=utf-8"),
    ]:
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert body == (STATIC / name).read_bytes()
        assert _header(head, "Content-Type") == kind
        assert _header(head, "Content-Length") == str(len(body))
        assert _header(head, "X-Content-Type-Options") == "nosniff"
    policy = _header(page[0], "Content-Security-Policy")
    assert policy is not None
    # Nothing from elsewhere: no CDN, no inline script, no frames around it.
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe" not in policy


async def test_everything_the_page_loads_is_served() -> None:
    html = (STATIC / "explorer.html").read_text()
    script = (STATIC / "explorer.js").read_text()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r'from "([^"]+)"', script)
    # The icon is empty and inline ("data:,"), so that the browser asks for no /favicon.ico.
    assert sorted(set(loaded)) == ["/explorer.css", "/explorer.js", "/trio-rest.js", "data:,"]
    loaded.remove("data:,")
    assert "<script>" not in html and " style=" not in html  # the policy would refuse them
    with trio.fail_after(10):
        async with running(_app(explorer=True)) as server:
            heads = [(await http_get(server.port, path))[0] for path in [*set(loaded), "/asyncapi.json"]]
    assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads), heads


def test_the_names_the_explorer_imports_are_exported_by_the_client() -> None:
    script = (STATIC / "explorer.js").read_text()
    client = (STATIC / "trio-rest.js").read_text()
    imported = re.search(r"import \{([^}]*)\} from \"/trio-rest.js\"", script)
    assert imported is not None
    exported = set(re.findall(r"^export (?:async )?(?:class|function) (\w+)", client, re.M))
    names = {name.strip() for name in imported.group(1).split(",")}
    assert names and names <= exported, names - exported


async def test_head_gives_the_get_headers_without_the_body() -> None:
    with trio.fail_after(10):
        async with running(_app(explorer=True)) as server:
            for path in ("/", "/trio-rest.js", "/health", "/asyncapi.json"):
                head, body = await http_get(server.port, path, method="HEAD")
                got, full = await http_get(server.port, path)
                assert head.startswith(b"HTTP/1.1 200 ") and body == b"", (path, head, body)
                assert _header(head, "Content-Length") == str(len(full)), path
                assert _header(head, "Content-Type") == _header(got, "Content-Type")


async def test_other_methods_on_the_page_are_not_found() -> None:
    with trio.fail_after(10):
        async with running(_app(explorer=True)) as server:
            replies = [await http_get(server.port, "/", method=method) for method in ("POST", "DELETE")]
    assert all(head.startswith(b"HTTP/1.1 404 ") for head, _ in replies)
    assert all(json.loads(body) == {"detail": "Not Found"} for _, body in replies)


async def test_the_websocket_on_the_same_path_still_answers() -> None:
    with trio.fail_after(10):
        app = _app(explorer=True)
        async with running(app) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
            reply = await client.get("/user/1")
    assert (reply.status, reply.data) == (200, {"id": 1, "name": "Ada Lovelace"})
