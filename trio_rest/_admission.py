"""`Admission`: which TCP connections and handshakes the server takes, before any WebSocket.

It counts every stream from its accept to its close, handshakes in progress included, so a
client that opens sockets and never finishes its handshake (half-open, slow-loris) uses up
its own share, not the server's: at most `Settings.max_connections` in all and
`Settings.max_connections_per_address` from one address; past either, the stream is
answered HTTP 503 at once and closed. The Origin of a browser's handshake must be in
`Settings.allowed_origins` when that list is set (403 otherwise); a handshake without an
Origin (any non-browser client) is let through.

Rules (`check_invariants` raises `AssertionError` when one is broken):

1. ``total == sum(per_address.values())``, and no address is kept with a count of zero.
2. ``total <= max_connections`` and each count ``<= max_connections_per_address``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = ["Admission", "origin_key"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """Scheme, host and port of an origin (the default port filled in); None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
        if port is None:
            return None
    return scheme, host, port


class Admission:
    """The server's count of open streams, in all and per client address.

    Args:
        settings: `max_connections`, `max_connections_per_address` and `allowed_origins`.
    """

    __slots__ = ("_origins", "max_per_address", "max_total", "per_address", "total")

    def __init__(self, settings: Settings) -> None:
        self.max_total = settings.max_connections
        self.max_per_address = settings.max_connections_per_address
        origins = settings.allowed_origins
        self._origins = None if origins is None else {origin_key(origin) for origin in origins}
        self.total = 0
        self.per_address: dict[str, int] = {}

    def enter(self, address: str) -> bool:
        """Count a new stream from `address`; False (and nothing counted) when it is one too many."""
        count = self.per_address.get(address, 0)
        if self.total >= self.max_total or count >= self.max_per_address:
            return False
        self.total += 1
        self.per_address[address] = count + 1
        return True

    def leave(self, address: str) -> None:
        """A stream counted by `enter` closed."""
        self.total -= 1
        count = self.per_address[address] - 1
        if count:
            self.per_address[address] = count
        else:
            del self.per_address[address]

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a handshake with this Origin header (None: none) may upgrade."""
        if self._origins is None or origin is None:
            return True
        key = origin_key(origin)
        return key is not None and key in self._origins

    def check_invariants(self) -> None:
        """Raise `AssertionError` if a rule of the module docstring is broken."""
        assert self.total == sum(self.per_address.values()), "rule 1: total"
        assert all(self.per_address.values()), "rule 1: an address kept at zero"
        assert self.total <= self.max_total, "rule 2: total"
        assert all(count <= self.max_per_address for count in self.per_address.values()), "rule 2"
