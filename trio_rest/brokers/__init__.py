"""Brokers: what carries published notifications to the members of their topics.

    from trio_rest.brokers import RedisBroker

    app = App(router, broker=RedisBroker("redis://127.0.0.1:6379/0"))

`InMemoryBroker` (the default) serves one process; `RedisBroker` serves every process of
every machine that shares its Redis server, with each topic's bounded history there, so
that a subscriber recovers what it missed on whichever process it comes back to. It needs
the ``redis`` extra (coredis): ``pip install 'trio-rest[redis]'``.

Another broker implements `Broker` (members joining and leaving topics, ``publish``,
``history``, ``running``); `recovery_after` decides what a subscriber at a position gets
from a history, the same way for every broker.
"""

from __future__ import annotations

from .._broker import Broker, InMemoryBroker, Member, Position, Published, Recovery, recovery_after
from ._redis import RedisBroker

__all__ = [
    "Broker",
    "InMemoryBroker",
    "Member",
    "Position",
    "Published",
    "Recovery",
    "RedisBroker",
    "recovery_after",
]
