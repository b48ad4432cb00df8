"""The servers under test, and the process that runs one of them.

A `ServerSpec` says how to start a server (which interpreter, which module)
and how its replies are correlated. A `ServerProcess` runs it on 127.0.0.1
pinned to one core, waits until it accepts connections, reads its CPU time
and memory from ``/proc``, and kills it (and anything it started) on the way
out, whatever happens: its own session and process group, a parent-death
signal, and a registry that an ``atexit`` hook empties.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import attrs

__all__ = [
    "REPO",
    "SERVERS",
    "ServerError",
    "ServerProcess",
    "ServerSpec",
    "free_port",
    "project_env",
    "project_python",
]

#: The repository root (the parent of ``benchmarks/``).
REPO = Path(__file__).resolve().parent.parent

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1


class ServerError(Exception):
    """A server could not be started (it exited, or never accepted a connection)."""


@attrs.frozen(kw_only=True)
class ServerSpec:
    """How to start one server and talk to it.

    Attributes:
        name: the short name used on the command line and in the JSON.
        label: the row title in the table.
        module: the module run with ``python -m``.
        args: extra arguments after the module (before ``--port``).
        competitor: True when it runs in the competitors' virtual environment,
            False when it runs in the project's (``sys.executable``).
        key: the correlation mode (a name in `_wire.MODES`): what the load
            generator sends and how it matches replies to requests: ``"id"``,
            ``"event_name"`` (aiorest-ws), ``"dcrf"`` (djangochannelsrestframework)
            or ``"socketio"`` (Socket.IO events with acks).
        note: what it is, for the table's footnotes.
        root: the checkout it runs from (its working directory and the head of
            its ``PYTHONPATH``); None for this one. A baseline row's is a git
            worktree of an earlier commit.
        baseline_of: on a baseline row, the name of the row it is the
            baseline of (the same server, run from this checkout).
    """

    name: str
    label: str
    module: str
    args: tuple[str, ...] = ()
    competitor: bool = False
    key: str = "id"
    note: str = ""
    root: str | None = None
    baseline_of: str | None = None


def _trio_rest(engine: str) -> ServerSpec:
    return ServerSpec(
        name=f"trio-rest-{engine}",
        label=f"trio-rest ({engine})",
        module="trio_rest",
        args=("run", "benchmarks.apps:app", "--engine", engine, "--log-level", "WARNING"),
        note=f"`python -m trio_rest run benchmarks.apps:app --engine {engine}`, route `/users/{{id:int}}`",
    )


#: Every server, in table order; the first is the reference row.
SERVERS: tuple[ServerSpec, ...] = (
    _trio_rest("websockets"),
    _trio_rest("wsproto"),
    ServerSpec(
        name="trio-websocket",
        label="trio-websocket echo",
        module="benchmarks.servers.trio_websocket_echo",
        note="bare trio-websocket echo loop (no JSON)",
    ),
    ServerSpec(
        name="trio-raw",
        label="bare Trio echo",
        module="benchmarks.servers.trio_raw_echo",
        note="one task per socket on bare Trio streams, minimal pure-Python framing, no JSON: "
        "the floor of any WebSocket server on Trio",
    ),
    ServerSpec(
        name="trio-websockets",
        label="Trio + websockets sans-IO",
        module="benchmarks.servers.trio_websockets_dispatch",
        note="one task per socket on Trio streams, the websockets library's sans-IO `ServerProtocol`, "
        "the asyncio rows' hand-written dispatch and orjson; no queue, worker or deadline: "
        "trio-rest's own parts without the framework",
    ),
    ServerSpec(
        name="websockets",
        label="asyncio websockets",
        module="benchmarks.servers.websockets_dispatch",
        competitor=True,
        note="asyncio + websockets, hand-written dict dispatch, orjson",
    ),
    ServerSpec(
        name="starlette",
        label="uvicorn + Starlette",
        module="benchmarks.servers.starlette_app",
        competitor=True,
        note="uvicorn defaults + Starlette WebSocket endpoint, same dispatch, orjson",
    ),
    ServerSpec(
        name="fastapi",
        label="uvicorn + FastAPI",
        module="benchmarks.servers.fastapi_app",
        competitor=True,
        note="uvicorn defaults + FastAPI `@app.websocket` endpoint, the Starlette row's dispatch, orjson",
    ),
    ServerSpec(
        name="socketio",
        label="uvicorn + python-socketio",
        module="benchmarks.servers.socketio_app",
        competitor=True,
        key="socketio",
        note='python-socketio 5 `AsyncServer(async_mode="asgi")` in `ASGIApp` under uvicorn, orjson '
        'shim; each request is a `request` event with an ack (`42N["request",{envelope}]`), the reply '
        "its ack (`43N[{reply}]`) matched by the ack id, on Engine.IO 4's WebSocket transport; a "
        "handshake includes the namespace connect (`40`)",
    ),
    ServerSpec(
        name="channels-uvicorn",
        label="uvicorn + Channels + DCRF",
        module="benchmarks.servers.channels_app",
        args=("--server", "uvicorn"),
        competitor=True,
        key="dcrf",
        note="Django Channels 4 + djangochannelsrestframework `AsyncAPIConsumer` under uvicorn, orjson "
        '`encode_json`/`decode_json`; request `{"action": "retrieve", "pk": 17, '
        '"request_id": N}`, reply matched by `request_id`, an error when `response_status` is not 200. '
        "`retrieve` is an async `@action` that returns the record from memory (no model, no database, "
        "no worker thread)",
    ),
    ServerSpec(
        name="channels-daphne",
        label="daphne + Channels + DCRF",
        module="benchmarks.servers.channels_app",
        args=("--server", "daphne"),
        competitor=True,
        key="dcrf",
        note="the same Channels + DCRF application under daphne (`-v 0`: Twisted on asyncio), same "
        "requests and correlation",
    ),
    ServerSpec(
        name="aiorest-ws",
        label="aiorest-ws 1.1.1",
        module="benchmarks.servers.aiorest_ws_app",
        competitor=True,
        key="event_name",
        note="aiorest-ws 1.1.1 + autobahn (runtime shims), correlated by event_name, stdlib json",
    ),
    ServerSpec(
        name="picows",
        label="picows echo (ceiling)",
        module="benchmarks.servers.picows_echo",
        competitor=True,
        note="raw picows echo on asyncio (no JSON): the practical ceiling",
    ),
)


def project_env(root: str | Path | None = None) -> dict[str, str]:
    """The environment servers run with: the checkout and its ``protocol/`` on the path.

    Args:
        root: the checkout (None: this repository).
    """
    root = Path(root) if root is not None else REPO
    env = dict(os.environ)
    paths = [str(root), str(root / "protocol")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _child_setup(cpu: int | None) -> None:
    """In the child, before exec: pin it, and have it killed if the harness dies."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_LIVE: set[ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()


