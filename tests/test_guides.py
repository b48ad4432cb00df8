"""Every fenced block of the guides (``docs/guides/*.md``) and of the other docs pages runs here.

A page is run from top to bottom, in a fresh folder of its own (its *folder*), the current
directory of everything on the page. What each kind of block means:

``python`` whose first line is ``# NAME.py``
    A file the reader saves: it is written to the folder (later blocks import it, or run it).
``python`` (any other)
    Executed in order in one module per page, as if the page's blocks were pasted one after
    the other into a Python prompt; the folder is on ``sys.path``. When a ``text`` block
    follows one, that is what the block prints, exactly.
``console``
    ``$ command`` lines (a line ending in ``\\`` continues), each followed by what it prints on
    stdout. On an output line, ``...`` alone matches any number of lines, and ``...`` inside a
    line matches any text. The command runs in bash with the project's Python first on
    ``PATH``; it must exit with status 0. A command whose output says ``serving on`` is a
    server: it runs in the background until the page ends, and its output is compared once it
    says so. ``make`` runs the project's Makefile on the virtual environment already installed.
``json``
    One JSON value per line: client envelopes are sent in order, on one WebSocket that
    negotiates no subprotocol (as a browser or an aiorest-ws client opens it), to the page's
    server (the last one a ``console`` block started, else the page's ``app``, served on
    127.0.0.1 for the block), and the server's messages expected in reply follow: responses
    are paired with their requests by id (requests run concurrently), other messages come in
    order. The string ``"..."`` as a value matches any value.
``nginx``
    A ``server`` block (with any ``map`` and ``upstream`` it needs), for nginx's ``http`` context: it is
    wrapped into an ``nginx.conf`` in the folder and nginx runs it in the background (with the
    folder as its prefix, so relative paths are under the folder) until the page ends. Without
    nginx the rest of the page is skipped there, saying so, so nginx's section ends its page.

Ports 8080, 8081, 8443 and 8000 are replaced by free ports, and 6379 by the port of a
redis-server the test starts (the rest of the page is skipped, saying so, when it is not
installed), the same way in every block of a page. Each command and block has
`BLOCK_TIMEOUT` seconds. A block the reader must adapt, which cannot run here, follows the line
``<!-- not run: REASON -->``; `NOT_RUN` lists them all, and the test fails when a page has
another one, or a block of a kind it does not run. A block that another test runs (a browser
page, run in Chromium) follows ``<!-- run by tests/FILE -->``, and that file must name the
page. The pages covered are `PAGES`, which must be every file of ``docs/guides/`` (but its
index) and ``docs/migrating.md``, and the reference pages of `REFERENCE_PAGES`.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio_websocket

from tests._environment import child_env
from tests.security._server_process import REPO, stop_gracefully
from trio_rest import App, Server

GUIDES = REPO / "docs" / "guides"

#: The pages this test runs, each once: the guides, then the migration page they link to.
PAGES = [
    "docs/guides/quickstart.md",
    "docs/guides/routing.md",
    "docs/guides/serializers.md",
    "docs/guides/notifications.md",
    "docs/guides/auth.md",
    "docs/guides/deployment.md",
    "docs/guides/scaling.md",
    "docs/migrating.md",
]

#: The reference pages, whose blocks run the same way.
REFERENCE_PAGES = ["docs/server.md", "docs/data.md", "docs/auth.md"]

#: The blocks that do not run (page, the reason the page gives): keep this short.
NOT_RUN = [
    ("docs/guides/quickstart.md", "installs the project into a new virtual environment"),
    ("docs/migrating.md", "aiorest-ws code, for comparison"),
]

#: The ports a page may name, replaced by free ones (6379: the Redis server the test starts).
PORTS = ("8080", "8081", "8443", "8000")
REDIS_PORT = "6379"

#: Seconds a block may take (commands, servers starting, python blocks).
BLOCK_TIMEOUT = 60

#: The kinds of block a page may have (see the module's docstring).
_KINDS = {"python", "text", "console", "json", "nginx"}
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")
_RUN_BY = re.compile(r"<!-- run by (tests/[\w/.-]+) -->\s*$")
_FILE = re.compile(r"# ([\w/.-]+\.py)\n")
_SERVING = re.compile(r"serving on (wss?)://[^:/]+:(\d+)/")


@attrs.frozen
class Block:
    kind: str
    text: str
    line: int  # where it starts, for messages
    not_run: str | None = None
    run_by: str | None = None  # the test file that runs it


def blocks(page: str) -> list[Block]:
    """The fenced blocks of `page`, in order, with the marker before each (if any)."""
    source = (REPO / page).read_text()
    found = []
    for match in _FENCE.finditer(source):
        before = source[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _NOT_RUN.search(before)
        elsewhere = _RUN_BY.search(before)
        line = source.count("\n", 0, match.start()) + 1
        found.append(
            Block(
                match.group(1),
                match.group(2),
                line,
                marker.group(1) if marker else None,
                elsewhere.group(1) if elsewhere else None,
            )
        )
    # A fence this reader does not see (indented in a list, say) would be a block never run.
    fences = len(re.findall(r"^\s*(?:```|~~~)", source, re.M))
    assert fences == 2 * len(found), f"{page}: a fenced block is not at the start of its line"
    return found


# -- the pages covered ---------------------------------------------------------------------


def test_the_pages_are_every_guide_and_the_migration_page() -> None:
    guides = {f"docs/guides/{path.name}" for path in GUIDES.glob("*.md") if path.name != "README.md"}
    assert set(PAGES) == guides | {"docs/migrating.md"}
    index = (GUIDES / "README.md").read_text()
    for page in PAGES:
        link = page.removeprefix("docs/guides/") if page.startswith("docs/guides/") else "../migrating.md"
        assert f"]({link})" in index, f"docs/guides/README.md does not link to {page}"
    assert not _FENCE.search(index), "the index has no code: put it on a page"
    assert "docs/guides/README.md" in (REPO / "README.md").read_text()


def test_only_the_listed_blocks_are_not_run() -> None:
    pages = PAGES + REFERENCE_PAGES
    marked = [(page, block.not_run) for page in pages for block in blocks(page) if block.not_run]
    assert marked == NOT_RUN


def test_a_block_run_elsewhere_is_read_from_its_page_there() -> None:
    pages = PAGES + REFERENCE_PAGES
    elsewhere = [(page, block.run_by) for page in pages for block in blocks(page) if block.run_by]
    assert elsewhere, "the browser snippet of docs/server.md is run by the browser test"
    for page, runner in elsewhere:
        assert page in (REPO / runner).read_text(), f"{runner} does not read {page}"


def test_expected_output_is_matched_line_by_line_with_ellipses() -> None:
    assert _matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert _matches(["a", "...", "b"], ["a", "b"])
    assert _matches(["token: ..."], ["token: eyJhbGci"])
    assert not _matches(["a", "...", "d"], ["a", "b", "c"])
    assert not _matches(["a"], ["a", "b"])
    assert not _matches(["201 {'id': 2}"], ["201 {'id': 3}"])


def test_json_replies_are_compared_with_ellipsis_values() -> None:
    assert _same({"id": 1, "epoch": "..."}, {"id": 1, "epoch": "9f3a61c2"})
    assert not _same({"id": 1}, {"id": 1, "extra": True})
    assert not _same({"status": 200}, {"status": 200.0})
    assert not _same(["a", "..."], ["a"])


# -- running a page --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` lines match `expected` ones (``...``: any lines, or any text in a line)."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return re.fullmatch(pattern, actual[0]) is not None and _matches(rest, actual[1:])


def _same(expected: Any, actual: Any) -> bool:
    """JSON values equal, ``"..."`` matching anything."""
    if expected == "...":
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_same(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(a, b) for a, b in zip(expected, actual, strict=True))
        )
    return bool(expected == actual) and type(expected) is type(actual)


def _is_client_message(value: Any) -> bool:
    return isinstance(value, dict) and ("method" in value or value.get("type") in {"cancel", "ping", "auth"})


class PageRun:
    """What a page has set up so far: its folder, module, servers and replaced ports."""

    def __init__(self, page: str, folder: Path, stack: contextlib.ExitStack) -> None:
        self.page, self.folder, self.stack = page, folder, stack
        self.ports = {port: str(_free_port()) for port in PORTS}
        self.module = types.ModuleType(f"guide_{Path(page).stem}")
        self.module.__file__ = str(folder / "__guide__.py")
        self.server: tuple[str, int] | None = None  # the latest served (scheme, port)
        self.last_output: str | None = None  # what the latest python block printed
        venv = Path(sys.executable).parent.parent
        (folder / ".venv").symlink_to(venv)  # `make` finds the project's installed environment
        # A page's commands run as a reader types them: none of this run's settings, and no
        # `make` above them (under `make test`, a nested make would print its directory).
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = child_env({"PATH": path, "PYTHONUNBUFFERED": "1"})
        for key in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
            self.env.pop(key, None)

    def where(self, block: Block) -> str:
        return f"{self.page}:{block.line}"

    def substitute(self, text: str) -> str:
        for port, free in self.ports.items():
            text = re.sub(rf"\b{port}\b", free, text)
        return text

    def need_redis(self, text: str) -> str:
        if REDIS_PORT in self.ports or not re.search(rf"\b{REDIS_PORT}\b", text):
            return text
        from tests._redis import RedisServer

        if shutil.which("redis-server") is None:
            pytest.skip(f"{self.page}: redis-server is not installed (apt-get install -y redis-server)")
        redis = RedisServer()
        self.stack.callback(redis.remove)
        redis.start()
        self.ports[REDIS_PORT] = str(redis.port)
        return self.substitute(text)

    # -- python ------------------------------------------------------------------------------

    def python(self, block: Block) -> None:
        text = self.need_redis(self.substitute(block.text))
        if (name := _FILE.match(text)) is not None:
            (self.folder / name.group(1)).write_text(text)
            return
        printed = io.StringIO()
        code = compile(text, self.where(block), "exec")
        # A block is the reader's program, with no deadline of its own: one that hangs stops
        # the run after a minute, with every thread's stack.
        faulthandler.dump_traceback_later(BLOCK_TIMEOUT, exit=True)
        try:
            with contextlib.redirect_stdout(printed), contextlib.chdir(self.folder):
                exec(code, self.module.__dict__)
        finally:
            faulthandler.cancel_dump_traceback_later()
        self.last_output = printed.getvalue()

    def text(self, block: Block) -> None:
        assert self.last_output is not None, f"{self.where(block)}: a text block follows no python block"
        expected = self.substitute(block.text).splitlines()
        actual = self.last_output.splitlines()
        assert _matches(expected, actual), f"{self.where(block)}: printed\n{self.last_output}"
        self.last_output = None

    # -- console -----------------------------------------------------------------------------

    def console(self, block: Block) -> None:
        text = self.need_redis(self.substitute(block.text))
        commands: list[tuple[str, list[str]]] = []
        lines = iter(text.splitlines())
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    command = command[:-1] + next(lines)
                commands.append((command, []))
            else:
                assert commands, f"{self.where(block)}: output before any command: {line!r}"
                commands[-1][1].append(line)
        assert commands, f"{self.where(block)}: a console block without a `$ command`"
        for command, expected in commands:
            if command.startswith("make "):
                command = f"make -f {REPO / 'Makefile'} STAMP= " + command[5:]
            if any("serving on" in line for line in expected):
                self.background(block, command, expected)
            else:
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=self.folder,
                    env=self.env,
                    capture_output=True,
                    text=True,
                    timeout=BLOCK_TIMEOUT,
                    check=False,
                )
                where = f"{self.where(block)}: `{command}`"
                assert done.returncode == 0, f"{where} exited with {done.returncode}:\n{done.stderr}"
                assert _matches(expected, done.stdout.splitlines()), f"{where} printed\n{done.stdout}"

    def background(self, block: Block, command: str, expected: list[str]) -> None:
        log_path, out_path = (
            self.folder / f"server-{block.line}.log",
            self.folder / f"server-{block.line}.out",
        )
        with open(out_path, "wb") as out, open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
            )
        self.stack.callback(stop_gracefully, process)
        deadline = time.monotonic() + 30
        while (match := _SERVING.search(printed := out_path.read_text())) is None:
            failed = process.poll() is not None or time.monotonic() > deadline
            assert not failed, f"{self.where(block)}: `{command}` did not serve:\n{log_path.read_text()}"
            time.sleep(0.05)
        lines = printed[: printed.index("\n", match.end()) if "\n" in printed[match.end() :] else None]
        assert _matches(expected, lines.splitlines()), f"{self.where(block)}: `{command}` printed\n{printed}"
        self.server = (match.group(1), int(match.group(2)))

    # -- json --------------------------------------------------------------------------------

    def json(self, block: Block) -> None:
        values = [json.loads(line) for line in self.substitute(block.text).splitlines() if line.strip()]
        sent = [value for value in values if _is_client_message(value)]
        expected = [value for value in values if not _is_client_message(value)]
        assert sent, f"{self.where(block)}: a json block sends nothing"
        app = getattr(self.module, "app", None)
        if self.server is not None:
            scheme, port = self.server
            assert scheme == "ws", f"{self.where(block)}: json blocks talk to ws:// servers"
            received = trio.run(_exchange, port, sent, len(expected))
        else:
            assert isinstance(app, App), f"{self.where(block)}: no server, and no `app` on the page"
            received = trio.run(_exchange_served, app, sent, len(expected))
        # Requests on one socket run concurrently: replies are paired by id, the rest in order.
        by_id = {(got.get("type"), got.get("id")): got for got in received if got.get("type") == "response"}
        others = iter(got for got in received if got.get("type") != "response")
        for want in expected:
            got = by_id.get((want.get("type"), want.get("id"))) if want.get("type") == "response" else None
            got = got if got is not None else next(others, None)
            assert _same(want, got), f"{self.where(block)}: expected {want}, received {got}"

    # -- nginx -------------------------------------------------------------------------------

    def nginx(self, block: Block) -> None:
        nginx = shutil.which("nginx") or next(
            (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
        )
        if nginx is None:
            pytest.skip(f"{self.where(block)}: nginx is not installed (apt-get install -y nginx)")
        folder = self.folder
        (folder / "logs").mkdir(exist_ok=True)
        (folder / "temp").mkdir(exist_ok=True)
        temp = " ".join(
            f"{kind}_temp_path {folder / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx's workers would become `nobody`, who cannot enter pytest's folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        config = (
            f"{user}pid {folder / 'nginx.pid'};\nerror_log {folder / 'logs' / 'error.log'} warn;\n"
            "events {}\n"
            f"http {{\n    access_log off;\n    {temp}\n"
            f"{self.substitute(block.text)}}}\n"
        )
        (folder / "nginx.conf").write_text(config)
        done = subprocess.run(
            [nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, f"{self.where(block)}: nginx -t refuses the block:\n{done.stderr}"
        process = subprocess.Popen(
            [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.stack.callback(stop_gracefully, process)
        listen = [int(port) for port in re.findall(r"listen\s+(?:127\.0\.0\.1:)?(\d+)", config)]
        deadline = time.monotonic() + 10
        for port in listen:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, (
                        f"{self.where(block)}: nginx did not listen on {port}:\n"
                        + (folder / "logs" / "error.log").read_text()
                    )
                    time.sleep(0.05)


async def _exchange(port: int, sent: list[Any], count: int) -> list[Any]:
    with trio.fail_after(10):
        url = f"ws://127.0.0.1:{port}/"
        async with trio_websocket.open_websocket_url(url) as ws:  # as a browser or aiorest-ws client
            for message in sent:
                await ws.send_message(json.dumps(message))
            return [json.loads(await ws.get_message()) for _ in range(count)]


async def _exchange_served(app: App, sent: list[Any], count: int) -> list[Any]:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = Server(app)
            await nursery.start(server.serve, "127.0.0.1", 0)
            received = await _exchange(server.port, sent, count)
            await server.shutdown()
            nursery.cancel_scope.cancel()
    return received


@contextlib.contextmanager
def _page_modules(folder: Path) -> Iterator[None]:
    """Forget the modules a page's files defined (the next page has its own ``app.py``)."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
                del sys.modules[name]


@pytest.mark.parametrize("page", PAGES + REFERENCE_PAGES)
def test_the_page_runs(page: str, tmp_path: Path) -> None:
    folder = tmp_path / "page"
    folder.mkdir()
    with contextlib.ExitStack() as stack, _page_modules(folder):
        run = PageRun(page, folder, stack)
        sys.modules[run.module.__name__] = run.module
        stack.callback(sys.modules.pop, run.module.__name__, None)
        for block in blocks(page):
            if block.not_run or block.run_by:
                continue
            handler = getattr(run, block.kind, None) if block.kind in _KINDS else None
            assert handler is not None, f"{run.where(block)}: a {block.kind or 'bare'} block is not run"
            handler(block)
