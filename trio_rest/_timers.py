"""Timers: a task plus its own cancel scope, started in a connection's nursery."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

__all__ = ["Timer", "start_timer"]

log = logging.getLogger("trio_rest")


@attrs.define(eq=False)
class Timer:
    """A pending `call_later` or a repeating `every`; it dies with its connection.

    Attributes:
        runs: how many times the function has run.
    """

    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    runs: int = 0

    def cancel(self) -> None:
        """Stop the timer; a run in progress is cancelled at its next checkpoint."""
        self._scope.cancel()

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called."""
        return self._scope.cancel_called


async def _run_once(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def _timer_task(
    timer: Timer, fn: Callable[..., Any], args: tuple[Any, ...], delay: float, interval: float | None
) -> None:
    with timer._scope:
        next_run = trio.current_time() + delay
        while True:
            await trio.sleep_until(next_run)
            try:
                await _run_once(fn, args)
            except Exception:
                log.exception("timer %r failed; it is stopped", fn)
                return
            timer.runs += 1
            if interval is None:
                return
            # Fixed rate, not fixed delay: a slow run does not shift the schedule.
            next_run = max(next_run + interval, trio.current_time())


def start_timer(
    nursery: trio.Nursery,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    delay: float,
    interval: float | None,
) -> Timer:
    """Start a timer task in `nursery`.

    Args:
        nursery: the connection's nursery.
        fn: an async or plain function.
        args: its arguments.
        delay: seconds before the first run.
        interval: seconds between runs, or None to run once.

    Returns:
        The `Timer`.

    Raises:
        ValueError: a negative delay or a non-positive interval.
    """
    if delay < 0 or (interval is not None and interval <= 0):
        raise ValueError("delay must be >= 0 and interval > 0")
    timer = Timer()
    nursery.start_soon(_timer_task, timer, fn, args, delay, interval)
    return timer
