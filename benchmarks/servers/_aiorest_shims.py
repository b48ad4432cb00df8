"""Runtime fixes that let aiorest-ws 1.1.1 (2017) import and run on Python 3.11.

Applied by the launcher before aiorest-ws is imported; the installed package
is never edited. See ``shared/PEERS.md``: each shim answers one removal.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["install"]


class ArgSpec(NamedTuple):
    """The 4-tuple the removed `inspect.getargspec` returned."""

    args: list[str]
    varargs: str | None
    keywords: str | None
    defaults: tuple[Any, ...] | None


def getargspec(fn: Callable[..., Any]) -> ArgSpec:
    """`inspect.getargspec`, rebuilt on `inspect.getfullargspec`."""
    spec = inspect.getfullargspec(fn)
    return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def coroutine(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for the removed ``@asyncio.coroutine``: make `fn` an ``async def``.

    A generator-based method is driven with ``await`` (through
    `types.coroutine`); a plain function's result is returned, awaited first
    if it is awaitable. Callers (autobahn) then get a real coroutine and
    handle its exceptions as they do for ``async def`` handlers, instead of
    seeing a synchronous exception escape mid-frame.
    """
    if inspect.iscoroutinefunction(fn):
        return fn
    target: Callable[..., Any] = types.coroutine(fn) if inspect.isgeneratorfunction(fn) else fn

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = target(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    return wrapper


def install() -> None:
    """Put back what aiorest-ws needs, where it is missing."""
    for name in collections.abc.__all__:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    if not hasattr(asyncio, "coroutine"):
        asyncio.coroutine = coroutine  # type: ignore[attr-defined]
    if not hasattr(inspect, "getargspec"):
        inspect.getargspec = getargspec  # type: ignore[attr-defined]
