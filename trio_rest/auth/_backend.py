"""`AuthBackend`: what ``App(auth=...)`` needs of an authentication, so that JWT is one of several.

`JWTAuth` is one. Another backend (opaque tokens looked up in a store, say) has the same three
members; the server calls nothing else.
"""

from __future__ import annotations

from typing import Protocol

from ._jwt import Credentials

__all__ = ["AuthBackend"]


class AuthBackend(Protocol):
    """Checks tokens for an App.

    Attributes:
        leeway: seconds a connection's credentials still count after they expire.
    """

    leeway: float

    async def authenticate(self, token: str) -> Credentials:
        """Check `token`; return whom it names, its subject and its expiry.

        Raises:
            AuthenticationError: the token is refused (the detail says why, never the token).
        """
        ...

    def revoke(self, subject: str, *, at: float | None = None) -> None:
        """Refuse the tokens `subject` holds at `at` (Unix time; now by default).

        `App.revoke` also closes its connections; `App.revoke_everywhere` passes the time
        it revoked at to every process.
        """
        ...
