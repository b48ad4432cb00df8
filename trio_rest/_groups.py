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

The block's exception is raised alone, with its own cause and context, when the group holds
nothing else (a nursery may rebuild a group the block raised: its leaves are compared); a
group that holds anything else (a task of the context manager failed too) is raised as it is.
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
    """Re-raise the block's exception without the groups the nurseries put around it."""
    block = Block()
    error: BaseException | None = None
    try:
        yield block
    except BaseExceptionGroup as group:
        if block.error is None or _leaves(group) != _leaves(block.error):
            raise
        error = block.error
    if error is not None:
        _raise_as_it_was(error)


def _leaves(error: BaseException) -> set[int]:
    """The identities of the exceptions that are not groups, however deep."""
    if isinstance(error, BaseExceptionGroup):
        return set().union(*(_leaves(inner) for inner in error.exceptions))
    return {id(error)}


def _raise_as_it_was(error: BaseException) -> None:
    """Raise `error` with the cause and context it had (raising it here would set a context)."""
    cause, context, suppress = error.__cause__, error.__context__, error.__suppress_context__
    try:
        raise error
    finally:
        error.__cause__, error.__context__, error.__suppress_context__ = cause, context, suppress
