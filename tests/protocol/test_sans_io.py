"""The protocol package is sans-IO: what it imports, and that it runs with any loop or none."""

from __future__ import annotations
import __future__

import ast
import asyncio
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import trio_rest_protocol
from trio_rest_protocol import (
    NEED_DATA,
    Cancel,
    Connection,
    Notification,
    Request,
    Response,
    Role,
)

ALLOWED_THIRD_PARTY = {"attrs", "orjson", "msgpack"}
PACKAGE_DIR = Path(trio_rest_protocol.__file__).parent
# What a module's source may name that the walk cannot check: a dynamic import.
DYNAMIC = "<dynamic import>"


def _sources() -> list[Path]:
    """The files the import walk reads: every .py file of the package, subpackages included."""
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if called in ("__import__", "import_module"):
                names.add(DYNAMIC)
    return names


def test_package_imports_only_stdlib_attrs_and_codecs() -> None:
    modules = _sources()
    assert len(modules) >= 7, "the package's modules were not found"
    for path in modules:
        for name in _imported_modules(path):
            if name in ("__future__", "trio_rest_protocol"):
                continue
            assert name in sys.stdlib_module_names or name in ALLOWED_THIRD_PARTY, (
                f"{path.name} imports {name}, which a sans-IO package may not"
            )


def test_the_walk_sees_imports_anywhere_and_refuses_dynamic_ones(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os.path\nfrom trio import sleep\n"
        "def f():\n    import anyio\n    return importlib.import_module('socket')\n"
    )
    assert _imported_modules(source) == {"os", "trio", "anyio", DYNAMIC}


def test_every_module_is_reached_by_the_walk() -> None:
    """The import system finds no module of the package that the walk does not read.

    The walk lists files; what counts is what Python can load: every module
    pkgutil finds (recursively) and every one a fresh interpreter loads with
    the package must be one of the walked files, not, say, a subpackage the
    walk skipped or a compiled extension whose imports it cannot read.
    """
    walked = {path.resolve() for path in _sources()}
    findable = {
        info.name: importlib.util.find_spec(info.name)
        for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="trio_rest_protocol.")
    }
    assert len(findable) >= 6, "pkgutil found too few modules: the check would prove nothing"
    for name, spec in findable.items():
        assert spec is not None and spec.origin is not None, name
        assert Path(spec.origin).resolve() in walked, f"{name} ({spec.origin}) is not read by the walk"
    script = (
        "import sys, trio_rest_protocol\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] == 'trio_rest_protocol':\n"
        "        print(name, getattr(module, '__file__', None))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert "trio_rest_protocol._connection" in loaded
    for name, file in loaded.items():
        assert file != "None" and Path(file).resolve() in walked, f"{name} ({file}) is not read by the walk"


def _exchange() -> list[str]:
    """A full exchange: request/response, subscription, notification, cancel."""
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    seen: list[str] = []

    def ship(sender: Connection, receiver: Connection, event: object) -> object:
        receiver.receive_data(sender.send(event))  # type: ignore[arg-type]
        got = receiver.next_event()
        assert receiver.next_event() is NEED_DATA
        seen.append(type(got).__name__)
        return got

    request = ship(client, server, Request(method="GET", url="/user/6", id=1))
    assert isinstance(request, Request)
    reply = ship(server, client, request.response(data={"id": 6}))
    assert reply == Response(id=1, status=200, data={"id": 6})

    subscribe = ship(client, server, Request(method="SUBSCRIBE", url="/user/6", id="s1"))
    assert isinstance(subscribe, Request)
    ship(server, client, subscribe.response())
    note = ship(server, client, Notification(id="s1", event_name="user.updated", seq=1, data={"id": 6}))
    assert isinstance(note, Notification) and note.seq == 1

    slow = ship(client, server, Request(method="GET", url="/slow", id=2))
    assert isinstance(slow, Request)
    ship(client, server, Cancel(id=2))
    cancelled = ship(server, client, slow.error(499))
    assert isinstance(cancelled, Response) and cancelled.code == "cancelled"
    ship(client, server, Cancel(id="s1"))
    assert not server.is_subscribed("s1") and server.in_flight == 0 and client.in_flight == 0
    return seen


EXPECTED = [
    "Request",
    "Response",
    "Request",
    "Response",
    "Notification",
    "Request",
    "Cancel",
    "Response",
    "Cancel",
]


def test_exchange_without_any_event_loop() -> None:
    assert _exchange() == EXPECTED


def test_exchange_under_asyncio() -> None:
    async def main() -> list[str]:
        await asyncio.sleep(0)
        return _exchange()

    assert asyncio.run(main()) == EXPECTED


def test_exchange_over_asyncio_streams() -> None:
    """The protocol drives a real asyncio transport, one JSON message per line."""

    async def main() -> Response:
        server_conn = Connection(Role.SERVER)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_conn.receive_data(await reader.readline())
            request = server_conn.next_event()
            assert isinstance(request, Request)
            writer.write(server_conn.send(request.response(data=request.path)).encode() + b"\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client_conn = Connection(Role.CLIENT)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(client_conn.send(Request(method="GET", url="/ping?x=1", id=7)).encode() + b"\n")
            client_conn.receive_data(await asyncio.wait_for(reader.readline(), 5))
            writer.close()
            reply = client_conn.next_event()
            assert isinstance(reply, Response)
            return reply

    assert asyncio.run(main()) == Response(id=7, status=200, data="/ping")


def test_public_names_match_all() -> None:
    exported = {
        name
        for name, value in vars(trio_rest_protocol).items()
        if not name.startswith("_") and not isinstance(value, __future__._Feature)
    }
    assert set(trio_rest_protocol.__all__) == exported
