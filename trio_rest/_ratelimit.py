"""Rate limits: token buckets per connection and per client address, and what a flood costs.

Each request takes a token from its connection's bucket, from its address's bucket (shared
by every connection from that address) and, once the connection is authenticated, from its
user's (shared by every connection of that user). A request that finds either empty is
answered 429 ``throttled`` with ``errors.retry_after``, without routing or running anything;
the connection is then *throttled*: the rest of what it already sent in that read is
answered 429 the same way, and its socket is not read again until the bucket holds tokens
for half its burst, so TCP slows the client down and the server spends nothing more on it.
A connection throttled `Settings.rate_limit_strikes` times with no calm spell in between (as
long as its buckets take to refill a whole burst) is closed with 1008: it kept sending at
full speed through every pause.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. ``0 <= tokens <= burst`` in every bucket, after any `take`.
2. An address (a user) has a bucket only while it has a connection (`Limits.attach`/`detach`,
   `attach_user`/`detach_user` count them), so the buckets kept are at most the open
   connections, twice.
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

    __slots__ = ("_addresses", "_users", "per_address", "per_connection", "per_user")

    def __init__(self, settings: Settings) -> None:
        self.per_connection = settings.rate_limit
        self.per_address = settings.rate_limit_per_address
        self.per_user = settings.rate_limit_per_user
        self._addresses: dict[str, tuple[Bucket, int]] = {}  # address -> (bucket, connections)
        self._users: dict[str, tuple[Bucket, int]] = {}  # subject -> (bucket, connections)

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.per_connection is not None or self.per_address is not None or self.per_user is not None

    def connection_bucket(self, burst: float) -> Bucket | None:
        """A new connection's own bucket (None without a per-connection limit)."""
        if self.per_connection is None:
            return None
        return Bucket(self.per_connection, burst, trio.current_time())

    def attach(self, address: str, burst: float) -> Bucket | None:
        """A connection from `address` opens: the address's bucket (None without that limit)."""
        return _attach(self._addresses, address, self.per_address, burst)

    def detach(self, address: str) -> None:
        """A connection from `address` closed."""
        _detach(self._addresses, address)

    def attach_user(self, subject: str) -> Bucket | None:
        """A connection authenticated as `subject`: the user's bucket (None without that limit)."""
        rate = self.per_user
        return _attach(self._users, subject, rate, max(1.0, rate)) if rate is not None else None

    def detach_user(self, subject: str) -> None:
        """A connection authenticated as `subject` closed, or changed its credentials."""
        _detach(self._users, subject)

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        for bucket, count in [*self._addresses.values(), *self._users.values()]:
            assert count > 0, "rule 2: a bucket kept without a connection"
            assert 0 <= bucket.tokens <= bucket.burst, "rule 1"


def _attach(
    buckets: dict[str, tuple[Bucket, int]], key: str, rate: float | None, burst: float
) -> Bucket | None:
    if rate is None:
        return None
    bucket, count = buckets.get(key, (None, 0))
    if bucket is None:
        bucket = Bucket(rate, burst, trio.current_time())
    buckets[key] = (bucket, count + 1)
    return bucket


def _detach(buckets: dict[str, tuple[Bucket, int]], key: str) -> None:
    entry = buckets.get(key)
    if entry is None:
        return
    bucket, count = entry
    if count > 1:
        buckets[key] = (bucket, count - 1)
    else:
        del buckets[key]


class Throttle:
    """One connection's limits: its own bucket, its address's, and whether it is throttled.

    Args:
        own: the connection's bucket (None: no per-connection limit).
        shared: its address's bucket (None: no per-address limit).
        max_strikes: throttled this many times without a calm spell, the connection is closed.
    """

    __slots__ = ("calm", "max_strikes", "own", "shared", "strikes", "until", "user")

    def __init__(self, own: Bucket | None, shared: Bucket | None, max_strikes: int) -> None:
        self.own = own
        self.shared = shared
        self.user: Bucket | None = None  # the authenticated user's, shared by its connections
        self.max_strikes = max_strikes
        self.strikes = 0
        self.until = 0.0  # throttled until then (Trio's clock)
        # Seconds without a throttle that forgive the strikes: the time to refill a burst.
        self.calm = max((b.burst / b.rate for b in (own, shared) if b is not None), default=1.0)

    def check(self, now: float) -> float:
        """Admit a request (0.0), or return the seconds it should have waited (a 429)."""
        if now < self.until:
            return self.until - now
        own, shared, user = self.own, self.shared, self.user
        wait = own.take(now) if own is not None else 0.0
        if not wait and shared is not None:
            wait = shared.take(now)
        if not wait and user is not None:
            wait = user.take(now)
        if not wait:
            if self.strikes and now >= self.until + self.calm:
                self.strikes = 0  # a calm spell since the last throttle: forgiven
            return 0.0
        # Throttled: nothing more is read until half the burst is back in both buckets.
        pause = wait
        for bucket in (own, shared, user):
            if bucket is not None:
                pause = max(pause, bucket.refill_time(bucket.burst / 2, now))
        self.until = now + pause
        self.strikes += 1
        return pause

    @property
    def exhausted(self) -> bool:
        """Throttled `max_strikes` times without a calm spell: the connection must be closed."""
        return self.strikes >= self.max_strikes
