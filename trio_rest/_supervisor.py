"""``python -m trio_rest run ... --workers N``: N server processes on one port, supervised.

The supervisor starts N workers, each ``python -m trio_rest run`` with the same options and
``--reuse-port``, so that they all listen on the port and the kernel spreads new connections
among them (``SO_REUSEPORT``). Each worker has its own session, so that a Ctrl-C in the
terminal reaches the supervisor only, which then stops them all once.

Rules:

1. While not stopping, each of the N slots has a worker running or about to be started
   again: a worker that exits is logged and restarted, after a pause that grows while it
   keeps failing at once (`CRASH_WINDOW`), and the supervisor gives up (exit status 1) when
   a slot failed `MAX_QUICK_FAILURES` times in a row without ever serving long.
2. On SIGINT or SIGTERM, each worker gets one SIGTERM (its graceful shutdown: requests
   in flight answered, every client closed with 1001); one that is still running
   `stop_timeout` seconds later is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

import trio

__all__ = ["supervise"]

log = logging.getLogger("trio_rest.workers")

#: A worker that exits within this many seconds of starting failed "at once".
CRASH_WINDOW = 2.0
#: Failures at once in a row after which a slot gives up.
MAX_QUICK_FAILURES = 5


#: What a worker prints (stdout) once it listens; the supervisor waits for every worker's.
LISTENING = b" listening on "


async def supervise(
    command: Sequence[str], workers: int, stop_timeout: float, on_ready: Callable[[], None]
) -> int:
    """Run `workers` copies of `command` until SIGINT or SIGTERM; the exit status.

    Args:
        command: a worker's argument list (after the Python executable).
        workers: how many.
        stop_timeout: seconds each worker has to stop after its SIGTERM.
        on_ready: called once, when every worker has said it listens.
    """
    processes: dict[int, trio.Process] = {}
    stopping = trio.Event()
    status = 0
    listening: set[int] = set()

    async def forward(index: int, stream: trio.abc.ReceiveStream) -> None:
        """Copy a worker's output to ours, line by line, and note when it says it listens."""
        pending = b""
        async for chunk in stream:
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                sys.stdout.buffer.write(line + b"\n")
                if LISTENING in line and index not in listening:
                    listening.add(index)
                    if len(listening) == workers:
                        on_ready()
            sys.stdout.flush()

    async def run_worker(index: int) -> tuple[int, int]:
        """Start the worker of slot `index`, wait for its end; its pid and exit status."""
        env = {**os.environ, "TRIO_REST_WORKER": str(index), "TRIO_REST_SUPERVISOR": str(os.getpid())}
        process = await trio.lowlevel.open_process(
            [sys.executable, *command],
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        processes[index] = process
        if stopping.is_set():  # started while the others were told to stop
            process.send_signal(signal.SIGTERM)
        log.info("worker %d started (pid %d)", index, process.pid)
        try:
            async with trio.open_nursery() as output:
                assert process.stdout is not None
                output.start_soon(forward, index, process.stdout)
                code = await process.wait()
                # A process the worker started may hold its output open: do not wait for it.
                output.cancel_scope.deadline = trio.current_time() + 1
        finally:
            del processes[index]
        return process.pid, code

    async def slot(index: int) -> None:
        nonlocal status
        failures = 0
        while not stopping.is_set():
            started = trio.current_time()
            try:
                pid, code = await run_worker(index)
            except OSError as exc:  # the worker could not even start (no memory, too many files)
                log.error("worker %d could not start: %s", index, exc)
                status = 1
                stopping.set()
                return
            if stopping.is_set():
                log.info("worker %d stopped (exit status %d)", index, code)
                return
            quick = trio.current_time() - started < CRASH_WINDOW
            failures = failures + 1 if quick else 0
            log.warning("worker %d (pid %d) exited with status %d; restarting", index, pid, code)
            if failures >= MAX_QUICK_FAILURES:
                log.error("worker %d failed %d times in a row at start: giving up", index, failures)
                status = 1
                stopping.set()
                return
            await trio.sleep(min(5.0, 0.1 * 2**failures) if quick else 0)

    hurry = trio.CancelScope()  # a second signal: do not wait for the workers any more

    async def stop_all() -> None:
        for process in list(processes.values()):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        running = list(processes.items())
        with hurry, trio.move_on_after(stop_timeout):
            async with trio.open_nursery() as waiting:
                for _, process in running:
                    waiting.start_soon(process.wait)
        for index, process in running:
            if process.returncode is None:
                log.warning("worker %d (pid %d) did not stop in time: killed", index, process.pid)
                process.kill()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:

        async def signals() -> None:
            async for signum in received:
                name = signal.Signals(signum).name
                if not stopping.is_set():
                    log.info("received %s: stopping the workers", name)
                    stopping.set()
                else:
                    log.warning("received %s again: killing the workers", name)
                    hurry.cancel()

        async with trio.open_nursery() as nursery:
            for index in range(1, workers + 1):
                nursery.start_soon(slot, index)
            nursery.start_soon(signals)
            await stopping.wait()
            await stop_all()
            nursery.cancel_scope.cancel()
    return status
