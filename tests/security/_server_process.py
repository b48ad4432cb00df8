"""Run a trio-rest server in a subprocess, to measure it from the outside (its RSS, its port).

The server is ``python -m trio_rest run MODULE:ATTR --host 127.0.0.1 --port 0``; the port it
picked is read from the line the command prints once it listens. Every wait is bounded,
and the process is killed when the ``with`` block ends, whatever happened in it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests._environment import REPO, child_env

__all__ = ["ServerProcess", "run_server", "stop_gracefully"]


# What trio_rest._cli prints (stdout, flushed) once the listener is bound.
_SERVING = re.compile(rb"serving on wss?://[^:/]+:(\d+)/")


class ServerProcess:
    """A server subprocess: its pid, its port, and its resident memory.

    Args:
        process: The running ``python -m trio_rest`` process.
        port: The TCP port it listens on, on 127.0.0.1.
        stderr: The file its log goes to (a pipe nobody reads could fill and block it).
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, stderr: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self._stderr = stderr

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def rss(self) -> int:
        """Return the server's resident set size in bytes (``VmRSS`` of /proc/PID/status).

        Raises:
            RuntimeError: When the process has exited.
        """
        if self.process.poll() is not None:
            raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log()}")
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
        raise RuntimeError("no VmRSS line in /proc status")  # pragma: no cover - Linux always has it

    def log(self) -> str:
        """Return what the server wrote to stderr so far (for failure messages)."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Read the server's stdout until it says which port it serves on."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    received = b""
    while (match := _SERVING.search(received)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the server did not start within {timeout} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the server exited with {process.wait(timeout)} before serving")
            received += chunk
    return int(match.group(1))


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (a server stops gracefully, with its workers), then SIGKILL if it lingers `timeout` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def run_server(
    target: str,
    *args: str,
    start_timeout: float = 20.0,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    command: Sequence[str] | None = None,
) -> Iterator[ServerProcess]:
    """Run ``python -m trio_rest run TARGET`` on 127.0.0.1, port 0, for the ``with`` block.

    Args:
        target: ``MODULE:ATTR`` naming the App (or a function that builds one), importable
            from the repository's root.
        *args: More command-line options, e.g. ``"--engine", "wsproto"``.
        start_timeout: Seconds the server has to start listening.
        env: Extra environment variables (the server sees no other ``TRIO_REST_`` setting, and
            finds this checkout's packages through ``PYTHONPATH``).
        cwd: The folder it runs in (the repository by default).
        command: Another command line for Python, instead of ``-m trio_rest run ...``
            (``["-m", "examples.users", "--port", "0"]``); it must print the same line
            once it listens.

    Returns:
        A context manager yielding the running `ServerProcess`.

    Raises:
        TimeoutError: When the server does not start listening in time.
        RuntimeError: When it exits before.
    """
    argv: Sequence[str] = [
        sys.executable,
        "-m",
        "trio_rest",
        "run",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "WARNING",
        *args,
    ]
    if command is not None:
        argv = [sys.executable, *command]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=child_env(env),
        )
        try:
            port = _read_port(process, start_timeout)
            yield ServerProcess(process, port, stderr)
        finally:
            process.kill()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()
