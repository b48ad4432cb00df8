"""What else the two cores are doing: the benchmark's guard against a shared machine.

The server's core and the load generator's core should run nothing but the
server and the load generator. `/proc/stat` says how much time each core
spent running anything (user, nice, system); subtracting what our two
processes used leaves the foreign load. A run waits for the cores to be quiet
before it starts a server, and a window disturbed by foreign load is measured
again (see `_runner`).
"""

from __future__ import annotations

import os
import time

__all__ = ["Quiet", "busy_seconds", "wait_quiet"]

_TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds(cpus: tuple[int, ...]) -> tuple[float, ...]:
    """Seconds each of `cpus` has spent running tasks (user + nice + system) since boot."""
    wanted = {f"cpu{cpu}": i for i, cpu in enumerate(cpus)}
    result = [0.0] * len(cpus)
    with open("/proc/stat", "rb") as f:
        for line in f:
            name, _, rest = line.decode().partition(" ")
            if name in wanted:
                user, nice, system = (int(v) for v in rest.split()[:3])
                result[wanted[name]] = (user + nice + system) / _TICKS
    return tuple(result)


def wait_quiet(
    cpus: tuple[int, ...], *, threshold: float = 0.1, window: float = 0.25, limit: float = 30.0
) -> float:
    """Wait until no core of `cpus` is busier than `threshold` over `window` seconds.

    Call it while our own processes are idle: everything measured is foreign.

    Args:
        cpus: the cores to watch.
        threshold: the busy fraction (of one core) that counts as quiet.
        window: the length of one look.
        limit: give up after this many seconds (and go on anyway).

    Returns:
        The busiest core's load in the last look (0.0 to 1.0).
    """
    deadline = time.monotonic() + limit
    while True:
        before = busy_seconds(cpus)
        time.sleep(window)
        after = busy_seconds(cpus)
        load = max((a - b) / window for a, b in zip(after, before, strict=True))
        if load <= threshold or time.monotonic() >= deadline:
            return load


class Quiet:
    """Waits for quiet cores, within one allowance of waiting for a whole run.

    On a machine that other work keeps busy, waiting cannot fix every window;
    the allowance keeps the run's length bounded (``--quick`` stays quick).

    Args:
        cpus: the cores to watch (empty: never wait).
        threshold: the foreign load that counts as quiet.
        allowance: total seconds of waiting for the run.
    """

    def __init__(self, cpus: tuple[int, ...], *, threshold: float, allowance: float) -> None:
        self.cpus = cpus
        self.threshold = threshold
        self._allowance = allowance

    @property
    def exhausted(self) -> bool:
        """True when no waiting is left (or there is nothing to watch)."""
        return not self.cpus or self._allowance <= 0

    def wait(self, limit: float) -> float | None:
        """Wait for quiet, at most `limit` seconds and what the allowance has left.

        Returns:
            The busiest core's foreign load at the end, or None when it did not look.
        """
        if self.exhausted:
            return None
        started = time.monotonic()
        load = wait_quiet(self.cpus, threshold=self.threshold, limit=min(limit, self._allowance))
        self._allowance -= time.monotonic() - started
        return load
