"""`run_abandonable`: blocking code in a worker thread, which a cancellation may leave behind.

A thread cannot be cancelled. A request's deadline, its client's cancel or the connection
closing must still be answered on time, so the caller stops waiting at a cancellation:
its reply (504, 499, 503) goes out, and the thread runs to its end alone. What the thread
then returns (or raises) is discarded and logged, and `late` runs after it in that same
thread, for the cleanup that has to wait for it (the database session it used).

Rule (under the call's lock): exactly one of three things happens. The thread finished
first and the caller gets its result; or the caller gave up while the blocking code ran:
`abandoned` runs at once in Trio, and `late` runs once in the thread after the code; or the
caller gave up before the code began, which then never runs (nothing to clean up later).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import trio

__all__ = ["run_abandonable"]

log = logging.getLogger("trio_rest")

_T = TypeVar("_T")


class _Skipped(Exception):
    """Raised in a thread whose caller gave up before it began."""


class _Call:
    __slots__ = ("abandoned", "finished", "lock", "skipped", "started")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False  # the thread began the blocking code
        self.finished = False  # the blocking code returned or raised
        self.abandoned = False  # the caller stopped waiting between the two
        self.skipped = False  # the caller gave up before it began: it never will


async def run_abandonable(
    fn: Callable[[], _T],
    *,
    limiter: trio.CapacityLimiter | None = None,
    abandoned: Callable[[], None] | None = None,
    late: Callable[[], None] | None = None,
) -> _T:
    """Run ``fn()`` in a worker thread; stop waiting for it when cancelled.

    Args:
        fn: the blocking code (a `functools.partial` is named by its function in the log).
        limiter: the thread limiter (Trio's default when None); the token is held
            until the thread ends, abandoned or not.
        abandoned: called in Trio when the caller gives up on a running thread.
        late: called in the thread, after `fn`, when the caller gave up on it.

    Returns:
        What `fn` returned.
    """
    call = _Call()

    def in_thread() -> _T:
        with call.lock:
            if call.skipped:  # the caller gave up before this thread got going: do nothing
                raise _Skipped  # never seen: nobody waits for this result any more
            call.started = True
        try:
            return fn()
        finally:
            with call.lock:
                call.finished = True
                left = call.abandoned
            if left:
                log.warning("%s ended after its request was answered: its result is discarded", _name(fn))
                if late is not None:
                    late()

    try:
        return await trio.to_thread.run_sync(in_thread, limiter=limiter, abandon_on_cancel=True)
    except BaseException:
        with call.lock:
            if not call.started:
                call.skipped = True  # the blocking code will not run: nothing to clean up later
            left = call.abandoned = call.started and not call.finished
        if left and abandoned is not None:
            abandoned()
        raise


def _name(fn: Callable[..., object]) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__qualname__", repr(fn))
