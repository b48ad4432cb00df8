"""One task keeps every connection of a Trio run alive, instead of one task each.

A task per connection would sleep almost all of its life, yet cost about
2 KiB of memory (docs/performance.md). Here each connection registers with
the run's `Keepalive`; a single system task wakes every quarter of the
shortest interval among them and lets each connection check its own silence
(`Member.keepalive_check`). So a silent client is pinged within a quarter of
`ping_interval` after the interval, and closed within a quarter of
`ping_timeout` after the timeout.

What a connection knows of its peer's liveness is a `Liveness` record: when it last
heard from the peer, and when the unanswered ping left. Its rule: at most one ping is
outstanding; it stops being so at the first check that finds anything heard since it
left, and a silence is never judged dead before a ping went unanswered for `timeout`.
"""

from __future__ import annotations

import enum
import logging
import math
from typing import Protocol

import attrs
import trio

__all__ = ["Keepalive", "Liveness", "Member", "Verdict", "keepalive"]

log = logging.getLogger("trio_rest")


class Verdict(enum.Enum):
    """What `Liveness.check` tells a connection to do."""

    ALIVE = "alive"  # nothing to do
    PING = "ping"  # the peer was silent for the interval: ping it
    DEAD = "dead"  # the ping went unanswered for the timeout: close (1011)


@attrs.define(eq=False)
class Liveness:
    """When a peer was last heard from, and the ping that awaits its answer.

    Attributes:
        interval: seconds of silence before a ping.
        timeout: seconds a ping may go unanswered.
        last_seen: when anything last arrived (Trio's clock).
        ping_sent: when the outstanding ping left, or None.
    """

    interval: float
    timeout: float
    last_seen: float
    ping_sent: float | None = None

    @property
    def tick(self) -> float:
        """How often to check, to act at most a quarter of the shorter timing late."""
        return min(self.interval, self.timeout) / 4

    def check(self, now: float) -> Verdict:
        """Tell what to do at `now`; a ping is counted as sent when this says `PING`."""
        sent = self.ping_sent
        if sent is None:
            if now - self.last_seen >= self.interval:
                self.ping_sent = now
                return Verdict.PING
        elif self.last_seen >= sent:
            self.ping_sent = None  # anything received since counts as the answer
        elif now - sent >= self.timeout:
            return Verdict.DEAD
        return Verdict.ALIVE


class Member(Protocol):
    """What the keepalive task needs of a connection."""

    @property
    def keepalive_tick(self) -> float:
        """Seconds between two checks that keep this member's timing."""
        ...

    def keepalive_check(self, now: float) -> None:
        """Ping, or give up on, a silent peer; must not raise."""
        ...


class Keepalive:
    """The members of one Trio run, and the one task that checks them."""

    def __init__(self) -> None:
        self._members: set[Member] = set()
        self._running = False
        self._tick = math.inf
        self._sleep = trio.CancelScope()

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: Member) -> None:
        """Start checking `member`; the task starts with the first member."""
        self._members.add(member)
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._run, name="trio_rest keepalive")
        elif member.keepalive_tick < self._tick:
            self._sleep.cancel()  # it sleeps too long for the newcomer: recompute now

    def discard(self, member: Member) -> None:
        """Stop checking `member`; the task ends after the last one."""
        self._members.discard(member)

    async def _run(self) -> None:
        try:
            while self._members:
                self._tick = min(member.keepalive_tick for member in self._members)
                with trio.CancelScope() as self._sleep:
                    await trio.sleep(self._tick)
                if self._sleep.cancelled_caught:
                    continue  # woken for a shorter tick: sleep that one first
                now = trio.current_time()
                for member in list(self._members):
                    try:
                        member.keepalive_check(now)
                    except Exception:  # a system task must not raise: it would end the run
                        log.exception("keepalive check failed")
                        self._members.discard(member)
        finally:
            self._running = False
            self._tick = math.inf


_RUN_KEEPALIVE: trio.lowlevel.RunVar[Keepalive] = trio.lowlevel.RunVar("trio_rest_keepalive")


def keepalive() -> Keepalive:
    """The current Trio run's `Keepalive`."""
    try:
        return _RUN_KEEPALIVE.get()
    except LookupError:
        registry = Keepalive()
        _RUN_KEEPALIVE.set(registry)
        return registry
