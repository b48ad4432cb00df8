"""`ConnectionStats`, what one connection holds at a moment, and `PushStats`, what an App's
notifications did: for metrics, logs and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

__all__ = ["ConnectionStats", "MetricsHook", "PushStats"]

log = logging.getLogger("trio_rest")


@attrs.frozen(kw_only=True)
class ConnectionStats:
    """What a connection holds at one moment (`ServerConnection.stats`).

    Attributes:
        running: requests whose handler runs.
        waiting: requests queued for a worker.
        held: requests read past the bounds (`max_in_flight`, `max_buffered_bytes`),
            admitted as room frees.
        subscriptions: active subscriptions.
        workers: worker tasks alive (those serving a subscription included).
        tasks: tasks the connection runs beside its reader (workers, the writer, timers).
        buffered_bytes: bytes of the requests running, waiting, held or subscribed.
        outbound_bytes: bytes queued for the client and not yet written.
    """

    running: int
    waiting: int
    held: int
    subscriptions: int
    workers: int
    tasks: int
    buffered_bytes: int
    outbound_bytes: int


#: What `App(metrics=...)` takes: called with a counter's name and how much it grew.
MetricsHook = Callable[[str, int], None]


class PushStats:
    """What an App's notifications did since it was built (``app.push_stats``).

    Counters only grow. Each change is also handed to the App's metrics hook, if it
    has one, as ``hook(name, amount)`` with the attribute's name: once per publish
    for ``published`` and ``delivered`` (the amount is the members reached), once
    per event for the others, so that the hook is never called per member.

    Attributes:
        published: messages published through `App.publish` (or an observer).
        delivered: notifications queued for members, one per member reached.
        dropped: notifications dropped for slow clients
            (``Settings.notification_overflow = "drop_oldest"``).
        slow_disconnects: clients disconnected with 1008 because their outbound
            queue was full.
        failed: notifications of committed writes that could not be published (the
            broker was unavailable); each is also logged as an error.
    """

    __slots__ = ("_hook", "delivered", "dropped", "failed", "published", "slow_disconnects")

    def __init__(self, hook: MetricsHook | None = None) -> None:
        self._hook = hook
        self.published = self.delivered = self.dropped = self.slow_disconnects = self.failed = 0

    def count(self, name: str, amount: int = 1) -> None:
        """Add `amount` to the counter `name` and tell the hook; a failing hook is logged."""
        setattr(self, name, getattr(self, name) + amount)
        if self._hook is not None:
            try:
                self._hook(name, amount)
            except Exception:
                log.exception("the metrics hook failed on %s", name)

    def __repr__(self) -> str:
        return (
            f"PushStats(published={self.published}, delivered={self.delivered}, "
            f"dropped={self.dropped}, slow_disconnects={self.slow_disconnects}, failed={self.failed})"
        )
