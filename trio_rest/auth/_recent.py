"""The revocations made lately in this process, numbered, for checks that awaited meanwhile.

Checking a token awaits (the `user_loader` may read a database); a subject revoked during that
wait would otherwise keep the credentials the check then returns: `App.revoke` closes the
connections it finds, and a connection still in its handshake is not among them yet. So a
check takes a `RecentRevocations.mark` before it begins, and asks `revoked_since` once its
result is about to take effect, with no checkpoint in between (`authenticate` does both
around a token's check).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .._errors import AuthenticationError

if TYPE_CHECKING:
    from ._backend import AuthBackend
    from ._jwt import Credentials

__all__ = ["REVOCATIONS_KEPT", "RecentRevocations"]

#: How many revocations are remembered: a check that spans more of them assumes its own is one.
REVOCATIONS_KEPT = 1024


class RecentRevocations:
    """The last `kept` revocations of this process, in order.

    Rules (`check_invariants`):

    1. `count` is how many revocations this process has made (each `App.revoke`, and each
       one another process sent); never less than before.
    2. `recent` holds the last ``min(count, kept)`` of them as ``(number, subject)``, numbered
       ``count - len(recent) + 1`` to `count`, in that order.
    3. `revoked_since(subject, mark)` is true when `subject` was revoked after `mark`, or when
       too many revocations came after it to tell (then a check refuses: never wrongly accepts).
    """

    __slots__ = ("count", "kept", "recent")

    def __init__(self, kept: int = REVOCATIONS_KEPT) -> None:
        if isinstance(kept, bool) or not isinstance(kept, int) or kept < 1:
            raise ValueError(f"kept must be a positive integer, not {kept!r}")
        self.kept = kept
        self.count = 0
        self.recent: deque[tuple[int, str]] = deque(maxlen=kept)

    def add(self, subject: str) -> None:
        """`subject`'s credentials were just revoked."""
        self.count += 1
        self.recent.append((self.count, subject))

    def mark(self) -> int:
        """Where the revocations stand now: for a later `revoked_since`."""
        return self.count

    def revoked_since(self, subject: str, mark: int) -> bool:
        """Whether `subject` was revoked after `mark` (or may have been: too many to tell)."""
        if self.count == mark:
            return False
        if mark < self.count - len(self.recent):  # some of those after `mark` are forgotten
            return True
        return any(number > mark and revoked == subject for number, revoked in self.recent)

    async def authenticate(self, auth: AuthBackend, token: str) -> Credentials:
        """``auth.authenticate(token)``, refused if its subject is revoked while it is checked.

        Raises:
            AuthenticationError: the token is refused, or was revoked meanwhile.
        """
        mark = self.mark()
        credentials = await auth.authenticate(token)
        if credentials.subject is not None and self.revoked_since(credentials.subject, mark):
            raise AuthenticationError("The token was revoked.")
        return credentials

    def check_invariants(self) -> None:
        """Assert the rules above."""
        assert self.count >= 0 and len(self.recent) == min(self.count, self.kept)
        numbers = [number for number, _ in self.recent]
        assert numbers == list(range(self.count - len(self.recent) + 1, self.count + 1))
