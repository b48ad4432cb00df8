"""`ByteBudget`: how many bytes of requests a whole server may hold at once.

Each connection bounds its own buffered requests (`Settings.max_buffered_bytes`: past it,
it stops reading), but ten thousand connections each at their bound would still be too
much for one machine. The server's budget is the second bound: a request that would pass
it is refused with 503 before it is queued.

Rule (`check_invariants`): ``0 <= used <= limit``, and `used` is what was taken and not
given back; every job gives back exactly what it took, when it leaves its pool.
"""

from __future__ import annotations

__all__ = ["ByteBudget"]


class ByteBudget:
    """A byte count shared by the connections of one server.

    Args:
        limit: the most bytes held at once.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Take `size` bytes; false (and nothing taken) when that would pass the limit."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        """Give back what `take` took."""
        self.used -= size

    def check_invariants(self) -> None:
        """Raise `AssertionError` if the rule of the module docstring is broken."""
        assert 0 <= self.used <= self.limit, f"budget: {self.used} of {self.limit}"
