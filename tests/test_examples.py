"""The examples run, and the README shows exactly what they print."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from examples import hello, hello_client, protocol_exchange
from tests._environment import child_env
from tests.trio_rest._sockets import http_get
from trio_rest import Server
from trio_rest.testing import TestClient

README = (Path(__file__).parents[1] / "README.md").read_text()


def _readme_json_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```json\n(.*?)```", README, re.S)]


def test_protocol_exchange_matches_the_readme() -> None:
    wire = protocol_exchange.main()
    printed = [line[2:] for line in wire]
    blocks = _readme_json_blocks()
    assert blocks == [printed[0], printed[1], printed[3]]
    for block in blocks:
        json.loads(block)


def test_readme_shows_the_server_example_verbatim() -> None:
    source = (Path(__file__).parents[1] / "examples" / "hello.py").read_text()
    assert "```python\n" + source + "```" in README


async def test_hello_app() -> None:
    async with TestClient(hello.app) as client:
        found = await client.get("/user/1")
        missing = await client.get("/user/2")
    assert (found.status, found.data) == (200, {"id": 1, "name": "Ada Lovelace"})
    assert (missing.status, missing.detail) == (404, "No user 2.")


async def test_hello_client_against_a_real_server() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(hello.app).serve, "127.0.0.1", 0)
            lines = await hello_client.main(f"ws://127.0.0.1:{server.port}/")
            nursery.cancel_scope.cancel()
    assert lines == [
        "GET /user/1 -> 200 {'id': 1, 'name': 'Ada Lovelace'}",
        "GET /user/2 -> 404 No user 2.",
        "GET /nowhere -> 404 Not Found",
    ]


async def test_the_seed_client_session_against_the_demo_server(tmp_path: Path) -> None:
    from examples.users import client as users_client
    from examples.users.app import build_app

    app = build_app(f"sqlite:///{tmp_path / 'users.db'}")  # serving it creates the tables
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
            replies = await users_client.main(f"ws://127.0.0.1:{server.port}/")
            nursery.cancel_scope.cancel()
    app.database.dispose()
    statuses = {name: status for name, status, _ in replies}
    assert statuses == {
        "create-address": 201,
        "get-user-list": 200,
        "create-user": 201,
        "create-user-again": 400,
        "create-user-with-at": 400,
        "partial-update-user": 200,
        "get-user": 200,
        "login": 200,
        "get-me": 200,
    }
    bodies = {name: body for name, _, body in replies}
    assert bodies["create-user-again"]["errors"] == {"name": ["user with this name already exists."]}
    assert "name" in bodies["create-user-with-at"]["errors"]
    assert bodies["get-user"]["fullname"] == "Definitely not Neyton Drake"
    assert bodies["get-user"]["addresses"] == [bodies["create-address"]["id"]]
    assert "password" not in bodies["get-user"]
    assert bodies["get-me"]["name"] == "Neyton" and "token" in bodies["login"]


async def test_the_users_app_served_by_the_cli_from_an_empty_folder_makes_its_tables(tmp_path: Path) -> None:
    """``python -m trio_rest run examples.users.app:app`` in a new folder serves the session at once."""
    from examples.users import client as users_client
    from tests.security._server_process import run_server

    with run_server("examples.users.app:app", cwd=tmp_path) as server:
        with trio.fail_after(30):
            replies = await users_client.main(f"ws://127.0.0.1:{server.port}/")
            # Again, against the same database: the new user takes the next free name.
            again = await users_client.main(f"ws://127.0.0.1:{server.port}/")
    assert [status for _, status, _ in replies] == [201, 200, 201, 400, 400, 200, 200, 200, 200], server.log()
    assert [status for _, status, _ in again] == [201, 200, 201, 400, 400, 200, 200, 200, 200], server.log()
    assert {name: body for name, _, body in again}["get-user"]["name"] == "Neyton2"
    assert (tmp_path / "users.db").exists()


async def test_the_demo_twice_then_the_client_twice(tmp_path: Path) -> None:
    """``make demo``'s command, stopped and started again on the same users.db, each time replayed twice."""
    from examples.users import client as users_client
    from tests.security._server_process import run_server

    names = []
    for _ in range(2):
        command = ["-m", "examples.users", "--port", "0"]
        with run_server("", command=command, cwd=tmp_path) as server:
            for _ in range(2):
                with trio.fail_after(30):
                    replies = await users_client.main(f"ws://127.0.0.1:{server.port}/")
                statuses = [status for _, status, _ in replies]
                assert statuses == [201, 200, 201, 400, 400, 200, 200, 200, 200], server.log()
                names.append({name: body for name, _, body in replies}["get-user"]["name"])
            head, page = await http_get(server.port, "/")  # the demo turns the explorer on
            assert head.startswith(b"HTTP/1.1 200 ") and b"<title>trio-rest explorer</title>" in page
    assert names == ["Neyton", "Neyton2", "Neyton3", "Neyton4"]


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:

    env = child_env()
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_the_client_without_a_server_says_so_in_one_line(tmp_path: Path) -> None:
    with _listening_socket() as sock:  # bound, then closed: nobody listens on its port
        port = sock.getsockname()[1]
    done = _python("-m", "examples.users.client", f"ws://127.0.0.1:{port}/", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "is the server running?" in done.stderr, done.stderr


def test_the_demo_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        done = _python("-m", "examples.users", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        f"trio-rest: cannot listen on 127.0.0.1:{port}: Address already in use"
        " (is another server running there? choose another --port)\n"
    ), done.stderr
    assert f"python -m examples.users.client ws://127.0.0.1:{port}/" in done.stdout
    assert f"Open http://127.0.0.1:{port}/ in a browser" in done.stdout


def test_make_demo_takes_the_port() -> None:
    from tests.security._server_process import REPO

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", "demo", "PORT=9123"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert "-m examples.users --port 9123" in done.stdout


async def test_the_watcher_sees_what_the_client_session_writes(tmp_path: Path) -> None:
    """``python -m examples.users.watch`` beside the demo: the client's writes arrive live."""
    from examples.users import client as users_client
    from examples.users import watch
    from examples.users.app import build_app

    app = build_app(f"sqlite:///{tmp_path / 'users.db'}")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(Server(app).serve, "127.0.0.1", 0)
            url = f"ws://127.0.0.1:{server.port}/"
            seen: list[tuple[str | None, object]] = []

            async def watching(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                seen.extend(await watch.main(url, 2, task_status=task_status))

            await nursery.start(watching)
            replies = await users_client.main(url)
            while len(seen) < 2:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    app.database.dispose()
    bodies = {name: body for name, _, body in replies}
    assert seen == [("created", bodies["create-user"]), ("updated", bodies["get-user"])]


def test_the_watcher_without_a_server_says_so_in_one_line(tmp_path: Path) -> None:
    with _listening_socket() as sock:  # bound, then closed: nobody listens on its port
        port = sock.getsockname()[1]
    done = _python("-m", "examples.users.watch", f"ws://127.0.0.1:{port}/", "--count", "1", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "make demo" in done.stderr