class ServerProcess:
    """One server, run as its own process for the length of a ``with`` block.

    Args:
        spec: what to run.
        python: the interpreter (the project's or the competitors').
        port: the port to listen on.
        log: where its stdout and stderr go.
        cpu: the core to pin it to (None: leave it unpinned).
        host: the address.
        ready_timeout: seconds it gets to accept its first connection.

    Raises:
        ServerError: (on entering) it exited or never became ready.
    """

    def __init__(
        self,
        spec: ServerSpec,
        *,
        python: str,
        port: int,
        log: Path,
        cpu: int | None = None,
        host: str = "127.0.0.1",
        ready_timeout: float = 30.0,
    ) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self._python = python
        self._log = log
        self._cpu = cpu
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        """The command line that starts it."""
        return [
            self._python,
            "-m",
            self.spec.module,
            *self.spec.args,
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    @property
    def pid(self) -> int:
        """Its process id."""
        if self._proc is None:
            raise ServerError("not started")
        return self._proc.pid

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start it and wait until it accepts a TCP connection."""
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("wb") as log:
            cpu = self._cpu
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.spec.root or REPO,
                env=project_env(self.spec.root),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _child_setup(cpu),
            )
        _LIVE.add(self)
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise ServerError(f"{self.spec.name} exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection((self.host, self.port), timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.spec.name} did not accept connections in {self._ready_timeout:.0f} s")

    def stop(self, grace: float = 3.0) -> None:
        """Stop it: SIGTERM, then SIGKILL to its whole process group after `grace` seconds."""
        proc = self._proc
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        # Anything it started, and itself if it is still there.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far (all its threads)."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # Fields 14 and 15 of proc(5) (utime, stime); the split starts at field 3.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def rss_bytes(self) -> int:
        """The server's resident memory now."""
        with open(f"/proc/{self.pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE

    def log_tail(self, lines: int = 20) -> str:
        """The end of its output, for error messages."""
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def project_python() -> str:
    """The interpreter trio-rest runs with: this one."""
    return sys.executable
