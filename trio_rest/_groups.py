"""What an ``async with`` block raised inside a nursery comes out as itself, not in a group.

A context manager that runs its tasks in a nursery and yields inside it (``connect``,
``TestClient``) would hand the caller its own exception wrapped in an exception group, so
that ``except APIError`` around the block misses it::

    with alone() as block:
        async with trio.open_nursery() as nursery:
            ...
            try:
                yield client
            except BaseException as exc:
                block.error = exc
                raise

The block's exception is raised alone when it is the group's only one; a group that holds
anything else (a task of the context manager failed too) is raised as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs

__all__ = ["Block", "alone"]


@attrs.define
class Block:
    """What the block raised, if it did."""

    error: BaseException | None = None


@contextmanager
def alone() -> Iterator[Block]:
    """Re-raise the block's exception without the group the nursery put around it."""
    block = Block()
    try:
        yield block
    except BaseExceptionGroup as group:
        inner = group  # one group per nursery the exception went through
        while block.error is not None and len(inner.exceptions) == 1:
            if inner.exceptions[0] is block.error:
                raise block.error from None
            if not isinstance(inner.exceptions[0], BaseExceptionGroup):
                break
            inner = inner.exceptions[0]
        raise
