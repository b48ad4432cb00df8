"""Rate limits: token buckets per connection and per client address, and what a flood costs.

Each request takes a token from its connection's bucket and from its address's bucket
(shared by every connection from that address). A request that finds either empty is
answered 429 ``throttled`` with ``errors.retry_after``, without routing or running anything;
the connection is then *throttled*: the rest of what it already sent in that read is
answered 429 the same way, and its socket is not read again until the bucket holds tokens
for half its burst, so TCP slows the client down and the server spends nothing more on it.
A connection throttled `Settings.rate_limit_strikes` times with no calm spell in between (as
long as its buckets take to refill a whole burst) is closed with 1008: it kept sending at
full speed through every pause.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. ``0 <= tokens <= burst`` in every bucket, after any `take`.
2. An address has a bucket only while it has a connection (`Limits.attach`/`detach`
   count them), so the buckets kept are at most the open connections.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ["Bucket", "Limits", "Throttle"]


class Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` held."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> float:
        """Take a token; return 0.0, or the seconds until one is there (none is taken then)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def refill_time(self, level: float, now: float) -> float:
        """Seconds until the bucket holds `level` tokens (0 when it does)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return max(0.0, (level - tokens) / self.rate)


class Limits:
    """The server's per-address buckets, and the settings every connection's bucket follows.

    Args:
        settings: `rate_limit`, `rate_burst`, `rate_limit_per_address` (None: no limit).
    """

    __slots__ = ("_addresses", "per_address", "per_connection")

    def __init__(self, settings: Settings) -> None:
        self.per_connection = settings.rate_limit
        self.per_address = settings.rate_limit_per_address
        self._addresses: dict[str, tuple[Bucket, int]] = {}  # address -> (bucket, connections)

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.per_connection is not None or self.per_address is not None

    def connection_bucket(self, burst: float) -> Bucket | None:
        """A new connection's own bucket (None without a per-connection limit)."""
        if self.per_connection is None:
            return None
        return Bucket(self.per_connection, burst, trio.current_time())

    def attach(self, address: str, burst: float) -> Bucket | None:
        """A connection from `address` opens: the address's bucket (None without that limit)."""
        if self.per_address is None:
            return None
        bucket, count = self._addresses.get(address, (None, 0))
        if bucket is None:
            bucket = Bucket(self.per_address, burst, trio.current_time())
        self._addresses[address] = (bucket, count + 1)
        return bucket

    def detach(self, address: str) -> None:
        """A connection from `address` closed."""
        entry = self._addresses.get(address)
        if entry is None:
            return
        bucket, count = entry
        if count > 1:
            self._addresses[address] = (bucket, count - 1)
        else:
            del self._addresses[address]

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        for bucket, count in self._addresses.values():
            assert count > 0, "rule 2: an address kept without a connection"
            assert 0 <= bucket.tokens <= bucket.burst, "rule 1"


class Throttle:
    """One connection's limits: its own bucket, its address's, and whether it is throttled.

    Args:
        own: the connection's bucket (None: no per-connection limit).
        shared: its address's bucket (None: no per-address limit).
        max_strikes: throttled this many times without a calm spell, the connection is closed.
    """

    __slots__ = ("calm", "max_strikes", "own", "shared", "strikes", "until")

    def __init__(self, own: Bucket | None, shared: Bucket | None, max_strikes: int) -> None:
        self.own = own
        self.shared = shared
        self.max_strikes = max_strikes
        self.strikes = 0
        self.until = 0.0  # throttled until then (Trio's clock)
        # Seconds without a throttle that forgive the strikes: the time to refill a burst.
        self.calm = max((b.burst / b.rate for b in (own, shared) if b is not None), default=0.0)

    def check(self, now: float) -> float:
        """Admit a request (0.0), or return the seconds it should have waited (a 429)."""
        if now < self.until:
            return self.until - now
        own, shared = self.own, self.shared
        wait = own.take(now) if own is not None else 0.0
        if not wait and shared is not None:
            wait = shared.take(now)
        if not wait:
            if self.strikes and now >= self.until + self.calm:
                self.strikes = 0  # a calm spell since the last throttle: forgiven
            return 0.0
        # Throttled: nothing more is read until half the burst is back in both buckets.
        pause = wait
        for bucket in (own, shared):
            if bucket is not None:
                pause = max(pause, bucket.refill_time(bucket.burst / 2, now))
        self.until = now + pause
        self.strikes += 1
        return pause

    @property
    def exhausted(self) -> bool:
        """Throttled `max_strikes` times without a calm spell: the connection must be closed."""
        return self.strikes >= self.max_strikes
