"""A throwaway Redis server on 127.0.0.1, from Debian's ``redis-server`` package.

The broadcast benchmark runs every broker on one of these, and the tests run against one
(skipped, with the reason, when ``redis-server`` is missing). A test may kill the server
(as a crash does) and start it again on the same port, with or without its data on disk.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, in a directory of its own.

    Args:
        persistent: keep the data on disk (append-only file, written at every command),
            so that a restart after a kill finds it; otherwise a restart starts empty.
    """

    def __init__(self, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.binary = binary
        self.persistent = persistent
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="trio-rest-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again), and wait until it answers."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        )
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence]
        self.process = subprocess.Popen(
            [*command, "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 10 s")

    def kill(self) -> None:
        """Stop it at once, as a crash does (SIGKILL)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_server(persistent: bool = False) -> Iterator[RedisServer]:
    """Start a throwaway Redis server; yield it; stop and remove it.

    Raises:
        RuntimeError: the binary is missing or the server does not start (the message says why).
    """
    server = RedisServer(persistent)
    try:
        server.start()
        yield server
    finally:
        server.remove()
