"""`ConnectionStats`: what one connection holds at a moment, for metrics, logs and tests."""

from __future__ import annotations

import attrs

__all__ = ["ConnectionStats"]


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
