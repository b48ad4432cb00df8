"""``python -m trio_rest run ... --workers N --broker redis://...``: real processes, a real Redis.

Two groups of two workers each, on two ports sharing one Redis server and one SQLite file,
stand for two machines. The seed example publishes every committed write to a user; a
subscriber on any worker of any group must see each write once, in order.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import trio

from tests._environment import child_env
from tests._redis import RedisServer
from tests.security._server_process import REPO, _read_port, stop_gracefully
from trio_rest.client import Client, Subscription, connect

_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


class Group:
    """A supervisor and its workers: its port, its log, the pids of its workers."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
        self.process, self.port, self._log = process, port, log

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def log(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def workers(self) -> dict[int, int]:
        """The latest pid of each worker slot."""
        return {int(slot): int(pid) for slot, pid in _STARTED.findall(self.log())}

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def group(cwd: Path, broker: str, workers: int = 2, port: int = 0) -> Iterator[Group]:
    """``python -m trio_rest run examples.users.app:app --workers N --broker URL`` in `cwd`."""
    env = child_env()
    argv = [sys.executable, "-m", "trio_rest", "run", "examples.users.app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), "--broker", broker, "--log-level", "INFO"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        running = Group(process, 0, log)
        try:
            running.port = _read_port(process, 30)
            yield running
        finally:
            stop_gracefully(process, timeout=30)
            for pid in running.workers().values():  # never leave a worker behind
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            assert process.stdout is not None
            process.stdout.close()


@asynccontextmanager
async def watching(url: str, count: int) -> AsyncIterator[list[Subscription]]:
    """`count` clients of `url`, each subscribed to the user list (they spread over the workers)."""
    async with AsyncExitStack() as stack:
        subscriptions = []
        for _ in range(count):
            client = await stack.enter_async_context(connect(url, max_backoff=0.3))
            subscriptions.append(await stack.enter_async_context(client.subscribe("/user/list")))
        for subscription in subscriptions:  # the recovery notice: each follows the topic now
            assert (await subscription.__anext__()).event_name == "recovery"
        yield subscriptions


async def _created(subscription: Subscription, count: int) -> list[Any]:
    """The names of the next `count` users created (other notices, such as recovery, skipped)."""
    names = []
    others = []  # what else came, for the message of a failure
    with trio.move_on_after(30):
        while len(names) < count:
            note = await subscription.__anext__()
            if note.event_name == "created":
                names.append(note.data["name"])
            else:
                others.append((note.event_name, note.data, note.offset))
    assert len(names) == count, f"{len(names)} of {count} in 30 s: {names}; also {others}"
    return names


async def _create(client: Client, names: list[str]) -> None:
    for name in names:
        response = await client.post("/user/", {"name": name, "fullname": name, "password": "x"})
        assert response.status == 201, response


async def test_writes_through_one_machine_reach_subscribers_on_every_worker_of_both(
    tmp_path: Path, redis: RedisServer
) -> None:
    with group(tmp_path, redis.url) as one, group(tmp_path, redis.url) as two:
        names = [f"user{n}" for n in range(20)]
        async with watching(one.url, 4) as near, watching(two.url, 4) as far:
            async with connect(one.url) as writer:
                await _create(writer, names)
            for subscription in [*near, *far]:
                assert await _created(subscription, 20) == names  # each once, in order
                with trio.move_on_after(0.3):
                    note = await subscription.__anext__()
                    raise AssertionError(f"delivered more: {note}")
        assert one.stop() == 0 and two.stop() == 0
        logs = one.log() + two.log()
        assert "Traceback" not in logs, logs[logs.index("Traceback") - 300 :]


async def test_a_killed_worker_is_restarted_and_its_clients_recover_on_a_sibling(
    tmp_path: Path, redis: RedisServer
) -> None:
    with group(tmp_path, redis.url) as machine:
        async with watching(machine.url, 6) as subscriptions:
            await _create_via(machine.url, ["before"])
            for subscription in subscriptions:
                assert await _created(subscription, 1) == ["before"]
            slot, pid = next(iter(machine.workers().items()))
            os.kill(pid, signal.SIGKILL)
            names = [f"after{n}" for n in range(30)]
            await _create_via(machine.url, names)  # lands on the sibling while the slot restarts
            for subscription in subscriptions:  # those on the killed worker reconnected and recovered
                assert await _created(subscription, 30) == names
            with trio.fail_after(20):
                while machine.workers()[slot] == pid:
                    await trio.sleep(0.1)
        assert f"worker {slot} (pid {pid}) exited with status -9; restarting" in machine.log()
        assert machine.stop() == 0


async def _create_via(url: str, names: list[str]) -> None:
    """Create the users through a new client; its first connection is tried up to 3 times.

    (A connection made while a worker dies may get no handshake; a client tries again.)
    """
    for attempt in range(3):
        try:
            async with connect(url, max_backoff=0.3, connect_timeout=3) as writer:
                await _create(writer, names)
                return
        except OSError:
            if attempt == 2:
                raise


async def test_a_client_away_while_100_writes_happen_gets_exactly_those(
    tmp_path: Path, redis: RedisServer
) -> None:
    """Its machine stops, 100 users are created on the other one, its machine starts again."""
    with group(tmp_path, redis.url) as other:
        port = _free_port()
        with group(tmp_path, redis.url, port=port) as home:
            async with connect(home.url, max_backoff=0.5) as client, client.subscribe("/user/list") as users:
                assert (await users.__anext__()).event_name == "recovery"
                await _create_via(other.url, ["first"])
                assert await _created(users, 1) == ["first"]
                assert home.stop() == 0  # the client is disconnected...
                names = [f"missed{n}" for n in range(100)]
                await _create_via(other.url, names)  # ...while 100 writes happen elsewhere
                with group(tmp_path, redis.url, port=port):  # ...then its machine comes back
                    assert await _created(users, 100) == names
                    note = None
                    with trio.move_on_after(0.3):
                        note = await users.__anext__()
                    assert note is None, f"delivered more: {note}"
                    assert client.connections == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_supervisor_gives_up_on_a_worker_that_cannot_start(tmp_path: Path) -> None:
    env = child_env()
    argv = [sys.executable, "-m", "trio_rest", "run", "tests.test_workers:no_such_app", "--workers", "2"]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and time.monotonic() - started < 30
    assert "no_such_app" in done.stderr or "is not a trio_rest.App" in done.stderr
