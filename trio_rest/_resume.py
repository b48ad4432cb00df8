"""`Resume`: finish awaiting a coroutine whose first step already ran, in the awaiting task.

The worker pool runs a handler's first step itself (``coro.send(None)``): a handler that
returns without waiting costs no more than a call. Only when the first step suspends is the
rest awaited through a `Resume`, which hands the first trap up to Trio and then passes every
value through untouched, so the handler still runs in the worker's task and every Trio
primitive it uses sees that task. `gi_yieldfrom` exposes the coroutine, so Trio's task-tree
introspection (``Task.iter_await_frames``) shows a hung view's own frames.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["Resume"]


class Resume:
    """The rest of `coro`, which has just suspended on `trap`; await it once.

    Args:
        coro: the coroutine, suspended.
        trap: what its first step yielded, still owed to the scheduler.
    """

    __slots__ = ("_coro", "_trap")

    gi_frame = None  # Trio's walk reads frames here, then follows gi_yieldfrom

    def __init__(self, coro: Coroutine[Any, Any, Any], trap: Any) -> None:
        self._coro = coro
        self._trap = trap

    @property
    def gi_yieldfrom(self) -> Coroutine[Any, Any, Any]:
        """The coroutine being awaited (for Trio's task-tree introspection)."""
        return self._coro

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]

    def __iter__(self) -> Resume:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        """Hand the first trap up, then `value` down; a StopIteration ends the await."""
        trap = self._trap
        if trap is not None:
            self._trap = None
            return trap
        return self._coro.send(value)

    def throw(self, exc: BaseException, *rest: Any) -> Any:
        """Raise `exc` in the coroutine (Trio sends outcomes instead, but others may throw)."""
        self._trap = None
        return self._coro.throw(exc)

    def close(self) -> None:
        """Close the coroutine."""
        self._coro.close()
