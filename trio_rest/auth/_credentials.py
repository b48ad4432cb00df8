"""Where a token comes from: the handshake (a Bearer header, or ``?token=``) or a request.

Tokens are only read here and handed to the `JWTAuth`; none is ever logged: the handshake's
path is logged without its query string, and refusals are logged with their reason only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

__all__ = ["handshake_token", "request_token", "user_label"]


def handshake_token(headers: tuple[tuple[str, str], ...], query: str) -> str | None:
    """The token of a handshake: ``Authorization: Bearer <token>``, else ``?token=<token>``."""
    for name, value in headers:
        if name == "authorization":
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    if "token=" in query:
        found = parse_qs(query).get("token")
        if found:
            return found[-1]
    return None


def request_token(args: Mapping[str, Any], extras: Mapping[str, Any]) -> Any:
    """The token a request carries: ``args.token``, or a top-level ``token`` as aiorest-ws sent it."""
    token = args.get("token") if args else None
    if token is None and extras:
        token = extras.get("token")
    return token


def user_label(user: Any) -> str:
    """How logs name a user: a token's ``sub``, a user object's ``id``, never the whole object."""
    if user is None:
        return "none"
    if isinstance(user, Mapping):
        return str(user.get("sub", "?"))
    return str(getattr(user, "id", type(user).__name__))
