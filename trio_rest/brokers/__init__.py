"""Brokers: what carries published notifications to the members of their topics.

    from trio_rest.brokers import RedisBroker

    app = App(router, broker=RedisBroker("redis://127.0.0.1:6379/0"))

`InMemoryBroker` (the default) serves one process; `RedisBroker` serves every process of
every machine that shares its Redis server, with each topic's bounded history there, so
that a subscriber recovers what it missed on whichever process it comes back to. It needs
the ``redis`` extra (coredis): ``pip install 'trio-rest[redis]'``.
"""

from __future__ import annotations

from .._broker import Broker, InMemoryBroker, Position, Published, Recovery
from ._redis import RedisBroker

__all__ = ["Broker", "InMemoryBroker", "Position", "Published", "Recovery", "RedisBroker"]
